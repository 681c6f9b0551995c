package heatmap

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/trailmap/trailmap/internal/textcut"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// stmts are the observer's statements, prepared on the index writer.
type stmts struct {
	lastPageview, pageID, insertPage, selectorID, insertSelector, updateSelector,
	insertPageview, updatePageview, pageDay, scrollDay,
	insertClick, clickOffset, clickFlags, elemBox, insertSignal, signalCount *sql.Stmt
	// cell rows by table: read, write, delete
	getCells, putCells, delCells [nCellTables]*sql.Stmt
	// PostgreSQL only (txBuffer): many rows in one statement, their key
	// columns and values as arrays; the rows of all four cell tables are
	// locked and read in one statement and written in another
	delCellsMany                                     [nCellTables]*sql.Stmt
	lockAllCells, putAllCells                        *sql.Stmt
	pageDayMany, scrollDayMany, viewsMany, boxesMany *sql.Stmt
	rowIDs, clicksMany, signalsMany, findOrAddSel    *sql.Stmt
	all                                              []*sql.Stmt
}

type prep struct {
	dst **sql.Stmt
	sql string
}

// The tables of cell rows (see migration 0011): grid rows keyed by width
// bucket and cy, element rows by selector.
const (
	gridDay = iota
	gridMonth
	elemDay
	elemMonth
	nCellTables
)

var cellTables = [nCellTables]struct {
	name string
	cols []string
}{
	{"heat_grid_day", []string{"page_id", "device", "day", "wb", "cy"}},
	{"heat_grid_month", []string{"page_id", "device", "month", "wb", "cy"}},
	{"heat_elem_day", []string{"page_id", "device", "day", "selector_id"}},
	{"heat_elem_month", []string{"page_id", "device", "month", "selector_id"}},
}

