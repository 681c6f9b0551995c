-- Objects of copies no row refers to any more, noted by a sweep and
-- deleted by a later one if still unreferenced: a fetcher that stores the
-- same bytes again meanwhile (content-addressed) keeps its object.
CREATE TABLE asset_trash (
	project_id INTEGER NOT NULL,
	sha256     TEXT    NOT NULL,
	added_at   INTEGER NOT NULL, -- unix ms
	PRIMARY KEY (project_id, sha256)
);
