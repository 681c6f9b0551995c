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
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

type collect struct{ events []json.RawMessage }

func (c *collect) WriteEvent(ev []byte) error {
	c.events = append(c.events, append(json.RawMessage(nil), ev...))
	return nil
}

type head struct {
	Type int   `json:"type"`
	TS   int64 `json:"timestamp"`
	Data struct {
		Payload struct {
			N int `json:"n"`
		} `json:"payload"`
	} `json:"data"`
}

func heads(t *testing.T, evs []json.RawMessage) []head {
	out := make([]head, len(evs))
	for i, e := range evs {
		if err := json.Unmarshal(e, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// record stores a 10-minute session: a page (Meta + full snapshot) every
// minute and a numbered custom event every second, one batch per 10 s, each
// batch its own segment. (Live, unflushed batches are covered end to end in
// cmd/trailmap: TestConformance and TestSessionsAPI.)
func record(t *testing.T) (*index.DB, *replay.Streamer, *index.Session, int) {
	t.Helper()
	ctx := context.Background()
	db := indextest.New(t, heatmap.Schema, accounts.Schema, journey.Schema)
	dir := t.TempDir()
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := recorder.DefaultConfig(dir)
	cfg.RatePerIP, cfg.RatePerKey = 0, 0
	cfg.SegmentMaxAge = time.Millisecond // every batch is flushed at the next sweep
	cfg.SweepEvery = 10 * time.Millisecond
	rec, err := recorder.New(ctx, cfg, db, blobs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	p, _ := db.CreateProject(ctx, "test", time.Now())
	const start = 1_764_000_000_000
	n, sent := 0, 0
	// send ingests one batch and waits until it is in a segment, so each
	// batch becomes a segment of its own.
	send := func(seq int, evs []string) {
		body := fmt.Sprintf(`{"session_id":"replay_session","visitor_id":"replay_visitor","seq":%d,"events":[%s]}`, seq, join(evs))
		if _, err := rec.Ingest(ctx, recorder.Request{Key: p.WriteKey, Body: bytes.NewBufferString(body)}); err != nil {
			t.Fatal(err)
		}
		sent += len(evs)
		deadline := time.Now().Add(20 * time.Second)
		for {
			var stored int
			db.SQL().Read().QueryRow(`SELECT COALESCE(SUM(events), 0) FROM segments WHERE state = 'done'`).Scan(&stored)
			if stored == sent {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d events stored", stored, sent)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for seq := range 60 {
		var evs []string
		for s := range 10 {
			ts := start + int64(seq*10+s)*1000
			if (seq*10+s)%60 == 0 {
				evs = append(evs,
					fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://x.example/p%d","width":1000,"height":700}}`, ts, seq),
					fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[]},"initialOffset":{"top":0,"left":0}}}`, ts))
			}
			evs = append(evs, fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"n","payload":{"n":%d}}}`, ts, n))
			n++
		}
		send(seq, evs)
	}
	sess, err := db.SessionByPublicID(ctx, nil, "replay_session")
	if err != nil {
		t.Fatal(err)
	}
	return db, replay.New(db, blobs, rec), sess, n
}

func join(xs []string) string {
	var b bytes.Buffer
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

func TestStreamer_Ranges(t *testing.T) {
	db, st, sess, n := record(t)
	var segs int
	db.SQL().Read().QueryRow(`SELECT COUNT(*) FROM segments`).Scan(&segs)
	if segs < 30 {
		t.Fatalf("only %d segments; the test needs many", segs)
	}
	ctx := context.Background()
	tests := []struct {
		name         string
		rg           replay.Range
		firstN       int // payload n of the first custom event
		lastN        int
		maxSegments  int64
		startsAtPage bool
	}{
		{"whole session", replay.All, 0, n - 1, int64(segs), true},
		{"seek near the end starts at the last page", replay.Range{FromMS: 595_000, ToMS: -1}, 540, n - 1, 7, true},
		{"seek into the middle", replay.Range{FromMS: 250_000, ToMS: -1}, 240, n - 1, int64(segs), true},
		{"clip", replay.Range{FromMS: 130_000, ToMS: 150_000}, 120, 150, 4, true},
		// A share's or an export's clip: the page at 120 s draws its first
		// frame, the custom events of 120–129 s stay out.
		{"trimmed clip", replay.Range{FromMS: 130_000, ToMS: 150_000, Trim: true}, 130, 150, 4, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := st.SegmentsRead()
			var c collect
			if err := st.Stream(ctx, sess, tc.rg, &c); err != nil {
				t.Fatal(err)
			}
			read := st.SegmentsRead() - before
			hs := heads(t, c.events)
			if tc.startsAtPage && (hs[0].Type != 4 || hs[1].Type != 2) {
				t.Fatalf("starts with types %d, %d; want Meta then full snapshot", hs[0].Type, hs[1].Type)
			}
			var ns []int
			for _, h := range hs {
				if h.Type == 5 {
					ns = append(ns, h.Data.Payload.N)
				}
			}
			if ns[0] != tc.firstN || ns[len(ns)-1] != tc.lastN {
				t.Fatalf("custom events %d..%d, want %d..%d", ns[0], ns[len(ns)-1], tc.firstN, tc.lastN)
			}
			for i := 1; i < len(ns); i++ {
				if ns[i] != ns[i-1]+1 {
					t.Fatalf("event %d follows %d: order or gap", ns[i], ns[i-1])
				}
			}
			if tc.rg.ToMS >= 0 {
				for _, h := range hs {
					if h.TS > sess.StartedAt.UnixMilli()+tc.rg.ToMS {
						t.Fatalf("event at %d past the end of the range", h.TS)
					}
				}
			}
			if read > tc.maxSegments {
				t.Fatalf("read %d segments, want at most %d", read, tc.maxSegments)
			}
		})
	}
}
