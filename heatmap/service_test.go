package heatmap

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

type fixture struct {
	t       testing.TB
	db      *index.DB
	svc     *Service
	project int64
}

// newFixture is a fixture on a fresh SQLite index, for benchmarks.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	return newFixtureOn(t, indextest.New(t, Schema), cfg)
}

// eachFixture runs fn as the subtests "sqlite" and "postgres", each with a
// fixture on a fresh index of that backend.
func eachFixture(t *testing.T, cfg Config, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	indextest.Each(t, func(t *testing.T, db *index.DB) { fn(t, newFixtureOn(t, db, cfg)) }, Schema)
}

// newFixtureLike is a fixture on a fresh index of f's backend.
func newFixtureLike(t testing.TB, f *fixture, cfg Config) *fixture {
	t.Helper()
	if f.db.SQL().Dialect() == sqldb.Postgres {
		return newFixtureOn(t, indextest.Open(t, pgtest.Shared(t).Database(t), Schema), cfg)
	}
	return newFixture(t, cfg)
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func newFixtureOn(t testing.TB, db *index.DB, cfg Config) *fixture {
	t.Helper()
	p, err := db.CreateProject(context.Background(), "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, project: p.ID}
	f.svc = f.newService(cfg)
	return f
}

func (f *fixture) newService(cfg Config) *Service {
	f.t.Helper()
	svc, err := New(context.Background(), cfg, f.db.SQL(), f.db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { svc.Close() })
	return svc
}

// session creates a sessions row as the recorder would.
func (f *fixture) session(publicID, device string, started int64) int64 {
	f.t.Helper()
	var id int64
	err := f.db.SQL().Write().QueryRow(`INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, device)
		VALUES (?, ?, 'visitor1', ?, ?, ?, ?) RETURNING id`, f.project, publicID, started, started, started, device).Scan(&id)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// observe applies one batch like the recorder: the batch count goes up in
// the same transaction that calls the observer.
func (f *fixture) observe(sid int64, events []json.RawMessage) {
	f.t.Helper()
	if err := f.observeErr(f.svc, sid, events, false); err != nil {
		f.t.Fatal(err)
	}
}

var errRollback = errors.New("rollback on purpose")

func (f *fixture) observeErr(svc *Service, sid int64, events []json.RawMessage, rollback bool) error {
	ctx := context.Background()
	return f.db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error {
		if err := observeIn(ctx, tx, svc, sid, events); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
}

// countObserved counts a batch of a session observed, as the recorder's
// stage 2 does when it marks one (storage/index's trigger).
const countObserved = `INSERT INTO session_observed (session_id, observed_count) VALUES (?, 1)
		ON CONFLICT (session_id) DO UPDATE SET observed_count = session_observed.observed_count + 1`

// observeIn applies one batch in tx like the recorder's stage 2.
func observeIn(ctx context.Context, tx *sqldb.Tx, svc *Service, sid int64, events []json.RawMessage) error {
	if _, err := tx.SQL().Exec(countObserved, sid); err != nil {
		return err
	}
	return svc.ObserveBatch(ctx, tx, sid, rrweb.SplitAll(events))
}

// step is a batch of a group.
type step struct {
	sid    int64
	events []json.RawMessage
}

// observeGroup applies batches in one transaction, as the recorder's
// stage 2 takes a group.
func (f *fixture) observeGroup(steps ...step) error {
	ctx := context.Background()
	return f.db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error {
		for _, st := range steps {
			if err := observeIn(ctx, tx, f.svc, st.sid, st.events); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f *fixture) close(sid int64) {
	f.t.Helper()
	ctx := context.Background()
	err := f.db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error { return f.svc.SessionClosed(ctx, tx, sid) })
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) count(query string, args ...any) int64 {
	f.t.Helper()
	var n sql.NullInt64
	if err := f.db.SQL().Read().QueryRow(query, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	return n.Int64
}

func (f *fixture) query(url, device, mode string, width int) Query {
	return Query{ProjectID: f.project, URL: url, Device: device, Mode: mode, Width: width,
		From: time.UnixMilli(t0).Add(-24 * time.Hour), To: time.UnixMilli(t0).Add(24 * time.Hour)}
}

const t0 = 1_764_000_000_000 // 2025-11-24T16:00:00Z

func TestService_ObserveBatch(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		sid := f.session("sess0001", "desktop", t0)
		b := box{X: 100, Y: 50, W: 200, H: 40}
		f.observe(sid, cat(session(t0, "https://shop.test/p/1?utm=a", 1280, 800, 1280, 4000),
			evScroll(t0+500, 1, 0, 1000),
			evClicks(t0+1000, 12, 150, 60), evClickBox(t0+1001, 12, 150, 60, b),
			evAttr(t0+1100, 12, `{"class":"x"}`)))
		// second batch: a rage click on the span, then a dead click, an error click
		f.observe(sid, cat(evClicks(t0+2000, 17, 400, 300), evClicks(t0+2300, 17, 402, 301), evClicks(t0+2600, 17, 404, 302),
			evMove(t0+6000, 1, 1), evClicks(t0+7000, 18, 600, 500), evError(t0+7200, "TypeError"),
			evMove(t0+12000, 1, 1), evScroll(t0+12500, 1, 0, 3000)))

		checks := []struct {
			name  string
			query string
			want  int64
		}{
			{"page views", `SELECT COUNT(*) FROM heat_pageviews WHERE session_id = ?`, 1},
			{"clicks", `SELECT COUNT(*) FROM heat_clicks WHERE session_id = ?`, 5},
			{"first click page y", `SELECT y FROM heat_clicks WHERE session_id = ? ORDER BY ts LIMIT 1`, 1060},
			{"first click has offset", `SELECT COUNT(*) FROM heat_clicks WHERE session_id = ? AND ox = 0.25 AND oy = 0.25`, 1},
			{"grid rows (day)", `SELECT COUNT(*) FROM heat_grid_day WHERE ? > 0`, 3},
			{"grid rows (month)", `SELECT COUNT(*) FROM heat_grid_month WHERE ? > 0`, 3},
			{"element rows", `SELECT COUNT(*) FROM heat_elem_day WHERE ? > 0`, 3},
			{"element box", `SELECT y FROM heat_elem_box WHERE ? > 0`, 1050},
			{"rage signals", `SELECT COUNT(*) FROM heat_signals WHERE session_id = ? AND type = 'rage' AND count = 3`, 1},
			{"dead signals", `SELECT COUNT(*) FROM heat_signals WHERE session_id = ? AND type = 'dead'`, 1},
			{"error signals", `SELECT COUNT(*) FROM heat_signals WHERE session_id = ? AND type = 'error' AND message = 'TypeError'`, 1},
			{"rage flags", `SELECT COUNT(*) FROM heat_clicks WHERE session_id = ? AND flags & 1 = 1`, 3},
			{"session rage", `SELECT rage_clicks FROM sessions WHERE id = ?`, 1},
			{"session dead", `SELECT dead_clicks FROM sessions WHERE id = ?`, 1},
			{"session error clicks", `SELECT error_clicks FROM sessions WHERE id = ?`, 1},
			{"page day", `SELECT pageviews * 1000000 + clicks * 1000 + rage_clicks * 100 + dead_clicks * 10 + error_clicks FROM heat_page_day WHERE ? > 0`, 1005111},
			{"scroll depth bucket", `SELECT depth_bucket FROM heat_pageviews WHERE session_id = ?`, 95},
			{"scroll histogram", `SELECT SUM(n) FROM heat_scroll_day WHERE bucket = 95 AND ? > 0`, 1},
			{"scroll histogram total", `SELECT SUM(n) FROM heat_scroll_day WHERE ? > 0`, 1},
			{"fold", `SELECT fold_px_sum * 1000 + fold_pm_sum FROM heat_page_day WHERE ? > 0`, 800200},
		}
		for _, c := range checks {
			t.Run(c.name, func(t *testing.T) {
				if got := f.count(c.query, sid); got != c.want {
					t.Errorf("got %d, want %d", got, c.want)
				}
			})
		}
		cellSums := []struct {
			name  string
			query string
			want  map[int]int64
		}{
			{"grid cells (day)", `SELECT cells FROM heat_grid_day WHERE cy = 1060 / 8`, map[int]int64{150 / 8: 1}},
			{"grid cells (month)", `SELECT cells FROM heat_grid_month WHERE cy = 1300 / 8`, map[int]int64{400 / 8: 3}},
			{"element cells: button", `SELECT e.cells FROM heat_elem_day e JOIN heat_selectors s ON s.id = e.selector_id WHERE s.tag = 'button'`,
				map[int]int64{4*RatioCells + 4: 1}},
			{"element cells: span", `SELECT e.cells FROM heat_elem_day e JOIN heat_selectors s ON s.id = e.selector_id WHERE s.tag = 'span'`,
				map[int]int64{unplacedCell: 3}},
		}
		for _, c := range cellSums {
			t.Run(c.name, func(t *testing.T) {
				var blob []byte
				if err := f.db.SQL().Read().QueryRow(c.query).Scan(&blob); err != nil {
					t.Fatal(err)
				}
				got := cells{}
				if err := addCells(got, blob); err != nil {
					t.Fatal(err)
				}
				if len(got) != len(c.want) {
					t.Fatalf("cells %v, want %v", got, c.want)
				}
				for i, n := range c.want {
					if got[i] != n {
						t.Errorf("cells %v, want %v", got, c.want)
					}
				}
			})
		}
		if s, n := f.svc.Stats(); s != 1 || n == 0 {
			t.Errorf("stats: %d sessions %d nodes", s, n)
		}
		f.close(sid)
		if s, n := f.svc.Stats(); s != 0 || n != 0 {
			t.Errorf("stats after close: %d sessions %d nodes", s, n)
		}
	})
}

func TestService_Resume(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		sid := f.session("sess0002", "mobile", t0)
		f.observe(sid, cat(session(t0, "https://shop.test/", 390, 700, 390, 3000), evScroll(t0+100, 1, 0, 500)))
		// A restart: a new service (empty memory) continues the session.
		f.svc = f.newService(DefaultConfig())
		f.observe(sid, cat(evClicks(t0+1000, 12, 10, 20), evScroll(t0+2000, 1, 0, 2300)))
		if got := f.count(`SELECT COUNT(*) FROM heat_pageviews WHERE session_id = ?`, sid); got != 1 {
			t.Errorf("page views %d, want 1 (resumed)", got)
		}
		if got := f.count(`SELECT y FROM heat_clicks WHERE session_id = ?`, sid); got != 520 {
			t.Errorf("click y %d, want 520 (scroll carried over)", got)
		}
		if got := f.count(`SELECT COUNT(*) FROM heat_clicks WHERE session_id = ? AND selector_id IS NULL`, sid); got != 1 {
			t.Errorf("want the click without a selector (mirror lost), got %d", got)
		}
		if got := f.count(`SELECT SUM(n) FROM heat_scroll_day WHERE ? > 0`, sid); got != 1 {
			t.Errorf("scroll histogram has %d page views, want 1", got)
		}
		if got := f.count(`SELECT depth_bucket FROM heat_pageviews WHERE session_id = ?`, sid); got != 100 {
			t.Errorf("depth %d, want 100", got)
		}
		// The next full snapshot brings selectors back.
		f.observe(sid, cat(evMetaE(t0+60000, "https://shop.test/", 390, 700), evFull(t0+60001, testDOM, 2300, 0), evClicks(t0+61000, 12, 10, 20)))
		if got := f.count(`SELECT COUNT(*) FROM heat_clicks WHERE session_id = ? AND selector_id IS NOT NULL AND y = 2320`, sid); got != 1 {
			t.Errorf("click after the checkout: %d with selector at y 2320, want 1", got)
		}
	})
}

// A session resumed in the middle of a transaction (its tracker evicted by
// another session's batch of the same group) finds its page view as the
// transaction's earlier batch left it, though that update waits in the
// buffer.
func TestService_ResumeInTransaction(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 1
	eachFixture(t, cfg, func(t *testing.T, f *fixture) {
		a, b := f.session("inTx0001", "mobile", t0), f.session("inTx0002", "mobile", t0)
		err := f.observeGroup(
			step{a, cat(session(t0, "https://shop.test/", 390, 700, 390, 3000), evScroll(t0+100, 1, 0, 500))},
			step{b, session(t0, "https://shop.test/", 390, 700, 390, 3000)}, // evicts a's tracker
			step{a, evClicks(t0+1000, 12, 10, 20)})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.count(`SELECT y FROM heat_clicks WHERE session_id = ?`, a); got != 520 {
			t.Errorf("click y %d, want 520 (the scroll of the batch before, resumed)", got)
		}
		if got := f.count(`SELECT COUNT(*) FROM heat_pageviews WHERE session_id = ?`, a); got != 1 {
			t.Errorf("page views %d, want 1 (resumed)", got)
		}
	})
}

func TestService_Rollback(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		sid := f.session("sess0003", "desktop", t0)
		f.observe(sid, session(t0, "https://shop.test/", 1280, 800, 1280, 3000))
		batch := cat(evClicks(t0+1000, 12, 10, 20), evClicks(t0+1200, 12, 10, 20), evClicks(t0+1400, 12, 10, 20))
		if err := f.observeErr(f.svc, sid, batch, true); !errors.Is(err, errRollback) {
			t.Fatalf("want the rollback, got %v", err)
		}
		f.observe(sid, batch) // the recorder retries
		if got := f.count(`SELECT COUNT(*) FROM heat_clicks WHERE session_id = ?`, sid); got != 3 {
			t.Errorf("clicks %d, want 3", got)
		}
		if got := f.count(`SELECT rage_clicks FROM sessions WHERE id = ?`, sid); got != 1 {
			t.Errorf("rage clicks %d, want 1", got)
		}
		if got := f.count(`SELECT SUM(clicks) FROM heat_page_day WHERE ? > 0`, sid); got != 3 {
			t.Errorf("page day clicks %d, want 3", got)
		}
	})
}

