-- Core schema on PostgreSQL: projects, keys, tokens, visitors, sessions,
-- pages, batches, segments, custom events and the blob trash, in the shape
-- SQLite's 0001–0004 (and heatmap's 0010, which adds sessions.error_clicks
-- there) leave them: nothing ran on PostgreSQL before, so 0002–0004 are
-- folded in here. Times are Unix milliseconds (UTC); flags are integers
-- 0/1, as on SQLite, so statements and scans stay the same.

CREATE TABLE projects (
	id         BIGSERIAL PRIMARY KEY,
	name       TEXT   NOT NULL UNIQUE,
	write_key  TEXT   NOT NULL UNIQUE,
	settings   TEXT   NOT NULL DEFAULT '{}', -- JSON, see index.ProjectSettings
	created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
	id           BIGSERIAL PRIMARY KEY,
	name         TEXT   NOT NULL UNIQUE,
	token_hash   BYTEA  NOT NULL UNIQUE, -- sha256 of the token; tokens are 256-bit random
	created_at   BIGINT NOT NULL,
	last_used_at BIGINT
);

CREATE TABLE visitors (
	project_id BIGINT NOT NULL REFERENCES projects(id),
	id         TEXT   NOT NULL,
	user_id    TEXT,               -- set by identify
	traits     TEXT,               -- JSON object from identify
	first_seen BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL,
	sessions   BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (project_id, id)
);
CREATE INDEX visitors_user ON visitors(project_id, user_id) WHERE user_id IS NOT NULL;

CREATE TABLE sessions (
	id              BIGSERIAL PRIMARY KEY,
	project_id      BIGINT  NOT NULL REFERENCES projects(id),
	public_id       TEXT    NOT NULL,
	visitor_id      TEXT    NOT NULL,
	started_at      BIGINT  NOT NULL, -- first event timestamp
	ended_at        BIGINT  NOT NULL, -- last event timestamp
	last_received   BIGINT  NOT NULL, -- server clock of the last accepted batch
	closed          INTEGER NOT NULL DEFAULT 0,
	device          TEXT    NOT NULL DEFAULT '',
	viewport_w      INTEGER NOT NULL DEFAULT 0,
	viewport_h      INTEGER NOT NULL DEFAULT 0,
	browser         TEXT    NOT NULL DEFAULT '',
	browser_version TEXT    NOT NULL DEFAULT '',
	os              TEXT    NOT NULL DEFAULT '',
	user_agent      TEXT    NOT NULL DEFAULT '',
	ip              TEXT    NOT NULL DEFAULT '', -- anonymised
	entry_url       TEXT    NOT NULL DEFAULT '',
	referrer        TEXT    NOT NULL DEFAULT '',
	batch_count     BIGINT  NOT NULL DEFAULT 0,
	event_count     BIGINT  NOT NULL DEFAULT 0,
	click_count     BIGINT  NOT NULL DEFAULT 0,
	page_count      BIGINT  NOT NULL DEFAULT 0,
	raw_bytes       BIGINT  NOT NULL DEFAULT 0,
	rage_clicks     BIGINT  NOT NULL DEFAULT 0,
	dead_clicks     BIGINT  NOT NULL DEFAULT 0,
	errors          BIGINT  NOT NULL DEFAULT 0,
	conversions     BIGINT  NOT NULL DEFAULT 0,
	dropped_events  BIGINT  NOT NULL DEFAULT 0, -- reported by the recorder
	-- How many of the session's batches stage 2 has given to the observers,
	-- bumped by the trigger batches_observed (see SQLite's 0002).
	observed_count  BIGINT  NOT NULL DEFAULT 0,
	-- Error clicks: a click followed by a JS error within the window (the
	-- core's column; on SQLite heatmap's 0010 adds it).
	error_clicks    BIGINT  NOT NULL DEFAULT 0,
	UNIQUE (project_id, public_id)
);
CREATE INDEX sessions_list ON sessions(project_id, started_at DESC, id DESC);
CREATE INDEX sessions_visitor ON sessions(project_id, visitor_id, started_at);
CREATE INDEX sessions_open ON sessions(closed, last_received) WHERE closed = 0;
CREATE INDEX sessions_expiry ON sessions(project_id, last_received) WHERE closed = 1;

CREATE TABLE pages (
	id         BIGSERIAL PRIMARY KEY,
	session_id BIGINT  NOT NULL REFERENCES sessions(id),
	ts         BIGINT  NOT NULL,
	url        TEXT    NOT NULL, -- redacted
	path       TEXT    NOT NULL, -- URL path, used by filters and page keys
	width      INTEGER NOT NULL DEFAULT 0,
	height     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pages_session ON pages(session_id, ts);
CREATE INDEX pages_path ON pages(path, session_id);

-- One row per accepted (session, seq): the dedupe record. observed = 0
-- marks a batch whose observers have not run yet (see SQLite's 0002).
CREATE TABLE batches (
	session_id  BIGINT  NOT NULL REFERENCES sessions(id),
	seq         BIGINT  NOT NULL,
	events      BIGINT  NOT NULL,
	received_at BIGINT  NOT NULL,
	observed    INTEGER NOT NULL DEFAULT 1,
	PRIMARY KEY (session_id, seq)
);

CREATE FUNCTION batches_observed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE sessions SET observed_count = observed_count + 1 WHERE id = NEW.session_id;
	RETURN NULL;
END
$$;
CREATE TRIGGER batches_observed AFTER UPDATE OF observed ON batches
FOR EACH ROW WHEN (NEW.observed = 1 AND OLD.observed = 0)
EXECUTE FUNCTION batches_observed();

-- Segment objects in the blob store, 'pending' before the PUT and 'done'
-- after it (see SQLite's 0001).
CREATE TABLE segments (
	id           BIGSERIAL PRIMARY KEY,
	session_id   BIGINT NOT NULL REFERENCES sessions(id),
	key          TEXT   NOT NULL UNIQUE,
	first_seq    BIGINT NOT NULL,
	last_seq     BIGINT NOT NULL,
	seqs         TEXT   NOT NULL, -- JSON [[seq, events], ...] in stored order
	events       BIGINT NOT NULL,
	raw_bytes    BIGINT NOT NULL,
	stored_bytes BIGINT NOT NULL,
	first_ts     BIGINT NOT NULL, -- min event timestamp
	last_ts      BIGINT NOT NULL, -- max event timestamp
	snapshots    TEXT   NOT NULL DEFAULT '[]', -- JSON [[timestamp, line, byte offset], ...]
	state        TEXT   NOT NULL CHECK (state IN ('pending', 'done')),
	created_at   BIGINT NOT NULL
);
CREATE INDEX segments_session ON segments(session_id, first_seq);

CREATE TABLE custom_events (
	id         BIGSERIAL PRIMARY KEY,
	session_id BIGINT NOT NULL REFERENCES sessions(id),
	ts         BIGINT NOT NULL,
	name       TEXT   NOT NULL,
	props      TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX custom_events_session ON custom_events(session_id, ts);
CREATE INDEX custom_events_name ON custom_events(name, session_id);

-- Blob keys whose index rows are gone and whose objects are still to be
-- deleted (see SQLite's 0004).
CREATE TABLE blob_trash (
	key      TEXT   PRIMARY KEY,
	added_at BIGINT NOT NULL
);
