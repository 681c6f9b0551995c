-- Sessions deleted by "forget a person", by the SHA-256 of their public id
-- (the id itself is gone with the person), so that the
-- write-ahead log replayed at a restart (whose files may still hold batches
-- of those sessions) does not record them again.
CREATE TABLE forgotten_sessions (
	project_id   INTEGER NOT NULL,
	session_hash TEXT    NOT NULL, -- hex SHA-256 of the public id
	forgotten_at INTEGER NOT NULL, -- unix ms
	PRIMARY KEY (project_id, session_hash)
) WITHOUT ROWID;
