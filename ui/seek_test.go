package ui_test

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
	"github.com/trailmap/trailmap/internal/servertest"
)

// segmentFiles counts a session's stored segments in the local blob store.
func segmentFiles(t testing.TB, s *servertest.Server, session string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(s.DataDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "/"+session+"/") && strings.HasSuffix(p, ".zst") {
			n++
		}
		return nil
	})
	return n
}

// heading is true when the replayed page's heading says text.
func heading(text string) string {
	return `(() => { const f = document.querySelector('.replayer-wrapper iframe');
  try { return f.contentDocument.querySelector('#clock').textContent === ` + jsString(text) + ` } catch (e) { return false } })()`
}

// TestBrowser_SeekLongRecording opens a long recording near its end: the
// first frame is drawn from the full snapshot before that moment, and the
// server reads only the segments from that snapshot on.
func TestBrowser_SeekLongRecording(t *testing.T) {
	s := start(t, "--segment-max-bytes", "16000", "--segment-max-age", "1s")
	createUser(t, s, "analyst@example.com")
	const session = "long-session-0001"
	const minutes, snapEvery = 10, 120
	begin := time.Now().Add(-2 * time.Hour).Truncate(time.Second).UnixMilli()
	batches := longRecording(begin, minutes, 10, snapEvery, 300)
	events := 0
	for i, b := range batches {
		ingest(t, s, s.WriteKey, session, i, b)
		events += len(b)
		if i%6 == 5 {
			time.Sleep(1100 * time.Millisecond) // let a segment's age run out now and then
		}
	}
	waitSession(t, s, session, events)
	// Wait until everything is in stored segments.
	var segs int
	for deadline, stable := time.Now().Add(30*time.Second), 0; stable < 3; time.Sleep(500 * time.Millisecond) {
		n := segmentFiles(t, s, session)
		if n == segs && n > 0 {
			stable++
		} else {
			stable = 0
		}
		segs = n
		if time.Now().After(deadline) {
			t.Fatalf("segments still changing after 30s (%d)", n)
		}
	}
	if segs < 8 {
		t.Fatalf("only %d segments; the test needs a recording spread over many", segs)
	}

	b := browsertest.Start(t, browsertest.WithTimeout(2*time.Minute), browsertest.LoopbackOnly())
	ctx := b.NewContext(t)
	loginInBrowser(t, ctx, s, "analyst@example.com")

	seekTo := int64(minutes*60-10)*1000 + 500 // 10 s before the end, 110 s after the last snapshot
	before := metric(t, s, "trailmap_replay_segments_read_total")
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/sessions/%s?t=%d", s.URL, session, seekTo)))
	waitFor(t, ctx, "first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
	want := fmt.Sprintf("tick %d", seekTo/1000)
	waitFor(t, ctx, "frame at the seek point", heading(want))
	read := metric(t, s, "trailmap_replay_segments_read_total") - before

	// The snapshot at 480 s and everything after it: at most the share of
	// segments that covers the last 120 s (plus one for the boundary).
	limit := segs*snapEvery/(minutes*60) + 2
	t.Logf("%d segments; the seek read %v (limit %d)", segs, read, limit)
	if read < 1 || int(read) > limit {
		t.Fatalf("seek read %v segments of %d, want 1..%d", read, segs, limit)
	}
	if tm := eval[float64](t, ctx, `window.trailmapPlayer.time()`); tm < float64(seekTo-1000) || tm > float64(seekTo+1000) {
		t.Fatalf("player at %v ms, want %d", tm, seekTo)
	}

	// Seeking back to the start loads that window, and plays on from there.
	before = metric(t, s, "trailmap_replay_segments_read_total")
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`window.trailmapPlayer.seek(5500)`))
	waitFor(t, ctx, "frame at 5 s", heading("tick 5"))
	// The player loads 5-minute windows: about half of this recording.
	if read, win := metric(t, s, "trailmap_replay_segments_read_total")-before, segs*5*60/(minutes*60)+2; int(read) > win {
		t.Fatalf("seek to 5 s read %v segments, want a window's worth (<= %d)", read, win)
	}

	// Playing on past the end of a window fetches the next one and goes on.
	run(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/sessions/%s?t=100500&chunk_ms=15000", s.URL, session)))
	waitFor(t, ctx, "frame at 100 s", heading("tick 100"))
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`window.trailmapPlayer.setSpeed(8); window.trailmapPlayer.play()`))
	waitFor(t, ctx, "playing past the window", `window.trailmapPlayer.time() > 130000 && window.trailmapPlayer.span.loadedTo > 130000`)
	tick := eval[string](t, ctx, `document.querySelector('.replayer-wrapper iframe').contentDocument.querySelector('#clock').textContent`)
	if n := 0; func() bool { _, err := fmt.Sscanf(tick, "tick %d", &n); return err != nil || n < 125 }() {
		t.Fatalf("after playing across windows the page says %q", tick)
	}
}
