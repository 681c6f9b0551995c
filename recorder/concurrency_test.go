package recorder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/server"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// stack is an in-process recorder + server, so the race detector sees the
// whole ingest path.
type stack struct {
	db     *index.DB
	rec    *recorder.Recorder
	stream *replay.Streamer
	reg    *prometheus.Registry // the recorder's metrics
	url    string
	key    string
}

// blobStore is what the stack's recorder and replay need.
type blobStore interface {
	recorder.Blobs
	replay.Blobs
}

func newStack(t testing.TB, mod func(*recorder.Config)) *stack {
	return newStackBlobs(t, mod, nil)
}

// newStackBlobs is newStack with the local blob store wrapped by wrap.
func newStackBlobs(t testing.TB, mod func(*recorder.Config), wrap func(blobStore) blobStore) *stack {
	t.Helper()
	db := indextest.New(t, heatmap.Schema, accounts.Schema, journey.Schema)
	dir := t.TempDir()
	local, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	var blobs blobStore = local
	if wrap != nil {
		blobs = wrap(local)
	}
	cfg := recorder.DefaultConfig(dir)
	cfg.RatePerIP, cfg.RatePerKey = 0, 0
	cfg.SweepEvery = 20 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	rec, err := recorder.New(context.Background(), cfg, db, blobs, reg, logger)
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.CreateProject(context.Background(), "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	stream := replay.New(db, blobs, rec)
	srv := server.New(server.Config{Addr: "127.0.0.1:0"}, server.Deps{Index: db, Recorder: rec, Replay: stream, Logger: logger})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := rec.Close(context.Background()); err != nil {
			t.Errorf("close recorder: %v", err)
		}
	})
	return &stack{db: db, rec: rec, stream: stream, reg: reg, url: hs.URL, key: p.WriteKey}
}

func (s *stack) post(t testing.TB, session string, seq int, events string) (int, map[string]any) {
	body := fmt.Sprintf(`{"session_id":%q,"visitor_id":"visitor_concurrent","seq":%d,"events":[%s]}`, session, seq, events)
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/ingest", bytes.NewBufferString(body))
	req.Header.Set("X-Trailmap-Key", s.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestRecorder_ConcurrentSessions posts hundreds of sessions in parallel,
// each batch twice (a retry racing the original), with segment flushes
// running, and checks every session back event for event.
func TestRecorder_ConcurrentSessions(t *testing.T) {
	s := newStack(t, func(c *recorder.Config) { c.SegmentMaxAge = 30 * time.Millisecond })
	const sessions, batches = 300, 4
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess := fmt.Sprintf("concurrent_%04d", i)
			for seq := range batches {
				ev := fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"n","payload":{"seq":%d}}},{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":1,"x":1,"y":2}}`, 1000+seq, seq, 1001+seq)
				var inner sync.WaitGroup
				for range 2 {
					inner.Add(1)
					sem <- struct{}{}
					go func() {
						defer inner.Done()
						defer func() { <-sem }()
						if code, body := s.post(t, sess, seq, ev); code != http.StatusAccepted {
							t.Errorf("%s seq %d: %d %v", sess, seq, code, body)
						}
					}()
				}
				inner.Wait()
			}
		}()
	}
	wg.Wait()

	ctx := context.Background()
	if err := s.rec.CaughtUp(ctx); err != nil { // the index lags a 202
		t.Fatal(err)
	}
	for i := range sessions {
		sess, err := s.db.SessionByPublicID(ctx, nil, fmt.Sprintf("concurrent_%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		if sess.Events != 2*batches || sess.Clicks != batches {
			t.Fatalf("%s: %d events %d clicks, want %d and %d", sess.ID, sess.Events, sess.Clicks, 2*batches, batches)
		}
		var got collect
		if err := s.stream.Stream(ctx, sess, replay.All, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.events) != 2*batches {
			t.Fatalf("%s: streamed %d events, want %d", sess.ID, len(got.events), 2*batches)
		}
		for j := range batches {
			var ev struct {
				Timestamp int64 `json:"timestamp"`
			}
			json.Unmarshal(got.events[2*j], &ev)
			if ev.Timestamp != int64(1000+j) {
				t.Fatalf("%s: event %d has timestamp %d, want %d (order)", sess.ID, 2*j, ev.Timestamp, 1000+j)
			}
		}
	}
}

type collect struct{ events [][]byte }

func (c *collect) WriteEvent(ev []byte) error {
	c.events = append(c.events, append([]byte(nil), ev...))
	return nil
}
