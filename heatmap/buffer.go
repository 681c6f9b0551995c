package heatmap

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// txBuffer is what the service keeps back until the end of a shared
// transaction (sqldb.Buffer): the sums of all of its batches — cell
// increments, page-day and scroll-day counts — and the last state of each
// page view row, written once per row touched instead of once per batch;
// and what must wait for the commit (Committed): cached maps going stale,
// selector rows to remember. A batch's part enters it only when the
// batch's facts went through (txSink.finish), so a batch rolled back to its
// savepoint leaves nothing behind; a resumed session writes the page
// views first (its page view row must be current), and a batch about to
// take a savepoint flushes it all (the rollback must not take the other
// batches' part).
//
// Rows are written in key order, tables in a fixed order: nodes of a
// cluster writing the same rows take their locks in one order. On
// PostgreSQL a cell row is locked as it is read (a no-op upsert returning
// it), so two nodes adding to the same row cannot lose one's counts
// (READ COMMITTED would let both read the old blob), and the four cell
// tables take two statements for the whole transaction.
type txBuffer struct {
	s      *Service
	cells  map[cellKey]cells
	days   map[dayKey]*dayCounts
	scroll map[scrollKey]int64
	// projects whose maps change: their cached maps go stale once the
	// transaction has committed (Committed), not before, or a map drawn
	// in between would be cached as current without the new clicks
	changed map[int64]bool
	// selector rows the service remembers once they are committed
	sels map[selKey]selEntry
	// page view rows to update, by id (the last state of each)
	views map[int64]viewRow
	// element boxes, the last one of each row
	boxes map[boxKey]boxRow
	// new click and signal rows, in the order they came
	clicks  []queuedClick
	signals []queuedSignal
	// the trackers of the sessions the transaction follows as they were
	// before it (nil: none), put back if it is rolled back (RolledBack)
	saved map[int64]*tracker
}

// boxKey is a row of heat_elem_box; boxRow what it holds.
type boxKey struct {
	selector int64
	device   string
	wb       int64
}

type boxRow struct{ x, y, w, h, ts int64 }

// addBox keeps the later of a row's boxes (the table keeps the latest).
func addBox(m map[boxKey]boxRow, k boxKey, r boxRow) {
	if old, ok := m[k]; !ok || r.ts >= old.ts {
		m[k] = r
	}
}

// dayKey is a row of heat_page_day; scrollKey one of heat_scroll_day.
type dayKey struct {
	page   int64
	device string
	day    int64
}

type scrollKey struct {
	dayKey
	bucket int64
}

// dayCounts are the increments of a heat_page_day row, in the order of its
// columns: pageviews, clicks, rage, dead and error clicks, scroll page
// views, fold px, fold per mille and document height sums.
type dayCounts [9]int64

func (s *Service) buffer(stx *sqldb.Tx) *txBuffer {
	return stx.Buffer(s, func() sqldb.Buffer {
		return &txBuffer{s: s, cells: map[cellKey]cells{}, days: map[dayKey]*dayCounts{}, scroll: map[scrollKey]int64{},
			changed: map[int64]bool{}, sels: map[selKey]selEntry{}, views: map[int64]viewRow{}, boxes: map[boxKey]boxRow{}}
	}).(*txBuffer)
}

// flushBuffer writes what this transaction's buffer holds, if it has one,
// before the commit.
func (s *Service) flushBuffer(ctx context.Context, stx *sqldb.Tx) error {
	if b, ok := stx.Lookup(s).(*txBuffer); ok {
		return b.Flush(ctx, stx)
	}
	return nil
}

// add takes in a batch's sums.
func (b *txBuffer) add(k *txSink) {
	for key, add := range k.adds {
		c := b.cells[key]
		if c == nil {
			c = cells{}
			b.cells[key] = c
		}
		for i, n := range add {
			c[i] += n
		}
	}
	for key, add := range k.days {
		addDay(b.days, key, add)
	}
	for key, n := range k.scroll {
		b.scroll[key] += n
	}
	if k.changed {
		b.changed[k.project] = true
	}
	maps.Copy(b.sels, k.sels)
	maps.Copy(b.views, k.views)
	for key, r := range k.boxes {
		addBox(b.boxes, key, r)
	}
	b.clicks = append(b.clicks, k.clicks...)
	b.signals = append(b.signals, k.signals...)
}