// A selector row the service has seen committed takes no statement on the
// next click of that element: a tag written behind its back stays until
// the service sees a different one (or restarts).
func TestService_SelectorMemory(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		page := session(t0, "https://shop.test/", 1280, 800, 1280, 3000)
		a := f.session("sel00001", "desktop", t0)
		f.observe(a, cat(page, evClicks(t0+1000, 12, 10, 20)))
		if _, err := f.db.SQL().Write().Exec(`UPDATE heat_selectors SET tag = 'elsewhere'`); err != nil {
			t.Fatal(err)
		}
		b := f.session("sel00002", "desktop", t0)
		f.observe(b, cat(page, evClicks(t0+1000, 12, 10, 20)))
		if got := f.count(`SELECT COUNT(*) FROM heat_selectors WHERE tag = 'elsewhere' AND ? > 0`, 1); got != 1 {
			t.Errorf("want the row untouched (remembered, no statement), %d rows still say 'elsewhere'", got)
		}
		f.svc = f.newService(DefaultConfig()) // a restart reads the row again
		c := f.session("sel00003", "desktop", t0)
		f.observe(c, cat(page, evClicks(t0+1000, 12, 10, 20)))
		if got := f.count(`SELECT COUNT(*) FROM heat_selectors WHERE tag = 'button' AND ? > 0`, 1); got != 1 {
			t.Errorf("after a restart: %d rows say 'button', want 1", got)
		}
		if got := f.count(`SELECT COUNT(DISTINCT selector_id) * 10 + COUNT(*) FROM heat_clicks WHERE ? > 0`, 1); got != 13 {
			t.Errorf("distinct selectors * 10 + clicks = %d, want 13", got)
		}
		// A selector row inserted by a transaction that rolls back is not
		// remembered: the retry inserts it again and the click points at it.
		other := cat(session(t0, "https://shop.test/other", 1280, 800, 1280, 3000), evClicks(t0+1000, 12, 10, 20))
		d := f.session("sel00004", "desktop", t0)
		if err := f.observeErr(f.svc, d, other, true); !errors.Is(err, errRollback) {
			t.Fatalf("want the rollback, got %v", err)
		}
		f.observe(d, other)
		if got := f.count(`SELECT COUNT(*) FROM heat_clicks c JOIN heat_selectors s ON s.id = c.selector_id WHERE c.session_id = ?`, d); got != 1 {
			t.Errorf("clicks with an existing selector row %d, want 1", got)
		}
	})
}

