package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

// TestServe_assets runs the binary with a loopback CDN allowed: a recorded
// page's image and style sheet (with its background image) are fetched,
// the events API maps them to copies on ?assets=copies and returns the
// originals otherwise, and the copies are served with their type, nosniff,
// immutable caching and CORS, to logged-in callers only.
func TestServe_assets(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
	mux := http.NewServeMux()
	mux.HandleFunc("/img.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	})
	mux.HandleFunc("/site.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		io.WriteString(w, `body{background:url(img.png)}`)
	})
	cdn := httptest.NewServer(mux)
	defer cdn.Close()

	s := servertest.Start(t, "--assets-allow-nets", "127.0.0.1")
	var set map[string]any
	s.Admin(t, &set, "project", "settings", "test", `{"assets":{"origins":["`+cdn.URL+`"]}}`)

	now := time.Now().UnixMilli()
	evs := []json.RawMessage{
		json.RawMessage(fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.example/p","width":800,"height":600}}`, now)),
		json.RawMessage(fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[`+
			`{"type":2,"id":3,"tagName":"link","attributes":{"rel":"stylesheet","href":"%s/site.css"},"childNodes":[]},`+
			`{"type":2,"id":4,"tagName":"img","attributes":{"src":"%s/img.png"},"childNodes":[]}]}]},"initialOffset":{"top":0,"left":0}}}`, now+1, cdn.URL, cdn.URL)),
	}
	if a := post(t, s.URL, s.WriteKey, "", batchBody(t, "assets-session-1", "visitor-1", 0, evs)); a.Status != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", a.Status, a.Body)
	}

	type node struct {
		Attributes map[string]string `json:"attributes"`
		ChildNodes []node            `json:"childNodes"`
	}
	var imgLink, cssLink string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := events(t, s, "assets-session-1", "?assets=copies")
		if len(got) == 2 {
			var snap struct {
				Data struct {
					Node node `json:"node"`
				} `json:"data"`
			}
			if err := json.Unmarshal(got[1], &snap); err != nil {
				t.Fatal(err)
			}
			html := snap.Data.Node.ChildNodes[0]
			cssLink, imgLink = html.ChildNodes[0].Attributes["href"], html.ChildNodes[1].Attributes["src"]
			prefix := s.URL + "/api/v1/assets/"
			if strings.HasPrefix(imgLink, prefix) && strings.HasPrefix(cssLink, prefix) {
				// Absolute links (a recorded <base> must not redirect them).
				imgLink, cssLink = strings.TrimPrefix(imgLink, s.URL), strings.TrimPrefix(cssLink, s.URL)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not mapped to copies: img %q, css %q", imgLink, cssLink)
		}
	}
	sameEvents(t, events(t, s, "assets-session-1", ""), evs)

	resp := s.Request(t, http.MethodGet, imgLink, nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != string(png) {
		t.Fatalf("GET %s: %d, %d bytes", imgLink, resp.StatusCode, len(body))
	}
	for k, want := range map[string]string{
		"Content-Type":                "image/png",
		"X-Content-Type-Options":      "nosniff",
		"Cache-Control":               "private, max-age=31536000, immutable",
		"Access-Control-Allow-Origin": "*",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	resp = s.Request(t, http.MethodGet, cssLink, nil)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `body{background:url("` + imgLink + `")}`; resp.StatusCode != http.StatusOK || string(body) != want || resp.Header.Get("Content-Type") != "text/css" {
		t.Errorf("GET %s: %d %q (%s), want %q", cssLink, resp.StatusCode, body, resp.Header.Get("Content-Type"), want)
	}

	anon, err := http.Get(s.URL + imgLink)
	if err != nil {
		t.Fatal(err)
	}
	anon.Body.Close()
	if anon.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a login: %d, want 401", anon.StatusCode)
	}
	for path, want := range map[string]int{
		strings.Replace(imgLink, fmt.Sprintf("/%d/", s.ProjectID), "/999/", 1): http.StatusNotFound, // an admin token: no such copy in project 999
		imgLink[:len(imgLink)-64] + strings.Repeat("0", 64):                    http.StatusNotFound,
		imgLink[:len(imgLink)-64] + "..%2f..%2fetc":                            http.StatusNotFound,
		"/api/v1/sessions/assets-session-1/events?assets=rewritten":            http.StatusBadRequest,
	} {
		resp := s.Request(t, http.MethodGet, path, nil)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
