package heatmap

import (
	"context"
	"database/sql"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/trailmap/trailmap/storage/index"
)

// BenchmarkSegmentMap measures segmented click maps, which read the raw
// rows (not the aggregates) of the sessions in the segment: 5000 sessions
// of one page, half of them on desktop, 20 clicks each (100k clicks), with
// the cache cleared before every map. "device" is a plain column of the
// session; "visits" a per-person subquery, as journey compiles them.
func BenchmarkSegmentMap(b *testing.B) {
	f := newFixture(b, DefaultConfig())
	seedSegment(b, f, 5000, 20)
	ctx := context.Background()
	for _, seg := range []struct {
		name string
		seg  index.Match
	}{
		{"device", index.Match{Field: index.FieldDevice, Op: index.OpEq, Text: []string{"desktop"}}},
		{"visits", index.Match{Field: index.FieldVisits, Op: index.OpGte, Number: 5}},
	} {
		b.Run(seg.name, func(b *testing.B) {
			q := f.query("/seg", "", ModeGrid, 1280)
			q.Segment = &seg.seg
			start, cpu0 := time.Now(), cpuTime()
			var m *ClickMap
			for range b.N {
				f.svc.cache.clear()
				var err error
				if m, err = f.svc.ClickMap(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/map")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/map")
			if m.Clicks == 0 {
				b.Fatal("no clicks in the segment")
			}
		})
	}
}

// cpuTime is the process's CPU time so far: steadier than wall time on a
// busy machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// seedSegment writes sessions of page "/seg", every other one on desktop,
// each with a page view and clicks.
func seedSegment(tb testing.TB, f *fixture, sessions, clicks int) {
	tb.Helper()
	err := f.db.SQL().InTx(context.Background(), func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO heat_pages (project_id, key) VALUES (?, '/seg')`, f.project)
		if err != nil {
			return err
		}
		page, _ := res.LastInsertId()
		day := dayOf(t0)
		for i := range sessions {
			dev := []string{"desktop", "mobile"}[i%2]
			res, err := tx.Exec(`INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, device)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, f.project, fmt.Sprintf("seg%06d", i), fmt.Sprintf("v%d", i%1000), t0, t0, t0, dev)
			if err != nil {
				return err
			}
			sid, _ := res.LastInsertId()
			res, err = tx.Exec(`INSERT INTO heat_pageviews (session_id, page_id, device, day, ts, url, vw, vh, doc_w, doc_h)
				VALUES (?, ?, ?, ?, ?, 'https://shop.test/seg', 1280, 800, 1280, 3000)`, sid, page, dev, day, t0)
			if err != nil {
				return err
			}
			pv, _ := res.LastInsertId()
			for c := range clicks {
				x, y := (i*37+c*101)%1280, (i*53+c*211)%3000
				if _, err := tx.Exec(`INSERT INTO heat_clicks (session_id, pageview_id, page_id, device, day, ts, vx, vy, x, y, wb, node_id)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1280, 1)`, sid, pv, page, dev, day, t0+int64(c), x, y%800, x, y); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}
