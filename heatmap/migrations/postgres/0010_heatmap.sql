-- Heatmaps and frustration signals (package heatmap), PostgreSQL twin of
-- 0010_heatmap.sql. Times are Unix ms; day = days since 1970-01-01 UTC;
-- month = year * 12 + month - 1 (UTC). Page coordinates are CSS pixels from
-- the top left of the document (or of the main scrolling container).
--
-- SQLite's 0010 also adds sessions.error_clicks: that column is the core's,
-- and on PostgreSQL storage/index's postgres/0001_core.sql creates it, so
-- this twin does not touch sessions. The per-cell aggregate tables that
-- SQLite's 0011 drops again are not created here; 0011's twin creates them
-- in their final shape.

-- Page keys per project: URL path + allowed query parameters, or a group
-- pattern like "/product/*" (heatmap.PageRules).
CREATE TABLE heat_pages (
	id         BIGSERIAL PRIMARY KEY,
	project_id BIGINT NOT NULL REFERENCES projects(id),
	key        TEXT   NOT NULL,
	UNIQUE (project_id, key)
);

-- Clicked elements per page: a CSS selector path that matches in replays.
CREATE TABLE heat_selectors (
	id       BIGSERIAL PRIMARY KEY,
	page_id  BIGINT NOT NULL REFERENCES heat_pages(id),
	selector TEXT   NOT NULL,
	tag      TEXT   NOT NULL DEFAULT '',
	class    TEXT   NOT NULL DEFAULT '', -- as last seen, for display only
	UNIQUE (page_id, selector)
);

-- One row per page view (rrweb Meta event); see SQLite's 0010.
CREATE TABLE heat_pageviews (
	id           BIGSERIAL PRIMARY KEY,
	session_id   BIGINT  NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	page_id      BIGINT  NOT NULL REFERENCES heat_pages(id),
	device       TEXT    NOT NULL,
	day          BIGINT  NOT NULL,
	ts           BIGINT  NOT NULL,
	url          TEXT    NOT NULL,
	snapshot_ts  BIGINT  NOT NULL DEFAULT 0, -- first full snapshot of the view, 0 if none
	vw           INTEGER NOT NULL DEFAULT 0, -- viewport
	vh           INTEGER NOT NULL DEFAULT 0,
	doc_w        INTEGER NOT NULL DEFAULT 0, -- document scroll size (trailmap/doc), 0 unknown
	doc_h        INTEGER NOT NULL DEFAULT 0,
	max_bottom   INTEGER NOT NULL DEFAULT 0, -- deepest viewport bottom, page px
	depth_bucket INTEGER NOT NULL DEFAULT -1, -- floor(100 * max_bottom / doc_h), -1 unknown
	fold_px      INTEGER NOT NULL DEFAULT 0,
	fold_pm      INTEGER NOT NULL DEFAULT 0, -- fold as per mille of doc_h
	agg_doc_h    INTEGER NOT NULL DEFAULT 0,
	clicks       BIGINT  NOT NULL DEFAULT 0,
	state        TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX heat_pageviews_session ON heat_pageviews(session_id, id);
CREATE INDEX heat_pageviews_page ON heat_pageviews(page_id, device, ts);

-- Every placed click; see SQLite's 0010. flags 1 rage 2 dead 4 error.
CREATE TABLE heat_clicks (
	id          BIGSERIAL PRIMARY KEY,
	session_id  BIGINT  NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	pageview_id BIGINT  NOT NULL REFERENCES heat_pageviews(id) ON DELETE CASCADE,
	page_id     BIGINT  NOT NULL,
	device      TEXT    NOT NULL,
	day         BIGINT  NOT NULL,
	ts          BIGINT  NOT NULL,
	vx          INTEGER NOT NULL,
	vy          INTEGER NOT NULL,
	x           INTEGER NOT NULL,
	y           INTEGER NOT NULL,
	wb          INTEGER NOT NULL, -- document width bucket (16 px)
	node_id     BIGINT  NOT NULL,
	selector_id BIGINT,           -- NULL when the DOM was unknown
	ox          DOUBLE PRECISION,
	oy          DOUBLE PRECISION,
	flags       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX heat_clicks_session ON heat_clicks(session_id, ts);
CREATE INDEX heat_clicks_pageview ON heat_clicks(pageview_id);
CREATE INDEX heat_clicks_page ON heat_clicks(page_id, device, day);

-- The latest box seen for an element, page px, per device and width bucket.
CREATE TABLE heat_elem_box (
	selector_id BIGINT  NOT NULL,
	device      TEXT    NOT NULL,
	wb          INTEGER NOT NULL,
	x           INTEGER NOT NULL,
	y           INTEGER NOT NULL,
	w           INTEGER NOT NULL,
	h           INTEGER NOT NULL,
	ts          BIGINT  NOT NULL,
	PRIMARY KEY (selector_id, device, wb)
);

-- Per page, device and day: counts for the page picker and the scroll map.
CREATE TABLE heat_page_day (
	page_id          BIGINT NOT NULL,
	device           TEXT   NOT NULL,
	day              BIGINT NOT NULL,
	pageviews        BIGINT NOT NULL DEFAULT 0,
	clicks           BIGINT NOT NULL DEFAULT 0,
	rage_clicks      BIGINT NOT NULL DEFAULT 0,
	dead_clicks      BIGINT NOT NULL DEFAULT 0,
	error_clicks     BIGINT NOT NULL DEFAULT 0,
	scroll_pageviews BIGINT NOT NULL DEFAULT 0, -- page views with a known depth
	fold_px_sum      BIGINT NOT NULL DEFAULT 0,
	fold_pm_sum      BIGINT NOT NULL DEFAULT 0,
	doc_h_sum        BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (page_id, device, day)
);

-- Page views by deepest scroll: bucket = floor(100 * depth), 0..100.
CREATE TABLE heat_scroll_day (
	page_id BIGINT  NOT NULL,
	device  TEXT    NOT NULL,
	day     BIGINT  NOT NULL,
	bucket  INTEGER NOT NULL,
	n       BIGINT  NOT NULL,
	PRIMARY KEY (page_id, device, day, bucket)
);

-- Frustration signals, for the player's timeline and the rage map.
CREATE TABLE heat_signals (
	id          BIGSERIAL PRIMARY KEY,
	session_id  BIGINT  NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	click_id    BIGINT  NOT NULL,
	page_id     BIGINT  NOT NULL,
	device      TEXT    NOT NULL,
	day         BIGINT  NOT NULL,
	ts          BIGINT  NOT NULL,
	type        TEXT    NOT NULL CHECK (type IN ('rage', 'dead', 'error')),
	vx          INTEGER NOT NULL,
	vy          INTEGER NOT NULL,
	x           INTEGER NOT NULL,
	y           INTEGER NOT NULL,
	wb          INTEGER NOT NULL,
	selector_id BIGINT,
	count       BIGINT  NOT NULL DEFAULT 1,
	message     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX heat_signals_session ON heat_signals(session_id, ts);
CREATE INDEX heat_signals_page ON heat_signals(page_id, device, day, type);