func prepare(ctx context.Context, db *sql.DB, dialect sqldb.Dialect) (*stmts, error) {
	s := &stmts{}
	var list []prep
	for _, p := range []prep{
		{&s.lastPageview, `
			SELECT v.id, v.page_id, p.key, v.device, v.url, v.ts, v.snapshot_ts, v.vw, v.vh, v.doc_w, v.doc_h,
				v.max_bottom, v.depth_bucket, v.fold_px, v.fold_pm, v.agg_doc_h, v.clicks, v.state
			FROM heat_pageviews v JOIN heat_pages p ON p.id = v.page_id
			WHERE v.session_id = ? ORDER BY v.id DESC LIMIT 1`},
		{&s.pageID, `SELECT id FROM heat_pages WHERE project_id = ? AND key = ?`},
		{&s.insertPage, `
			INSERT INTO heat_pages (project_id, key) VALUES (?, ?)
			ON CONFLICT (project_id, key) DO UPDATE SET key = excluded.key RETURNING id`},
		{&s.selectorID, `SELECT id, tag, class FROM heat_selectors WHERE page_id = ? AND selector = ?`},
		{&s.insertSelector, `
			INSERT INTO heat_selectors (page_id, selector, tag, class) VALUES (?, ?, ?, ?)
			ON CONFLICT (page_id, selector) DO UPDATE SET tag = excluded.tag, class = excluded.class RETURNING id`},
		{&s.updateSelector, `UPDATE heat_selectors SET tag = ?, class = ? WHERE id = ?`},
		{&s.insertPageview, `
			INSERT INTO heat_pageviews (session_id, page_id, device, day, ts, url, vw, vh)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`},
		{&s.updatePageview, `
			UPDATE heat_pageviews SET device = ?, snapshot_ts = ?, vw = ?, vh = ?, doc_w = ?, doc_h = ?, max_bottom = ?,
				depth_bucket = ?, fold_px = ?, fold_pm = ?, agg_doc_h = ?, clicks = ?, state = ?
			WHERE id = ?`},
		{&s.pageDay, `
			INSERT INTO heat_page_day (page_id, device, day, pageviews, clicks, rage_clicks, dead_clicks, error_clicks,
				scroll_pageviews, fold_px_sum, fold_pm_sum, doc_h_sum)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (page_id, device, day) DO UPDATE SET
				pageviews = heat_page_day.pageviews + excluded.pageviews, clicks = heat_page_day.clicks + excluded.clicks,
				rage_clicks = heat_page_day.rage_clicks + excluded.rage_clicks, dead_clicks = heat_page_day.dead_clicks + excluded.dead_clicks,
				error_clicks = heat_page_day.error_clicks + excluded.error_clicks, scroll_pageviews = heat_page_day.scroll_pageviews + excluded.scroll_pageviews,
				fold_px_sum = heat_page_day.fold_px_sum + excluded.fold_px_sum, fold_pm_sum = heat_page_day.fold_pm_sum + excluded.fold_pm_sum,
				doc_h_sum = heat_page_day.doc_h_sum + excluded.doc_h_sum`},
		{&s.scrollDay, `
			INSERT INTO heat_scroll_day (page_id, device, day, bucket, n) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (page_id, device, day, bucket) DO UPDATE SET n = heat_scroll_day.n + excluded.n`},
		{&s.insertClick, `
			INSERT INTO heat_clicks (session_id, pageview_id, page_id, device, day, ts, vx, vy, x, y, wb, node_id, selector_id, ox, oy, flags)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`},
		{&s.clickOffset, `UPDATE heat_clicks SET ox = ?, oy = ? WHERE id = ?`},
		{&s.clickFlags, `UPDATE heat_clicks SET flags = ? WHERE id = ?`},
		{&s.elemBox, `
			INSERT INTO heat_elem_box (selector_id, device, wb, x, y, w, h, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (selector_id, device, wb) DO UPDATE SET x = excluded.x, y = excluded.y, w = excluded.w,
				h = excluded.h, ts = excluded.ts WHERE excluded.ts >= heat_elem_box.ts`},
		{&s.insertSignal, `
			INSERT INTO heat_signals (session_id, click_id, page_id, device, day, ts, type, vx, vy, x, y, wb, selector_id, count, message)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`},
		{&s.signalCount, `UPDATE heat_signals SET count = ? WHERE id = ?`},
	} {
		list = append(list, p)
	}
	for i, t := range cellTables {
		where := strings.Join(t.cols, " = ? AND ") + " = ?"
		marks := strings.Repeat("?, ", len(t.cols))
		list = append(list,
			prep{&s.getCells[i], `SELECT cells FROM ` + t.name + ` WHERE ` + where},
			prep{&s.putCells[i], `INSERT INTO ` + t.name + ` (` + strings.Join(t.cols, ", ") + `, cells) VALUES (` + marks + `?)
				ON CONFLICT (` + strings.Join(t.cols, ", ") + `) DO UPDATE SET cells = excluded.cells`},
			prep{&s.delCells[i], `DELETE FROM ` + t.name + ` WHERE ` + where})
	}
	if dialect == sqldb.Postgres {
		list = append(list, prepareMany(s)...)
	}
	for _, p := range list {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare heatmap statement: %w", err)
		}
		*p.dst = st
		s.all = append(s.all, st)
	}
	return s, nil
}

