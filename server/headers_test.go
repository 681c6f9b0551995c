package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/storage/index/indextest"
)

type failingCheck struct{ err error }

func (f failingCheck) Ready(context.Context) error { return f.err }

// API answers are not sniffed or cached; /metrics answers loopback or a
// token; /readyz names failing checks without their error text.
func TestServer_HardenedEndpoints(t *testing.T) {
	ctx := context.Background()
	db := indextest.New(t)
	created, err := db.CreateToken(ctx, "ops", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok := created.Value
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "trailmap_test_total", Help: "x"}))
	s := New(Config{Addr: "127.0.0.1:0"}, Deps{
		Index:    db,
		Registry: reg,
		Ready:    map[string]Checker{"blobs": failingCheck{errors.New("dial tcp 10.1.2.3:9000: secret-bucket unreachable")}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	do := func(path, remote, auth string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = remote
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	tests := []struct {
		name         string
		path, remote string
		auth         string
		hdr          []string
		status       int
		nosniff      bool
		noStore      bool
	}{
		{name: "api ok", path: "/api/v1/projects", remote: "203.0.113.9:5000", auth: tok, status: 200, nosniff: true, noStore: true},
		{name: "api unauthorised", path: "/api/v1/projects", remote: "203.0.113.9:5000", status: 401, nosniff: true, noStore: true},
		{name: "metrics from loopback", path: "/metrics", remote: "127.0.0.1:5000", status: 200, nosniff: true},
		{name: "metrics from ::1", path: "/metrics", remote: "[::1]:5000", status: 200, nosniff: true},
		{name: "metrics from afar", path: "/metrics", remote: "203.0.113.9:5000", status: 401},
		{name: "metrics forwarded through a local proxy", path: "/metrics", remote: "127.0.0.1:5000", hdr: []string{"X-Forwarded-For", "203.0.113.9"}, status: 401},
		{name: "metrics from afar with a token", path: "/metrics", remote: "203.0.113.9:5000", auth: tok, status: 200},
		{name: "metrics with a wrong token", path: "/metrics", remote: "203.0.113.9:5000", auth: "nope", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(tt.path, tt.remote, tt.auth, tt.hdr...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.nosniff && rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
			if tt.noStore && !strings.Contains(rec.Header().Get("Cache-Control"), "no-store") {
				t.Errorf("Cache-Control %q", rec.Header().Get("Cache-Control"))
			}
			if tt.status == 401 && !strings.Contains(rec.Body.String(), `"unauthorized"`) {
				t.Errorf("body %s", rec.Body)
			}
		})
	}
	t.Run("readyz hides error text", func(t *testing.T) {
		rec := do("/readyz", "203.0.113.9:5000", "")
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d", rec.Code)
		}
		body := rec.Body.String()
		if strings.Contains(body, "10.1.2.3") || strings.Contains(body, "secret-bucket") || !strings.Contains(body, `"blobs":"unavailable"`) {
			t.Errorf("body %s", body)
		}
	})
}
