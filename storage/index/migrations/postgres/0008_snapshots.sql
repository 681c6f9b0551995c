-- Twin of ../0008_snapshots.sql.
ALTER TABLE sessions ADD COLUMN full_snapshots BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN first_snapshot_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET full_snapshots = 1, first_snapshot_at = started_at;