func (s *stmts) close() error {
	var errs []error
	for _, st := range s.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// prepareMany are PostgreSQL's statements of txBuffer: each takes its rows
// as one array per column (unnest), in the order given.
func prepareMany(s *stmts) []prep {
	var list []prep
	var lock, put, union []string
	for i, t := range cellTables {
		cols := strings.Join(t.cols, ", ")
		arrays := "?::bigint[], ?::text[]" + strings.Repeat(", ?::bigint[]", len(t.cols)-2)
		ret := cols
		if len(t.cols) == 4 {
			ret += ", 0::bigint" // the element tables have no fifth key column
		}
		// Rows that do not exist yet are made empty; every row is locked
		// (a no-op update) and returned.
		lock = append(lock, fmt.Sprintf(`c%d AS (
				INSERT INTO %s AS t (%s, cells) SELECT u.*, ''::bytea FROM unnest(%s) AS u
				ON CONFLICT (%s) DO UPDATE SET cells = t.cells RETURNING %s, cells)`, i, t.name, cols, arrays, cols, ret))
		union = append(union, fmt.Sprintf(`SELECT %d, * FROM c%d`, i, i))
		put = append(put, fmt.Sprintf(`INSERT INTO %s (%s, cells) SELECT * FROM unnest(%s, ?::bytea[])
				ON CONFLICT (%s) DO UPDATE SET cells = excluded.cells`, t.name, cols, arrays, cols))
		list = append(list,
			prep{&s.delCellsMany[i], `DELETE FROM ` + t.name + ` WHERE (` + cols + `) IN (SELECT * FROM unnest(` + arrays + `))`})
	}
	// The tables are locked in their order: UNION ALL reads its parts one
	// after the other.
	list = append(list, prep{&s.lockAllCells, "WITH " + strings.Join(lock, ",\n") + "\n" + strings.Join(union, " UNION ALL ")})
	var with []string
	for i, q := range put[:len(put)-1] {
		with = append(with, fmt.Sprintf("p%d AS (%s)", i, q))
	}
	list = append(list, prep{&s.putAllCells, "WITH " + strings.Join(with, ",\n") + "\n" + put[len(put)-1]})
	return append(list,
		prep{&s.pageDayMany, `
			INSERT INTO heat_page_day AS d (page_id, device, day, pageviews, clicks, rage_clicks, dead_clicks, error_clicks,
				scroll_pageviews, fold_px_sum, fold_pm_sum, doc_h_sum)
			SELECT * FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[],
				?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[])
			ON CONFLICT (page_id, device, day) DO UPDATE SET
				pageviews = d.pageviews + excluded.pageviews, clicks = d.clicks + excluded.clicks,
				rage_clicks = d.rage_clicks + excluded.rage_clicks, dead_clicks = d.dead_clicks + excluded.dead_clicks,
				error_clicks = d.error_clicks + excluded.error_clicks, scroll_pageviews = d.scroll_pageviews + excluded.scroll_pageviews,
				fold_px_sum = d.fold_px_sum + excluded.fold_px_sum, fold_pm_sum = d.fold_pm_sum + excluded.fold_pm_sum,
				doc_h_sum = d.doc_h_sum + excluded.doc_h_sum`},
		prep{&s.viewsMany, `
			UPDATE heat_pageviews AS v SET device = u.device, snapshot_ts = u.snapshot_ts, vw = u.vw, vh = u.vh,
				doc_w = u.doc_w, doc_h = u.doc_h, max_bottom = u.max_bottom, depth_bucket = u.depth_bucket,
				fold_px = u.fold_px, fold_pm = u.fold_pm, agg_doc_h = u.agg_doc_h, clicks = u.clicks, state = u.state
			FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[],
				?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[])
				AS u(id, device, snapshot_ts, vw, vh, doc_w, doc_h, max_bottom, depth_bucket, fold_px, fold_pm, agg_doc_h, clicks, state)
			WHERE v.id = u.id`},
		prep{&s.scrollDayMany, `
			INSERT INTO heat_scroll_day AS d (page_id, device, day, bucket, n)
			SELECT * FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[])
			ON CONFLICT (page_id, device, day, bucket) DO UPDATE SET n = d.n + excluded.n`},
		prep{&s.boxesMany, `
			INSERT INTO heat_elem_box AS e (selector_id, device, wb, x, y, w, h, ts)
			SELECT * FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[])
			ON CONFLICT (selector_id, device, wb) DO UPDATE SET x = excluded.x, y = excluded.y, w = excluded.w,
				h = excluded.h, ts = excluded.ts WHERE excluded.ts >= e.ts`},
		// a selector's row, added when missing, with what it held before
		// (a new one: what it holds now), in one round trip; no row when
		// another transaction added it after this statement's snapshot
		prep{&s.findOrAddSel, `
			WITH ins AS (
				INSERT INTO heat_selectors (page_id, selector, tag, class) VALUES (?, ?, ?, ?)
				ON CONFLICT (page_id, selector) DO NOTHING RETURNING id, tag, class)
			SELECT id, tag, class FROM ins
			UNION ALL
			SELECT id, tag, class FROM heat_selectors WHERE page_id = ? AND selector = ? AND NOT EXISTS (SELECT 1 FROM ins)`},
		// ids for a transaction's new click (0) and signal (1) rows, so
		// that both go in one statement each, signals naming their clicks
		prep{&s.rowIDs, `
			SELECT 0, nextval('heat_clicks_id_seq') FROM generate_series(1, ?::int)
			UNION ALL SELECT 1, nextval('heat_signals_id_seq') FROM generate_series(1, ?::int)`},
		prep{&s.clicksMany, `
			INSERT INTO heat_clicks (id, session_id, pageview_id, page_id, device, day, ts, vx, vy, x, y, wb, node_id, selector_id, ox, oy, flags)
			SELECT id, session_id, pageview_id, page_id, device, day, ts, vx, vy, x, y, wb, node_id, NULLIF(sel, 0),
				CASE WHEN has THEN ox END, CASE WHEN has THEN oy END, flags
			FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[],
				?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::boolean[], ?::float8[], ?::float8[], ?::bigint[])
				AS u(id, session_id, pageview_id, page_id, device, day, ts, vx, vy, x, y, wb, node_id, sel, has, ox, oy, flags)`},
		prep{&s.signalsMany, `
			INSERT INTO heat_signals (id, session_id, click_id, page_id, device, day, ts, type, vx, vy, x, y, wb, selector_id, count, message)
			SELECT id, session_id, click_id, page_id, device, day, ts, type, vx, vy, x, y, wb, NULLIF(sel, 0), count, message
			FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::bigint[],
				?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[])
				AS u(id, session_id, click_id, page_id, device, day, ts, type, vx, vy, x, y, wb, sel, count, message)`})
}

// txSink writes what a tracker finds, inside the recorder's transaction.
type txSink struct {
	s       *Service
	ctx     context.Context
	stx     *sqldb.Tx // for index's statements
	tx      *sql.Tx   // stx's, for ours
	session int64
	project int64
	device  string
	t       *tracker // for its scroll state; nil when closing
	changed bool
	bound   map[*sql.Stmt]*sql.Stmt
	// sums of the batch, handed to the transaction's txBuffer by finish:
	// cell increments, page-day and scroll-day counts
	adds   map[cellKey]cells
	days   map[dayKey]*dayCounts
	scroll map[scrollKey]int64
	// selector rows read, inserted or updated, remembered once committed
	sels map[selKey]selEntry
	// page view rows to update, by id
	views map[int64]viewRow
	// element boxes to write: the last one seen of each row
	boxes map[boxKey]boxRow
	// the batch's rage, dead and error clicks, counted in the session row
	// by finish
	rage, dead, errs int
	// new click and signal rows, written by the transaction's buffer, or
	// by finish when direct (a batch under a savepoint)
	clicks  []queuedClick
	signals []queuedSignal
	direct  bool
}

// queuedClick and queuedSignal are rows a transaction writes at its end,
// in a statement or two for all of its batches on PostgreSQL: a click's
// row takes its box offset and flags as they are then (a box or a dead
// verdict that comes later in the transaction costs no statement), and
// a signal's its count and its click's id.
type queuedClick struct {
	c       *click
	session int64
}

type queuedSignal struct {
	s       *signal
	session int64
}

// cellKey is a row of a cell table: for grid rows a is the width bucket
// and b the cell row; for elements a is the selector id.
type cellKey struct {
	table  int
	page   int64
	device string
	period int64
	a, b   int64
}

// unplacedCell is the element cell of clicks without an offset.
const unplacedCell = RatioCells * RatioCells

func (k *txSink) addCell(key cellKey, i int, n int64) {
	if k.adds == nil {
		k.adds = make(map[cellKey]cells, 16)
	}
	c := k.adds[key]
	if c == nil {
		c = cells{}
		k.adds[key] = c
	}
	c[i] += n
}

// finish hands the batch's sums to the transaction's buffer, which writes
// them with those of the other batches before the commit.
// finish hands a batch's sums to the transaction, once the batch went
// through: a batch whose facts are rolled back to a savepoint leaves none.
func (k *txSink) finish() error {
	if k.rage != 0 || k.dead != 0 || k.errs != 0 {
		if err := k.s.counters.AddFrustration(k.ctx, k.stx, k.session, k.rage, k.dead, k.errs); err != nil {
			return fmt.Errorf("count signals: %w", err)
		}
		k.rage, k.dead, k.errs = 0, 0, 0
	}
	if k.direct {
		if err := k.s.writeRows(k.ctx, k.tx, k.clicks, k.signals); err != nil {
			return err
		}
		k.clicks, k.signals = k.clicks[:0], k.signals[:0]
	}
	k.s.buffer(k.stx).add(k)
	clear(k.clicks)
	k.clicks = k.clicks[:0]
	clear(k.signals)
	k.signals = k.signals[:0]
	clear(k.adds)
	clear(k.days)
	clear(k.scroll)
	clear(k.sels)
	clear(k.views)
	return nil
}

func (k *txSink) stmt(st *sql.Stmt) *sql.Stmt {
	if k.bound == nil {
		k.bound = make(map[*sql.Stmt]*sql.Stmt, 8)
	}
	b := k.bound[st]
	if b == nil {
		b = k.tx.StmtContext(k.ctx, st)
		k.bound[st] = b
	}
	return b
}

// dict returns a statement that adds to or changes the page and selector
// dictionaries. On a node of a cluster (Config.Shared, PostgreSQL) it runs
// on its own, committed at once, not in the transaction: nodes meeting the
// same new pages and selectors (a deploy changes a page's elements, or a
// selector's class goes back and forth) would otherwise hold their rows to
// the end of their transactions, taken in the orders their clicks came,
// and wait for each other's. A row left by a transaction that then rolls
// back is an unused name. A lone node keeps them in the transaction: a
// transaction of its own per new selector cost PostgreSQL 150-230 µs of
// CPU per batch in the ingest benchmark, whose pages give nearly every
// click a new element.
func (k *txSink) dict(st *sql.Stmt) *sql.Stmt {
	if k.s.cfg.Shared && k.s.db.Dialect() == sqldb.Postgres {
		return st
	}
	return k.stmt(st)
}

func (k *txSink) exec(st *sql.Stmt, args ...any) error {
	_, err := k.stmt(st).ExecContext(k.ctx, args...)
	return err
}

// Day and month numbers of a timestamp (UTC).
func dayOf(ts int64) int64 { return int64(math.Floor(float64(ts) / 86400000)) }

func monthOf(ts int64) int64 {
	t := time.UnixMilli(ts).UTC()
	return int64(t.Year())*12 + int64(t.Month()) - 1
}

// dayStart and monthStart are the first unix ms of a day or month.
func dayStart(day int64) int64 { return day * 86400000 }

func monthStart(month int64) int64 {
	return time.Date(int(month/12), time.Month(month%12+1), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
}

func (k *txSink) pageID(key string) (int64, error) {
	var id int64
	err := k.stmt(k.s.st.pageID).QueryRowContext(k.ctx, k.project, key).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("find page: %w", err)
	}
	if err := k.dict(k.s.st.insertPage).QueryRowContext(k.ctx, k.project, key).Scan(&id); err != nil {
		return 0, fmt.Errorf("insert page: %w", err)
	}
	return id, nil
}

// selKey is a heat_selectors row's key; selEntry what selectorID knows of
// the row.
type selKey struct {
	page int64
	sel  string
}

type selEntry struct {
	id         int64
	tag, class string
}

// maxSelectors bounds the service's memory of selector rows (about 100
// bytes each); it starts over when full.
const maxSelectors = 50000

// selectorID returns the id of a page's selector row, inserting it or
// updating its tag and class (the last seen). The rows the service knows
// are committed it remembers (Committed), so a click on a known element
// takes no statement for it: rows are never deleted but with their
// project, and a tag or class another node wrote meanwhile is only
// overwritten by the next one that differs from what this node saw last.
func (k *txSink) selectorID(pageID int64, sel, tag, class string) (int64, error) {
	class = textcut.Head(class, 200)
	key := selKey{pageID, sel}
	k.s.selMu.Lock()
	known, ok := k.s.sels[key]
	k.s.selMu.Unlock()
	if !ok {
		var err error
		if known, err = k.findSelector(pageID, sel, tag, class); err != nil {
			return 0, err
		}
	}
	id := known.id
	if known.tag != tag || known.class != class {
		if _, err := k.dict(k.s.st.updateSelector).ExecContext(k.ctx, tag, class, id); err != nil {
			return 0, fmt.Errorf("update selector: %w", err)
		}
	}
	if !ok || known.tag != tag || known.class != class {
		if k.sels == nil {
			k.sels = map[selKey]selEntry{}
		}
		k.sels[key] = selEntry{id, tag, class}
	}
	return id, nil
}

// findSelector returns a selector's row, added with tag and class when
// missing: on PostgreSQL in one round trip (the ingest benchmark's pages
// give nearly every click a new element), falling back to two when
// another transaction added the row after the statement's snapshot.
func (k *txSink) findSelector(pageID int64, sel, tag, class string) (selEntry, error) {
	e := selEntry{}
	if k.s.db.Dialect() == sqldb.Postgres {
		err := k.dict(k.s.st.findOrAddSel).QueryRowContext(k.ctx, pageID, sel, tag, class, pageID, sel).Scan(&e.id, &e.tag, &e.class)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return e, fmt.Errorf("find or add selector: %w", err)
		}
	}
	err := k.stmt(k.s.st.selectorID).QueryRowContext(k.ctx, pageID, sel).Scan(&e.id, &e.tag, &e.class)
	if errors.Is(err, sql.ErrNoRows) {
		if err := k.dict(k.s.st.insertSelector).QueryRowContext(k.ctx, pageID, sel, tag, class).Scan(&e.id); err != nil {
			return e, fmt.Errorf("insert selector: %w", err)
		}
		e.tag, e.class = tag, class
	} else if err != nil {
		return e, fmt.Errorf("find selector: %w", err)
	}
	return e, nil
}

