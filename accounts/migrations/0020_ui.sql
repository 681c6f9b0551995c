-- UI: users, login sessions, project membership, share links, timeline notes.
-- Times are Unix milliseconds (UTC). Secrets (login and share tokens) are
-- stored as sha256 hashes only.

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
	password_hash TEXT    NOT NULL, -- bcrypt
	role          TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
	created_at    INTEGER NOT NULL,
	last_login_at INTEGER
);

-- Projects a 'member' may see; an 'admin' sees every project.
CREATE TABLE user_projects (
	user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, project_id)
) WITHOUT ROWID;

CREATE TABLE login_sessions (
	token_hash   BLOB    PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL
);
CREATE INDEX login_sessions_user ON login_sessions(user_id);
CREATE INDEX login_sessions_expiry ON login_sessions(expires_at);

-- A share link plays [start_ms, end_ms] of one session (ms from its start).
CREATE TABLE shares (
	id             INTEGER PRIMARY KEY,
	token_hash     BLOB    NOT NULL UNIQUE,
	token_hint     TEXT    NOT NULL, -- first characters of the token, to tell links apart in lists
	project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	session_id     INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	start_ms       INTEGER NOT NULL,
	end_ms         INTEGER NOT NULL CHECK (end_ms > start_ms),
	title          TEXT    NOT NULL,
	note           TEXT    NOT NULL DEFAULT '',
	created_by     INTEGER REFERENCES users(id) ON DELETE SET NULL,
	created_by_name TEXT   NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	revoked_at     INTEGER,
	views          INTEGER NOT NULL DEFAULT 0,
	last_viewed_at INTEGER
);
CREATE INDEX shares_session ON shares(session_id, created_at);
CREATE INDEX shares_project ON shares(project_id, created_at);

-- Notes on the timeline of a recording, shown to everyone who can see it.
CREATE TABLE notes (
	id         INTEGER PRIMARY KEY,
	session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	offset_ms  INTEGER NOT NULL,
	body       TEXT    NOT NULL,
	author_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
	author     TEXT    NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX notes_session ON notes(session_id, offset_ms);