// flushRows writes the transaction's new click and signal rows. When that
// fails, the sessions they are of are suspects: their next batches write
// their rows under their savepoints (see ObserveBatch), so that one whose
// facts cannot be written is found and let through without them.
func (b *txBuffer) flushRows(ctx context.Context, tx *sql.Tx) error {
	if len(b.clicks) == 0 && len(b.signals) == 0 {
		return nil
	}
	err := b.s.writeRows(ctx, tx, b.clicks, b.signals)
	if err != nil {
		for _, q := range b.clicks {
			b.s.suspect(q.session)
		}
		for _, q := range b.signals {
			b.s.suspect(q.session)
		}
	}
	clear(b.clicks)
	b.clicks = b.clicks[:0]
	clear(b.signals)
	b.signals = b.signals[:0]
	return err
}

// writeRows writes new click rows, then new signal rows (which name their
// clicks), and gives them their ids. The rows are the sessions' own: no
// other transaction writes them.
func (s *Service) writeRows(ctx context.Context, tx *sql.Tx, clicks []queuedClick, signals []queuedSignal) error {
	if len(clicks) == 0 && len(signals) == 0 {
		return nil
	}
	if s.db.Dialect() != sqldb.Postgres {
		st := tx.StmtContext(ctx, s.st.insertClick)
		for _, q := range clicks {
			c := q.c
			var sel, ox, oy any
			if c.selID != 0 {
				sel = c.selID
			}
			if c.hasBox {
				ox, oy = c.ox, c.oy
			}
			if err := st.QueryRowContext(ctx, q.session, c.pv.rowID, c.pv.pageID, c.pv.device, dayOf(c.ts), c.ts,
				iround(c.vx), iround(c.vy), iround(c.px), iround(c.py), c.wb, c.node, sel, ox, oy, c.flags).Scan(&c.rowID); err != nil {
				return fmt.Errorf("heatmap: insert click: %w", err)
			}
		}
		st = tx.StmtContext(ctx, s.st.insertSignal)
		for _, q := range signals {
			sg, c := q.s, q.s.c
			var sel any
			if c.selID != 0 {
				sel = c.selID
			}
			if err := st.QueryRowContext(ctx, q.session, c.rowID, c.pv.pageID, c.pv.device, dayOf(c.ts), c.ts, sg.typ,
				iround(c.vx), iround(c.vy), iround(c.px), iround(c.py), c.wb, sel, sg.count, sg.message).Scan(&sg.rowID); err != nil {
				return fmt.Errorf("heatmap: insert signal: %w", err)
			}
			sg.queued = false
		}
		return nil
	}
	// PostgreSQL: ids first, then a statement per table.
	rows, err := tx.StmtContext(ctx, s.st.rowIDs).QueryContext(ctx, len(clicks), len(signals))
	if err != nil {
		return fmt.Errorf("heatmap: new row ids: %w", err)
	}
	nc, ns := 0, 0
	for rows.Next() {
		var table, id int64
		if err := rows.Scan(&table, &id); err != nil {
			rows.Close()
			return fmt.Errorf("heatmap: new row ids: %w", err)
		}
		switch {
		case table == 0 && nc < len(clicks):
			clicks[nc].c.rowID = id
			nc++
		case table == 1 && ns < len(signals):
			signals[ns].s.rowID = id
			ns++
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("heatmap: new row ids: %w", err)
	}
	if nc != len(clicks) || ns != len(signals) {
		return fmt.Errorf("heatmap: new row ids: %d and %d for %d clicks and %d signals", nc, ns, len(clicks), len(signals))
	}
	if n := len(clicks); n > 0 {
		var ints [14][]int64 // id, session, page view, page, day, ts, vx, vy, x, y, wb, node, selector, flags
		devices := make([]string, 0, n)
		has := make([]bool, 0, n)
		ox, oy := make([]float64, 0, n), make([]float64, 0, n)
		for _, q := range clicks {
			c := q.c
			for i, v := range [...]int64{c.rowID, q.session, c.pv.rowID, c.pv.pageID, dayOf(c.ts), c.ts, iround(c.vx), iround(c.vy),
				iround(c.px), iround(c.py), int64(c.wb), int64(c.node), c.selID, int64(c.flags)} {
				ints[i] = append(ints[i], v)
			}
			devices = append(devices, c.pv.device)
			has = append(has, c.hasBox)
			ox, oy = append(ox, c.ox), append(oy, c.oy)
		}
		if _, err := tx.StmtContext(ctx, s.st.clicksMany).ExecContext(ctx, ints[0], ints[1], ints[2], ints[3], devices, ints[4], ints[5],
			ints[6], ints[7], ints[8], ints[9], ints[10], ints[11], ints[12], has, ox, oy, ints[13]); err != nil {
			return fmt.Errorf("heatmap: insert clicks: %w", err)
		}
	}
	if n := len(signals); n > 0 {
		var ints [13][]int64 // id, session, click, page, day, ts, vx, vy, x, y, wb, selector, count
		devices, types, messages := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		for _, q := range signals {
			sg, c := q.s, q.s.c
			for i, v := range [...]int64{sg.rowID, q.session, c.rowID, c.pv.pageID, dayOf(c.ts), c.ts, iround(c.vx), iround(c.vy),
				iround(c.px), iround(c.py), int64(c.wb), c.selID, int64(sg.count)} {
				ints[i] = append(ints[i], v)
			}
			devices, types, messages = append(devices, c.pv.device), append(types, sg.typ), append(messages, sg.message)
			sg.queued = false
		}
		if _, err := tx.StmtContext(ctx, s.st.signalsMany).ExecContext(ctx, ints[0], ints[1], ints[2], ints[3], devices, ints[4], ints[5],
			types, ints[6], ints[7], ints[8], ints[9], ints[10], ints[11], ints[12], messages); err != nil {
			return fmt.Errorf("heatmap: insert signals: %w", err)
		}
	}
	return nil
}

// checkpoint keeps a session's tracker as it is before the transaction
// first follows the session (t nil: it had none), for RolledBack; later
// calls for the session keep the first. The tracker's lock is held.
func (b *txBuffer) checkpoint(sessionID int64, t *tracker) {
	if _, ok := b.saved[sessionID]; ok {
		return
	}
	if b.saved == nil {
		b.saved = map[int64]*tracker{}
	}
	if t != nil {
		t = t.checkpoint()
	}
	b.saved[sessionID] = t
}

// RolledBack implements sqldb.RolledBacker: the sessions the transaction
// followed get their trackers back as they were before it (or none), so
// the transaction run again places the same clicks on the same elements
// and finds the same signals — clicks still in their dead-click window
// included — instead of resuming the sessions from the index. A tracker
// evicted meanwhile comes back (and the bounds apply again).
func (b *txBuffer) RolledBack() {
	s := b.s
	for sid, t := range b.saved {
		var e *entry
		if t != nil {
			t.restore()
			e = &entry{id: sid, t: t}
			e.busy.Lock() // lock order: a tracker's, then the service's
		}
		s.mu.Lock()
		if old := s.tracker(sid); old != nil {
			s.drop(old) // it followed what was rolled back
		}
		if e != nil {
			s.sessions[sid] = s.lru.PushFront(e)
			s.account(e)
		}
		s.mu.Unlock()
		if e != nil {
			e.busy.Unlock()
		}
	}
}

// Committed implements sqldb.Committer.
func (b *txBuffer) Committed() {
	for p := range b.changed {
		b.s.touch(p)
	}
	if len(b.sels) > 0 {
		b.s.selMu.Lock()
		if len(b.s.sels)+len(b.sels) > maxSelectors {
			clear(b.s.sels)
		}
		maps.Copy(b.s.sels, b.sels)
		b.s.selMu.Unlock()
	}
}

func compareDay(a, b dayKey) int {
	return cmp.Or(cmp.Compare(a.page, b.page), strings.Compare(a.device, b.device), cmp.Compare(a.day, b.day))
}

func compareCell(a, b cellKey) int {
	return cmp.Or(cmp.Compare(a.table, b.table), cmp.Compare(a.page, b.page), strings.Compare(a.device, b.device),
		cmp.Compare(a.period, b.period), cmp.Compare(a.a, b.a), cmp.Compare(a.b, b.b))
}

// Flush implements sqldb.Buffer.
func (b *txBuffer) Flush(ctx context.Context, stx *sqldb.Tx) error {
	tx := stx.SQL()
	pg := b.s.db.Dialect() == sqldb.Postgres
	if err := b.flushRows(ctx, tx); err != nil {
		return err
	}
	keys := slices.SortedFunc(maps.Keys(b.cells), compareCell)
	var byTable [nCellTables][]cellKey
	for t := range nCellTables {
		i, _ := slices.BinarySearchFunc(keys, t, func(k cellKey, t int) int { return cmp.Compare(k.table, t) })
		j, _ := slices.BinarySearchFunc(keys, t+1, func(k cellKey, t int) int { return cmp.Compare(k.table, t) })
		byTable[t] = keys[i:j]
	}
	if pg {
		if len(keys) > 0 {
			if err := b.flushCellsPG(ctx, tx, byTable); err != nil {
				return err
			}
		}
	} else {
		for t, keys := range byTable {
			if err := b.flushCells(ctx, tx, t, keys); err != nil {
				return err
			}
		}
	}
	days := slices.SortedFunc(maps.Keys(b.days), compareDay)
	days = slices.DeleteFunc(days, func(k dayKey) bool { return *b.days[k] == dayCounts{} })
	if err := b.flushDays(ctx, tx, days, pg); err != nil {
		return err
	}
	scroll := slices.SortedFunc(maps.Keys(b.scroll), func(a, c scrollKey) int {
		return cmp.Or(compareDay(a.dayKey, c.dayKey), cmp.Compare(a.bucket, c.bucket))
	})
	scroll = slices.DeleteFunc(scroll, func(k scrollKey) bool { return b.scroll[k] == 0 })
	if err := b.flushScroll(ctx, tx, scroll, pg); err != nil {
		return err
	}
	if err := b.flushViews(ctx, tx, pg); err != nil {
		return err
	}
	if err := b.flushBoxes(ctx, tx, pg); err != nil {
		return err
	}
	// Written: a later Flush of the same transaction writes only what
	// comes after.
	clear(b.cells)
	clear(b.days)
	clear(b.scroll)
	clear(b.views)
	clear(b.boxes)
	return nil
}

// flushBoxes writes the element boxes in key order: every click on a
// page's popular button touches one row, so nodes of a cluster observing
// that page at once take such rows in one order (written as the clicks
// came, two nodes could each hold one and wait for the other's).
func (b *txBuffer) flushBoxes(ctx context.Context, tx *sql.Tx, pg bool) error {
	if len(b.boxes) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(b.boxes), func(a, c boxKey) int {
		return cmp.Or(cmp.Compare(a.selector, c.selector), strings.Compare(a.device, c.device), cmp.Compare(a.wb, c.wb))
	})
	if !pg {
		st := tx.StmtContext(ctx, b.s.st.elemBox)
		for _, k := range keys {
			r := b.boxes[k]
			if _, err := st.ExecContext(ctx, k.selector, k.device, k.wb, r.x, r.y, r.w, r.h, r.ts); err != nil {
				return fmt.Errorf("heatmap: update element box: %w", err)
			}
		}
		return nil
	}
	n := len(keys)
	devices := make([]string, n)
	var cols [7][]int64
	for i, k := range keys {
		r := b.boxes[k]
		devices[i] = k.device
		for c, x := range [7]int64{k.selector, k.wb, r.x, r.y, r.w, r.h, r.ts} {
			cols[c] = append(cols[c], x)
		}
	}
	if _, err := tx.StmtContext(ctx, b.s.st.boxesMany).ExecContext(ctx, cols[0], devices, cols[1], cols[2], cols[3], cols[4], cols[5], cols[6]); err != nil {
		return fmt.Errorf("heatmap: update element boxes: %w", err)
	}
	return nil
}