// clickSelector returns the selector id of a click's target (0: unknown),
// looking it up once per click.
func (k *txSink) clickSelector(c *click) (int64, error) {
	if c.selID != 0 || c.sel == "" {
		return c.selID, nil
	}
	id, err := k.selectorID(c.pv.pageID, c.sel, c.tag, c.class)
	if err != nil {
		return 0, err
	}
	c.selID = id
	return id, nil
}

func (k *txSink) startPageview(pv *pageview) error {
	id, err := k.pageID(pv.key)
	if err != nil {
		return err
	}
	pv.pageID, pv.device = id, k.device
	err = k.stmt(k.s.st.insertPageview).QueryRowContext(k.ctx, k.session, id, pv.device, dayOf(pv.start), pv.start, pv.url, pv.vw, pv.vh).Scan(&pv.rowID)
	if err != nil {
		return fmt.Errorf("insert page view: %w", err)
	}
	pv.dirty = true
	k.changed = true
	return k.pageDay(pv, 1, 0, 0, 0, 0)
}

// pageDay adds to a page view's day row.
func (k *txSink) pageDay(pv *pageview, pageviews, clicks, rage, dead, errs int) error {
	k.addDay(dayKey{pv.pageID, pv.device, dayOf(pv.start)}, dayCounts{int64(pageviews), int64(clicks), int64(rage), int64(dead), int64(errs)})
	return nil
}

