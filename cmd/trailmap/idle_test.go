package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

// TestSessions_EndWhenIdle checks that a session that goes quiet for the idle
// timeout ends: it is no longer live and its events are stored as a segment,
// while the server keeps running.
func TestSessions_EndWhenIdle(t *testing.T) {
	s := servertest.Start(t, "--session-idle", "1s", "--segment-max-age", "1h")
	evs := fixtures(t)["example.json"]
	if a := post(t, s.URL, s.WriteKey, "", batchBody(t, "idle_session_01", "visitor_idle", 0, evs)); a.Status != http.StatusAccepted {
		t.Fatalf("%d %v", a.Status, a.Body)
	}
	var meta struct {
		Live bool `json:"live"`
	}
	s.GetJSON(t, "/api/v1/sessions/idle_session_01", &meta)
	if !meta.Live {
		t.Fatal("a session that just received events is not live")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.GetJSON(t, "/api/v1/sessions/idle_session_01", &meta)
		segs, _ := filepath.Glob(filepath.Join(s.DataDir, "blobs", "*", "sessions", "*", "*", "*", "idle_session_01", "*.zst"))
		if !meta.Live && len(segs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: live=%v, %d segments", meta.Live, len(segs))
		}
		time.Sleep(100 * time.Millisecond)
	}
	sameEvents(t, events(t, s, "idle_session_01", ""), evs)
	// The write-ahead log has nothing left to keep.
	wal, _ := os.ReadDir(filepath.Join(s.DataDir, "wal"))
	for _, f := range wal {
		if info, _ := f.Info(); info != nil && info.Size() > 0 {
			t.Errorf("wal file %s still holds %d bytes after the session was stored", f.Name(), info.Size())
		}
	}
}