// flushViews updates the page view rows, each to its last state.
func (b *txBuffer) flushViews(ctx context.Context, tx *sql.Tx, pg bool) error {
	if len(b.views) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(b.views))
	if !pg {
		st := tx.StmtContext(ctx, b.s.st.updatePageview)
		for _, id := range ids {
			v := b.views[id]
			if _, err := st.ExecContext(ctx, v.device, v.snapshotTS, v.vw, v.vh, v.docW, v.docH, v.maxBottom,
				v.bucket, v.foldPx, v.foldPm, v.aggDocH, v.clicks, v.state, id); err != nil {
				return fmt.Errorf("heatmap: update page view: %w", err)
			}
		}
		return nil
	}
	n := len(ids)
	devices, states := make([]string, n), make([]string, n)
	var cols [12][]int64
	for i, id := range ids {
		v := b.views[id]
		devices[i], states[i] = v.device, v.state
		for c, x := range [12]int64{id, v.snapshotTS, v.vw, v.vh, v.docW, v.docH, v.maxBottom, v.bucket, v.foldPx, v.foldPm, v.aggDocH, v.clicks} {
			cols[c] = append(cols[c], x)
		}
	}
	args := []any{cols[0], devices}
	for _, c := range cols[1:] {
		args = append(args, c)
	}
	if _, err := tx.StmtContext(ctx, b.s.st.viewsMany).ExecContext(ctx, append(args, states)...); err != nil {
		return fmt.Errorf("heatmap: update page views: %w", err)
	}
	return nil
}

