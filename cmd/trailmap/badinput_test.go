package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/trailmap/trailmap/internal/servertest"
)

// TestIngest_BadInput sends every kind of bad request the issue lists and
// checks the status, the JSON error code, and that what was accepted before
// is unchanged.
func TestIngest_BadInput(t *testing.T) {
	s := servertest.Start(t, "--max-body", "65536", "--max-decompressed", "1048576", "--max-events", "100", "--max-event-size", "262144")
	good := fixtures(t)["example.json"]
	const session = "bad_input_session"
	if a := post(t, s.URL, s.WriteKey, "", batchBody(t, session, "visitor_bad", 0, good)); a.Status != http.StatusAccepted {
		t.Fatalf("good batch: %d %v", a.Status, a.Body)
	}
	before := events(t, s, session, "")

	ev := `{"type":3,"timestamp":1,"data":{"source":1}}`
	body := func(fields string) []byte { return []byte("{" + fields + "}") }
	gz := func(b []byte) []byte { return compress(t, "gzip", b) }
	bomb := func() []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zeros := make([]byte, 1<<20)
		for range 64 { // 64 MiB of zeros: ~64 KiB compressed
			zw.Write(zeros)
		}
		zw.Close()
		return buf.Bytes()
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = ev
	}
	tests := []struct {
		name   string
		key    string // "" uses the project's key; "-" sends none
		enc    string
		body   []byte
		status int
		code   string
	}{
		{"malformed JSON", "", "", []byte(`{"session_id": "abc`), 400, "malformed"},
		{"not an object", "", "", []byte(`[1,2,3]`), 400, "malformed"},
		{"events not an array", "", "", body(`"session_id":"bad_input_session","visitor_id":"visitor_bad","seq":5,"events":{}`), 400, "malformed"},
		{"seq is a string", "", "", body(`"session_id":"bad_input_session","visitor_id":"visitor_bad","seq":"5","events":[` + ev + `]`), 400, ""},
		{"seq is fractional", "", "", body(`"session_id":"bad_input_session","visitor_id":"visitor_bad","seq":1.5,"events":[` + ev + `]`), 400, ""},
		{"seq is negative", "", "", body(`"session_id":"bad_input_session","visitor_id":"visitor_bad","seq":-1,"events":[` + ev + `]`), 400, ""},
		{"missing session id", "", "", body(`"visitor_id":"visitor_bad","seq":5,"events":[` + ev + `]`), 400, ""},
		{"missing visitor id", "", "", body(`"session_id":"bad_input_session","seq":5,"events":[` + ev + `]`), 400, ""},
		{"bad session id", "", "", body(`"session_id":"../../etc","visitor_id":"visitor_bad","seq":5,"events":[` + ev + `]`), 400, "invalid_id"},
		{"short session id", "", "", body(`"session_id":"abc","visitor_id":"visitor_bad","seq":5,"events":[` + ev + `]`), 400, "invalid_id"},
		{"event without type", "", "", body(`"session_id":"bad_input_session","visitor_id":"visitor_bad","seq":5,"events":[{"timestamp":1}]`), 400, "malformed"},
		{"event not an object", "", "", body(`"session_id":"bad_input_session","visitor_id":"visitor_bad","seq":5,"events":[42]`), 400, "malformed"},
		{"empty events", "", "", body(`"session_id":"bad_input_session","visitor_id":"visitor_bad","seq":5,"events":[]`), 400, "malformed"},
		{"no key", "-", "", batchBody(t, session, "visitor_bad", 5, good), 401, "unknown_key"},
		{"unknown key", "wk_nope", "", batchBody(t, session, "visitor_bad", 5, good), 401, "unknown_key"},
		{"unknown encoding", "", "br", batchBody(t, session, "visitor_bad", 5, good), 415, "unsupported_encoding"},
		{"wrongly encoded: says gzip, is plain", "", "gzip", batchBody(t, session, "visitor_bad", 5, good), 400, "malformed"},
		{"truncated gzip", "", "gzip", func() []byte { g := gz(batchBody(t, session, "visitor_bad", 5, good)); return g[:len(g)/2] }(), 400, "malformed"},
		{"gzip bomb", "", "gzip", bomb(), 413, "too_large"},
		{"oversized body", "", "", batchBody(t, session, "visitor_bad", 5, []json.RawMessage{json.RawMessage(`{"type":5,"timestamp":1,"data":{"tag":"x","payload":"` + strings.Repeat("a", 70000) + `"}}`)}), 413, "too_large"},
		{"too many events", "", "", body(`"session_id":"bad_input_session","visitor_id":"visitor_bad","seq":5,"events":[` + strings.Join(many, ",") + `]`), 413, "too_many_events"},
		{"event too large", "", "gzip", gz(batchBody(t, session, "visitor_bad", 5, []json.RawMessage{json.RawMessage(`{"type":5,"timestamp":1,"data":{"tag":"x","payload":"` + strings.Repeat("a", 300000) + `"}}`)})), 413, "event_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := s.WriteKey
			switch tc.key {
			case "-":
				key = ""
			case "":
			default:
				key = tc.key
			}
			a := post(t, s.URL, key, tc.enc, tc.body)
			if a.Status != tc.status {
				t.Fatalf("status %d, want %d (%v)", a.Status, tc.status, a.Body)
			}
			e, _ := a.Body["error"].(map[string]any)
			if e == nil || e["message"] == "" {
				t.Fatalf("no JSON error body: %v", a.Body)
			}
			if tc.code != "" && e["code"] != tc.code {
				t.Fatalf("code %v, want %s (%v)", e["code"], tc.code, e["message"])
			}
		})
	}

	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/ingest", bytes.NewReader(batchBody(t, session, "visitor_bad", 5, good)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Trailmap-Key", s.WriteKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d, want 415", resp.StatusCode)
		}
	})

	t.Run("replayed seq", func(t *testing.T) {
		a := post(t, s.URL, s.WriteKey, "", batchBody(t, session, "visitor_bad", 0, good))
		if a.Status != http.StatusAccepted || a.Body["duplicate"] != true {
			t.Fatalf("replayed seq: %d %v, want 202 duplicate", a.Status, a.Body)
		}
	})

	t.Run("concurrent duplicate seq", func(t *testing.T) {
		const n = 16
		var wg sync.WaitGroup
		dups := make(chan bool, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := post(t, s.URL, s.WriteKey, "", batchBody(t, session, "visitor_bad", 1, good))
				if a.Status != http.StatusAccepted {
					t.Errorf("status %d %v", a.Status, a.Body)
				}
				dups <- a.Body["duplicate"] == true
			}()
		}
		wg.Wait()
		close(dups)
		fresh := 0
		for d := range dups {
			if !d {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("%d requests stored seq 1, want exactly 1", fresh)
		}
	})

	t.Run("stored data unchanged", func(t *testing.T) {
		want := append(append([]json.RawMessage{}, before...), good...) // seq 0 + seq 1 once
		got := events(t, s, session, "")
		sameEvents(t, got, want)
		var meta struct {
			Events int `json:"event_count"`
		}
		s.GetJSON(t, "/api/v1/sessions/"+session, &meta)
		if meta.Events != len(want) {
			t.Fatalf("session counts %d events, want %d", meta.Events, len(want))
		}
	})

	t.Run("CORS preflight", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, s.URL+"/api/v1/ingest", nil)
		req.Header.Set("Origin", "https://shop.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,content-encoding,x-trailmap-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") == "" || resp.Header.Get("Access-Control-Max-Age") == "" {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
	})
}

