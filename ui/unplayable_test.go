package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/trailmap/trailmap/internal/browsertest"
)

// No blank replays: a visit whose recording holds no full snapshot is
// marked (playable false, a "No replay" badge, hidden with playable=true)
// and the player says it cannot be shown instead of a white frame; a
// visit whose snapshot comes late plays from it and says what it skipped.
func TestBrowser_UnplayableSessions(t *testing.T) {
	s := start(t)
	createUser(t, s, "analyst@example.com")
	t0 := time.Now().Add(-time.Hour).UnixMilli()

	// A client that lost its snapshot: clicks and mutations only.
	var blank []json.RawMessage
	for i := range 5 {
		blank = append(blank, click(t0+int64(i)*1000), textMutation(t0+int64(i)*1000+500, 7, fmt.Sprint("tick ", i)))
	}
	ingest(t, s, s.WriteKey, "blank-session-0001", 0, blank)
	// A recorder that started late: 5 s of events, then a snapshot.
	late := []json.RawMessage{click(t0), textMutation(t0+2000, 7, "lost")}
	late = append(late, snapshot(t0+5000, "Late start", "drawn from its snapshot")...)
	late = append(late, textMutation(t0+8000, 7, "Late start, later"))
	ingest(t, s, s.WriteKey, "late-session-00001", 0, late)
	waitSession(t, s, "blank-session-0001", len(blank))
	waitSession(t, s, "late-session-00001", len(late))

	var info struct {
		Playable       bool  `json:"playable"`
		PlayableFromMS int64 `json:"playable_from_ms"`
	}
	s.GetJSON(t, "/api/v1/sessions/blank-session-0001", &info)
	if info.Playable {
		t.Error("a session without a full snapshot is playable")
	}
	s.GetJSON(t, "/api/v1/sessions/late-session-00001", &info)
	if !info.Playable || info.PlayableFromMS != 5000 {
		t.Errorf("late session: %+v, want playable from 5000 ms", info)
	}
	var list struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	s.GetJSON(t, "/api/v1/sessions?playable=true", &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != "late-session-00001" {
		t.Errorf("playable=true lists %+v, want the late session only", list.Sessions)
	}
	if r := s.Request(t, http.MethodGet, "/api/v1/sessions?playable=maybe", nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("playable=maybe: %d, want 400", r.StatusCode)
	}

	shots := shotDir(t)
	b := browsertest.Start(t, browsertest.WithTimeout(2*time.Minute), browsertest.LoopbackOnly())
	ctx := b.NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	loginInBrowser(t, ctx, s, "analyst@example.com")
	waitFor(t, ctx, "list", `document.querySelectorAll('a.srow').length === 2`)
	if got := eval[string](t, ctx, `document.querySelector('a.srow[data-session="blank-session-0001"] .srow-badges').textContent`); !strings.Contains(got, "No replay") {
		t.Errorf("the blank session's badges say %q, want No replay", got)
	}
	run(t, ctx, chromedp.Click("#toggle-filters"))
	shoot(t, ctx, shots, "15-sessions-no-replay")

	run(t, ctx, chromedp.Navigate(s.URL+"/sessions/blank-session-0001"))
	waitFor(t, ctx, "unplayable", `document.querySelector('.tp').dataset.state === 'unplayable'`)
	if text := eval[string](t, ctx, `document.querySelector('.tp-overlay').textContent`); !strings.Contains(text, "cannot be shown") {
		t.Errorf("overlay says %q", text)
	}
	shoot(t, ctx, shots, "15-player-unplayable")

	run(t, ctx, chromedp.Navigate(s.URL+"/sessions/late-session-00001"))
	waitFor(t, ctx, "first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
	waitFor(t, ctx, "the snapshot drawn", frameText+`.includes('drawn from its snapshot')`)
	if text := eval[string](t, ctx, `document.querySelector('.tp-notice').hidden ? '' : document.querySelector('.tp-notice').textContent`); !strings.Contains(text, "0:00–0:05 cannot be shown") {
		t.Errorf("notice %q, want what was skipped", text)
	}
	if tm := eval[float64](t, ctx, `window.trailmapPlayer.time()`); tm < 5000 {
		t.Errorf("player at %v ms, want at the snapshot (5000)", tm)
	}
	shoot(t, ctx, shots, "16-player-late-snapshot")
	if errs := con.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
