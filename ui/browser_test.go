package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
	"github.com/trailmap/trailmap/internal/servertest"
)

// frameText is the text of the page replayed inside the player's iframe.
const frameText = `(() => { const f = document.querySelector('.replayer-wrapper iframe');
  try { return f && f.contentDocument && f.contentDocument.body ? f.contentDocument.body.textContent : '' } catch (e) { return '' } })()`

func run(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript expression until it is truthy (navigations in
// between are fine).
func waitFor(t testing.TB, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+js+`)`))
		if err == nil && ok {
			return
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	url, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ''`))
	t.Fatalf("waiting for %s (%s): last error %v\nat %s:\n%s", what, js, lastErr, url, body)
}

// shoot saves the page at desktop and phone sizes.
func shoot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	for _, sz := range []struct{ w, h int }{{1280, 800}, {390, 844}} {
		run(t, ctx, chromedp.EmulateViewport(int64(sz.w), int64(sz.h)), chromedp.Sleep(400*time.Millisecond))
		browsertest.Screenshot(t, ctx, filepath.Join(dir, fmt.Sprintf("%s-%dx%d.png", name, sz.w, sz.h)), sz.w, sz.h)
	}
	run(t, ctx, chromedp.EmulateViewport(1280, 800), chromedp.Sleep(200*time.Millisecond))
}

// acceptDialogs accepts confirm() dialogs of ctx's tab.
func acceptDialogs(ctx context.Context) {
	_ = chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
}

func loginInBrowser(t testing.TB, ctx context.Context, s *servertest.Server, email string) {
	t.Helper()
	run(t, ctx, chromedp.Navigate(s.URL+"/sessions"))
	waitFor(t, ctx, "login form", `location.pathname === '/login' && document.querySelector('#email')`)
	run(t, ctx,
		chromedp.SendKeys("#email", email),
		chromedp.SendKeys("#password", testPassword),
		chromedp.Click("button[type=submit]"))
	waitFor(t, ctx, "sessions page", `location.pathname === '/sessions' && document.querySelector('#list')`)
}

// TestBrowser_Replay drives the UI in Chromium against the real server: log
// in, filter the list, watch a recording, notes, share a clip and open it
// without a login, revoke it, download a clip and play it offline, and take
// screenshots of every page at desktop and phone sizes.
func TestBrowser_Replay(t *testing.T) {
	s := start(t)
	createUser(t, s, "analyst@example.com")
	shots := shotDir(t)
	b := browsertest.Start(t, browsertest.WithTimeout(3*time.Minute), browsertest.LoopbackOnly())
	ctx := b.NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	acceptDialogs(ctx)

	// The login page, then the empty list with the install snippet.
	run(t, ctx, chromedp.Navigate(s.URL+"/login"))
	waitFor(t, ctx, "login form", `document.querySelector('#email')`)
	shoot(t, ctx, shots, "01-login")
	loginInBrowser(t, ctx, s, "analyst@example.com")
	waitFor(t, ctx, "install snippet", `document.querySelector('.snippet') && document.querySelector('.snippet').textContent.includes(`+jsString(s.WriteKey)+`)`)
	shoot(t, ctx, shots, "02-sessions-empty")

	demo := fixture(t, "player-demo-recording.json")
	ingest(t, s, s.WriteKey, "demo-session-0001", 0, demo)
	ingest(t, s, s.WriteKey, "other-session-002", 0, fixture(t, "example.json"))
	waitSession(t, s, "demo-session-0001", len(demo))
	waitSession(t, s, "other-session-002", 6)

	t.Run("filter the list", func(t *testing.T) {
		run(t, ctx, chromedp.Navigate(s.URL+"/sessions"))
		waitFor(t, ctx, "two rows", `document.querySelectorAll('a.srow').length === 2`)
		shoot(t, ctx, shots, "03-sessions")
		run(t, ctx, chromedp.Click("#toggle-filters"), chromedp.SendKeys("#f-url", "/e/react"))
		run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#f-device').value = 'desktop'`), chromedp.Click(".actions button[type=submit]"))
		waitFor(t, ctx, "filtered list", `location.search.includes('url=%2Fe%2Freact') && document.querySelectorAll('a.srow').length === 1`)
		if got := eval[string](t, ctx, `document.querySelector('a.srow').dataset.session`); got != "demo-session-0001" {
			t.Fatalf("filtered row is %q", got)
		}
		shoot(t, ctx, shots, "04-sessions-filtered")
	})

	t.Run("watch a recording", func(t *testing.T) {
		run(t, ctx, chromedp.Click("a.srow"))
		waitFor(t, ctx, "first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
		waitFor(t, ctx, "recorded text in the replay", frameText+`.includes('ReactHooks.js')`)
		waitFor(t, ctx, "page list", `document.querySelectorAll('#tab-pages-list .jump').length === 1`)
		if n := eval[int](t, ctx, `document.querySelectorAll('.tp-marker.tp-click').length`); n == 0 {
			t.Error("no click markers on the timeline")
		}
		// Play, then the keyboard: 2 sets 2× speed, space pauses.
		run(t, ctx, chromedp.Click(".tp-play"))
		waitFor(t, ctx, "playing", `window.trailmapPlayer.playing && window.trailmapPlayer.time() > 3000`)
		run(t, ctx, chromedp.KeyEvent("2"))
		waitFor(t, ctx, "2x speed", `window.trailmapPlayer.speed === 2`)
		run(t, ctx, chromedp.KeyEvent(" "))
		waitFor(t, ctx, "paused", `!window.trailmapPlayer.playing`)
		if tm := eval[float64](t, ctx, `window.trailmapPlayer.time()`); tm < 500 {
			t.Errorf("paused at %v ms, want where it played to", tm)
		}
		shoot(t, ctx, shots, "05-player")
	})

	t.Run("notes", func(t *testing.T) {
		run(t, ctx, chromedp.Click("#t-notes"), chromedp.SendKeys("#note-body", "The user hesitates here"), chromedp.Click("#note-form button[type=submit]"))
		waitFor(t, ctx, "note listed", `document.querySelector('#notes-list').textContent.includes('The user hesitates here') && document.querySelector('.tp-marker.tp-note')`)
		if !strings.Contains(eval[string](t, ctx, `document.querySelector('#notes-list').textContent`), "analyst@example.com") {
			t.Error("note does not say who wrote it")
		}
		shoot(t, ctx, shots, "06-player-notes")
	})

	var link string
	const clipFrom, clipTo = 20000, 40000
	start := eventTS(t, demo[0])
	t.Run("share a clip", func(t *testing.T) {
		run(t, ctx, chromedp.Click("#t-share"),
			chromedp.SetValue("#clip-start", "0:20"), chromedp.SetValue("#clip-end", "0:40"),
			chromedp.SendKeys("#clip-title", "Hooks demo"), chromedp.SendKeys("#clip-note", "Watch the counter"),
			chromedp.Click("#share-form button[type=submit]"))
		waitFor(t, ctx, "share link", `document.querySelector('.share-url')`)
		link = eval[string](t, ctx, `document.querySelector('.share-url').value`)
		if !strings.HasPrefix(link, s.URL+"/s/") || len(strings.TrimPrefix(link, s.URL+"/s/")) < 22 {
			t.Fatalf("share link %q", link)
		}
		waitFor(t, ctx, "link in the list", `document.querySelectorAll('#shares-list .share-item').length === 1`)
		shoot(t, ctx, shots, "07-player-share")

		// The clip's events: from the snapshot before its start, nothing after its end.
		resp, err := http.Get(link + "/events")
		if err != nil {
			t.Fatal(err)
		}
		var evs []json.RawMessage
		json.NewDecoder(resp.Body).Decode(&evs)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(evs) < 2 {
			t.Fatalf("clip events: %d, %d events", resp.StatusCode, len(evs))
		}
		if ts := eventTS(t, evs[0]); ts > start+clipFrom {
			t.Errorf("clip starts at %d ms, after its start %d ms", ts-start, clipFrom)
		}
		for _, ev := range evs {
			if ts := eventTS(t, ev); ts > start+clipTo {
				t.Fatalf("event at %d ms served, after the clip end %d ms", ts-start, clipTo)
			}
		}
		if last := eventTS(t, demo[len(demo)-1]); last <= start+clipTo {
			t.Fatal("fixture too short for this test")
		}
	})

	t.Run("open the link without a login", func(t *testing.T) {
		anon := b.NewContext(t)
		run(t, anon, chromedp.Navigate(link))
		waitFor(t, anon, "clip first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
		waitFor(t, anon, "recorded text", frameText+`.length > 0`)
		if d := eval[float64](t, anon, `window.trailmapPlayer.duration`); d != clipTo-clipFrom {
			t.Errorf("clip timeline is %v ms, want %d", d, clipTo-clipFrom)
		}
		if tm := eval[float64](t, anon, `window.trailmapPlayer.time()`); tm != 0 {
			t.Errorf("clip opens at %v ms, want its start", tm)
		}
		html := eval[string](t, anon, `document.documentElement.outerHTML`)
		for _, secret := range []string{"demo-session-0001", "visitor-demo", s.WriteKey, `"project`} {
			if strings.Contains(html, secret) {
				t.Errorf("share page exposes %q", secret)
			}
		}
		for _, path := range []string{"/api/v1/sessions", "/api/v1/sessions/demo-session-0001", "/api/v1/sessions/demo-session-0001/events", "/api/v1/shares", "/api/v1/projects"} {
			if st := eval[int](t, anon, `fetch(`+jsString(path)+`).then(r => r.status)`); st != http.StatusUnauthorized {
				t.Errorf("anonymous %s: %d, want 401", path, st)
			}
		}
		run(t, anon, chromedp.Click(".tp-bigplay"))
		waitFor(t, anon, "clip playing", `window.trailmapPlayer.time() > 300`)
		run(t, anon, chromedp.Evaluate[chromedp.Void](`window.trailmapPlayer.pause()`))
		shoot(t, anon, shots, "08-share")
		run(t, anon, chromedp.Navigate(link+"/embed"))
		waitFor(t, anon, "embed first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
		shoot(t, anon, shots, "09-embed")

		// The links page lists it.
		run(t, ctx, chromedp.Navigate(s.URL+"/shares"))
		waitFor(t, ctx, "links page", `document.querySelectorAll('#shares .share-item').length === 1`)
		shoot(t, ctx, shots, "10-shares")

		// Revoke from the player page: the link then answers 410.
		run(t, ctx, chromedp.Navigate(s.URL+"/sessions/demo-session-0001"), chromedp.Click("#t-share"))
		waitFor(t, ctx, "revoke button", `document.querySelector('#shares-list .revoke')`)
		run(t, ctx, chromedp.Click("#shares-list .revoke"))
		waitFor(t, ctx, "revoked", `document.querySelector('#shares-list').textContent.includes('revoked')`)
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "revoked") {
			t.Fatalf("revoked link: %d %s", resp.StatusCode, body)
		}
		for _, p := range []string{"/events", "/embed", "/download"} {
			r, err := http.Get(link + p)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != http.StatusGone {
				t.Errorf("revoked %s: %d, want 410", p, r.StatusCode)
			}
		}
		run(t, anon, chromedp.Navigate(link))
		waitFor(t, anon, "gone page", `document.body.innerText.includes('no longer available')`)
		shoot(t, anon, shots, "11-gone")
	})

	t.Run("download a clip and play it offline", func(t *testing.T) {
		// A page whose text would end a <script> element if it were not escaped.
		evil := tinyRecording(time.Now().Add(-time.Hour).UnixMilli(), `</script><script>document.title='pwned'</script><!-- & \u2028`)
		ingest(t, s, s.WriteKey, "evil-session-0003", 0, evil)
		waitSession(t, s, "evil-session-0003", len(evil))
		dir := t.TempDir()
		for _, c := range []struct{ name, path, want string }{
			{"demo", "/api/v1/sessions/demo-session-0001/export?from_ms=20000&to_ms=40000&title=Hooks", "ReactHooks.js"},
			{"evil", "/api/v1/sessions/evil-session-0003/export?title=" + "%3C%2Fscript%3E", "document.title='pwned'"},
		} {
			resp := s.Request(t, http.MethodGet, c.path, nil)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
				t.Fatalf("export %s: %d %s", c.name, resp.StatusCode, resp.Header)
			}
			if n := strings.Count(strings.ToLower(string(body)), "</script"); n != 2 {
				t.Errorf("export %s has %d </script, want 2 (the ends of its two script elements, none inside)", c.name, n)
			}
			file := filepath.Join(dir, c.name+".html")
			if err := os.WriteFile(file, body, 0o644); err != nil {
				t.Fatal(err)
			}
			off := b.NewContext(t)
			var requests []string
			_ = chromedp.Listen(off, func(ev any) {
				if e, ok := ev.(*network.EventRequestWillBeSent); ok {
					requests = append(requests, e.Request.URL)
				}
			})
			if _, err := chromedp.Call(off, network.Enable, network.EnableParams{}); err != nil {
				t.Fatal(err)
			}
			// No network: every http(s) and ws(s) request fails.
			var block []*network.BlockPattern
			for _, scheme := range []string{"http", "https", "ws", "wss"} {
				block = append(block, &network.BlockPattern{URLPattern: scheme + "://*:*/*", Block: true})
			}
			if _, err := chromedp.Call(off, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: block}); err != nil {
				t.Fatal(err)
			}
			run(t, off, chromedp.Navigate("file://"+file))
			waitFor(t, off, "offline first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
			waitFor(t, off, "recorded text offline", frameText+`.includes(`+jsString(c.want)+`)`)
			if title := eval[string](t, off, `document.title`); strings.Contains(title, "pwned") {
				t.Fatalf("recorded page text ran as script: title %q", title)
			}
			run(t, off, chromedp.Evaluate[chromedp.Void](`document.querySelector(".tp-bigplay").click()`))
			waitFor(t, off, "offline playing", `window.trailmapPlayer.time() > 100 || window.trailmapPlayer.ended`)
			for _, u := range requests {
				if strings.HasPrefix(u, s.URL) {
					t.Errorf("offline clip asked the server for %s", u)
				} else if !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "data:") {
					t.Logf("offline clip asked for %s (an asset of the recorded page; blocked)", u)
				}
			}
			if c.name == "demo" {
				run(t, off, chromedp.Evaluate[chromedp.Void](`window.trailmapPlayer.pause()`))
				shoot(t, off, shots, "12-export")
			}
		}
	})

	if errs := con.Errors(); len(errs) > 0 {
		t.Errorf("console errors on the dashboard:\n%s", strings.Join(errs, "\n"))
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func eventTS(t testing.TB, ev json.RawMessage) int64 {
	t.Helper()
	var e struct {
		Timestamp int64 `json:"timestamp"`
	}
	if err := json.Unmarshal(ev, &e); err != nil {
		t.Fatal(err)
	}
	return e.Timestamp
}
