package journey

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// fixture writes index rows directly, as the recorder would, and derives
// the journey tables with Sync.
type fixture struct {
	t       testing.TB
	db      *index.DB
	svc     *Service
	project int64
	n       int
	noPack  bool // leave sessions loose
}

// newFixture is a fixture on a fresh SQLite index, for benchmarks.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	// sessions.error_clicks, which index.Session reads, comes with heatmap's schema.
	return newFixtureOn(t, indextest.New(t, heatmap.Schema, Schema))
}

// eachFixture runs fn as the subtests "sqlite" and "postgres", each with a
// fixture on a fresh index of that backend.
func eachFixture(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	indextest.Each(t, func(t *testing.T, db *index.DB) { fn(t, newFixtureOn(t, db)) }, heatmap.Schema, Schema)
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func newFixtureOn(t testing.TB, db *index.DB) *fixture {
	t.Helper()
	p, err := db.CreateProject(context.Background(), "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(context.Background(), db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &fixture{t: t, db: db, svc: svc, project: p.ID}
}

// day is the fixtures' reference day, 2026-03-10 UTC.
var day = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

func at(d int, hhmm string) time.Time {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		panic(err)
	}
	return day.AddDate(0, 0, d).Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute)
}

func (f *fixture) exec(q string, args ...any) sql.Result {
	f.t.Helper()
	res, err := f.db.SQL().Write().ExecContext(context.Background(), q, args...)
	if err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return res
}

// visitor creates (or updates) a visitor; user "" leaves it anonymous.
func (f *fixture) visitor(id, user string) {
	f.t.Helper()
	var u any
	if user != "" {
		u = user
	}
	f.exec(`INSERT INTO visitors (project_id, id, user_id, first_seen, last_seen) VALUES (?, ?, ?, 0, 0)
		ON CONFLICT (project_id, id) DO UPDATE SET user_id = excluded.user_id`, f.project, id, u)
}

// fsess is a session being written.
type fsess struct {
	f      *fixture
	row    int64
	public string
	start  time.Time
}

type item struct {
	off   time.Duration
	page  string // URL or path
	event string
}

func pg(off time.Duration, url string) item  { return item{off: off, page: url} }
func ev(off time.Duration, name string) item { return item{off: off, event: name} }
func mins(n float64) time.Duration           { return time.Duration(n * float64(time.Minute)) }

// session inserts a session of visitor (created anonymous if new) with
// items, written in the order given (timestamps decide the timeline).
func (f *fixture) session(visitor, device string, start time.Time, items ...item) *fsess {
	f.t.Helper()
	f.n++
	public := fmt.Sprintf("sess%04d-%s", f.n, visitor)
	least, greatest := "MIN", "MAX" // SQLite's scalar forms
	if f.db.SQL().Dialect() == sqldb.Postgres {
		least, greatest = "LEAST", "GREATEST"
	}
	f.exec(`INSERT INTO visitors (project_id, id, first_seen, last_seen) VALUES (?, ?, ?, ?)
		ON CONFLICT (project_id, id) DO UPDATE SET first_seen = `+least+`(visitors.first_seen, excluded.first_seen), last_seen = `+greatest+`(visitors.last_seen, excluded.last_seen)`,
		f.project, visitor, start.UnixMilli(), start.UnixMilli())
	end := start
	entry, pages := "", 0
	for _, it := range items {
		if t := start.Add(it.off); t.After(end) {
			end = t
		}
		if it.page != "" {
			pages++
			if entry == "" {
				entry = "https://shop.test" + it.page
			}
		}
	}
	var row int64
	err := f.db.SQL().Write().QueryRowContext(context.Background(), `INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, closed, device, entry_url, page_count)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?) RETURNING id`, f.project, public, visitor, start.UnixMilli(), end.UnixMilli(), end.UnixMilli(), device, entry, pages).Scan(&row)
	if err != nil {
		f.t.Fatalf("insert session: %v", err)
	}
	s := &fsess{f: f, row: row, public: public, start: start}
	for _, it := range items {
		ts := start.Add(it.off).UnixMilli()
		if it.page != "" {
			url := "https://shop.test" + it.page
			f.exec(`INSERT INTO pages (session_id, ts, url, path) VALUES (?, ?, ?, ?)`, row, ts, url, pathOf(url))
		} else {
			f.exec(`INSERT INTO custom_events (session_id, ts, name) VALUES (?, ?, ?)`, row, ts, it.event)
		}
	}
	return s
}

// sync derives the journey tables and packs every closed session into
// chunks, as the service's background work would.
func (f *fixture) sync() {
	f.t.Helper()
	if _, err := f.svc.Sync(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	if f.noPack {
		return
	}
	if _, err := f.svc.Pack(context.Background(), true); err != nil {
		f.t.Fatal(err)
	}
}
