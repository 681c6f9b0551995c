package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Two nodes (recorders with their own write-ahead logs) on one index and
// one bucket take turns with the batches of one session, as behind a
// round-robin balancer: their segments' seq ranges overlap, and replay
// reads them together in seq order — whole, from a snapshot in the middle,
// and while one node still holds its batches in memory.
func TestStreamer_SegmentsOfSeveralNodes(t *testing.T) {
	indextest.EachWith(t, func(sqldb.Dialect) []sqldb.Schema {
		return []sqldb.Schema{heatmap.Schema, accounts.Schema, journey.Schema}
	}, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		blobs, err := fs.New(filepath.Join(dir, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		node := func(name string, maxAge time.Duration) *recorder.Recorder {
			cfg := recorder.DefaultConfig(filepath.Join(dir, name))
			cfg.RatePerIP, cfg.RatePerKey = 0, 0
			cfg.SegmentMaxAge = maxAge
			cfg.SweepEvery = 10 * time.Millisecond
			rec, err := recorder.New(ctx, cfg, db, blobs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rec.Close(context.Background()) })
			return rec
		}
		// a stores its batches at once; b keeps them in memory for now.
		a, b := node("a", time.Millisecond), node("b", time.Hour)
		p, _ := db.CreateProject(ctx, "test", time.Now())
		const start = 1_764_000_000_000
		n := 0
		for seq := range 40 {
			var evs []string
			for k := range 5 {
				ts := start + int64(seq*5+k)*1000
				if (seq*5+k)%50 == 0 {
					evs = append(evs,
						fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://x.example/p%d","width":1000,"height":700}}`, ts, seq),
						fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[]},"initialOffset":{"top":0,"left":0}}}`, ts))
				}
				evs = append(evs, fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"n","payload":{"n":%d}}}`, ts, n))
				n++
			}
			rec := a
			if seq%2 == 1 {
				rec = b
			}
			body := fmt.Sprintf(`{"session_id":"nodes_session","visitor_id":"nodes_visitor","seq":%d,"events":[%s]}`, seq, join(evs))
			if _, err := rec.Ingest(ctx, recorder.Request{Key: p.WriteKey, Body: bytes.NewBufferString(body)}); err != nil {
				t.Fatal(err)
			}
		}
		// The index lags a 202: both nodes' batches in it, or the row may
		// start at b's seq 1 (CI read it so once under load).
		for _, r := range []*recorder.Recorder{a, b} {
			if err := r.CaughtUp(ctx); err != nil {
				t.Fatal(err)
			}
		}
		sess, err := db.SessionByPublicID(ctx, nil, "nodes_session")
		if err != nil {
			t.Fatal(err)
		}
		// counters returns the n of every custom event streamed, in order.
		counters := func(st *replay.Streamer, rg replay.Range) []int {
			t.Helper()
			var c collect
			if err := st.Stream(ctx, sess, rg, &c); err != nil {
				t.Fatal(err)
			}
			var out []int
			for _, ev := range c.events {
				var e struct {
					Type int `json:"type"`
					Data struct {
						Payload struct {
							N int `json:"n"`
						} `json:"payload"`
					} `json:"data"`
				}
				json.Unmarshal(ev, &e)
				if e.Type == 5 {
					out = append(out, e.Data.Payload.N)
				}
			}
			return out
		}
		inOrder := func(what string, got []int, first int) {
			t.Helper()
			if len(got) != n-first {
				t.Fatalf("%s: %d events, want %d", what, len(got), n-first)
			}
			for i, v := range got {
				if v != first+i {
					t.Fatalf("%s: event %d is n=%d, want %d (out of order)", what, i, v, first+i)
				}
			}
		}
		// Wait until a's batches are all in segments.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			seqs, _ := a.Unflushed(p.ID, "nodes_session")
			if len(seqs) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("node a did not store its batches")
			}
		}
		// Node b reads: a's segments and its own live batches, merged.
		inOrder("a's segments and b's live batches", counters(replay.New(db, blobs, b), replay.All), 0)
		// From the snapshot at 100 s (n=100), through the merge.
		inOrder("from 120 s", counters(replay.New(db, blobs, b), replay.Range{FromMS: 120_000, ToMS: -1}), 100)

		// b stores its batches: two nodes' segments with overlapping seqs.
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
		segs, _ := db.SessionSegments(ctx, sess.RowID)
		overlap := false
		for i := range segs {
			for j := range i {
				overlap = overlap || (segs[i].FirstSeq <= segs[j].LastSeq && segs[j].FirstSeq <= segs[i].LastSeq)
			}
		}
		if !overlap {
			t.Fatalf("no segments overlap: %+v", segs)
		}
		st := replay.New(db, blobs, nil)
		inOrder("segments of two nodes", counters(st, replay.All), 0)
		inOrder("from 120 s", counters(st, replay.Range{FromMS: 120_000, ToMS: -1}), 100)
		if got := counters(st, replay.Range{FromMS: 0, ToMS: 99_000}); len(got) != 100 || got[99] != 99 {
			t.Errorf("to 99 s: %d events, last %v", len(got), got[len(got)-1:])
		}
	})
}
