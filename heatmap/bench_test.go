package heatmap

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Render benchmarks: a 1280×6000 desktop click map of one page over three
// calendar months (Sep–Nov 2025), from 1 and 10 million clicks. The setup
// (not timed) spreads the clicks like real pages get them (85% around 60
// hot spots, 15% anywhere) and writes the day and month aggregates the
// observer would have written. "cold" renders with an empty cache (read
// the aggregates, bin, smooth, paint, encode); "cached" is a repeat view;
// "cold-days" covers 30 days across a month boundary, which reads day rows.
func BenchmarkRender1M(b *testing.B)  { benchRender(b, 1_000_000) }
func BenchmarkRender10M(b *testing.B) { benchRender(b, 10_000_000) }

var (
	benchFrom = time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	benchTo   = time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
)

func benchRender(b *testing.B, clicks int) {
	f := newFixture(b, DefaultConfig())
	dayRows, monthRows := seedGrid(b, f, clicks)
	b.Logf("%d clicks: %d day rows, %d month rows", clicks, dayRows, monthRows)
	q := Query{ProjectID: f.project, URL: "/bench", Device: "desktop", From: benchFrom, To: benchTo, Width: 1280, Height: 6000}
	ctx := context.Background()
	run := func(b *testing.B, q Query, cold bool) {
		if !cold {
			if _, err := f.svc.ClickPNG(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		alloc := ms.TotalAlloc
		b.ResetTimer()
		start := time.Now()
		var size int
		for range b.N {
			if cold {
				f.svc.cache.clear()
			}
			png, err := f.svc.ClickPNG(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			size = len(png)
		}
		el := time.Since(start)
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(el.Microseconds())/1000/float64(b.N), "ms/map")
		b.ReportMetric(float64(ms.TotalAlloc-alloc)/float64(b.N)/(1<<20), "MB-alloc/map")
		b.ReportMetric(float64(size)/1024, "KB-png")
	}
	b.Run("cold", func(b *testing.B) { run(b, q, true) })
	b.Run("cached", func(b *testing.B) { run(b, q, false) })
	days := q
	days.From, days.To = time.Date(2025, 10, 16, 0, 0, 0, 0, time.UTC), time.Date(2025, 11, 15, 0, 0, 0, 0, time.UTC)
	b.Run("cold-days", func(b *testing.B) { run(b, days, true) })
}

// seedGrid writes the aggregates of n synthetic clicks on page "/bench".
func seedGrid(b *testing.B, f *fixture, n int) (dayRows, monthRows int) {
	b.Helper()
	const w, h = 1280, 6000
	gw, gh := w/CellPx, h/CellPx
	d0 := dayOf(benchFrom.UnixMilli())
	days := int(dayOf(benchTo.UnixMilli()) - d0)
	r := rand.New(rand.NewPCG(7, 11))
	type spot struct{ x, y, s, weight float64 }
	spots := make([]spot, 60)
	var total float64
	for i := range spots {
		spots[i] = spot{r.Float64() * w, r.Float64() * h, 8 + r.Float64()*40, math.Pow(r.Float64(), 3)}
		total += spots[i].weight
	}
	cum := make([]float64, len(spots))
	acc := 0.0
	for i, s := range spots {
		acc += s.weight / total
		cum[i] = acc
	}
	counts := make([]int32, days*gw*gh)
	for range n {
		var x, y float64
		if r.Float64() < 0.85 {
			u := r.Float64()
			k := 0
			for k < len(cum)-1 && cum[k] < u {
				k++
			}
			s := spots[k]
			x, y = s.x+r.NormFloat64()*s.s, s.y+r.NormFloat64()*s.s
		} else {
			x, y = r.Float64()*w, r.Float64()*h
		}
		if x < 0 || y < 0 || x >= w || y >= h {
			continue
		}
		day := r.IntN(days)
		counts[(day*gh+int(y)/CellPx)*gw+int(x)/CellPx]++
	}
	ctx := context.Background()
	err := f.db.SQL().InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO heat_pages (project_id, key) VALUES (?, '/bench')`, f.project)
		if err != nil {
			return err
		}
		page, _ := res.LastInsertId()
		dst, err := tx.Prepare(`INSERT INTO heat_grid_day (page_id, device, day, wb, cy, cells) VALUES (?, 'desktop', ?, 1280, ?, ?)`)
		if err != nil {
			return err
		}
		defer dst.Close()
		mst, err := tx.Prepare(`INSERT INTO heat_grid_month (page_id, device, month, wb, cy, cells) VALUES (?, 'desktop', ?, 1280, ?, ?)`)
		if err != nil {
			return err
		}
		defer mst.Close()
		months := map[[2]int64]cells{}
		for day := range days {
			dn := d0 + int64(day)
			m := monthOf(dayStart(dn))
			for cy := range gh {
				row := cells{}
				mrow := months[[2]int64{m, int64(cy)}]
				if mrow == nil {
					mrow = cells{}
					months[[2]int64{m, int64(cy)}] = mrow
				}
				for cx := range gw {
					if c := counts[(day*gh+cy)*gw+cx]; c > 0 {
						row[cx] = int64(c)
						mrow[cx] += int64(c)
					}
				}
				if len(row) == 0 {
					continue
				}
				if _, err := dst.Exec(page, dn, cy, encodeCells(row)); err != nil {
					return err
				}
				dayRows++
			}
		}
		for k, c := range months {
			if len(c) == 0 {
				continue
			}
			if _, err := mst.Exec(page, k[0], k[1], encodeCells(c)); err != nil {
				return err
			}
			monthRows++
		}
		_, err = tx.Exec(`INSERT INTO heat_page_day (page_id, device, day, pageviews, clicks) VALUES (?, 'desktop', ?, ?, ?)`, page, d0, n/5, n)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return dayRows, monthRows
}

// BenchmarkObserve measures the observer on the ingest path, per event,
// with the index writes: a synthetic session (a 3000-node page, then
// mutations, mouse moves, scrolls, inputs and clicks with their boxes in
// batches of 50) and the real player demo recording.
func BenchmarkObserve(b *testing.B) {
	synthetic := syntheticSession(2000)
	demo := loadFixture(b, "player-demo-recording.json")
	for _, c := range []struct {
		name   string
		events []json.RawMessage
	}{{"synthetic", synthetic}, {"player-demo", demo}} {
		b.Run(c.name, func(b *testing.B) {
			f := newFixture(b, DefaultConfig())
			var bytes int64
			for _, e := range c.events {
				bytes += int64(len(e))
			}
			split := rrweb.SplitAll(c.events) // the recorder does this on the request's goroutine
			ctx := context.Background()
			var inObserver time.Duration // the observer's share, without the harness's transactions
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				sid := f.session(fmt.Sprintf("bench%08d", i), "desktop", 1_764_000_000_000)
				b.StartTimer()
				for j := 0; j < len(c.events); j += 50 {
					err := f.db.SQL().InTx(ctx, func(tx *sql.Tx) error {
						if _, err := tx.Exec(countObserved, sid); err != nil {
							return err
						}
						start := time.Now()
						stx := sqldb.WrapTx(tx)
						err := f.svc.ObserveBatch(ctx, stx, sid, split[j:min(j+50, len(split))])
						if err == nil {
							err = stx.Flush(ctx)
						}
						inObserver += time.Since(start)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(inObserver.Nanoseconds())/float64(b.N*len(c.events)), "ns/event")
			b.ReportMetric(float64(bytes*int64(b.N))/inObserver.Seconds()/(1<<20), "MB/s")
		})
	}
}

// BenchmarkTracker is the observer's CPU cost alone (parsing, mirror,
// placement, signals), without the index; the event envelopes are read
// beforehand, as the recorder does on the request's goroutine.
func BenchmarkTracker(b *testing.B) {
	raw := syntheticSession(2000)
	var bytes int64
	for _, e := range raw {
		bytes += int64(len(e))
	}
	events := rrweb.SplitAll(raw)
	set := DefaultSettings()
	// In batches of 50 events; checkpointed: a checkpoint before each, as
	// the service takes one per session and transaction (a batch each here).
	for _, checkpoints := range []bool{false, true} {
		name := "plain"
		if checkpoints {
			name = "checkpointed"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				tr := newTracker(&set, 50000)
				for j := 0; j < len(events); j += 50 {
					if checkpoints {
						tr.checkpoint()
					}
					if err := tr.observe(events[j:min(j+50, len(events))], &memSink{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
			b.ReportMetric(float64(bytes*int64(b.N))/b.Elapsed().Seconds()/(1<<20), "MB/s")
		})
	}
}

// syntheticSession is a page of about 3000 nodes and n events after it.
func syntheticSession(n int) []json.RawMessage {
	r := rand.New(rand.NewPCG(3, 5))
	var sb strings.Builder
	id := 10
	var ids []int
	var build func(depth int)
	build = func(depth int) {
		kids := 0
		if depth < 6 {
			kids = 3 + r.IntN(2)
		}
		for k := range kids {
			id++
			me := id
			ids = append(ids, me)
			if k > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"type":2,"tagName":"div","attributes":{"class":"c%d x-%d","style":"color: red; margin: 0 auto"},"childNodes":[`, depth, k)
			id++
			fmt.Fprintf(&sb, `{"type":3,"textContent":"Some text of node %d","id":%d}`, me, id)
			if kids > 0 {
				sb.WriteByte(',')
				build(depth + 1)
			}
			fmt.Fprintf(&sb, `],"id":%d}`, me)
		}
	}
	sb.WriteString(`{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[{"type":2,"id":3,"tagName":"body","attributes":{},"childNodes":[`)
	build(0)
	sb.WriteString(`]}]}]}`)
	const t0 = 1_764_000_000_000
	out := []json.RawMessage{evLoadE(t0), evMetaE(t0, "https://bench.test/page", 1280, 800), evFull(t0+1, sb.String(), 0, 0), evDoc(t0+2, 1280, 6000)}
	ts := int64(t0 + 10)
	next := id + 1
	for i := 0; i < n; i++ {
		ts += int64(20 + r.IntN(200))
		target := ids[r.IntN(len(ids))]
		switch k := r.IntN(20); {
		case k < 8:
			out = append(out, ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":1,"positions":[{"x":%d,"y":%d,"id":%d,"timeOffset":-40},{"x":%d,"y":%d,"id":%d,"timeOffset":0}]}`,
				r.IntN(1280), r.IntN(800), target, r.IntN(1280), r.IntN(800), target)))
		case k < 12:
			out = append(out, ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":0,"texts":[{"id":%d,"value":"new text %d"}],"attributes":[{"id":%d,"attributes":{"class":"c1 open"}}],"removes":[],"adds":[{"parentId":%d,"nextId":null,"node":{"type":2,"tagName":"span","attributes":{"class":"badge"},"childNodes":[],"id":%d}}]}`,
				target+1, i, target, target, next)))
			next++
		case k < 15:
			out = append(out, evScroll(ts, 1, 0, float64(r.IntN(5000))))
		case k < 17:
			out = append(out, evInput(ts, target, "hello"))
		default:
			x, y := float64(r.IntN(1280)), float64(r.IntN(800))
			out = append(out, evClicks(ts, target, x, y)...)
			out = append(out, evClickBox(ts+1, target, x, y, box{X: x - 10, Y: y - 10, W: 100, H: 30}))
		}
	}
	return out
}
