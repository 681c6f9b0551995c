package recorder

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/rrwebgen"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// BenchmarkStorage records 10 visitors for 10 minutes each (a 5 s batch at a
// time, a new page every 2 minutes) on a simulated clock with the default
// segment settings, and reports stored bytes per recorded session-minute
// against the raw JSON and against gzip -6 of the same events, and object
// PUTs per session-minute.
func BenchmarkStorage(b *testing.B) {
	const visitors, minutes, batchSec = 10, 10, 5
	for range b.N {
		db := indextest.New(b, heatmap.Schema, accounts.Schema, journey.Schema)
		dir := b.TempDir()
		blobs, err := fs.New(filepath.Join(dir, "blobs"))
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
		cfg := DefaultConfig(dir)
		cfg.RatePerIP, cfg.RatePerKey = 0, 0
		cfg.SweepEvery = time.Hour // flushes are driven below, on the simulated clock
		cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		ctx := context.Background()
		r, err := New(ctx, cfg, db, blobs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		p, err := db.CreateProject(ctx, "bench", now)
		if err != nil {
			b.Fatal(err)
		}
		gens := make([]*rrwebgen.Gen, visitors)
		ndjson := make([]bytes.Buffer, visitors)
		for i := range gens {
			gens[i] = rrwebgen.New(uint64(i+1), now.UnixMilli())
		}
		var raw int64
		b.ResetTimer()
		for tick := range minutes * 60 / batchSec {
			for i, g := range gens {
				var evs []json.RawMessage
				if tick%(120/batchSec) == 0 {
					evs = g.Page(2000)
				}
				evs = append(evs, g.Activity(batchSec)...)
				body, _ := json.Marshal(map[string]any{"session_id": sessionName(i), "visitor_id": "visitor_bench", "seq": tick, "events": evs})
				if _, err := r.Ingest(ctx, Request{Key: p.WriteKey, Body: bytes.NewReader(body)}); err != nil {
					b.Fatal(err)
				}
				for _, ev := range evs {
					ndjson[i].Write(ev)
					ndjson[i].WriteByte('\n')
					raw += int64(len(ev)) + 1
				}
			}
			mu.Lock()
			now = now.Add(batchSec * time.Second)
			mu.Unlock()
			if err := r.flushAll(ctx, false); err != nil {
				b.Fatal(err)
			}
		}
		if err := r.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var stored, puts int64
		if err := db.SQL().Read().QueryRow(`SELECT COALESCE(SUM(stored_bytes), 0), COUNT(*) FROM segments WHERE state = 'done'`).Scan(&stored, &puts); err != nil {
			b.Fatal(err)
		}
		var gz int64
		for i := range ndjson {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, 6)
			zw.Write(ndjson[i].Bytes())
			zw.Close()
			gz += int64(buf.Len())
		}
		sessionMinutes := float64(visitors * minutes)
		b.ReportMetric(float64(stored)/sessionMinutes, "stored-B/session-min")
		b.ReportMetric(float64(raw)/sessionMinutes, "raw-B/session-min")
		b.ReportMetric(float64(stored)/float64(raw), "stored/raw")
		b.ReportMetric(float64(stored)/float64(gz), "stored/gzip6")
		b.ReportMetric(float64(puts)/sessionMinutes, "PUTs/session-min")
	}
}

func sessionName(i int) string {
	return "bench_session_" + string(rune('a'+i/26)) + string(rune('a'+i%26))
}

// BenchmarkStorageRecording stores the real 81 s recording among the shared
// rrweb fixtures (player-demo-recording.json) as one session, in 5 s
// batches, and reports bytes stored per recorded minute against its raw
// JSON and gzip -6.
func BenchmarkStorageRecording(b *testing.B) {
	raw, err := os.ReadFile("../../shared/testdata/rrweb-fixtures/player-demo-recording.json")
	if err != nil {
		b.Fatalf("fixture: %v", err)
	}
	var evs []json.RawMessage
	if err := json.Unmarshal(raw, &evs); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		db := indextest.New(b, heatmap.Schema, accounts.Schema, journey.Schema)
		dir := b.TempDir()
		blobs, err := fs.New(filepath.Join(dir, "blobs"))
		if err != nil {
			b.Fatal(err)
		}
		cfg := DefaultConfig(dir)
		cfg.RatePerIP, cfg.RatePerKey = 0, 0
		ctx := context.Background()
		r, err := New(ctx, cfg, db, blobs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		p, _ := db.CreateProject(ctx, "bench", time.Now())
		var nd bytes.Buffer
		var first, last int64
		var batch []json.RawMessage
		seq := 0
		send := func() {
			body, _ := json.Marshal(map[string]any{"session_id": "recording_bench", "visitor_id": "visitor_bench", "seq": seq, "events": batch})
			if _, err := r.Ingest(ctx, Request{Key: p.WriteKey, Body: bytes.NewReader(body)}); err != nil {
				b.Fatal(err)
			}
			seq++
			batch = nil
		}
		var batchStart int64
		for i, ev := range evs {
			_, ts, _ := EventInfo(ev)
			if i == 0 {
				first, batchStart = ts, ts
			}
			last = max(last, ts)
			if ts-batchStart >= 5000 && len(batch) > 0 {
				send()
				batchStart = ts
			}
			var c bytes.Buffer
			json.Compact(&c, ev)
			nd.Write(c.Bytes())
			nd.WriteByte('\n')
			batch = append(batch, ev)
		}
		send()
		if err := r.Close(ctx); err != nil {
			b.Fatal(err)
		}
		var stored, puts int64
		db.SQL().Read().QueryRow(`SELECT SUM(stored_bytes), COUNT(*) FROM segments`).Scan(&stored, &puts)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, 6)
		zw.Write(nd.Bytes())
		zw.Close()
		minutes := float64(last-first) / 60000
		b.ReportMetric(float64(stored)/minutes, "stored-B/min")
		b.ReportMetric(float64(nd.Len())/minutes, "raw-B/min")
		b.ReportMetric(float64(stored)/float64(nd.Len()), "stored/raw")
		b.ReportMetric(float64(stored)/float64(gz.Len()), "stored/gzip6")
		b.ReportMetric(float64(puts)/minutes, "PUTs/session-min")
	}
}