func (k *txSink) addDay(key dayKey, add dayCounts) {
	if k.days == nil {
		k.days = make(map[dayKey]*dayCounts, 2)
	}
	addDay(k.days, key, &add)
}

// addDay adds counts to a row of days.
func addDay(days map[dayKey]*dayCounts, key dayKey, add *dayCounts) {
	d := days[key]
	if d == nil {
		d = &dayCounts{}
		days[key] = d
	}
	for i, n := range add {
		d[i] += n
	}
}

func (k *txSink) addScroll(key scrollKey, n int64) {
	if k.scroll == nil {
		k.scroll = make(map[scrollKey]int64, 2)
	}
	k.scroll[key] += n
}

func (k *txSink) savePageview(pv *pageview) error {
	t := k.t
	if t != nil && t.pv != pv {
		t = nil
	}
	if pv.device == "" && k.device != "" {
		pv.device = k.device
	}
	// Scroll aggregates: take back what the row contributed, add what it
	// contributes now.
	docH := 0
	if pv.bucket >= 0 {
		docH = pv.docH
	}
	if pv.bucket != pv.aBucket || pv.foldPx != pv.aFoldPx || pv.foldPm != pv.aFoldPm || docH != pv.aDocH {
		day := dayKey{pv.pageID, pv.device, dayOf(pv.start)}
		var n int64
		if pv.aBucket >= 0 {
			n--
			k.addScroll(scrollKey{day, int64(pv.aBucket)}, -1)
		}
		if pv.bucket >= 0 {
			n++
			k.addScroll(scrollKey{day, int64(pv.bucket)}, 1)
		}
		k.addDay(day, dayCounts{5: n, 6: int64(pv.foldPx - pv.aFoldPx), 7: int64(pv.foldPm - pv.aFoldPm), 8: int64(docH - pv.aDocH)})
		pv.aBucket, pv.aFoldPx, pv.aFoldPm, pv.aDocH = pv.bucket, pv.foldPx, pv.foldPm, docH
		k.changed = true
	}
	var state []byte
	if t != nil {
		state, _ = json.Marshal(trackerState{
			VW: t.vw, VH: t.vh, ScrollX: t.scrollX, ScrollY: t.scrollY, DocNode: t.docNode, DocMaxScroll: t.docMaxScroll,
			MainNode: t.mainNode, MainX: t.mainX, MainY: t.mainY,
		})
	} else {
		state = []byte("{}")
	}
	if k.views == nil {
		k.views = make(map[int64]viewRow, 1)
	}
	k.views[pv.rowID] = viewRow{
		device: pv.device, snapshotTS: pv.snapshotTS, vw: int64(pv.vw), vh: int64(pv.vh), docW: int64(pv.docW), docH: int64(pv.docH),
		maxBottom: int64(math.Round(pv.maxBottom)), bucket: int64(pv.aBucket), foldPx: int64(pv.aFoldPx), foldPm: int64(pv.aFoldPm),
		aggDocH: int64(pv.aDocH), clicks: int64(pv.clicks), state: string(state),
	}
	return nil
}

