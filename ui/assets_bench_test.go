package ui_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkAssetStorage: 20 sessions of one site, each page showing the
// site's 8 shared images (20 KB each), its web font (~400 KB) and a style
// sheet, plus one image of its own (a product photo): the asset bytes
// stored per session, deduplicated across the sessions (content-addressed
// copies), against what each session references; and the size of one
// session's offline clip with every copy inlined.
func BenchmarkAssetStorage(b *testing.B) {
	// A web font's worth of bytes (the store keeps them whatever they are).
	font := make([]byte, 139512) // the size of Liberation Sans, which it stood for
	rand.Read(font)
	copy(font, "\x00\x01\x00\x00")
	img := func(seed string) []byte {
		buf := make([]byte, 20<<10)
		rand.Read(buf)
		return append([]byte("\x89PNG\r\n\x1a\n"+seed), buf...)
	}
	files := map[string][]byte{"/font.ttf": font, "/site.css": []byte(`body{background:url(bg.png)} @font-face{font-family:F;src:url(font.ttf)}`), "/bg.png": img("bg")}
	for i := range 8 {
		files[fmt.Sprintf("/shared%d.png", i)] = img(fmt.Sprint("s", i))
	}
	const sessions = 20
	for i := range sessions {
		files[fmt.Sprintf("/own%d.png", i)] = img(fmt.Sprint("o", i))
	}
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, ".css"):
			w.Header().Set("Content-Type", "text/css")
		case strings.HasSuffix(r.URL.Path, ".ttf"):
			w.Header().Set("Content-Type", "font/ttf")
		default:
			w.Header().Set("Content-Type", "image/png")
		}
		w.Write(body)
	}))
	defer cdn.Close()
	s := start(b, "--assets-allow-nets", "127.0.0.1")
	s.Admin(b, nil, "project", "settings", "test", `{"assets":{"origins":["`+cdn.URL+`"]}}`)
	referenced := int64(len(font) + len(files["/site.css"]) + len(files["/bg.png"]) + 8*len(files["/shared0.png"]) + len(files["/own0.png"]))
	now := time.Now().UnixMilli()
	for i := range sessions {
		var imgs []string
		for j := range 8 {
			imgs = append(imgs, fmt.Sprintf(`{"type":2,"id":%d,"tagName":"img","attributes":{"src":"%s/shared%d.png"},"childNodes":[]}`, 20+j, cdn.URL, j))
		}
		imgs = append(imgs, fmt.Sprintf(`{"type":2,"id":30,"tagName":"img","attributes":{"src":"%s/own%d.png"},"childNodes":[]}`, cdn.URL, i))
		snap := fmt.Sprintf(`{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[{"type":2,"id":3,"tagName":"head","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"link","attributes":{"rel":"stylesheet","href":"%s/site.css"},"childNodes":[]}]},{"type":2,"id":5,"tagName":"body","attributes":{},"childNodes":[%s]}]}]}`, cdn.URL, strings.Join(imgs, ","))
		ts := now + int64(i)*1000
		evs := []json.RawMessage{
			json.RawMessage(fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.example/p/%d","width":1280,"height":800}}`, ts, i)),
			json.RawMessage(fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":%s,"initialOffset":{"top":0,"left":0}}}`, ts+1, snap)),
			json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":1,"positions":[{"x":1,"y":1,"id":5,"timeOffset":0}]}}`, ts+500)),
		}
		ingest(b, s, s.WriteKey, fmt.Sprintf("asset-bench-%04d", i), 0, evs)
	}
	// Every session's copies stored.
	dir := filepath.Join(s.DataDir, "blobs", fmt.Sprint(s.ProjectID), "assets")
	want := 8 + sessions + 3
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		n := 0
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
				n++
			}
			return nil
		})
		if n >= want {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d copies stored", n, want)
		}
	}
	var stored int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				stored += fi.Size()
			}
		}
		return nil
	})
	b.ResetTimer()
	var clip int64
	for range b.N {
		r := s.Request(b, http.MethodGet, "/api/v1/sessions/asset-bench-0000/export", nil)
		n, _ := io.Copy(io.Discard, r.Body)
		r.Body.Close()
		clip = n
	}
	b.ReportMetric(float64(stored)/sessions/1024, "KB-stored/session")
	b.ReportMetric(float64(referenced)/1024, "KB-referenced/session")
	b.ReportMetric(float64(stored)/sessions/float64(referenced), "stored/referenced")
	b.ReportMetric(float64(clip)/1024, "KB-offline-clip")
}
