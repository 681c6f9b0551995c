-- Render jobs: clips turned into video files (MP4, WebM, GIF) by headless
-- Chromium and ffmpeg. A job is queued, then running under a lease that its
-- worker renews (a node that dies loses it and a worker picks the job up
-- again), then done, failed or canceled. A job goes with its session (and
-- with the share it was made from); the file it names goes to render_trash.
CREATE TABLE render_jobs (
	id          TEXT    PRIMARY KEY,
	project_id  INTEGER NOT NULL,
	session_row INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	session_id  TEXT    NOT NULL,            -- its public id
	share_id    INTEGER REFERENCES shares(id) ON DELETE CASCADE, -- made from a share (its range; reachable while it is active)
	owner       TEXT    NOT NULL,            -- who asked (user:ID, token:NAME, share:ID), for the in-flight limit
	options     TEXT    NOT NULL,            -- JSON: range, format, size, fps, speed, skip_inactivity, caption
	cache_key   TEXT    NOT NULL,            -- hash of session, range and options: equal requests share one file
	status      TEXT    NOT NULL,            -- queued, running, done, failed, canceled
	progress    INTEGER NOT NULL DEFAULT 0,  -- 0–100
	eta_ms      INTEGER NOT NULL DEFAULT 0,  -- estimated time left while running
	error       TEXT    NOT NULL DEFAULT '',
	blob_key    TEXT    NOT NULL DEFAULT '', -- the finished file; set only once it is whole
	size_bytes  INTEGER NOT NULL DEFAULT 0,
	attempts    INTEGER NOT NULL DEFAULT 0,
	lease_owner TEXT    NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL DEFAULT 0,  -- unix ms
	created_at  INTEGER NOT NULL,            -- unix ms
	updated_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX render_jobs_status ON render_jobs (status, created_at);
CREATE INDEX render_jobs_owner ON render_jobs (owner, status);
CREATE INDEX render_jobs_cache ON render_jobs (cache_key, status);
CREATE INDEX render_jobs_session ON render_jobs (session_row);
CREATE INDEX render_jobs_share ON render_jobs (share_id);

-- Files no job may name any more (their job was deleted, canceled or made
-- anew); a sweep deletes each object unless another job still names it.
CREATE TABLE render_trash (
	blob_key TEXT    PRIMARY KEY,
	added_at INTEGER NOT NULL -- unix ms
);
CREATE TRIGGER render_jobs_deleted AFTER DELETE ON render_jobs
WHEN old.blob_key <> ''
BEGIN
	INSERT OR IGNORE INTO render_trash (blob_key, added_at) VALUES (old.blob_key, CAST(strftime('%s','now') AS INTEGER) * 1000);
END;
CREATE TRIGGER render_jobs_file_dropped AFTER UPDATE OF blob_key ON render_jobs
WHEN old.blob_key <> '' AND new.blob_key <> old.blob_key
BEGIN
	INSERT OR IGNORE INTO render_trash (blob_key, added_at) VALUES (old.blob_key, CAST(strftime('%s','now') AS INTEGER) * 1000);
END;