// viewRow is what a page view's row is updated to (the last of a
// transaction is written, by txBuffer).
type viewRow struct {
	device                                     string
	snapshotTS, vw, vh, docW, docH             int64
	maxBottom, bucket, foldPx, foldPm, aggDocH int64
	clicks                                     int64
	state                                      string
}

func (k *txSink) click(c *click) error {
	pv := c.pv
	if pv.device == "" && k.device != "" {
		pv.device = k.device
		pv.dirty = true
	}
	k.changed = true
	sid, err := k.clickSelector(c)
	if err != nil {
		return err
	}
	k.clicks = append(k.clicks, queuedClick{c, k.session})
	day := dayOf(c.ts)
	if cx, cy, ok := gridCell(c.px, c.py); ok && c.wb > 0 {
		k.addCell(cellKey{gridDay, pv.pageID, pv.device, day, int64(c.wb), cy}, cx, 1)
		k.addCell(cellKey{gridMonth, pv.pageID, pv.device, monthOf(c.ts), int64(c.wb), cy}, cx, 1)
	}
	if sid != 0 {
		ratio := unplacedCell
		if c.hasBox {
			ratio = ratioCell(c.ox, c.oy)
		}
		k.elem(pv, c, sid, ratio, 1)
		if c.hasBox {
			if err := k.box(pv, c, sid); err != nil {
				return err
			}
		}
	}
	return k.pageDay(pv, 0, 1, 0, 0, 0)
}