// Sums of several batches in one transaction (the recorder's group) go
// into each row once, and nodes of a cluster adding to the same rows at the
// same time lose none of each other's counts: on PostgreSQL the second
// node's transaction waits for the first's rows and adds to what it wrote.
func TestService_SharedRows(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		ctx := context.Background()
		batch := func(ts int64) []json.RawMessage {
			return cat(session(ts, "https://shop.test/", 1280, 800, 1280, 3000), evClicks(ts+1000, 12, 10, 20))
		}
		// A group of three sessions in one transaction.
		var group []step
		for i := range 3 {
			group = append(group, step{f.session(fmt.Sprintf("group%03d", i), "desktop", t0), batch(t0)})
		}
		if err := f.observeGroup(group...); err != nil {
			t.Fatal(err)
		}
		f.checkSharedRows(t, 3)

		// Two nodes (services) at once: A holds its transaction open after
		// writing; B, a session of the next day (other day rows, the same
		// month rows), runs into A's month rows and must add to A's counts.
		other := f.newService(DefaultConfig())
		t1 := int64(t0 + 24*3600*1000)
		a, b := f.session("nodeA001", "desktop", t0), f.session("nodeB001", "desktop", t1)
		txA, err := f.db.SQL().Write().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer txA.Rollback()
		stxA := sqldb.WrapTx(txA)
		if err := observeIn(ctx, stxA, f.svc, a, batch(t0)); err != nil {
			t.Fatal(err)
		}
		if err := stxA.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- f.observeErr(other, b, batch(t1), false) }()
		if f.db.SQL().Dialect() == sqldb.Postgres {
			// Wait until B waits for a lock A holds (or is done).
			deadline := time.Now().Add(10 * time.Second)
			for f.count(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("node B never waited for node A's rows")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if err := txA.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		f.checkSharedRows(t, 5)
	})
}

