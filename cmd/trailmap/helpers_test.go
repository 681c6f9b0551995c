package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/internal/miniotest"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/servertest"
)

func TestMain(m *testing.M) { miniotest.Main(pgtest.Tests(m)) }

const fixturesDir = "../../../shared/testdata/rrweb-fixtures"

// fixtures returns the rrweb fixture files by name; the test fails loudly if
// shared/ is not beside the repository.
func fixtures(t testing.TB) map[string][]json.RawMessage {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixturesDir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no rrweb fixtures in %s (shared/ must sit beside the repository): %v", fixturesDir, err)
	}
	out := map[string][]json.RawMessage{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var evs []json.RawMessage
		if err := json.Unmarshal(b, &evs); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[filepath.Base(p)] = evs
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// batchBody builds an ingest body.
func batchBody(t testing.TB, session, visitor string, seq int, events []json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"session_id": session, "visitor_id": visitor, "seq": seq, "events": events})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compress(t testing.TB, enc string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch enc {
	case "", "identity":
		return body
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
	case "zstd":
		zw, _ := zstd.NewWriter(&buf)
		zw.Write(body)
		zw.Close()
	default:
		t.Fatalf("unknown encoding %s", enc)
	}
	return buf.Bytes()
}

type ingestAnswer struct {
	Status int
	Body   map[string]any
	Header http.Header
}

// post sends one raw ingest request.
func post(t testing.TB, url, key, enc string, body []byte) ingestAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/ingest", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-Trailmap-Key", key)
	}
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post ingest: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := ingestAnswer{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		t.Fatalf("ingest answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

// events fetches a session's events from the API.
func events(t testing.TB, s *servertest.Server, session, query string) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	s.GetJSON(t, fmt.Sprintf("/api/v1/sessions/%s/events%s", session, query), &out)
	return out
}

// sameEvents compares two event lists semantically (key order and spacing
// may differ; values, order and unknown fields may not).
func sameEvents(t testing.TB, got, want []json.RawMessage) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		var g, w any
		if err := json.Unmarshal(got[i], &g); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		json.Unmarshal(want[i], &w)
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			t.Fatalf("event %d differs:\n got %.300s\nwant %.300s", i, gb, wb)
		}
	}
}
