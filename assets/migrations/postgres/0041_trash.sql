-- Twin of ../0041_trash.sql.
CREATE TABLE asset_trash (
	project_id BIGINT NOT NULL,
	sha256     TEXT   NOT NULL,
	added_at   BIGINT NOT NULL,
	PRIMARY KEY (project_id, sha256)
);
