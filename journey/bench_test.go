package journey

// Benchmarks over a generated index of 1 million sessions (about 10 million
// page views), built once and kept in the temp dir for later runs:
//
//	go test -run '^$' -bench . -benchtime 3x ./journey
//
// TRAILMAP_JOURNEY_BENCH_SESSIONS changes the size (the file name follows).
// TRAILMAP_JOURNEY_BENCH_INDEX=postgres runs them on PostgreSQL instead
// (pgtest's server; the index is generated anew in every run, which takes
// a while at 1 million sessions).

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

var benchData struct {
	once     sync.Once
	err      error
	db       *index.DB
	svc      *Service
	project  int64
	sessions int
	from, to time.Time
}

// benchEnd is the end of the generated range (90 days).
var benchEnd = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func benchSetup(b *testing.B) {
	b.Helper()
	benchData.once.Do(func() {
		n := 1_000_000
		if v := os.Getenv("TRAILMAP_JOURNEY_BENCH_SESSIONS"); v != "" {
			n, _ = strconv.Atoi(v)
		}
		path := filepath.Join(os.TempDir(), fmt.Sprintf("trailmap-journey-bench-%d-v2.db", n))
		if os.Getenv("TRAILMAP_JOURNEY_BENCH_INDEX") == "postgres" {
			if path, benchData.err = benchPostgres(b, n); benchData.err != nil {
				return
			}
		} else if _, err := os.Stat(path); err != nil {
			b.Logf("generating %d sessions into %s (once; later runs reuse it)", n, path)
			if benchData.err = generateBench(b, path, n); benchData.err != nil {
				return
			}
		}
		ctx := context.Background()
		db, err := index.Open(ctx, path, heatmap.Schema, Schema)
		if err != nil {
			benchData.err = err
			return
		}
		svc, err := New(ctx, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			benchData.err = err
			return
		}
		benchData.db, benchData.svc, benchData.project, benchData.sessions = db, svc, 1, n
		benchData.from, benchData.to = benchEnd.AddDate(0, 0, -90), benchEnd
	})
	if benchData.err != nil {
		b.Fatal(benchData.err)
	}
}

// benchPostgres generates the index into a fresh database of the test
// binary's PostgreSQL; with TRAILMAP_JOURNEY_BENCH_PGDIR set the server's
// cluster lives in that directory and the generated database is kept there
// for later runs (generating 1M sessions takes about 20 minutes).
func benchPostgres(b *testing.B, n int) (string, error) {
	dir := os.Getenv("TRAILMAP_JOURNEY_BENCH_PGDIR")
	if dir == "" {
		url := pgtest.Shared(b).SharedDatabase(b)
		b.Logf("generating %d sessions into PostgreSQL", n)
		return url, generateBench(b, url, n)
	}
	ctx := context.Background()
	srv := pgtest.SharedIn(b, dir)
	name := fmt.Sprintf("journey_bench_%d_v2", n)
	url, exists, err := srv.Named(ctx, name)
	if err != nil || exists {
		return url, err
	}
	b.Logf("generating %d sessions into PostgreSQL in %s (once; later runs reuse it)", n, dir)
	tmp, err := srv.Create(ctx, name+"_partial")
	if err != nil {
		return "", err
	}
	if err := generateBench(b, tmp, n); err != nil {
		return "", err
	}
	return url, srv.Rename(ctx, name+"_partial", name)
}

// site is the generated shop: a home page, 50 categories, 2,000 products,
// 300 blog posts, search, cart and checkout, with transitions that make a
// plausible funnel.
func nextPage(r *rand.Rand, cur string) string {
	p := r.IntN(100)
	switch {
	case cur == "":
		switch {
		case p < 40:
			return "/"
		case p < 60:
			return fmt.Sprintf("/product/%d", r.IntN(2000))
		case p < 75:
			return fmt.Sprintf("/blog/%d", r.IntN(300))
		case p < 85:
			return fmt.Sprintf("/category/%d", r.IntN(50))
		}
		return "/search"
	case cur == "/":
		switch {
		case p < 35:
			return fmt.Sprintf("/category/%d", r.IntN(50))
		case p < 65:
			return fmt.Sprintf("/product/%d", r.IntN(2000))
		case p < 80:
			return "/search"
		case p < 90:
			return "/pricing"
		}
		return fmt.Sprintf("/blog/%d", r.IntN(300))
	case strings.HasPrefix(cur, "/product/"):
		switch {
		case p < 40:
			return fmt.Sprintf("/product/%d", r.IntN(2000))
		case p < 55:
			return "/cart"
		case p < 70:
			return fmt.Sprintf("/category/%d", r.IntN(50))
		case p < 85:
			return "/"
		}
		return "/search"
	case cur == "/cart":
		switch {
		case p < 50:
			return "/checkout"
		case p < 80:
			return fmt.Sprintf("/product/%d", r.IntN(2000))
		}
		return "/"
	case cur == "/checkout":
		if p < 60 {
			return "/checkout/done"
		}
		return "/cart"
	case cur == "/search", strings.HasPrefix(cur, "/category/"):
		if p < 70 {
			return fmt.Sprintf("/product/%d", r.IntN(2000))
		}
		return "/"
	}
	switch {
	case p < 50:
		return "/"
	case p < 80:
		return fmt.Sprintf("/product/%d", r.IntN(2000))
	}
	return "/account"
}

