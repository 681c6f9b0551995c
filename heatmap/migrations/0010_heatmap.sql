-- Heatmaps and frustration signals (package heatmap). Times are Unix ms;
-- day = days since 1970-01-01 UTC; month = year * 12 + month - 1 (UTC).
-- Page coordinates are CSS pixels from the top left of the document (or of
-- the main scrolling container, on pages that scroll one instead).

-- Error clicks: a click followed by a JS error within the window. Separate
-- from sessions.errors, which counts every error the recorder reported.
ALTER TABLE sessions ADD COLUMN error_clicks INTEGER NOT NULL DEFAULT 0;

-- Page keys per project: URL path + allowed query parameters, or a group
-- pattern like "/product/*" (heatmap.PageRules).
CREATE TABLE heat_pages (
	id         INTEGER PRIMARY KEY,
	project_id INTEGER NOT NULL REFERENCES projects(id),
	key        TEXT    NOT NULL,
	UNIQUE (project_id, key)
);

-- Clicked elements per page: a CSS selector path that matches in replays.
CREATE TABLE heat_selectors (
	id       INTEGER PRIMARY KEY,
	page_id  INTEGER NOT NULL REFERENCES heat_pages(id),
	selector TEXT    NOT NULL,
	tag      TEXT    NOT NULL DEFAULT '',
	class    TEXT    NOT NULL DEFAULT '', -- as last seen, for display only
	UNIQUE (page_id, selector)
);