// TestIngest_RateLimit checks 429 with Retry-After once a key goes over its
// rate, and that the accepted batches are intact.
func TestIngest_RateLimit(t *testing.T) {
	s := servertest.Start(t, "--rate-per-key", "2")
	good := fixtures(t)["example.json"]
	limited := 0
	accepted := 0
	for i := range 30 {
		a := post(t, s.URL, s.WriteKey, "", batchBody(t, "rate_limit_session", "visitor_rl", i, good))
		switch a.Status {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			limited++
			if a.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After")
			}
			if e, _ := a.Body["error"].(map[string]any); e["code"] != "rate_limited" {
				t.Fatalf("429 body %v", a.Body)
			}
		default:
			t.Fatalf("status %d %v", a.Status, a.Body)
		}
	}
	if limited == 0 {
		t.Fatal("30 quick batches at 2/s were never limited")
	}
	if got := len(events(t, s, "rate_limit_session", "")); got != accepted*len(good) {
		t.Fatalf("stored %d events, want %d", got, accepted*len(good))
	}
}

// TestDashboard_Auth checks that the dashboard API refuses anonymous and
// wrongly authenticated requests with a JSON 401.
func TestDashboard_Auth(t *testing.T) {
	s := servertest.Start(t)
	for _, path := range []string{"/api/v1/sessions", "/api/v1/sessions/x12345678", "/api/v1/sessions/x12345678/events", "/api/v1/projects"} {
		for _, auth := range []string{"", "Bearer nope", "Basic Zm9vOmJhcg==", "Bearer "} {
			t.Run(fmt.Sprintf("%s %q", path, auth), func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body map[string]any
				json.NewDecoder(resp.Body).Decode(&body)
				if resp.StatusCode != http.StatusUnauthorized || body["error"] == nil {
					t.Fatalf("%d %v, want 401 with JSON error", resp.StatusCode, body)
				}
			})
		}
	}
}
