package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/rrwebgen"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// BenchmarkStreamSession records one long session (500 MB of raw events by
// default; TRAILMAP_BENCH_STREAM_MB changes it), then streams it back and
// reports MB/s and the peak heap above idle while streaming.
func BenchmarkStreamSession(b *testing.B) {
	target := int64(500)
	if v, err := strconv.ParseInt(os.Getenv("TRAILMAP_BENCH_STREAM_MB"), 10, 64); err == nil && v > 0 {
		target = v
	}
	target <<= 20
	ctx := context.Background()
	db := indextest.New(b, heatmap.Schema, accounts.Schema, journey.Schema)
	dir := b.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := recorder.DefaultConfig(dir)
	cfg.RatePerIP, cfg.RatePerKey = 0, 0
	rec, err := recorder.New(ctx, cfg, db, blobs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	p, err := db.CreateProject(ctx, "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	g := rrwebgen.New(7, 1_764_000_000_000)
	var raw int64
	for seq := 0; raw < target; seq++ {
		var evs []json.RawMessage
		if seq%20 == 0 {
			evs = g.Page(2000)
		}
		evs = append(evs, g.Activity(300)...)
		for _, ev := range evs {
			raw += int64(len(ev)) + 1
		}
		body, _ := json.Marshal(map[string]any{"session_id": "stream_bench_session", "visitor_id": "visitor_bench", "seq": seq, "events": evs})
		if _, err := rec.Ingest(ctx, recorder.Request{Key: p.WriteKey, Body: bytes.NewReader(body)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := rec.Close(ctx); err != nil {
		b.Fatal(err)
	}
	sess, err := db.SessionByPublicID(ctx, nil, "stream_bench_session")
	if err != nil {
		b.Fatal(err)
	}
	st := replay.New(db, blobs, nil)
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		idle := ms.HeapInuse
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
				}
			}
		}()
		start := time.Now()
		cw := &countWriter{}
		aw := &replay.ArrayWriter{W: cw}
		if err := st.Stream(ctx, sess, replay.All, aw); err != nil {
			b.Fatal(err)
		}
		aw.Close()
		el := time.Since(start)
		close(stop)
		wg.Wait()
		if cw.n < raw-int64(aw.Count) {
			b.Fatalf("streamed %d bytes of %d", cw.n, raw)
		}
		b.ReportMetric(float64(cw.n)/el.Seconds()/1e6, "MB/s")
		above := float64(0)
		if pk := peak.Load(); pk > idle {
			above = float64(pk-idle) / (1 << 20)
		}
		b.ReportMetric(above, "peak-heap-MB-above-idle")
		b.ReportMetric(float64(raw)/(1<<20), "session-raw-MB")
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