var benchTerms = strings.Fields("shoes boots red blue sandals jacket hat socks gift sale dress shirt")

func generateBench(b *testing.B, path string, n int) error {
	ctx := context.Background()
	pg := sqldb.IsPostgres(path)
	tmp := path + ".tmp"
	if pg {
		tmp = path // a fresh database
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if !pg {
			os.Remove(tmp + suffix)
		}
	}
	db, err := index.Open(ctx, tmp, heatmap.Schema, Schema)
	if err != nil {
		return err
	}
	if _, err := db.CreateProject(ctx, "bench", benchEnd); err != nil {
		return err
	}
	started := time.Now()
	r := rand.New(rand.NewPCG(42, 7))
	visitors := n * 6 / 10
	span := int64(90 * 24 * time.Hour / time.Millisecond)
	base := benchEnd.UnixMilli() - span
	const perTx = 20000
	pages, events := 0, 0
	for lo := 0; lo < n; lo += perTx {
		hi := min(lo+perTx, n)
		err := db.SQL().InTx(ctx, func(tx *sql.Tx) error {
			insSess, err := tx.PrepareContext(ctx, `INSERT INTO sessions (id, project_id, public_id, visitor_id, started_at, ended_at, last_received, closed, device, entry_url, page_count)
				VALUES (?, 1, ?, ?, ?, ?, ?, 1, ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer insSess.Close()
			insVis, err := tx.PrepareContext(ctx, `INSERT INTO visitors (project_id, id, user_id, first_seen, last_seen, sessions) VALUES (1, ?, ?, ?, ?, 1)
				ON CONFLICT (project_id, id) DO UPDATE SET last_seen = excluded.last_seen, sessions = visitors.sessions + 1`)
			if err != nil {
				return err
			}
			defer insVis.Close()
			var pageRows, eventRows []any
			flushPages := func() error {
				if len(pageRows) == 0 {
					return nil
				}
				q := `INSERT INTO pages (session_id, ts, url, path) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?),", len(pageRows)/4), ",")
				_, err := tx.ExecContext(ctx, q, pageRows...)
				pageRows = pageRows[:0]
				return err
			}
			for i := lo; i < hi; i++ {
				id := int64(i + 1)
				start := base + int64(i)*span/int64(n) + r.Int64N(60000)
				vn := r.IntN(visitors)
				vid := fmt.Sprintf("visitor%07d", vn)
				var user any
				if vn%10 == 0 {
					user = fmt.Sprintf("user%06d", vn/20) // two visitors per user
				}
				device := [...]string{"desktop", "desktop", "mobile", "mobile", "tablet"}[r.IntN(5)]
				np := 3 + r.IntN(15)
				ts := start
				cur, entry := "", ""
				sessPages := make([]any, 0, 4*np)
				for range np {
					cur = nextPage(r, cur)
					url := "https://shop.example" + cur
					if cur == "/search" {
						url += "?q=" + benchTerms[r.IntN(len(benchTerms))]
					}
					if entry == "" {
						entry = url
					}
					sessPages = append(sessPages, id, ts, url, cur)
					pages++
					if cur == "/cart" {
						eventRows = append(eventRows, id, ts+500, "add_to_cart")
					}
					if cur == "/checkout/done" {
						eventRows = append(eventRows, id, ts+800, "purchase")
					}
					ts += 5000 + r.Int64N(90000)
				}
				if _, err := insSess.ExecContext(ctx, id, fmt.Sprintf("s%09d", id), vid, start, ts, ts, device, entry, np); err != nil {
					return err
				}
				pageRows = append(pageRows, sessPages...)
				if len(pageRows) >= 400 {
					if err := flushPages(); err != nil {
						return err
					}
				}
				if _, err := insVis.ExecContext(ctx, vid, user, start, ts); err != nil {
					return err
				}
			}
			if err := flushPages(); err != nil {
				return err
			}
			for len(eventRows) > 0 {
				k := min(len(eventRows), 300)
				q := `INSERT INTO custom_events (session_id, ts, name) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?, ?),", k/3), ",")
				if _, err := tx.ExecContext(ctx, q, eventRows[:k]...); err != nil {
					return err
				}
				events += k / 3
				eventRows = eventRows[k:]
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	b.Logf("inserted %d sessions, %d pages, %d events in %s", n, pages, events, time.Since(started).Round(time.Second))
	svc, err := New(ctx, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	started = time.Now()
	derived, err := svc.Sync(ctx)
	if err != nil {
		return err
	}
	el := time.Since(started)
	b.Logf("derived %d timelines in %s (%.0f sessions/s)", derived, el.Round(time.Second), float64(derived)/el.Seconds())
	started = time.Now()
	packed, err := svc.Pack(ctx, false)
	if err != nil {
		return err
	}
	el = time.Since(started)
	b.Logf("packed %d sessions in %s (%.0f sessions/s)", packed, el.Round(time.Second), float64(packed)/el.Seconds())
	svc.Close()
	if pg {
		// The ids were given: move the sequence past them.
		if _, err := db.SQL().Write().ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('sessions', 'id'), (SELECT MAX(id) FROM sessions))`); err != nil {
			return err
		}
		if _, err := db.SQL().Write().ExecContext(ctx, `VACUUM ANALYZE`); err != nil {
			return err
		}
		return db.Close()
	}
	if _, err := db.SQL().Write().ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}
	if _, err := db.SQL().Write().ExecContext(ctx, `ANALYZE`); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func report(b *testing.B, sessions int, f func()) {
	b.Helper()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	alloc := ms.TotalAlloc
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		f()
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/query")
	b.ReportMetric(float64(el.Microseconds())/1000/float64(b.N), "ms/query")
	b.ReportMetric(float64(ms.TotalAlloc-alloc)/float64(b.N)/(1<<20), "MB-alloc/query")
	b.ReportMetric(float64(sessions)/(el.Seconds()/float64(b.N))/1e6, "M-sessions/s")
}

// cpuTime is the CPU time the process used (all threads): on a shared
// machine it says more than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchSteps = []Step{
	{Type: "page", Match: "/"},
	{Type: "page", Match: "/product/*"},
	{Type: "page", Match: "/cart"},
	{Type: "event", Match: "purchase"},
}

