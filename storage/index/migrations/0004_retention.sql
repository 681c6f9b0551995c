-- Retention: expired sessions are found per project by the server clock of
-- their last batch, among closed sessions only.
CREATE INDEX sessions_expiry ON sessions(project_id, last_received) WHERE closed = 1;

-- Blob keys whose index rows are gone and whose objects are still to be
-- deleted. Written in the transaction that deletes the rows, so a crash
-- between that commit and the deletes leaves no object behind for good.
CREATE TABLE blob_trash (
	key      TEXT    PRIMARY KEY,
	added_at INTEGER NOT NULL
) WITHOUT ROWID;