// A map drawn while a transaction with new clicks is still open must not be
// cached as current: the cache goes stale when the clicks commit (here at
// once; by default a stale map may be served for CacheStale). It used to go
// stale as the clicks were observed, before the commit, and the map drawn
// in between was then served as current until the next click.
func TestService_CacheAfterCommit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CacheStale = 0
	eachFixture(t, cfg, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		page := session(t0, "https://shop.test/", 1280, 800, 1280, 3000)
		first := f.session("cache001", "desktop", t0)
		f.observe(first, cat(page, evClicks(t0+1000, 12, 10, 20)))
		q := f.query("/", "desktop", ModeGrid, 1280)
		if m := must(f.svc.ClickMap(ctx, q)); m.Clicks != 1 {
			t.Fatalf("clicks %d, want 1", m.Clicks)
		}
		second := f.session("cache002", "desktop", t0)
		err := f.db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error {
			if err := observeIn(ctx, tx, f.svc, second, cat(page, evClicks(t0+1000, 12, 10, 20))); err != nil {
				return err
			}
			if err := tx.Flush(ctx); err != nil {
				return err
			}
			// Drawn now, the map cannot see the uncommitted click.
			m, err := f.svc.ClickMap(ctx, q)
			if err == nil && m.Clicks != 1 {
				t.Errorf("before the commit: clicks %d, want 1", m.Clicks)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if m := must(f.svc.ClickMap(ctx, q)); m.Clicks != 2 {
			t.Errorf("after the commit: clicks %d, want 2 (a map of before served from the cache)", m.Clicks)
		}
	})
}