-- One row per page view (rrweb Meta event). The depth and fold columns are
-- what the row currently contributes to heat_page_day / heat_scroll_day;
-- state is the tracker's scroll state, to resume after a restart.
CREATE TABLE heat_pageviews (
	id           INTEGER PRIMARY KEY,
	session_id   INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	page_id      INTEGER NOT NULL REFERENCES heat_pages(id),
	device       TEXT    NOT NULL,
	day          INTEGER NOT NULL,
	ts           INTEGER NOT NULL,
	url          TEXT    NOT NULL,
	snapshot_ts  INTEGER NOT NULL DEFAULT 0, -- first full snapshot of the view, 0 if none
	vw           INTEGER NOT NULL DEFAULT 0, -- viewport
	vh           INTEGER NOT NULL DEFAULT 0,
	doc_w        INTEGER NOT NULL DEFAULT 0, -- document scroll size (trailmap/doc), 0 unknown
	doc_h        INTEGER NOT NULL DEFAULT 0,
	max_bottom   INTEGER NOT NULL DEFAULT 0, -- deepest viewport bottom, page px
	depth_bucket INTEGER NOT NULL DEFAULT -1, -- floor(100 * max_bottom / doc_h), -1 unknown
	fold_px      INTEGER NOT NULL DEFAULT 0,
	fold_pm      INTEGER NOT NULL DEFAULT 0, -- fold as per mille of doc_h
	agg_doc_h    INTEGER NOT NULL DEFAULT 0,
	clicks       INTEGER NOT NULL DEFAULT 0,
	state        TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX heat_pageviews_session ON heat_pageviews(session_id, id);
CREATE INDEX heat_pageviews_page ON heat_pageviews(page_id, device, ts);

-- Every placed click: for element lists, frustration lists and rebuilding
-- aggregates. x/y page px, vx/vy viewport px, ox/oy offset ratio inside
-- the target's box (NULL without the recorder's box), flags 1 rage 2 dead 4 error.
CREATE TABLE heat_clicks (
	id          INTEGER PRIMARY KEY,
	session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	pageview_id INTEGER NOT NULL REFERENCES heat_pageviews(id) ON DELETE CASCADE,
	page_id     INTEGER NOT NULL,
	device      TEXT    NOT NULL,
	day         INTEGER NOT NULL,
	ts          INTEGER NOT NULL,
	vx          INTEGER NOT NULL,
	vy          INTEGER NOT NULL,
	x           INTEGER NOT NULL,
	y           INTEGER NOT NULL,
	wb          INTEGER NOT NULL, -- document width bucket (16 px)
	node_id     INTEGER NOT NULL,
	selector_id INTEGER,          -- NULL when the DOM was unknown
	ox          REAL,
	oy          REAL,
	flags       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX heat_clicks_session ON heat_clicks(session_id, ts);
CREATE INDEX heat_clicks_pageview ON heat_clicks(pageview_id);
CREATE INDEX heat_clicks_page ON heat_clicks(page_id, device, day);

-- Click grid: 8 px cells of page coordinates per document width bucket;
-- cell = cy * 4096 + cx. Per day, and rolled up per month so maps over
-- months read few rows.
CREATE TABLE heat_grid_day (
	page_id INTEGER NOT NULL,
	device  TEXT    NOT NULL,
	day     INTEGER NOT NULL,
	wb      INTEGER NOT NULL,
	cell    INTEGER NOT NULL,
	n       INTEGER NOT NULL,
	PRIMARY KEY (page_id, device, day, wb, cell)
) WITHOUT ROWID;
CREATE TABLE heat_grid_month (
	page_id INTEGER NOT NULL,
	device  TEXT    NOT NULL,
	month   INTEGER NOT NULL,
	wb      INTEGER NOT NULL,
	cell    INTEGER NOT NULL,
	n       INTEGER NOT NULL,
	PRIMARY KEY (page_id, device, month, wb, cell)
) WITHOUT ROWID;

-- Clicks per element and offset cell inside it: ratio = ry * 16 + rx on a
-- 16×16 grid of the element's box, -1 when the offset is unknown.
CREATE TABLE heat_elem_day (
	page_id     INTEGER NOT NULL,
	device      TEXT    NOT NULL,
	day         INTEGER NOT NULL,
	selector_id INTEGER NOT NULL,
	ratio       INTEGER NOT NULL,
	n           INTEGER NOT NULL,
	PRIMARY KEY (page_id, device, day, selector_id, ratio)
) WITHOUT ROWID;
CREATE TABLE heat_elem_month (
	page_id     INTEGER NOT NULL,
	device      TEXT    NOT NULL,
	month       INTEGER NOT NULL,
	selector_id INTEGER NOT NULL,
	ratio       INTEGER NOT NULL,
	n           INTEGER NOT NULL,
	PRIMARY KEY (page_id, device, month, selector_id, ratio)
) WITHOUT ROWID;

-- The latest box seen for an element, page px, per device and width bucket:
-- where element maps draw its clicks.
CREATE TABLE heat_elem_box (
	selector_id INTEGER NOT NULL,
	device      TEXT    NOT NULL,
	wb          INTEGER NOT NULL,
	x           INTEGER NOT NULL,
	y           INTEGER NOT NULL,
	w           INTEGER NOT NULL,
	h           INTEGER NOT NULL,
	ts          INTEGER NOT NULL,
	PRIMARY KEY (selector_id, device, wb)
) WITHOUT ROWID;

-- Per page, device and day: counts for the page picker and the scroll map.
CREATE TABLE heat_page_day (
	page_id          INTEGER NOT NULL,
	device           TEXT    NOT NULL,
	day              INTEGER NOT NULL,
	pageviews        INTEGER NOT NULL DEFAULT 0,
	clicks           INTEGER NOT NULL DEFAULT 0,
	rage_clicks      INTEGER NOT NULL DEFAULT 0,
	dead_clicks      INTEGER NOT NULL DEFAULT 0,
	error_clicks     INTEGER NOT NULL DEFAULT 0,
	scroll_pageviews INTEGER NOT NULL DEFAULT 0, -- page views with a known depth
	fold_px_sum      INTEGER NOT NULL DEFAULT 0,
	fold_pm_sum      INTEGER NOT NULL DEFAULT 0,
	doc_h_sum        INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (page_id, device, day)
) WITHOUT ROWID;

-- Page views by deepest scroll: bucket = floor(100 * depth), 0..100.
CREATE TABLE heat_scroll_day (
	page_id INTEGER NOT NULL,
	device  TEXT    NOT NULL,
	day     INTEGER NOT NULL,
	bucket  INTEGER NOT NULL,
	n       INTEGER NOT NULL,
	PRIMARY KEY (page_id, device, day, bucket)
) WITHOUT ROWID;

-- Frustration signals, for the player's timeline and the rage map. A rage
-- click is one row for the whole burst (count = clicks in it), at its first
-- click.
CREATE TABLE heat_signals (
	id          INTEGER PRIMARY KEY,
	session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	click_id    INTEGER NOT NULL,
	page_id     INTEGER NOT NULL,
	device      TEXT    NOT NULL,
	day         INTEGER NOT NULL,
	ts          INTEGER NOT NULL,
	type        TEXT    NOT NULL CHECK (type IN ('rage', 'dead', 'error')),
	vx          INTEGER NOT NULL,
	vy          INTEGER NOT NULL,
	x           INTEGER NOT NULL,
	y           INTEGER NOT NULL,
	wb          INTEGER NOT NULL,
	selector_id INTEGER,
	count       INTEGER NOT NULL DEFAULT 1,
	message     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX heat_signals_session ON heat_signals(session_id, ts);
CREATE INDEX heat_signals_page ON heat_signals(page_id, device, day, type);
