package server

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/recorder"
)

// A flood of refusals for overload is answered 503 with a Retry-After of
// 1–5 s each, and logged once per refusedLogEvery with the count, not a
// line per request; other server errors are still logged one by one.
func TestServer_RefusedLogged(t *testing.T) {
	var logs bytes.Buffer
	now := time.Unix(1_764_000_000, 0)
	s := New(Config{Addr: "127.0.0.1:0"}, Deps{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Now:    func() time.Time { return now },
	})
	overloaded := fmt.Errorf("%w: 128 ingest requests in progress", recorder.ErrOverloaded)
	answer := func(err error) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		c := s.echo.NewContext(httptest.NewRequest(http.MethodPost, "/api/v1/ingest", nil), rec)
		s.handleError(err, c)
		return rec
	}
	for i := range 1000 {
		rec := answer(overloaded)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"overloaded"`) {
			t.Fatalf("refusal %d: %d %s", i, rec.Code, rec.Body)
		}
		if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 5 {
			t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
		}
	}
	now = now.Add(refusedLogEvery)
	answer(overloaded)
	if n := strings.Count(logs.String(), "ingest refused: overloaded"); n != 2 {
		t.Errorf("%d log lines for 1001 refusals over %s, want 2:\n%s", n, refusedLogEvery, logs.String())
	}
	if !strings.Contains(logs.String(), "refused=1000") {
		t.Errorf("the second line does not count the refusals since the first:\n%s", logs.String())
	}
	answer(errors.New("disk on fire"))
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Error("an internal error was not logged")
	}
}

// A full disk under the write-ahead log is 503 storage_full with a
// Retry-After, not a 500; the message names no path of the data dir, and
// the refusals are logged like those for overload.
func TestServer_StorageFull(t *testing.T) {
	var logs bytes.Buffer
	s := New(Config{Addr: "127.0.0.1:0"}, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	full := fmt.Errorf("log batch: write wal: %w: write /data/wal/0000000000000001.wal: file too large", recorder.ErrStorageFull)
	for range 3 {
		rec := httptest.NewRecorder()
		s.handleError(full, s.echo.NewContext(httptest.NewRequest(http.MethodPost, "/api/v1/ingest", nil), rec))
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"storage_full"`) {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), "/data") {
			t.Errorf("the answer names a path: %s", rec.Body)
		}
		if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 {
			t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
		}
	}
	if n := strings.Count(logs.String(), "ingest refused: storage full"); n != 1 {
		t.Errorf("%d log lines for 3 refusals, want 1:\n%s", n, logs.String())
	}
}

// A path, query, write key or form field that is not UTF-8 once decoded
// is a 400 with a JSON body on every route (PostgreSQL refused such text
// with a 500 before).
func TestServer_NotUTF8(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0"}, Deps{Logger: slog.New(slog.DiscardHandler)})
	for _, tc := range []struct {
		method, target, header, body string
	}{
		{http.MethodGet, "/api/v1/sessions?url=*%FF*", "", ""},
		{http.MethodGet, "/api/v1/sessions/%C3/events", "", ""},
		{http.MethodPost, "/api/v1/ingest?key=%FE", "", ""},
		{http.MethodPost, "/api/v1/ingest", "\xff", ""},
		{http.MethodPost, "/login", "", "email=a%FF%40b.test&password=x"},
	} {
		req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		if tc.header != "" {
			req.Header.Set("X-Trailmap-Key", tc.header)
		}
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		s.echo.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "is not UTF-8") {
			t.Errorf("%s %s: %d %s", tc.method, tc.target, rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	s.echo.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz?x=%C3%A9", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("a UTF-8 query: %d %s", rec.Code, rec.Body)
	}
}
