-- Journey (package journey), PostgreSQL twin of 0030_journey.sql: derived
-- per-session timelines, site searches, per-project settings, and saved
-- funnels, stages and audiences. The derived tables (journey_keys,
-- journey_visitors, journey_sessions, journey_searches) are rebuilt from
-- pages, custom_events and sessions by journey's recorder observer and its
-- backfill; nothing else depends on them.
--
-- Nothing ran on PostgreSQL before this twin, so journey_sessions is created
-- in the shape SQLite's 0031 leaves it (device and chunk columns), and the
-- session-deleted trigger is 0031's; 0031's twin adds only journey_chunks.

-- Page paths (kind 0) and custom event names (kind 1) per project.
CREATE TABLE journey_keys (
	id         BIGSERIAL PRIMARY KEY,
	project_id BIGINT  NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	kind       INTEGER NOT NULL CHECK (kind IN (0, 1)),
	name       TEXT    NOT NULL,
	UNIQUE (project_id, kind, name)
);

-- Visitor ids as integers, for grouping timelines into people.
CREATE TABLE journey_visitors (
	id         BIGSERIAL PRIMARY KEY,
	project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	visitor_id TEXT   NOT NULL,
	UNIQUE (project_id, visitor_id)
);

-- One row per session: its page views and custom events in time order,
-- encoded as in journey/timeline.go. A session is loose (chunk NULL) or
-- packed into the journey_chunks row chunk (see journey/pack.go).
CREATE TABLE journey_sessions (
	project_id   BIGINT   NOT NULL,
	started_at   BIGINT   NOT NULL,
	session_id   BIGINT   NOT NULL,
	visitor      BIGINT   NOT NULL, -- journey_visitors.id
	timeline     BYTEA    NOT NULL,
	converted_at BIGINT,            -- first conversion (project settings), unix ms
	searched_at  BIGINT,            -- first site search, unix ms
	device       SMALLINT NOT NULL DEFAULT 0, -- 0 unknown, 1 desktop, 2 tablet, 3 mobile
	chunk        BIGINT,
	PRIMARY KEY (project_id, started_at, session_id)
);
CREATE UNIQUE INDEX journey_sessions_session ON journey_sessions(session_id);
CREATE INDEX journey_sessions_loose ON journey_sessions(project_id, started_at) WHERE chunk IS NULL;
CREATE INDEX journey_sessions_chunk ON journey_sessions(chunk) WHERE chunk IS NOT NULL;

-- Site-search terms: the search parameters' values of page URLs.
CREATE TABLE journey_searches (
	session_id BIGINT NOT NULL,
	project_id BIGINT NOT NULL,
	ts         BIGINT NOT NULL,
	term       TEXT   NOT NULL
);
CREATE INDEX journey_searches_session ON journey_searches(session_id, ts);
CREATE INDEX journey_searches_project ON journey_searches(project_id, ts);

-- Per-project journey settings (JSON, see journey.Settings).
CREATE TABLE journey_settings (
	project_id BIGINT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
	settings   TEXT   NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE journey_funnels (
	id         BIGSERIAL PRIMARY KEY,
	project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	name       TEXT   NOT NULL,
	definition TEXT   NOT NULL, -- JSON, see journey.FunnelDef
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX journey_funnels_project ON journey_funnels(project_id, id);

CREATE TABLE journey_stages (
	id         BIGSERIAL PRIMARY KEY,
	project_id BIGINT  NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	position   INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	rules      TEXT    NOT NULL, -- JSON, see journey.Stage
	created_at BIGINT  NOT NULL,
	updated_at BIGINT  NOT NULL,
	UNIQUE (project_id, name)
);

CREATE TABLE journey_audiences (
	id          BIGSERIAL PRIMARY KEY,
	project_id  BIGINT  NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	name        TEXT    NOT NULL,
	segment     TEXT    NOT NULL, -- JSON, see journey.Segment
	window_days INTEGER NOT NULL DEFAULT 0,
	created_at  BIGINT  NOT NULL,
	updated_at  BIGINT  NOT NULL
);
CREATE INDEX journey_audiences_project ON journey_audiences(project_id, id);

-- The people list pages visitors by last visit. (An index on the core's
-- visitors table, as SQLite's 0030 creates it: it serves journey's query.)
CREATE INDEX journey_visitors_last_seen ON visitors(project_id, last_seen, id);