// cellArgs are the key columns of a cell table's rows, one argument each.
func cellArgs(t int, keys []cellKey) []any {
	pages, devices, periods, as := make([]int64, len(keys)), make([]string, len(keys)), make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		pages[i], devices[i], periods[i], as[i] = k.page, k.device, k.period, k.a
	}
	args := []any{pages, devices, periods, as}
	if len(cellTables[t].cols) == 5 {
		bs := make([]int64, len(keys))
		for i, k := range keys {
			bs[i] = k.b
		}
		args = append(args, bs)
	}
	return args
}

// merge adds the buffered increments of key to the blob read from its row.
// A blob that does not decode (written by no version of this code) is
// replaced by the increments: stopping every batch that clicks on that
// page would lose more.
func (b *txBuffer) merge(key cellKey, blob []byte) []byte {
	c := cells{}
	if err := addCells(c, blob); err != nil {
		b.s.log.Error("heatmap cell row unreadable, replaced by the new counts", "table", cellTables[key.table].name,
			"page", key.page, "device", key.device, "period", key.period, slog.Any("error", err))
		clear(c)
	}
	for i, n := range b.cells[key] {
		c[i] += n
	}
	return encodeCells(c)
}

// flushCells reads and rewrites each row (SQLite: one writer, each
// statement a function call).
func (b *txBuffer) flushCells(ctx context.Context, tx *sql.Tx, t int, keys []cellKey) error {
	if len(keys) == 0 {
		return nil
	}
	get, put, del := tx.StmtContext(ctx, b.s.st.getCells[t]), tx.StmtContext(ctx, b.s.st.putCells[t]), tx.StmtContext(ctx, b.s.st.delCells[t])
	for _, key := range keys {
		args := []any{key.page, key.device, key.period, key.a}
		if len(cellTables[t].cols) == 5 {
			args = append(args, key.b)
		}
		var blob []byte
		err := get.QueryRowContext(ctx, args...).Scan(&blob)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("heatmap: read %s: %w", cellTables[t].name, err)
		}
		if out := b.merge(key, blob); len(out) > 0 {
			_, err = put.ExecContext(ctx, append(args, out)...)
		} else {
			_, err = del.ExecContext(ctx, args...)
		}
		if err != nil {
			return fmt.Errorf("heatmap: write %s: %w", cellTables[t].name, err)
		}
	}
	return nil
}