func (k *txSink) elem(pv *pageview, c *click, sid int64, ratio int, n int64) {
	k.addCell(cellKey{elemDay, pv.pageID, pv.device, dayOf(c.ts), sid, 0}, ratio, n)
	k.addCell(cellKey{elemMonth, pv.pageID, pv.device, monthOf(c.ts), sid, 0}, ratio, n)
}

// box notes an element's box where a click found it; the transaction's
// buffer writes the last one of each row (selector, device, width bucket).
func (k *txSink) box(pv *pageview, c *click, sid int64) error {
	if k.boxes == nil {
		k.boxes = make(map[boxKey]boxRow, 4)
	}
	addBox(k.boxes, boxKey{sid, pv.device, int64(c.wb)},
		boxRow{iround(c.box.X), iround(c.box.Y), iround(c.box.W), iround(c.box.H), c.ts})
	return nil
}

func (k *txSink) clickBox(c *click) error {
	if c.rowID != 0 { // (a queued row is written with its offset)
		if err := k.exec(k.s.st.clickOffset, c.ox, c.oy, c.rowID); err != nil {
			return fmt.Errorf("update click offset: %w", err)
		}
	}
	sid, err := k.clickSelector(c)
	if err != nil || sid == 0 {
		return err
	}
	k.elem(c.pv, c, sid, unplacedCell, -1)
	k.elem(c.pv, c, sid, ratioCell(c.ox, c.oy), 1)
	k.changed = true
	return k.box(c.pv, c, sid)
}

