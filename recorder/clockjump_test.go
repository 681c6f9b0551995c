package recorder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/replay"
)

// jumpClock is a wall clock a test sets, jumping back and forth.
type jumpClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *jumpClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRecorder_ClockJumps moves the server's clock back and forth between
// batches (an NTP step, a VM restored from a snapshot) and sends events
// whose own timestamps jump too (a browser's clock is anyone's): no
// segment is flushed and no session closed before its time has come by the
// clock, durations are never negative, and every accepted batch is stored
// once, in seq order. A jump forward past the idle timeout ends a session,
// as that much time passing would; later batches are still recorded.
func TestRecorder_ClockJumps(t *testing.T) {
	clock := &jumpClock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	s := newStack(t, func(c *recorder.Config) {
		c.Now = clock.Now
		c.SessionIdle = 30 * time.Minute
		c.SegmentMaxAge = 2 * time.Minute
	})
	ctx := context.Background()
	// Event timestamps of batch seq: they go back and forth as well.
	tsOf := []int64{1_700_000_100_000, 1_700_000_000_000, 1_700_003_600_000, 1_699_990_000_000, 1_700_000_050_000}
	post := func(session string, seq int) {
		t.Helper()
		ts := tsOf[seq%len(tsOf)]
		evs := fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"seq","payload":{"seq":%d}}},{"type":5,"timestamp":%d,"data":{"tag":"seq","payload":{"seq":%d}}}`,
			ts, seq, ts-5000, seq) // backwards inside the batch too
		if code, body := s.post(t, session, seq, evs); code != http.StatusAccepted {
			t.Fatalf("%s seq %d: %d %v", session, seq, code, body)
		}
	}
	segments := func(session string) int {
		t.Helper()
		sess, err := s.db.SessionByPublicID(ctx, nil, session)
		if err != nil {
			t.Fatal(err)
		}
		segs, err := s.db.SessionSegments(ctx, sess.RowID)
		if err != nil {
			t.Fatal(err)
		}
		return len(segs)
	}
	// check waits up to 10 s for the session's stored segments and
	// liveness, then checks its duration and events.
	check := func(session string, batches, wantSegs int, wantLive bool) {
		t.Helper()
		if err := s.rec.CaughtUp(ctx); err != nil { // the 202 does not wait for the index
			t.Fatal(err)
		}
		var got, live int
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			sess, err := s.db.SessionByPublicID(ctx, nil, session)
			if err != nil {
				t.Fatal(err)
			}
			got = segments(session)
			live = 0
			if sess.Live {
				live = 1
			}
			if got == wantSegs && sess.Live == wantLive {
				if sess.DurationMS < 0 {
					t.Fatalf("%s: duration %d ms", session, sess.DurationMS)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d stored segments, live %d; want %d, %v", session, got, live, wantSegs, wantLive)
			}
		}
		sess, _ := s.db.SessionByPublicID(ctx, nil, session)
		var c collect
		if err := s.stream.Stream(ctx, sess, replay.All, &c); err != nil {
			t.Fatal(err)
		}
		if len(c.events) != 2*batches {
			t.Fatalf("%s: %d events back, want %d", session, len(c.events), 2*batches)
		}
		for i, ev := range c.events {
			var e struct {
				Data struct{ Payload struct{ Seq int } } `json:"data"`
			}
			json.Unmarshal(ev, &e)
			if e.Data.Payload.Seq != i/2 {
				t.Fatalf("%s: event %d is of seq %d, want %d", session, i, e.Data.Payload.Seq, i/2)
			}
		}
	}
	// settle lets the sweep (every 20 ms) look at the current time.
	settle := func() { time.Sleep(300 * time.Millisecond) }

	// Back: an hour, twice, between batches. Nothing is due: the segment's
	// age and the session's quiet time are negative.
	post("clock_back", 0)
	clock.Add(-time.Hour)
	post("clock_back", 1)
	clock.Add(-time.Hour)
	post("clock_back", 2)
	settle()
	check("clock_back", 3, 0, true)
	// The clock catches up to one minute after the first batch: still
	// nothing due.
	clock.Add(2*time.Hour + time.Minute)
	settle()
	check("clock_back", 3, 0, true)
	// Past the segment age: stored, still live.
	clock.Add(2 * time.Minute)
	check("clock_back", 3, 1, true)

	// Forward, past the idle timeout: the session ends (that much time has
	// passed by the clock) and its events are stored...
	post("clock_fwd", 0)
	post("clock_fwd", 1)
	clock.Add(time.Hour)
	check("clock_fwd", 2, 1, false)
	// ...and a later batch is recorded too, then back again.
	post("clock_fwd", 2)
	clock.Add(-3 * time.Hour)
	post("clock_fwd", 3)
	settle()
	check("clock_fwd", 4, 1, true)
	clock.Add(3*time.Hour + 3*time.Minute)
	check("clock_fwd", 4, 2, true)
	clock.Add(time.Hour)
	check("clock_fwd", 4, 2, false)
}
