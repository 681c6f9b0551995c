-- Heatmap aggregates as one row per grid row (and per element) holding its
-- cells in a blob, instead of one row per cell: a map then reads at most
-- height / 8 rows per width bucket and period, however many clicks there
-- were (0010's per-cell rows grew with the clicks). Cells blobs are
-- sequences of (uvarint index delta, uvarint count), indexes ascending
-- (heatmap.encodeCells). The per-cell tables of 0010 held minutes of
-- development data at most; heat_clicks keeps every click if they must be
-- rebuilt.

DROP TABLE heat_grid_day;
DROP TABLE heat_grid_month;
DROP TABLE heat_elem_day;
DROP TABLE heat_elem_month;

-- Click grid: 8 px cells of page coordinates per document width bucket;
-- one row per cell row cy, cells indexed by cx.
CREATE TABLE heat_grid_day (
	page_id INTEGER NOT NULL,
	device  TEXT    NOT NULL,
	day     INTEGER NOT NULL,
	wb      INTEGER NOT NULL,
	cy      INTEGER NOT NULL,
	cells   BLOB    NOT NULL,
	PRIMARY KEY (page_id, device, day, wb, cy)
) WITHOUT ROWID;
CREATE TABLE heat_grid_month (
	page_id INTEGER NOT NULL,
	device  TEXT    NOT NULL,
	month   INTEGER NOT NULL,
	wb      INTEGER NOT NULL,
	cy      INTEGER NOT NULL,
	cells   BLOB    NOT NULL,
	PRIMARY KEY (page_id, device, month, wb, cy)
) WITHOUT ROWID;

-- Clicks per element: cells indexed by ry * 16 + rx on a 16×16 grid of the
-- element's box, index 256 for clicks without an offset.
CREATE TABLE heat_elem_day (
	page_id     INTEGER NOT NULL,
	device      TEXT    NOT NULL,
	day         INTEGER NOT NULL,
	selector_id INTEGER NOT NULL,
	cells       BLOB    NOT NULL,
	PRIMARY KEY (page_id, device, day, selector_id)
) WITHOUT ROWID;
CREATE TABLE heat_elem_month (
	page_id     INTEGER NOT NULL,
	device      TEXT    NOT NULL,
	month       INTEGER NOT NULL,
	selector_id INTEGER NOT NULL,
	cells       BLOB    NOT NULL,
	PRIMARY KEY (page_id, device, month, selector_id)
) WITHOUT ROWID;
