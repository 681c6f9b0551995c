-- Ingest guards. Daily usage per project and UTC day, for per-project
-- quotas: written in the ingest's stage 1 transaction for each batch
-- recorded the first time, so it survives restarts and is shared by all
-- nodes of a cluster.
CREATE TABLE ingest_usage (
	project_id BIGINT NOT NULL REFERENCES projects(id),
	day        BIGINT NOT NULL, -- days since 1970-01-01 (UTC) of the server's receipt
	sessions   BIGINT NOT NULL DEFAULT 0,
	events     BIGINT NOT NULL DEFAULT 0,
	bytes      BIGINT NOT NULL DEFAULT 0, -- raw event JSON
	PRIMARY KEY (project_id, day)
);

-- The key a project's backend signs user ids with (HMAC-SHA256) so that the
-- recorder can verify identify claims; '' when none was created.
ALTER TABLE projects ADD COLUMN identity_secret TEXT NOT NULL DEFAULT '';
