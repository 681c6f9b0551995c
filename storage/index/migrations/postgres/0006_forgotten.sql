-- Sessions deleted by "forget a person": their public ids, so that the
-- write-ahead log replayed at a restart (whose files may still hold batches
-- of those sessions) does not record them again.
CREATE TABLE forgotten_sessions (
	project_id   BIGINT NOT NULL,
	public_id    TEXT   NOT NULL,
	forgotten_at BIGINT NOT NULL, -- unix ms
	PRIMARY KEY (project_id, public_id)
);
