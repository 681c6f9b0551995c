-- No blank replays: how many full snapshots a session's stored events
-- hold, and the time of its first (0: none yet). A session without one
-- cannot be replayed; the part before its first cannot be shown.
ALTER TABLE sessions ADD COLUMN full_snapshots INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN first_snapshot_at INTEGER NOT NULL DEFAULT 0;
-- Sessions recorded before the columns existed count as playable from
-- their start, as they were shown before.
UPDATE sessions SET full_snapshots = 1, first_snapshot_at = started_at;
