package ui_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
)

// The downloaded clip carries a policy that forbids all network access: a
// recorded page's image, stylesheet and font on a live loopback server are
// never requested, and the clip still plays from file://.
func TestBrowser_ExportCSP(t *testing.T) {
	var hits atomic.Int64
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("x"))
	}))
	defer site.Close()

	s := start(t)
	start := time.Now().Add(-time.Hour).UnixMilli()
	evs := tinyRecording(start, "Offline means offline")
	// A full snapshot whose page loads an image, a stylesheet and a font
	// from the (live) site.
	var full map[string]any
	if err := json.Unmarshal(evs[1], &full); err != nil {
		t.Fatal(err)
	}
	html := full["data"].(map[string]any)["node"].(map[string]any)["childNodes"].([]any)[1].(map[string]any)
	kids := html["childNodes"].([]any)
	head, body := kids[0].(map[string]any), kids[1].(map[string]any)
	head["childNodes"] = []any{
		map[string]any{"type": 2, "tagName": "link", "id": 100, "childNodes": []any{}, "attributes": map[string]any{"rel": "stylesheet", "href": site.URL + "/style.css"}},
		map[string]any{"type": 2, "tagName": "style", "id": 101, "childNodes": []any{
			map[string]any{"type": 3, "id": 102, "isStyle": true, "textContent": fmt.Sprintf(`@font-face { font-family: F; src: url(%s/font.woff2); } body { font-family: F; background: url(%s/bg.png) }`, site.URL, site.URL)},
		}, "attributes": map[string]any{}},
	}
	body["childNodes"] = append(body["childNodes"].([]any),
		map[string]any{"type": 2, "tagName": "img", "id": 103, "childNodes": []any{}, "attributes": map[string]any{"id": "pic", "src": site.URL + "/pic.png", "width": "40", "height": "40"}})
	evs[1], _ = json.Marshal(full)
	ingest(t, s, s.WriteKey, "csp-session-0004", 0, evs)
	waitSession(t, s, "csp-session-0004", len(evs))

	resp := s.Request(t, http.MethodGet, "/api/v1/sessions/csp-session-0004/export?title=CSP", nil)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d", resp.StatusCode)
	}
	if !strings.Contains(string(page), `http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-`) ||
		!strings.Contains(string(page), "connect-src 'none'") {
		t.Fatalf("no strict policy in the clip")
	}
	file := filepath.Join(t.TempDir(), "clip.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}

	b := browsertest.Start(t, browsertest.WithTimeout(2*time.Minute))
	ctx := b.NewContext(t)
	run(t, ctx, chromedp.Navigate("file://"+file))
	waitFor(t, ctx, "offline first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
	waitFor(t, ctx, "recorded text offline", frameText+`.includes("Offline means offline")`)
	waitFor(t, ctx, "the recorded image element", `(() => { const f = document.querySelector('.replayer-wrapper iframe'); return f && f.contentDocument && f.contentDocument.querySelector('#pic') })()`)
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector(".tp-bigplay").click()`))
	waitFor(t, ctx, "offline playing", `window.trailmapPlayer.time() > 100 || window.trailmapPlayer.ended`)
	time.Sleep(500 * time.Millisecond) // let any request the page would make happen
	if n := hits.Load(); n != 0 {
		t.Errorf("the offline clip reached the recorded site %d times", n)
	}
	// The same file without its policy does reach the site: zero hits
	// above is the policy's doing, not an unreachable site.
	open := strings.Replace(string(page), `http-equiv="Content-Security-Policy"`, `name="no-policy"`, 1)
	open = strings.Replace(open, "<head>", "<head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'unsafe-inline'\">", 1)
	control := filepath.Join(t.TempDir(), "control.html")
	if err := os.WriteFile(control, []byte(open), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := b.NewContext(t)
	run(t, ctl, chromedp.Navigate("file://"+control))
	waitFor(t, ctl, "control first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
	deadline := time.Now().Add(10 * time.Second)
	for hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if hits.Load() == 0 {
		t.Errorf("without the policy the clip made no request either: the test shows nothing")
	}
}