func (k *txSink) signal(s *signal, clicks []*click) error {
	c := s.c
	for _, cc := range clicks {
		if cc.rowID == 0 {
			continue // queued: written with its flags
		}
		if err := k.exec(k.s.st.clickFlags, cc.flags, cc.rowID); err != nil {
			return fmt.Errorf("update click flags: %w", err)
		}
	}
	k.changed = true
	if s.rowID != 0 {
		if err := k.exec(k.s.st.signalCount, s.count, s.rowID); err != nil {
			return fmt.Errorf("update signal: %w", err)
		}
		return nil
	}
	if s.queued {
		return nil // written with its count
	}
	if _, err := k.clickSelector(c); err != nil {
		return err
	}
	s.queued = true
	k.signals = append(k.signals, queuedSignal{s, k.session})
	var rage, dead, errc int
	switch s.typ {
	case SignalRage:
		rage = 1
	case SignalDead:
		dead = 1
	case SignalError:
		errc = 1
	}
	k.rage, k.dead, k.errs = k.rage+rage, k.dead+dead, k.errs+errc
	return k.pageDay(c.pv, 0, 0, rage, dead, errc)
}

// gridCell returns the grid cell of a page position, false beyond the grid.
func gridCell(x, y float64) (cx int, cy int64, ok bool) {
	cx, cy = int(x)/CellPx, int64(y)/CellPx
	if x < 0 || y < 0 || cx >= maxCellX || cy >= maxCellY {
		return 0, 0, false
	}
	return cx, cy, true
}

func ratioCell(ox, oy float64) int {
	rx := min(int(ox*RatioCells), RatioCells-1)
	ry := min(int(oy*RatioCells), RatioCells-1)
	return ry*RatioCells + rx
}

func iround(v float64) int64 { return int64(math.Round(v)) }