// flushCellsPG locks and reads the rows of every cell table in one
// statement (rows that do not exist yet are made empty), and writes them
// back in another.
func (b *txBuffer) flushCellsPG(ctx context.Context, tx *sql.Tx, keys [nCellTables][]cellKey) error {
	var args []any
	n := 0
	for t := range nCellTables {
		args = append(args, cellArgs(t, keys[t])...)
		n += len(keys[t])
	}
	rows, err := tx.StmtContext(ctx, b.s.st.lockAllCells).QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("heatmap: lock cells: %w", err)
	}
	blobs := make(map[cellKey][]byte, n)
	for rows.Next() {
		var k cellKey
		var blob []byte
		if err := rows.Scan(&k.table, &k.page, &k.device, &k.period, &k.a, &k.b, &blob); err != nil {
			rows.Close()
			return fmt.Errorf("heatmap: lock cells: %w", err)
		}
		blobs[k] = blob
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("heatmap: lock cells: %w", err)
	}
	args = args[:0]
	var del [nCellTables][]cellKey
	for t := range nCellTables {
		put, out := make([]cellKey, 0, len(keys[t])), make([][]byte, 0, len(keys[t]))
		for _, key := range keys[t] {
			blob, ok := blobs[key]
			if !ok {
				return fmt.Errorf("heatmap: lock %s: row %+v not returned", cellTables[t].name, key)
			}
			if enc := b.merge(key, blob); len(enc) > 0 {
				put, out = append(put, key), append(out, enc)
			} else {
				del[t] = append(del[t], key)
			}
		}
		args = append(append(args, cellArgs(t, put)...), out)
	}
	if _, err := tx.StmtContext(ctx, b.s.st.putAllCells).ExecContext(ctx, args...); err != nil {
		return fmt.Errorf("heatmap: write cells: %w", err)
	}
	for t := range nCellTables {
		if len(del[t]) == 0 {
			continue
		}
		if _, err := tx.StmtContext(ctx, b.s.st.delCellsMany[t]).ExecContext(ctx, cellArgs(t, del[t])...); err != nil {
			return fmt.Errorf("heatmap: write %s: %w", cellTables[t].name, err)
		}
	}
	return nil
}

