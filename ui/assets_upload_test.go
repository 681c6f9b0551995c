package ui_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
)

// Assets behind a login: the site serves its image and style sheet only
// with the visitor's cookie, so the server's own fetch is refused. With
// data-assets="upload" the script offers their hashes, uploads what the
// server lacks, and the recording plays with those copies after the site
// is gone. Uploads are refused without the write key, from an origin the
// project never recorded, over the size cap and for anything but images,
// fonts and CSS.
func TestBrowser_assetUpload(t *testing.T) {
	s := start(t, "--assets-allow-nets", "127.0.0.1", "--assets-max-bytes", "100000")
	secretPNG := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
	var refused int
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/login":
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "visitor-secret", Path: "/"})
			http.Redirect(w, r, "/app.html", http.StatusSeeOther)
		case r.URL.Path == "/app.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html><head><title>Intranet</title><link rel="stylesheet" href="/private/app.css">
<script src="%s/recorder.js" data-key="%s" data-assets="upload" async></script></head>
<body><h1>Behind the login</h1><img id="pic" src="/private/secret.png" width="20" height="20">
<div data-trailmap-block><img src="/private/blocked.png"></div></body></html>`, s.URL, s.WriteKey)
		case strings.HasPrefix(r.URL.Path, "/private/"):
			if c, err := r.Cookie("sid"); err != nil || c.Value != "visitor-secret" {
				refused++
				http.Error(w, "log in first", http.StatusForbidden)
				return
			}
			if strings.HasSuffix(r.URL.Path, ".css") {
				w.Header().Set("Content-Type", "text/css")
				w.Write([]byte(`h1 { color: rgb(10, 120, 30) }`))
				return
			}
			w.Header().Set("Content-Type", "image/png")
			w.Write(secretPNG)
		default:
			http.NotFound(w, r)
		}
	}))
	defer site.Close()

	b := browsertest.Start(t, browsertest.WithTimeout(2*time.Minute), browsertest.LoopbackOnly())
	ctx := b.NewContext(t)
	var reqs []string
	go func() {
		for ev, err := range chromedp.Events(ctx, network.ResponseReceived) {
			if err != nil {
				return
			}
			reqs = append(reqs, fmt.Sprintf("%s %d", ev.Response.URL, ev.Response.Status))
		}
	}()
	run(t, ctx, chromedp.Navigate(site.URL+"/login"))
	waitFor(t, ctx, "recorder", `window.trailmap && window.trailmap.version === 1 && document.getElementById('pic').complete`)
	run(t, ctx, chromedp.Click("#pic"), chromedp.Sleep(3*time.Second))
	sid := eval[string](t, ctx, `JSON.parse(sessionStorage.getItem('trailmap')).sid`)
	if !eval[bool](t, ctx, `trailmap.flush()`) {
		t.Fatal("flush failed")
	}
	var events string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		resp := s.Request(t, http.MethodGet, "/api/v1/sessions/"+sid+"/events?assets=copies", nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		events = string(body)
		if strings.Contains(events, s.URL+"/api/v1/assets/") { // the image (rrweb inlines the style sheet)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uploaded copies not mapped into the events (%d refused fetches; requests %v): %.300s", refused, reqs, events)
		}
	}
	if refused == 0 {
		t.Error("the server's own fetch was never refused: the test does not show uploads")
	}
	if n := strings.Count(events, s.URL+"/api/v1/assets/"); n != 1 {
		t.Errorf("%d asset links in the events, want the image's only", n)
	}
	i := strings.Index(events, s.URL+"/api/v1/assets/")
	link := events[i : i+len(s.URL+"/api/v1/assets/")+70]
	link = link[:strings.IndexAny(link, `"\)`)]
	resp := s.Request(t, http.MethodGet, strings.TrimPrefix(link, s.URL), nil)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, secretPNG) {
		t.Errorf("the copy at %s is not the image behind the login: %q", link, got)
	}

	post := func(path, key, ctype string, body []byte) int {
		req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if key != "" {
			req.Header.Set("X-Trailmap-Key", key)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	u := "/api/v1/assets?url=" + site.URL + "/private/other.png"
	for _, tc := range []struct {
		name      string
		path, key string
		ctype     string
		body      []byte
		want      int
	}{
		{"no key", u, "", "image/png", secretPNG, 401},
		{"unknown key", u, "nope", "image/png", secretPNG, 401},
		{"foreign origin", "/api/v1/assets?url=https://elsewhere.example/x.png", s.WriteKey, "image/png", secretPNG, 403},
		{"not http", "/api/v1/assets?url=file:///etc/passwd", s.WriteKey, "image/png", secretPNG, 400},
		{"html", u, s.WriteKey, "text/html", []byte("<html><body>login</body></html>"), 400},
		{"too large", u, s.WriteKey, "image/png", bytes.Repeat([]byte("x"), 100001), 413},
		{"empty", u, s.WriteKey, "image/png", nil, 400},
		{"bad offer", "/api/v1/assets/offer", s.WriteKey, "application/json", []byte(`{"assets":[{"url":"` + site.URL + `/a.png","sha256":"XYZ","size":1}]}`), 400},
		{"offer not JSON", "/api/v1/assets/offer", s.WriteKey, "application/json", []byte(`nope`), 400},
		{"good upload", u, s.WriteKey, "image/png", secretPNG, 201},
	} {
		if got := post(tc.path, tc.key, tc.ctype, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
