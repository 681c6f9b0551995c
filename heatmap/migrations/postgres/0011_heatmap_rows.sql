-- Heatmap aggregates as one row per grid row (and per element) holding its
-- cells in a blob (heatmap.encodeCells), PostgreSQL twin of
-- 0011_heatmap_rows.sql. 0010's twin never created the per-cell tables
-- that SQLite's 0011 drops, so this only creates the row tables.

-- Click grid: 8 px cells of page coordinates per document width bucket;
-- one row per cell row cy, cells indexed by cx.
CREATE TABLE heat_grid_day (
	page_id BIGINT  NOT NULL,
	device  TEXT    NOT NULL,
	day     BIGINT  NOT NULL,
	wb      INTEGER NOT NULL,
	cy      INTEGER NOT NULL,
	cells   BYTEA   NOT NULL,
	PRIMARY KEY (page_id, device, day, wb, cy)
);
CREATE TABLE heat_grid_month (
	page_id BIGINT  NOT NULL,
	device  TEXT    NOT NULL,
	month   BIGINT  NOT NULL,
	wb      INTEGER NOT NULL,
	cy      INTEGER NOT NULL,
	cells   BYTEA   NOT NULL,
	PRIMARY KEY (page_id, device, month, wb, cy)
);

-- Clicks per element: cells indexed by ry * 16 + rx on a 16×16 grid of the
-- element's box, index 256 for clicks without an offset.
CREATE TABLE heat_elem_day (
	page_id     BIGINT NOT NULL,
	device      TEXT   NOT NULL,
	day         BIGINT NOT NULL,
	selector_id BIGINT NOT NULL,
	cells       BYTEA  NOT NULL,
	PRIMARY KEY (page_id, device, day, selector_id)
);
CREATE TABLE heat_elem_month (
	page_id     BIGINT NOT NULL,
	device      TEXT   NOT NULL,
	month       BIGINT NOT NULL,
	selector_id BIGINT NOT NULL,
	cells       BYTEA  NOT NULL,
	PRIMARY KEY (page_id, device, month, selector_id)
);
