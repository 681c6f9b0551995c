package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/recorder"
)

func scriptServer(t *testing.T, sc *recorder.Script, err error) http.Handler {
	t.Helper()
	s := &Server{log: slog.New(slog.DiscardHandler)}
	e := echo.New()
	e.HTTPErrorHandler = s.handleError
	latest, pinned := s.scriptHandlers(sc, err)
	e.Match(scriptMethods, "/recorder.js", latest)
	e.Match(scriptMethods, "/recorder.:version", pinned)
	return e
}

func TestServer_Script(t *testing.T) {
	js := []byte("(()=>{window.x=1})();")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(js)
	zw.Close()
	sc := &recorder.Script{JS: js, Gzip: gz.Bytes(), Hash: "0123456789abcdef", ETag: `"0123456789abcdef"`}
	h := scriptServer(t, sc, nil)

	tests := []struct {
		name         string
		method       string
		path         string
		header       map[string]string
		wantStatus   int
		wantCache    string
		wantEncoding string
	}{
		{"plain", "", "/recorder.js", nil, 200, "public, max-age=300", ""},
		{"head", http.MethodHead, "/recorder.js", nil, 200, "public, max-age=300", ""},
		{"gzip", "", "/recorder.js", map[string]string{"Accept-Encoding": "br, gzip"}, 200, "public, max-age=300", "gzip"},
		{"gzip refused", "", "/recorder.js", map[string]string{"Accept-Encoding": "gzip;q=0"}, 200, "public, max-age=300", ""},
		{"not modified", "", "/recorder.js", map[string]string{"If-None-Match": `W/"x", "0123456789abcdef"`}, 304, "public, max-age=300", ""},
		{"stale etag", "", "/recorder.js", map[string]string{"If-None-Match": `"other"`}, 200, "public, max-age=300", ""},
		{"versioned", "", "/recorder.0123456789abcdef.js", nil, 200, "public, max-age=31536000, immutable", ""},
		{"old version", "", "/recorder.ffffffffffffffff.js", nil, 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if rec.Code == 404 {
				return
			}
			if got := rec.Header().Get("Cache-Control"); got != tt.wantCache {
				t.Errorf("Cache-Control %q, want %q", got, tt.wantCache)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q", got)
			}
			if got := rec.Header().Get("ETag"); got != sc.ETag {
				t.Errorf("ETag %q", got)
			}
			if got := rec.Header().Get("Content-Encoding"); got != tt.wantEncoding {
				t.Errorf("Content-Encoding %q, want %q", got, tt.wantEncoding)
			}
			if rec.Code != 200 || method == http.MethodHead {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			body := rec.Body.Bytes()
			if tt.wantEncoding == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				body, _ = io.ReadAll(zr)
			}
			if !bytes.Equal(body, js) {
				t.Fatalf("body %q", body)
			}
		})
	}
}

func TestServer_ScriptNotBuilt(t *testing.T) {
	h := scriptServer(t, nil, recorder.ErrScriptNotBuilt)
	for _, path := range []string{"/recorder.js", "/recorder.0123456789abcdef.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body apiError
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusServiceUnavailable || body.Error.Code != "not_built" {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}

func TestServer_ScriptEmbedded(t *testing.T) {
	sc, err := recorder.LoadScript()
	if err != nil {
		t.Fatalf("%v (run make js)", err)
	}
	h := scriptServer(t, sc, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/recorder."+sc.Hash+".js", nil))
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), sc.JS) {
		t.Fatalf("status %d, %d bytes", rec.Code, rec.Body.Len())
	}
}
