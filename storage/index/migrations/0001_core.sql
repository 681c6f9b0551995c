-- Core schema: projects, keys, tokens, visitors, sessions, pages, batches, segments.
-- Times are Unix milliseconds (UTC).

CREATE TABLE projects (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE,
	write_key  TEXT    NOT NULL UNIQUE,
	settings   TEXT    NOT NULL DEFAULT '{}', -- JSON, see index.ProjectSettings
	created_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
	id           INTEGER PRIMARY KEY,
	name         TEXT    NOT NULL UNIQUE,
	token_hash   BLOB    NOT NULL UNIQUE, -- sha256 of the token; tokens are 256-bit random
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER
);

CREATE TABLE visitors (
	project_id INTEGER NOT NULL REFERENCES projects(id),
	id         TEXT    NOT NULL,
	user_id    TEXT,               -- set by identify
	traits     TEXT,               -- JSON object from identify
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	sessions   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (project_id, id)
) WITHOUT ROWID;
CREATE INDEX visitors_user ON visitors(project_id, user_id) WHERE user_id IS NOT NULL;

CREATE TABLE sessions (
	id              INTEGER PRIMARY KEY,
	project_id      INTEGER NOT NULL REFERENCES projects(id),
	public_id       TEXT    NOT NULL,
	visitor_id      TEXT    NOT NULL,
	started_at      INTEGER NOT NULL, -- first event timestamp
	ended_at        INTEGER NOT NULL, -- last event timestamp
	last_received   INTEGER NOT NULL, -- server clock of the last accepted batch
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
	batch_count     INTEGER NOT NULL DEFAULT 0,
	event_count     INTEGER NOT NULL DEFAULT 0,
	click_count     INTEGER NOT NULL DEFAULT 0,
	page_count      INTEGER NOT NULL DEFAULT 0,
	raw_bytes       INTEGER NOT NULL DEFAULT 0,
	rage_clicks     INTEGER NOT NULL DEFAULT 0,
	dead_clicks     INTEGER NOT NULL DEFAULT 0,
	errors          INTEGER NOT NULL DEFAULT 0,
	conversions     INTEGER NOT NULL DEFAULT 0,
	dropped_events  INTEGER NOT NULL DEFAULT 0, -- reported by the recorder
	UNIQUE (project_id, public_id)
);
CREATE INDEX sessions_list ON sessions(project_id, started_at DESC, id DESC);
CREATE INDEX sessions_visitor ON sessions(project_id, visitor_id, started_at);
CREATE INDEX sessions_open ON sessions(closed, last_received) WHERE closed = 0;

CREATE TABLE pages (
	id         INTEGER PRIMARY KEY,
	session_id INTEGER NOT NULL REFERENCES sessions(id),
	ts         INTEGER NOT NULL,
	url        TEXT    NOT NULL, -- redacted
	path       TEXT    NOT NULL, -- URL path, used by filters and page keys
	width      INTEGER NOT NULL DEFAULT 0,
	height     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pages_session ON pages(session_id, ts);
CREATE INDEX pages_path ON pages(path, session_id);

-- One row per accepted (session, seq): the dedupe record.
CREATE TABLE batches (
	session_id  INTEGER NOT NULL REFERENCES sessions(id),
	seq         INTEGER NOT NULL,
	events      INTEGER NOT NULL,
	received_at INTEGER NOT NULL,
	PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;

-- Segment objects in the blob store. A row is written as 'pending' before the
-- PUT and set to 'done' after it, so a crash between the two is resolved at
-- start-up by looking for the object.
CREATE TABLE segments (
	id           INTEGER PRIMARY KEY,
	session_id   INTEGER NOT NULL REFERENCES sessions(id),
	key          TEXT    NOT NULL UNIQUE,
	first_seq    INTEGER NOT NULL,
	last_seq     INTEGER NOT NULL,
	seqs         TEXT    NOT NULL, -- JSON [[seq, events], ...] in stored order
	events       INTEGER NOT NULL,
	raw_bytes    INTEGER NOT NULL,
	stored_bytes INTEGER NOT NULL,
	first_ts     INTEGER NOT NULL, -- min event timestamp
	last_ts      INTEGER NOT NULL, -- max event timestamp
	snapshots    TEXT    NOT NULL DEFAULT '[]', -- JSON [[timestamp, line, byte offset], ...] of full snapshots (or the Meta event right before one)
	state        TEXT    NOT NULL CHECK (state IN ('pending', 'done')),
	created_at   INTEGER NOT NULL
);
CREATE INDEX segments_session ON segments(session_id, first_seq);

CREATE TABLE custom_events (
	id         INTEGER PRIMARY KEY,
	session_id INTEGER NOT NULL REFERENCES sessions(id),
	ts         INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	props      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX custom_events_session ON custom_events(session_id, ts);
CREATE INDEX custom_events_name ON custom_events(name, session_id);
