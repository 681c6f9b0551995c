-- Render jobs (see SQLite's 0050).
CREATE TABLE render_jobs (
	id          TEXT    PRIMARY KEY,
	project_id  BIGINT  NOT NULL,
	session_row BIGINT  NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	session_id  TEXT    NOT NULL,
	share_id    BIGINT  REFERENCES shares(id) ON DELETE CASCADE,
	owner       TEXT    NOT NULL,
	options     TEXT    NOT NULL,
	cache_key   TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	progress    INTEGER NOT NULL DEFAULT 0,
	eta_ms      BIGINT  NOT NULL DEFAULT 0,
	error       TEXT    NOT NULL DEFAULT '',
	blob_key    TEXT    NOT NULL DEFAULT '',
	size_bytes  BIGINT  NOT NULL DEFAULT 0,
	attempts    INTEGER NOT NULL DEFAULT 0,
	lease_owner TEXT    NOT NULL DEFAULT '',
	lease_until BIGINT  NOT NULL DEFAULT 0,
	created_at  BIGINT  NOT NULL,
	updated_at  BIGINT  NOT NULL,
	finished_at BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX render_jobs_status ON render_jobs (status, created_at);
CREATE INDEX render_jobs_owner ON render_jobs (owner, status);
CREATE INDEX render_jobs_cache ON render_jobs (cache_key, status);
CREATE INDEX render_jobs_session ON render_jobs (session_row);
CREATE INDEX render_jobs_share ON render_jobs (share_id);

CREATE TABLE render_trash (
	blob_key TEXT   PRIMARY KEY,
	added_at BIGINT NOT NULL
);
CREATE FUNCTION render_jobs_trash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO render_trash (blob_key, added_at)
	VALUES (OLD.blob_key, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT)
	ON CONFLICT (blob_key) DO NOTHING;
	RETURN NULL;
END
$$;
CREATE TRIGGER render_jobs_deleted AFTER DELETE ON render_jobs
FOR EACH ROW WHEN (OLD.blob_key <> '')
EXECUTE FUNCTION render_jobs_trash();
CREATE TRIGGER render_jobs_file_dropped AFTER UPDATE OF blob_key ON render_jobs
FOR EACH ROW WHEN (OLD.blob_key <> '' AND NEW.blob_key <> OLD.blob_key)
EXECUTE FUNCTION render_jobs_trash();