func (b *txBuffer) flushDays(ctx context.Context, tx *sql.Tx, keys []dayKey, pg bool) error {
	if len(keys) == 0 {
		return nil
	}
	if !pg {
		st := tx.StmtContext(ctx, b.s.st.pageDay)
		for _, k := range keys {
			d := b.days[k]
			if _, err := st.ExecContext(ctx, k.page, k.device, k.day, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8]); err != nil {
				return fmt.Errorf("heatmap: update page day: %w", err)
			}
		}
		return nil
	}
	pages, devices, days := make([]int64, len(keys)), make([]string, len(keys)), make([]int64, len(keys))
	var cols [len(dayCounts{})][]int64
	for i, k := range keys {
		pages[i], devices[i], days[i] = k.page, k.device, k.day
		for c, n := range b.days[k] {
			cols[c] = append(cols[c], n)
		}
	}
	args := []any{pages, devices, days}
	for _, c := range cols {
		args = append(args, c)
	}
	if _, err := tx.StmtContext(ctx, b.s.st.pageDayMany).ExecContext(ctx, args...); err != nil {
		return fmt.Errorf("heatmap: update page days: %w", err)
	}
	return nil
}

func (b *txBuffer) flushScroll(ctx context.Context, tx *sql.Tx, keys []scrollKey, pg bool) error {
	if len(keys) == 0 {
		return nil
	}
	if !pg {
		st := tx.StmtContext(ctx, b.s.st.scrollDay)
		for _, k := range keys {
			if _, err := st.ExecContext(ctx, k.page, k.device, k.day, k.bucket, b.scroll[k]); err != nil {
				return fmt.Errorf("heatmap: update scroll day: %w", err)
			}
		}
		return nil
	}
	pages, devices, days, buckets, ns := make([]int64, len(keys)), make([]string, len(keys)), make([]int64, len(keys)), make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		pages[i], devices[i], days[i], buckets[i], ns[i] = k.page, k.device, k.day, k.bucket, b.scroll[k]
	}
	if _, err := tx.StmtContext(ctx, b.s.st.scrollDayMany).ExecContext(ctx, pages, devices, days, buckets, ns); err != nil {
		return fmt.Errorf("heatmap: update scroll days: %w", err)
	}
	return nil
}
