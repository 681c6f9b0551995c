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
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
)

// TestBrowser_assetCopies: a page on one origin shows an image, a CSS
// background image and a web font from a second origin (a loopback CDN the
// server is allowed to fetch from); recorder.js records a visit in
// Chromium. Once the copies are kept, the CDN is shut down, and the player,
// a share link and its embed in fresh browsers, and the downloaded clip
// opened from file:// (which makes no request at all) still show all
// three, from the copies.
func TestBrowser_assetCopies(t *testing.T) {
	font, err := os.ReadFile("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")
	if err != nil {
		t.Fatalf("a TrueType font to serve (Debian's fonts-liberation, installed with chromium): %v", err)
	}
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
	mux := http.NewServeMux()
	file := func(ctype string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Write(body)
		}
	}
	mux.Handle("/img.png", file("image/png", png))
	// Fonts from another origin load only with CORS.
	cors := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			h(w, r)
		}
	}
	mux.Handle("/bg.png", file("image/png", png))
	mux.Handle("/font.ttf", cors(file("font/ttf", font)))
	mux.Handle("/site.css", file("text/css", []byte(`.bg{background-image:url(bg.png);width:40px;height:40px}`)))
	cdn := httptest.NewServer(mux)
	defer cdn.Close()

	s := start(t, "--assets-allow-nets", "127.0.0.1")
	createUser(t, s, "analyst@example.com")
	var set map[string]any
	s.Admin(t, &set, "project", "settings", "test", `{"assets":{"origins":["`+cdn.URL+`"]}}`)

	// The visit, recorded by recorder.js in Chromium from the site's origin.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>Product</title>