func BenchmarkFunnel4Steps(b *testing.B) {
	benchSetup(b)
	for _, tc := range []struct {
		name  string
		def   FunnelDef
		split string
	}{
		{"sessions", FunnelDef{Steps: benchSteps}, ""},
		{"people", FunnelDef{Steps: benchSteps, CountBy: "person", Window: Duration(7 * 24 * time.Hour)}, ""},
		{"sessions-split-device", FunnelDef{Steps: benchSteps}, "device"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var res *FunnelResult
			report(b, benchData.sessions, func() {
				var err error
				res, err = benchData.svc.RunFunnel(context.Background(), FunnelQuery{ProjectID: benchData.project, Def: tc.def,
					From: benchData.from, To: benchData.to, Split: tc.split})
				if err != nil {
					b.Fatal(err)
				}
			})
			var counts []int
			for _, s := range res.Steps {
				counts = append(counts, s.Count)
			}
			b.Logf("%s: steps %v", tc.name, counts)
		})
	}
}

func BenchmarkFunnelDropOffSessions(b *testing.B) {
	benchSetup(b)
	report(b, benchData.sessions, func() {
		_, err := benchData.svc.FunnelSessions(context.Background(), FunnelSessionsQuery{
			FunnelQuery: FunnelQuery{ProjectID: benchData.project, Def: FunnelDef{Steps: benchSteps}, From: benchData.from, To: benchData.to},
			Step:        3, Status: "dropped", Limit: 50})
		if err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkPaths(b *testing.B) {
	benchSetup(b)
	for _, tc := range []struct {
		name string
		q    PathQuery
	}{
		{"next-from-home-depth3", PathQuery{Page: "/", Direction: "next", Depth: 3}},
		{"previous-to-cart-depth3", PathQuery{Page: "/cart", Direction: "previous", Depth: 3}},
		{"next-from-products-depth5", PathQuery{Page: "/product/*", Direction: "next", Depth: 5}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := tc.q
			q.ProjectID, q.From, q.To = benchData.project, benchData.from, benchData.to
			var res *PathResult
			report(b, benchData.sessions, func() {
				var err error
				if res, err = benchData.svc.Paths(context.Background(), q); err != nil {
					b.Fatal(err)
				}
			})
			b.Logf("%s: %d sessions, %d nodes, %d links", tc.name, res.Sessions, len(res.Nodes), len(res.Links))
		})
	}
}

func BenchmarkConversionStats(b *testing.B) {
	benchSetup(b)
	report(b, benchData.sessions, func() {
		if _, err := benchData.svc.ConversionStats(context.Background(), IntentQuery{ProjectID: benchData.project,
			From: benchData.to.AddDate(0, 0, -30), To: benchData.to}); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkPeopleList(b *testing.B) {
	benchSetup(b)
	report(b, 0, func() {
		if _, err := benchData.svc.People(context.Background(), PeopleQuery{ProjectID: benchData.project, Limit: 50}); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkSessionsList is the dashboard's sessions list (its first page,
// as GET /api/v1/sessions answers it) on the 1M-session index, for every
// kind of filter a support or product person uses, alone and combined:
// p95 of 20 runs each, in ms.
func BenchmarkSessionsList(b *testing.B) {
	benchSetup(b)
	ctx := context.Background()
	project := []int64{benchData.project}
	filters := []struct {
		name string
		f    index.SessionFilter
	}{
		{"plain", index.SessionFilter{}},
		{"visitor", index.SessionFilter{Visitor: "visitor0123457"}},
		{"user", index.SessionFilter{Visitor: "user000042"}},
		{"unknown-visitor", index.SessionFilter{Visitor: "nobody"}},
		{"page-prefix", index.SessionFilter{URL: "/checkout"}},
		{"page-prefix-none", index.SessionFilter{URL: "/nothing-here"}},
		{"page-pattern", index.SessionFilter{URL: "*q=shoes*"}},
		{"page-pattern-none", index.SessionFilter{URL: "*no-such-thing*"}},
		{"page-pattern-few", index.SessionFilter{URL: "*product/1999*"}},
		{"device", index.SessionFilter{Device: "tablet"}},
		{"duration", index.SessionFilter{MinDuration: 10 * time.Minute}},
		{"has-conversion", index.SessionFilter{Has: []string{"conversion"}}},
		{"has-rage-none", index.SessionFilter{Has: []string{"rage_click"}}},
		{"last-7-days", index.SessionFilter{From: benchData.to.AddDate(0, 0, -7)}},
		{"device+page+duration", index.SessionFilter{Device: "mobile", URL: "/cart", MinDuration: 2 * time.Minute}},
		{"user+page-none", index.SessionFilter{Visitor: "user000042", URL: "/nothing-here"}},
	}
	for _, tc := range filters {
		b.Run(tc.name, func(b *testing.B) {
			f := tc.f
			f.ProjectIDs, f.Limit = project, 50
			var times []time.Duration
			for i := 0; i < max(20, b.N); i++ {
				start := time.Now()
				if _, _, err := benchData.db.ListSessions(ctx, f); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}

// BenchmarkObserveBatch is the cost the journey observer adds to the
// recorder's apply transaction for a batch with a page view, in a session
// that already has 20 page views and 5 events.
func BenchmarkObserveBatch(b *testing.B) {
	f := newFixture(b)
	var items []item
	for i := range 20 {
		u := fmt.Sprintf("/product/%d", i)
		if i%10 == 0 {
			u = "/search?q=shoes"
		}
		items = append(items, pg(mins(float64(i)), u))
	}
	for i := range 5 {
		items = append(items, ev(mins(float64(i)+0.5), "add_to_cart"))
	}
	s := f.session("obs-visitor", "desktop", at(0, "10:00"), items...)
	events := []json.RawMessage{json.RawMessage(`{"type":4,"data":{"href":"https://shop.test/cart","width":1280,"height":800},"timestamp":1}`)}
	quiet := []json.RawMessage{json.RawMessage(`{"type":3,"data":{"source":1,"positions":[]},"timestamp":1}`)}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		events []rrweb.Event
	}{{"page-view", rrweb.SplitAll(events)}, {"mouse-moves-only", rrweb.SplitAll(quiet)}} {
		b.Run(tc.name, func(b *testing.B) {
			var inObs time.Duration
			for b.Loop() {
				err := f.db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error {
					t0 := time.Now()
					err := f.svc.ObserveBatch(ctx, tx, s.row, tc.events)
					if err == nil {
						err = tx.Flush(ctx) // InSharedTx's flush, timed with the observer
					}
					inObs += time.Since(t0)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(inObs.Microseconds())/float64(b.N), "µs-in-observer/batch")
		})
	}
}
