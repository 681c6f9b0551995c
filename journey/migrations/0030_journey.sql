-- Journey (package journey): derived per-session timelines, site searches,
-- per-project settings, and saved funnels, stages and audiences.
--
-- The derived tables (journey_keys, journey_visitors, journey_sessions,
-- journey_searches) are rebuilt from pages, custom_events and sessions by
-- journey's recorder observer and its backfill; nothing else depends on them.

-- A per-project dictionary of page paths (kind 0) and custom event names
-- (kind 1), so timelines store small integers and step patterns are matched
-- once per distinct name instead of once per page view.
CREATE TABLE journey_keys (
	id         INTEGER PRIMARY KEY,
	project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	kind       INTEGER NOT NULL CHECK (kind IN (0, 1)),
	name       TEXT    NOT NULL,
	UNIQUE (project_id, kind, name)
);

-- Visitor ids as integers, for grouping timelines into people.
CREATE TABLE journey_visitors (
	id         INTEGER PRIMARY KEY,
	project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	visitor_id TEXT    NOT NULL,
	UNIQUE (project_id, visitor_id)
);

-- One row per session: its page views and custom events in time order,
-- encoded as in journey/timeline.go, clustered by (project, start) so a
-- funnel or path query reads one contiguous range.
CREATE TABLE journey_sessions (
	project_id   INTEGER NOT NULL,
	started_at   INTEGER NOT NULL,
	session_id   INTEGER NOT NULL,
	visitor      INTEGER NOT NULL, -- journey_visitors.id
	timeline     BLOB    NOT NULL,
	converted_at INTEGER,          -- first conversion (project settings), unix ms
	searched_at  INTEGER,          -- first site search, unix ms
	PRIMARY KEY (project_id, started_at, session_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX journey_sessions_session ON journey_sessions(session_id);

-- Site-search terms: the search parameters' values of page URLs.
CREATE TABLE journey_searches (
	session_id INTEGER NOT NULL,
	project_id INTEGER NOT NULL,
	ts         INTEGER NOT NULL,
	term       TEXT    NOT NULL
);
CREATE INDEX journey_searches_session ON journey_searches(session_id, ts);
CREATE INDEX journey_searches_project ON journey_searches(project_id, ts);

-- Derived rows go with their session (retention deletes sessions).
CREATE TRIGGER journey_session_deleted AFTER DELETE ON sessions BEGIN
	DELETE FROM journey_sessions WHERE session_id = OLD.id;
	DELETE FROM journey_searches WHERE session_id = OLD.id;
END;

-- Per-project journey settings (JSON, see journey.Settings).
CREATE TABLE journey_settings (
	project_id INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
	settings   TEXT    NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE journey_funnels (
	id         INTEGER PRIMARY KEY,
	project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	name       TEXT    NOT NULL,
	definition TEXT    NOT NULL, -- JSON, see journey.FunnelDef
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX journey_funnels_project ON journey_funnels(project_id, id);

CREATE TABLE journey_stages (
	id         INTEGER PRIMARY KEY,
	project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	position   INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	rules      TEXT    NOT NULL, -- JSON, see journey.Stage
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (project_id, name)
);

CREATE TABLE journey_audiences (
	id          INTEGER PRIMARY KEY,
	project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	name        TEXT    NOT NULL,
	segment     TEXT    NOT NULL, -- JSON, see journey.Segment
	window_days INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
CREATE INDEX journey_audiences_project ON journey_audiences(project_id, id);

-- The people list pages visitors by last visit.
CREATE INDEX journey_visitors_last_seen ON visitors(project_id, last_seen, id);