// checkSharedRows checks that the rows TestService_SharedRows writes count
// n page views and clicks in all.
func (f *fixture) checkSharedRows(t *testing.T, n int64) {
	t.Helper()
	if got := f.count(`SELECT SUM(pageviews) * 1000 + SUM(clicks) FROM heat_page_day WHERE ? > 0`, 1); got != n*1000+n {
		t.Errorf("page days: page views * 1000 + clicks = %d, want %d", got, n*1000+n)
	}
	for _, table := range []string{"heat_grid_day", "heat_grid_month", "heat_elem_day", "heat_elem_month"} {
		rows, err := f.db.SQL().Read().Query(`SELECT cells FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for rows.Next() {
			var blob []byte
			if err := rows.Scan(&blob); err != nil {
				t.Fatal(err)
			}
			if err := eachCell(blob, func(_ int, c int64) { sum += c }); err != nil {
				t.Fatal(err)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			t.Fatal(err)
		}
		if sum != n {
			t.Errorf("%s: %d clicks, want %d", table, sum, n)
		}
	}
}

// failAllButLast makes batch one whose facts cannot be written (the
// signals table is gone until renameSignals puts it back) and has it fail
// as many times in a row as the service allows: its next try is let
// through without its facts.
func (f *fixture) failAllButLast(t *testing.T, sid int64, batch []json.RawMessage) {
	t.Helper()
	f.renameSignals(t, "heat_signals", "heat_signals_gone")
	for i := 1; i < maxFailures; i++ {
		if err := f.observeErr(f.svc, sid, batch, false); err == nil {
			t.Fatalf("attempt %d: no error", i)
		}
	}
}

func (f *fixture) renameSignals(t *testing.T, from, to string) {
	t.Helper()
	if _, err := f.db.SQL().Write().Exec(`ALTER TABLE ` + from + ` RENAME TO ` + to); err != nil {
		t.Fatal(err)
	}
}

func TestService_PoisonBatch(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		sid := f.session("sesspois", "desktop", t0)
		f.observe(sid, session(t0, "https://shop.test/", 1280, 800, 1280, 3000))
		batch := cat(evClicks(t0+1000, 17, 5, 5), evMove(t0+9000, 1, 1)) // a dead click
		f.failAllButLast(t, sid, batch)
		if err := f.observeErr(f.svc, sid, batch, false); err != nil {
			t.Fatalf("attempt %d: %v, want the batch let through", maxFailures, err)
		}
		if got := f.count(`SELECT (SELECT observed_count FROM session_observed WHERE session_id = ?) * 10 + (SELECT COUNT(*) FROM heat_clicks)`, sid); got != 20 {
			t.Errorf("batch count*10 + clicks = %d, want 20: the batch applied, its heatmap facts rolled back", got)
		}
		f.renameSignals(t, "heat_signals_gone", "heat_signals")
		f.observe(sid, cat(evClicks(t0+20000, 12, 5, 5), evAttr(t0+20100, 12, `{"class":"x"}`)))
		if got := f.count(`SELECT COUNT(*) FROM heat_clicks WHERE session_id = ?`, sid); got != 1 {
			t.Errorf("clicks after recovery %d, want 1", got)
		}
	})
}

// A poison batch let through without its facts, in a transaction with
// another session's batch before it: the rollback to its savepoint keeps
// the other batch's sums, though resuming the poison batch's session
// flushed them.
func TestService_PoisonBatchInGroup(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		page := session(t0, "https://shop.test/", 1280, 800, 1280, 3000)
		sid := f.session("poison01", "desktop", t0)
		f.observe(sid, page)
		poison := cat(evClicks(t0+1000, 17, 5, 5), evMove(t0+9000, 1, 1)) // a dead click
		f.failAllButLast(t, sid, poison)
		other := f.session("poison02", "desktop", t0)
		if err := f.observeGroup(step{other, cat(page, evClicks(t0+1000, 12, 10, 20))}, step{sid, poison}); err != nil {
			t.Fatalf("the group: %v, want the poison batch let through", err)
		}
		f.renameSignals(t, "heat_signals_gone", "heat_signals")
		if got := f.count(`SELECT SUM(pageviews) * 1000 + SUM(clicks) FROM heat_page_day WHERE ? > 0`, 1); got != 2001 {
			t.Errorf("page days: page views * 1000 + clicks = %d, want 2001 (both page views, the other session's click)", got)
		}
		if got := f.count(`SELECT COUNT(*) FROM heat_grid_day WHERE ? > 0`, 1); got != 1 {
			t.Errorf("grid rows %d, want the other session's", got)
		}
	})
}

func TestService_Bounds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions = 2
	cfg.MaxMirrorNodes = 30
	cfg.MaxTotalNodes = 50
	eachFixture(t, cfg, func(t *testing.T, f *fixture) {
		var sids []int64
		for i, id := range []string{"sessbnd1", "sessbnd2", "sessbnd3"} {
			sid := f.session(id, "desktop", t0)
			sids = append(sids, sid)
			f.observe(sid, session(t0+int64(i), "https://shop.test/", 1280, 800, 1280, 3000))
		}
		s, n := f.svc.Stats()
		if s != 2 || n > 50 {
			t.Errorf("%d sessions, %d nodes; want 2 and at most 50", s, n)
		}
		// The evicted session resumes from the index.
		f.observe(sids[0], cat(evScroll(t0+100, 1, 0, 100), evClicks(t0+200, 12, 1, 1)))
		if got := f.count(`SELECT y FROM heat_clicks WHERE session_id = ?`, sids[0]); got != 101 {
			t.Errorf("resumed click y %d, want 101", got)
		}
	})
}

// A DOM mirror dropped for the node budget is counted, and so are the
// clicks of its session placed without an element, while a session whose
// mirror is kept names its clicks' elements: the server's metrics
// (trailmap_heatmap_dom_dropped_total, _clicks_without_dom_total) tell an
// operator when --heatmap-dom-nodes is too small for the sessions at once.
func TestService_DOMBudgetCounted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxMirrorNodes = 30
	cfg.MaxTotalNodes = 30 // about one test DOM
	eachFixture(t, cfg, func(t *testing.T, f *fixture) {
		var logs bytes.Buffer
		f.svc.log = slog.New(slog.NewTextHandler(&logs, nil))
		a := f.session("sessdom1", "desktop", t0)
		b := f.session("sessdom2", "desktop", t0)
		f.observe(a, session(t0, "https://shop.test/", 1280, 800, 1280, 3000))
		f.observe(b, session(t0+1, "https://shop.test/", 1280, 800, 1280, 3000))
		if m := f.svc.Memory(); m.Sessions != 2 || m.Nodes > 30 || m.MirrorsDropped != 1 || m.ClicksWithoutDOM != 0 {
			t.Fatalf("after two pages: %+v; want 2 sessions, ≤ 30 nodes, 1 mirror dropped", m)
		}
		f.observe(a, evClicks(t0+200, 12, 10, 10))
		f.observe(b, evClicks(t0+300, 12, 10, 10))
		if m := f.svc.Memory(); m.MirrorsDropped != 1 || m.ClicksWithoutDOM != 1 {
			t.Errorf("after a click in each: %+v; want 1 mirror dropped, 1 click without DOM", m)
		}
		if got := f.count(`SELECT COUNT(*) FROM heat_clicks WHERE session_id = ? AND selector_id IS NULL`, a); got != 1 {
			t.Errorf("the dropped session's click: %d without an element, want 1", got)
		}
		if got := f.count(`SELECT COUNT(*) FROM heat_clicks WHERE session_id = ? AND selector_id IS NOT NULL`, b); got != 1 {
			t.Errorf("the kept session's click: %d with an element, want 1", got)
		}
		// A third page drops the second session's mirror; the operator is
		// told once an hour, not at every drop.
		c := f.session("sessdom3", "desktop", t0)
		f.observe(c, session(t0+2, "https://shop.test/", 1280, 800, 1280, 3000))
		if m := f.svc.Memory(); m.MirrorsDropped != 2 {
			t.Errorf("after a third page: %+v; want 2 mirrors dropped", m)
		}
		if n := strings.Count(logs.String(), "raise --heatmap-dom-nodes"); n != 1 {
			t.Errorf("%d warnings about dropped mirrors, want 1:\n%s", n, logs.String())
		}
	})
}

func decodePNG(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	return img
}

// alphaAt is the opacity of a pixel, 0..255.
func alphaAt(img image.Image, x, y int) uint32 {
	_, _, _, a := img.At(x, y).RGBA()
	return a >> 8
}

// redness is how far to the hot end of the palette a pixel is.
func redness(img image.Image, x, y int) int {
	r, g, b, a := img.At(x, y).RGBA()
	if a == 0 {
		return -1
	}
	// un-premultiply
	r, g, b = r*0xffff/a, g*0xffff/a, b*0xffff/a
	return int(r>>8) - int(b>>8) - int(g>>9)
}

func TestService_ClickMaps(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		// Visitor A: wide layout, the buy button at (100, 50)+(200×40) scrolled 1000.
		a := f.session("sessmapa", "desktop", t0)
		f.observe(a, cat(session(t0, "https://shop.test/p/1", 1280, 800, 1280, 4000), evScroll(t0+10, 1, 0, 1000)))
		for i := range 20 {
			ts := t0 + 5000 + int64(i)*3000
			f.observe(a, cat(evClicks(ts, 12, 150, 60), evClickBox(ts+1, 12, 150, 60, box{X: 100, Y: 50, W: 200, H: 40}), evAttr(ts+100, 12, `{"class":"x"}`)))
		}
		// Visitor B: another layout puts the same button at (700, 300)+(100×20), no scroll.
		bs := f.session("sessmapb", "desktop", t0)
		f.observe(bs, session(t0, "https://shop.test/p/1", 1280, 800, 1280, 4000))
		for i := range 20 {
			ts := t0 + 5000 + int64(i)*3000
			f.observe(bs, cat(evClicks(ts, 12, 725, 305), evClickBox(ts+1, 12, 725, 305, box{X: 700, Y: 300, W: 100, H: 20}), evAttr(ts+100, 12, `{"class":"x"}`)))
		}
		// Rage clicks by visitor B far down the page.
		f.observe(bs, cat(evScroll(t0+90000, 1, 0, 3000), evClicks(t0+91000, 17, 600, 400), evClicks(t0+91300, 17, 600, 400),
			evClicks(t0+91600, 17, 600, 400), evAttr(t0+91700, 17, `{"class":"x"}`)))
		ctx := context.Background()

		t.Run("grid: hot where clicked, cold elsewhere", func(t *testing.T) {
			q := f.query("https://shop.test/p/1?utm=x", "desktop", ModeGrid, 1280)
			img := decodePNG(t, must(f.svc.ClickPNG(ctx, q)))
			if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 4000 {
				t.Fatalf("size %v, want 1280×4000 (average document height)", b)
			}
			for _, p := range []image.Point{{150, 1060}, {725, 305}} {
				if alphaAt(img, p.X, p.Y) < 150 || redness(img, p.X, p.Y) < 100 {
					t.Errorf("cold at clicked point %v: %v", p, img.At(p.X, p.Y))
				}
			}
			for _, p := range []image.Point{{1000, 2000}, {150, 600}, {10, 3900}} {
				if alphaAt(img, p.X, p.Y) != 0 {
					t.Errorf("not transparent far from clicks at %v: %v", p, img.At(p.X, p.Y))
				}
			}
			m := must(f.svc.ClickMap(ctx, q))
			if m.Clicks != 43 || m.Drawn != 43 || m.Pageviews != 2 || m.RageClicks != 1 {
				t.Errorf("counts: clicks %d drawn %d pageviews %d rage %d", m.Clicks, m.Drawn, m.Pageviews, m.RageClicks)
			}
			if len(m.Widths) != 1 || m.Widths[0].Width != 1280 {
				t.Errorf("widths %+v", m.Widths)
			}
		})
		t.Run("grid at another width scales x", func(t *testing.T) {
			img := decodePNG(t, must(f.svc.ClickPNG(ctx, f.query("/p/1", "desktop", ModeGrid, 640))))
			if alphaAt(img, 75, 1060) < 150 || alphaAt(img, 362, 305) < 150 {
				t.Errorf("clicks not scaled to 640 px")
			}
		})
		t.Run("element mode: both visitors on the reference box", func(t *testing.T) {
			q := f.query("/p/1", "desktop", ModeElement, 1280)
			m := must(f.svc.ClickMap(ctx, q))
			if len(m.Elements) == 0 {
				t.Fatal("no elements")
			}
			e := m.Elements[0]
			if e.Selector != "div#app > main > button:nth-of-type(1)" || e.Clicks != 40 || e.Unplaced != 0 {
				t.Fatalf("top element %+v", e)
			}
			if e.Box == nil {
				t.Fatal("no box")
			}
			// The latest box (visitor B's, the same timestamps but later id) or
			// A's; either way both visitors' clicks are drawn inside it.
			img := decodePNG(t, must(f.svc.ClickPNG(ctx, q)))
			cx, cy := e.Box.X+e.Box.W/4, e.Box.Y+e.Box.H/4
			if alphaAt(img, cx, cy) < 150 {
				t.Errorf("element map cold at the box's quarter point (%d, %d)", cx, cy)
			}
			var inBox int64
			for _, o := range e.Offsets {
				inBox += o[2]
			}
			if inBox != 40 || m.Drawn != 40 {
				t.Errorf("offsets hold %d clicks, drawn %d; want 40 and 40 (the rage clicks on the span have no box)", inBox, m.Drawn)
			}
			if e.Share < 0.9 || e.Share > 0.94 {
				t.Errorf("share %g, want 40/43", e.Share)
			}
		})
		t.Run("rage map", func(t *testing.T) {
			q := f.query("/p/1", "desktop", ModeRage, 1280)
			img := decodePNG(t, must(f.svc.ClickPNG(ctx, q)))
			if alphaAt(img, 600, 3400) < 150 {
				t.Errorf("rage map cold at the rage click")
			}
			if alphaAt(img, 150, 1060) != 0 {
				t.Errorf("rage map hot at plain clicks")
			}
			m := must(f.svc.ClickMap(ctx, q))
			if m.Drawn != 1 {
				t.Errorf("rage map draws %d, want 1 burst", m.Drawn)
			}
			var span *Element
			for i := range m.Elements {
				if m.Elements[i].Selector == "div#app > main > div:nth-of-type(1) > span" {
					span = &m.Elements[i]
				}
			}
			if span == nil || span.Rage != 1 {
				t.Errorf("span element %+v, want one rage click", span)
			}
		})
		t.Run("other device: empty", func(t *testing.T) {
			m := must(f.svc.ClickMap(ctx, f.query("/p/1", "mobile", ModeGrid, 0)))
			if m.Drawn != 0 || m.Width != 390 || len(m.Grid.Cells) != 0 {
				t.Errorf("mobile map: drawn %d width %d", m.Drawn, m.Width)
			}
			img := decodePNG(t, must(f.svc.ClickPNG(ctx, f.query("/p/1", "mobile", ModeGrid, 0))))
			if alphaAt(img, 150, 50) != 0 {
				t.Errorf("empty map not transparent")
			}
		})
		t.Run("cache: same bytes, fresh after new data", func(t *testing.T) {
			q := f.query("/p/1", "", ModeGrid, 1280)
			p1 := must(f.svc.ClickPNG(ctx, q))
			p2 := must(f.svc.ClickPNG(ctx, q))
			if &p1[0] != &p2[0] {
				t.Errorf("second render not served from the cache")
			}
			f.svc.cfg.CacheStale = 0
			f.observe(a, cat(evClicks(t0+200000, 12, 1100, 700)))
			p3 := must(f.svc.ClickPNG(ctx, q))
			if bytes.Equal(p1, p3) {
				t.Errorf("cache served a stale map after new clicks")
			}
		})
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestService_ScrollMap(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		// Four page views of a 4000 px page: 800 px folds, deepest 800 / 2000 / 4000 / 4000.
		for i, y := range []float64{0, 1200, 3200, 5000} {
			sid := f.session("sessscr"+string(rune('a'+i)), "desktop", t0)
			f.observe(sid, cat(session(t0, "https://shop.test/long", 1280, 800, 1280, 4000), evScroll(t0+10, 1, 0, y)))
		}
		// A mobile page view with a 700 px fold on a 7000 px page, halfway.
		m := f.session("sessscrm", "mobile", t0)
		f.observe(m, cat(session(t0, "https://shop.test/long", 390, 700, 390, 7000), evScroll(t0+10, 1, 0, 2800)))
		ctx := context.Background()
		sm := must(f.svc.ScrollMap(ctx, f.query("/long", "desktop", "", 0)))
		wantReached := map[int]float64{0: 1, 20: 1, 21: 0.75, 50: 0.75, 51: 0.5, 100: 0.5}
		for d, w := range wantReached {
			if sm.Depths[d].Reached != w {
				t.Errorf("reached %d%%: %g, want %g", d, sm.Depths[d].Reached, w)
			}
		}
		if sm.Pageviews != 4 || sm.FoldPx != 800 || sm.FoldPct != 20 || sm.DocHeight != 4000 || sm.Height != 4000 {
			t.Errorf("map %+v", sm)
		}
		all := must(f.svc.ScrollMap(ctx, f.query("/long", "", "", 0)))
		if all.Pageviews != 5 || len(all.Devices) != 2 {
			t.Fatalf("all devices: %d page views, %d devices", all.Pageviews, len(all.Devices))
		}
		for _, d := range all.Devices {
			if d.Device == "mobile" && (d.FoldPx != 700 || d.FoldPct != 10) {
				t.Errorf("mobile fold %+v", d)
			}
		}
		img := decodePNG(t, must(f.svc.ScrollPNG(ctx, f.query("/long", "desktop", "", 1280))))
		if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 4000 {
			t.Fatalf("scroll png size %v", b)
		}
		if redness(img, 100, 100) < redness(img, 100, 3900) {
			t.Errorf("top of the page is not hotter than the bottom")
		}
		if r, _, _, _ := img.At(640, 799).RGBA(); r>>8 > 40 || alphaAt(img, 640, 799) < 200 {
			t.Errorf("no fold line at 800 px: %v", img.At(640, 799))
		}
	})
}

func TestService_PagesSnapshotSignals(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		set := json.RawMessage(`{"heatmap":{"groups":["/product/*"],"query_params":["lang"]}}`)
		if err := f.db.SetProjectSettings(context.Background(), f.project, set); err != nil {
			t.Fatal(err)
		}
		s1 := f.session("sesspage1", "desktop", t0)
		f.observe(s1, cat(session(t0, "https://shop.test/product/12?lang=de&utm=1", 1280, 800, 1280, 3000),
			evClicks(t0+1000, 17, 5, 5), evMove(t0+5000, 1, 1),
			session(t0+6000, "https://shop.test/product/13?lang=de", 1440, 900, 1425, 3000),
			session(t0+9000, "https://shop.test/about", 1280, 800, 1280, 3000)))
		s2 := f.session("sesspage2", "mobile", t0+20000)
		f.observe(s2, session(t0+20000, "https://shop.test/product/99?lang=de", 390, 700, 390, 3000))
		ctx := context.Background()

		pages := must(f.svc.Pages(ctx, f.query("", "", "", 0)))
		if len(pages) != 2 || pages[0].Page != "/product/*?lang=de" || pages[0].Pageviews != 3 || pages[0].Devices["mobile"] != 1 || pages[0].DeadClicks != 1 {
			t.Errorf("pages %+v", pages)
		}
		desk := must(f.svc.Pages(ctx, f.query("", "desktop", "", 0)))
		if len(desk) != 2 || desk[0].Pageviews != 2 {
			t.Errorf("desktop pages %+v", desk)
		}

		sn := must(f.svc.Snapshot(ctx, f.query("https://shop.test/product/5?lang=de", "desktop", "", 1280)))
		if sn.SessionID != "sesspage1" || sn.FromMS != 1 || sn.ViewportW != 1280 {
			t.Errorf("snapshot near 1280: %+v", sn)
		}
		sn = must(f.svc.Snapshot(ctx, f.query("/product/5?lang=de", "desktop", "", 1440)))
		if sn.FromMS != 6001 || sn.ViewportW != 1440 {
			t.Errorf("snapshot near 1440: %+v", sn)
		}
		sn = must(f.svc.Snapshot(ctx, f.query("/product/5?lang=de", "", "", 0)))
		if sn.SessionID != "sesspage2" {
			t.Errorf("latest snapshot: %+v", sn)
		}
		if _, err := f.svc.Snapshot(ctx, f.query("/nothing", "", "", 0)); !errors.Is(err, ErrNoData) {
			t.Errorf("snapshot of an unknown page: %v", err)
		}

		sig := must(f.svc.Signals(ctx, s1))
		if len(sig) != 1 || sig[0].Type != "dead_click" || sig[0].OffsetMS != 1000 || sig[0].Selector != "div#app > main > div:nth-of-type(1) > span" ||
			sig[0].Page != "/product/*?lang=de" || sig[0].X != 5 {
			t.Errorf("signals %+v", sig)
		}
		if none := must(f.svc.Signals(ctx, s2)); len(none) != 0 {
			t.Errorf("signals of a calm session: %+v", none)
		}
	})
}

func TestService_BadQueries(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		ctx := context.Background()
		ok := f.query("/p", "", "", 0)
		tests := []struct {
			name string
			q    func(Query) Query
		}{
			{"no project", func(q Query) Query { q.ProjectID = 0; return q }},
			{"no url", func(q Query) Query { q.URL = " "; return q }},
			{"bad device", func(q Query) Query { q.Device = "phone"; return q }},
			{"bad mode", func(q Query) Query { q.Mode = "fire"; return q }},
			{"width too small", func(q Query) Query { q.Width = 10; return q }},
			{"width too large", func(q Query) Query { q.Width = 100000; return q }},
			{"height too large", func(q Query) Query { q.Height = 100000; return q }},
			{"to before from", func(q Query) Query { q.From, q.To = q.To, q.From; return q }},
			{"range too long", func(q Query) Query { q.From = q.To.AddDate(-6, 0, 0); return q }},
			{"limit", func(q Query) Query { q.Limit = 5000; return q }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := f.svc.ClickMap(ctx, tt.q(ok)); !errors.Is(err, ErrBadQuery) {
					t.Errorf("got %v, want ErrBadQuery", err)
				}
			})
		}
		if _, err := f.svc.ClickMap(ctx, ok); err != nil {
			t.Errorf("good query: %v", err)
		}
	})
}

// Every shared rrweb fixture goes through the observer without an error,
// and its clicks are placed.
func TestService_Fixtures(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(paths) == 0 {
		paths, _ = filepath.Glob("/work/shared/testdata/rrweb-fixtures/*.json")
	}
	if len(paths) < 20 {
		t.Fatalf("found %d fixtures", len(paths))
	}
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		for i, p := range paths {
			t.Run(filepath.Base(p), func(t *testing.T) {
				evs := loadFixture(t, filepath.Base(p))
				sid := f.session(fmt.Sprintf("fixture%04d", i), "desktop", t0)
				for j := 0; j < len(evs); j += 20 {
					if err := f.observeErr(f.svc, sid, evs[j:min(j+20, len(evs))], false); err != nil {
						t.Fatalf("batch at %d: %v", j, err)
					}
				}
				f.close(sid)
				var clicks int
				for _, e := range evs {
					var ev struct {
						Type int `json:"type"`
						Data struct {
							Source int `json:"source"`
							Type   int `json:"type"`
						} `json:"data"`
					}
					json.Unmarshal(e, &ev)
					if ev.Type == 3 && ev.Data.Source == 2 && ev.Data.Type == 2 {
						clicks++
					}
				}
				if got := f.count(`SELECT COUNT(*) FROM heat_clicks WHERE session_id = ?`, sid); got != int64(clicks) {
					t.Errorf("%d clicks placed, the fixture has %d", got, clicks)
				}
			})
		}
	})
}

// Several facts workers (the recorder's, on PostgreSQL) follow different
// sessions at once, each batch in a transaction of its own: every click
// is counted once, and trackers evicted while others are in use (tight
// bounds) are resumed from the index. Run with -race.
func TestService_ConcurrentSessions(t *testing.T) {
	tight := DefaultConfig()
	tight.MaxSessions = 3
	tight.MaxMirrorNodes = 30
	tight.MaxTotalNodes = 30 // about one test DOM
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"default", DefaultConfig()}, {"tight", tight}} {
		t.Run(c.name, func(t *testing.T) {
			eachFixture(t, c.cfg, func(t *testing.T, f *fixture) {
				const workers, perWorker = 4, 5
				sids := make([][]int64, workers)
				for w := range workers {
					for i := range perWorker {
						sids[w] = append(sids[w], f.session(fmt.Sprintf("conc%d-%02d", w, i), "desktop", t0))
					}
				}
				var wg sync.WaitGroup
				errs := make(chan error, workers)
				for w := range workers {
					wg.Go(func() {
						// Each worker's sessions interleaved: a first batch
						// of each, then a second of each.
						for i, sid := range sids[w] {
							ts := t0 + int64(w*100+i)
							if err := f.observeErr(f.svc, sid, session(ts, "https://shop.test/", 1280, 800, 1280, 3000), false); err != nil {
								errs <- err
								return
							}
						}
						for i, sid := range sids[w] {
							ts := t0 + int64(w*100+i) + 5000
							if err := f.observeErr(f.svc, sid, evClicks(ts, 12, 10, 20), false); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				n := int64(workers * perWorker)
				if c.name == "default" {
					f.checkSharedRows(t, n)
					return
				}
				// Evicted trackers lose the DOM (and so the clicks' elements),
				// not the clicks.
				if got := f.count(`SELECT SUM(pageviews) * 1000 + SUM(clicks) FROM heat_page_day WHERE ? > 0`, 1); got != n*1000+n {
					t.Errorf("page days: page views * 1000 + clicks = %d, want %d", got, n*1000+n)
				}
				if s, nodes := f.svc.Stats(); s > 3 || nodes > 3*30 {
					t.Errorf("%d sessions, %d nodes kept; want at most 3 and 90", s, nodes)
				}
			})
		})
	}
}
