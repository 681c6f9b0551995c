package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
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

var errFirstEvent = errors.New("first event")

// firstEventWriter stops the stream at its first event and notes when.
type firstEventWriter struct {
	at  time.Time
	len int
}

func (f *firstEventWriter) WriteEvent(ev []byte) error {
	f.at, f.len = time.Now(), len(ev)
	return errFirstEvent
}

type countEvents struct{ n, bytes int }

func (c *countEvents) WriteEvent(ev []byte) error { c.n++; c.bytes += len(ev); return nil }

// BenchmarkSeek records a 60-minute session (rrwebgen: a page view with a
// full snapshot every 5 minutes, as the recorder's checkouts make, and
// browsing activity in between, in 10-second batches) and compares the
// server's time to the first event when seeking to 57:30 with the time to
// stream the whole session. It reports the ratio (target <= 0.05), both
// times, the segments each reads and the bytes each allocates.
func BenchmarkSeek(b *testing.B) {
	ctx := context.Background()
	db := indextest.New(b, heatmap.Schema, accounts.Schema, journey.Schema)
	dir := b.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	// The recorder runs on a simulated clock that moves 10 s per batch, with
	// a fast sweep, so segments are cut as in a real 60-minute visit: by
	// age (2 minutes) or size, whichever comes first.
	var mu sync.Mutex
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	cfg := recorder.DefaultConfig(dir)
	cfg.RatePerIP, cfg.RatePerKey = 0, 0
	cfg.SegmentMaxBytes = 1 << 20
	cfg.SweepEvery = time.Millisecond
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	rec, err := recorder.New(ctx, cfg, db, blobs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	p, err := db.CreateProject(ctx, "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	const minutes, batchSec, snapEvery = 60, 10, 5 * 60
	g := rrwebgen.New(11, 1_764_000_000_000)
	start := g.TS()
	raw := 0
	for seq := 0; g.TS()-start < minutes*60*1000; seq++ {
		var evs []json.RawMessage
		if seq%(snapEvery/batchSec) == 0 {
			evs = g.Page(1500)
		}
		evs = append(evs, g.Activity(batchSec)...)
		for _, ev := range evs {
			raw += len(ev) + 1
		}
		body, _ := json.Marshal(map[string]any{"session_id": "seek_bench_session", "visitor_id": "visitor_bench", "seq": seq, "events": evs})
		if _, err := rec.Ingest(ctx, recorder.Request{Key: p.WriteKey, Body: bytes.NewReader(body)}); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		now = now.Add(batchSec * time.Second)
		mu.Unlock()
		time.Sleep(3 * time.Millisecond) // a sweep sees the new time
	}
	if err := rec.Close(ctx); err != nil {
		b.Fatal(err)
	}
	sess, err := db.SessionByPublicID(ctx, nil, "seek_bench_session")
	if err != nil {
		b.Fatal(err)
	}
	segs, _ := db.SessionSegments(ctx, sess.RowID)
	st := replay.New(db, blobs, nil)
	seek := replay.Range{FromMS: 57*60*1000 + 30*1000, ToMS: -1}

	alloc := func(f func()) uint64 {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		f()
		runtime.ReadMemStats(&m1)
		return m1.TotalAlloc - m0.TotalAlloc
	}
	const reps = 5
	b.ResetTimer()
	for range b.N {
		var seekTimes, fullTimes []time.Duration
		var seekAlloc, fullAlloc uint64
		var seekSegs, fullSegs int64
		full := &countEvents{}
		for range reps {
			before := st.SegmentsRead()
			seekAlloc += alloc(func() {
				t0 := time.Now()
				fw := &firstEventWriter{}
				if err := st.Stream(ctx, sess, seek, fw); !errors.Is(err, errFirstEvent) {
					b.Fatalf("seek: %v", err)
				}
				seekTimes = append(seekTimes, fw.at.Sub(t0))
			})
			seekSegs = st.SegmentsRead() - before

			before = st.SegmentsRead()
			fullAlloc += alloc(func() {
				t0 := time.Now()
				*full = countEvents{}
				if err := st.Stream(ctx, sess, replay.All, full); err != nil {
					b.Fatal(err)
				}
				fullTimes = append(fullTimes, time.Since(t0))
			})
			fullSegs = st.SegmentsRead() - before
		}
		slices.Sort(seekTimes)
		slices.Sort(fullTimes)
		ttfb, whole := seekTimes[reps/2], fullTimes[reps/2]
		b.ReportMetric(float64(ttfb)/float64(whole), "seek-ttfb/full")
		b.ReportMetric(float64(ttfb.Microseconds())/1000, "seek-ttfb-ms")
		b.ReportMetric(float64(whole.Microseconds())/1000, "full-stream-ms")
		b.ReportMetric(float64(seekSegs), "seek-segments")
		b.ReportMetric(float64(fullSegs), "full-segments")
		b.ReportMetric(float64(seekAlloc/reps)/(1<<20), "seek-alloc-MB")
		b.ReportMetric(float64(fullAlloc/reps)/(1<<20), "full-alloc-MB")
		b.ReportMetric(float64(raw)/(1<<20), "session-raw-MB")
		if len(segs) < 10 || full.n == 0 {
			b.Fatalf("%d segments, %d events: the session is not spread as intended", len(segs), full.n)
		}
	}
}
