-- Copies of the images, fonts and style sheets that recorded pages reference.
-- A row says what fetching url for a project on a UTC day gave: day 0 is a
-- URL that carries a content hash, fetched once for every day. The bytes
-- are in the blob store under <project>/assets/<sha256>.
CREATE TABLE asset_copies (
	project_id   INTEGER NOT NULL,
	url          TEXT    NOT NULL,
	day          INTEGER NOT NULL,              -- unix days (UTC); 0: any day
	status       TEXT    NOT NULL,              -- stored, or why not (refused_origin, too_large, http_404, ...)
	sha256       TEXT    NOT NULL DEFAULT '',   -- hex, '' unless stored
	content_type TEXT    NOT NULL DEFAULT '',
	size         INTEGER NOT NULL DEFAULT 0,
	etag         TEXT    NOT NULL DEFAULT '',
	expires_at   INTEGER NOT NULL DEFAULT 0,    -- unix ms the response may be reused until (Cache-Control max-age)
	fetched_at   INTEGER NOT NULL,              -- unix ms
	PRIMARY KEY (project_id, url, day)
);
CREATE INDEX asset_copies_sha ON asset_copies (project_id, sha256);

-- What a project fetched on a UTC day, for its daily caps.
CREATE TABLE asset_usage (
	project_id INTEGER NOT NULL,
	day        INTEGER NOT NULL,
	fetches    INTEGER NOT NULL DEFAULT 0,
	bytes      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (project_id, day)
);

-- Origins of the pages a project recorded: assets are fetched from these
-- (and from the origins its settings add) only.
CREATE TABLE asset_origins (
	project_id INTEGER NOT NULL,
	origin     TEXT    NOT NULL,                -- scheme://host[:port], lower case
	first_seen INTEGER NOT NULL,                -- unix ms
	PRIMARY KEY (project_id, origin)
);
