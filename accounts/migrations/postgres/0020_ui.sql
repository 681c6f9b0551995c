-- UI: users, login sessions, project membership, share links, timeline notes
-- (PostgreSQL twin of 0020_ui.sql). Times are Unix milliseconds (UTC).
-- Secrets (login and share tokens) are stored as sha256 hashes only.

-- Emails are unique in any case: SQLite's column is COLLATE NOCASE, here
-- the unique index is on lower(email), which lookups use.
CREATE TABLE users (
	id            BIGSERIAL PRIMARY KEY,
	email         TEXT   NOT NULL,
	password_hash TEXT   NOT NULL, -- bcrypt
	role          TEXT   NOT NULL CHECK (role IN ('admin', 'member')),
	created_at    BIGINT NOT NULL,
	last_login_at BIGINT
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

-- Projects a 'member' may see; an 'admin' sees every project.
CREATE TABLE user_projects (
	user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, project_id)
);

CREATE TABLE login_sessions (
	token_hash   BYTEA  PRIMARY KEY,
	user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_at   BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL
);
CREATE INDEX login_sessions_user ON login_sessions(user_id);
CREATE INDEX login_sessions_expiry ON login_sessions(expires_at);

-- A share link plays [start_ms, end_ms] of one session (ms from its start).
CREATE TABLE shares (
	id              BIGSERIAL PRIMARY KEY,
	token_hash      BYTEA  NOT NULL UNIQUE,
	token_hint      TEXT   NOT NULL, -- first characters of the token, to tell links apart in lists
	project_id      BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	session_id      BIGINT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	start_ms        BIGINT NOT NULL,
	end_ms          BIGINT NOT NULL CHECK (end_ms > start_ms),
	title           TEXT   NOT NULL,
	note            TEXT   NOT NULL DEFAULT '',
	created_by      BIGINT REFERENCES users(id) ON DELETE SET NULL,
	created_by_name TEXT   NOT NULL,
	created_at      BIGINT NOT NULL,
	expires_at      BIGINT NOT NULL,
	revoked_at      BIGINT,
	views           BIGINT NOT NULL DEFAULT 0,
	last_viewed_at  BIGINT
);
CREATE INDEX shares_session ON shares(session_id, created_at);
CREATE INDEX shares_project ON shares(project_id, created_at);

-- Notes on the timeline of a recording, shown to everyone who can see it.
CREATE TABLE notes (
	id         BIGSERIAL PRIMARY KEY,
	session_id BIGINT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	offset_ms  BIGINT NOT NULL,
	body       TEXT   NOT NULL,
	author_id  BIGINT REFERENCES users(id) ON DELETE SET NULL,
	author     TEXT   NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX notes_session ON notes(session_id, offset_ms);