<link rel="stylesheet" href="%[1]s/site.css">
<style>@font-face{font-family:"CdnFont";src:url(%[1]s/font.ttf) format("truetype")}</style>
<script src="%[2]s/recorder.js" data-key="%[3]s" async></script></head>
<body><img id="pic" src="%[1]s/img.png" width="40" height="40"><div class="bg" id="bg"></div>
<p id="txt" style="font-family:CdnFont">Hello from the CDN font</p></body></html>`, cdn.URL, s.URL, s.WriteKey)
	}))
	defer site.Close()
	b := browsertest.Start(t, browsertest.WithTimeout(2*time.Minute), browsertest.LoopbackOnly())
	rec := b.NewContext(t)
	run(t, rec, chromedp.Navigate(site.URL+"/product"))
	waitFor(t, rec, "recorder and page loaded", `window.trailmap && window.trailmap.version === 1 && document.getElementById('pic').complete && document.fonts.status === 'loaded'`)
	run(t, rec, chromedp.Sleep(500*time.Millisecond))
	session := eval[string](t, rec, `JSON.parse(sessionStorage.getItem('trailmap')).sid`)
	if !eval[bool](t, rec, `trailmap.flush()`) {
		t.Fatal("flush failed")
	}

	// Wait until every asset has its copy, then shut the CDN down.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp := s.Request(t, http.MethodGet, "/api/v1/sessions/"+session+"/events?assets=copies", nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Count(string(body), s.URL+"/api/v1/assets/") >= 3 { // link, @font-face, img; bg.png is in the sheet
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not mapped to copies: %.2000s", body)
		}
	}
	cdn.Close()

	ctx := b.NewContext(t)
	loginInBrowser(t, ctx, s, "analyst@example.com")
	waitFor(t, ctx, "the session listed", `document.querySelector('a.srow')`)
	run(t, ctx, chromedp.Click("a.srow"))
	waitFor(t, ctx, "first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
	const doc = `document.querySelector('.replayer-wrapper iframe').contentDocument`
	waitFor(t, ctx, "the image from its copy", `(() => { const i = `+doc+`.getElementById('pic'); return i && i.complete && i.naturalWidth > 0 && i.currentSrc.startsWith(`+jsString(s.URL+"/api/v1/assets/")+`) })()`)
	waitFor(t, ctx, "the web font from its copy", `(() => { const d = `+doc+`; return [...d.fonts].some(f => f.family.replace(/"/g, '') === 'CdnFont' && f.status === 'loaded') })()`)
	bg := eval[string](t, ctx, `getComputedStyle(`+doc+`.getElementById('bg')).backgroundImage`)
	if !strings.Contains(bg, s.URL+"/api/v1/assets/") {
		t.Fatalf("background image %q does not come from a copy", bg)
	}
	loaded := eval[bool](t, ctx, `new Promise(res => { const i = new Image(); i.onload = () => res(i.naturalWidth > 0); i.onerror = () => res(false); i.src = `+jsString(strings.TrimSuffix(strings.TrimPrefix(bg, `url("`), `")`))+` })`)
	if !loaded {
		t.Fatalf("background image copy %s did not load", bg)
	}

	// A share link, opened without an account in a fresh browser: the
	// copies come from under the share's own path.
	admin := newClient(t, s)
	if st := admin.login(t, "analyst@example.com", testPassword); st != http.StatusSeeOther {
		t.Fatalf("login: %d", st)
	}
	resp, body := admin.do(t, "POST", "/api/v1/shares", map[string]any{"session_id": session, "start_ms": 0, "end_ms": 500}, true)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("share: %d %s", resp.StatusCode, body)
	}
	var created struct {
		Token string `json:"token"`
	}
	json.Unmarshal(body, &created)
	shared := s.URL + "/s/" + created.Token + "/a/"
	sctx := b.NewContext(t)
	run(t, sctx, chromedp.Navigate(s.URL+"/s/"+created.Token))
	waitFor(t, sctx, "share first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
	waitFor(t, sctx, "the image from the share's copy", `(() => { const i = `+doc+`.getElementById('pic'); return i && i.complete && i.naturalWidth > 0 && i.currentSrc.startsWith(`+jsString(shared)+`) })()`)
	waitFor(t, sctx, "the web font from the share's copy", `(() => { const d = `+doc+`; return [...d.fonts].some(f => f.family.replace(/"/g, '') === 'CdnFont' && f.status === 'loaded') })()`)
	if bg := eval[string](t, sctx, `getComputedStyle(`+doc+`.getElementById('bg')).backgroundImage`); !strings.Contains(bg, shared) {
		t.Errorf("shared background image %q does not come from the share's copy", bg)
	}
	// The embed, the same way.
	ectx := b.NewContext(t)
	run(t, ectx, chromedp.Navigate(s.URL+"/s/"+created.Token+"/embed"))
	waitFor(t, ectx, "embed first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
	waitFor(t, ectx, "the image in the embed", `(() => { const i = `+doc+`.getElementById('pic'); return i && i.complete && i.naturalWidth > 0 && i.currentSrc.startsWith(`+jsString(shared)+`) })()`)
	waitFor(t, ectx, "the web font in the embed", `(() => { const d = `+doc+`; return [...d.fonts].some(f => f.family.replace(/"/g, '') === 'CdnFont' && f.status === 'loaded') })()`)
	r, events := anonymous(t, s, "GET", "/s/"+created.Token+"/events", "")
	if r.StatusCode != http.StatusOK || strings.Contains(string(events), "/api/v1/") {
		t.Errorf("share events: %d, dashboard links in them: %v", r.StatusCode, strings.Contains(string(events), "/api/v1/"))
	}
	for _, bad := range []string{"/s/" + created.Token + "/a/" + strings.Repeat("0", 64), "/s/" + strings.Repeat("x", 32) + "/a/" + strings.Repeat("0", 64), "/s/" + created.Token + "/a/..%2f..%2fapi"} {
		if r, _ := anonymous(t, s, "GET", bad, ""); r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 404", bad, r.StatusCode)
		}
	}

	// The downloaded clip plays from file:// with every copy inlined and
	// makes no request at all.
	r, page := anonymous(t, s, "GET", "/s/"+created.Token+"/download", "")
	if r.StatusCode != http.StatusOK || !strings.Contains(string(page), "data:image/png;base64,") || !strings.Contains(string(page), "data:font/ttf;base64,") {
		t.Fatalf("download: %d, copies inlined: png %v, font %v", r.StatusCode,
			strings.Contains(string(page), "data:image/png;base64,"), strings.Contains(string(page), "data:font/ttf;base64,"))
	}
	clipFile := filepath.Join(t.TempDir(), "clip.html")
	if err := os.WriteFile(clipFile, page, 0o644); err != nil {
		t.Fatal(err)
	}
	octx := b.NewContext(t)
	var requests []string
	var mu sync.Mutex
	go func() {
		for ev, err := range chromedp.Events(octx, network.RequestWillBeSent) {
			if err != nil {
				return
			}
			if u := ev.Request.URL; !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "data:") && !strings.HasPrefix(u, "blob:") && !strings.HasPrefix(u, "about:") {
				mu.Lock()
				requests = append(requests, u)
				mu.Unlock()
			}
		}
	}()
	run(t, octx, chromedp.Navigate("file://"+clipFile))
	waitFor(t, octx, "offline first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
	waitFor(t, octx, "the image offline", `(() => { const i = `+doc+`.getElementById('pic'); return i && i.complete && i.naturalWidth > 0 && i.currentSrc.startsWith('data:') })()`)
	waitFor(t, octx, "the web font offline", `(() => { const d = `+doc+`; return [...d.fonts].some(f => f.family.replace(/"/g, '') === 'CdnFont' && f.status === 'loaded') })()`)
	if bg := eval[string](t, octx, `getComputedStyle(`+doc+`.getElementById('bg')).backgroundImage`); !strings.Contains(bg, "data:image/png") {
		t.Errorf("offline background image %.80q is not inlined", bg)
	}
	if n := eval[int](t, octx, `document.querySelectorAll('.embed-omitted').length`); n != 0 {
		t.Errorf("a note of left-out copies in a clip that holds them all")
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(requests) != 0 {
		t.Errorf("the offline clip made requests: %v", requests)
	}
}
