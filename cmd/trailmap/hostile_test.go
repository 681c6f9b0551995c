package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

// TestIngest_HostileTimestamps sends events dated far from the server's
// clock, which the write key being public lets anyone do: they are refused
// whole, and the dashboard keeps answering.
func TestIngest_HostileTimestamps(t *testing.T) {
	s := servertest.Start(t, "--max-clock-skew", "10m", "--max-event-age", "168h")
	now := time.Now()
	ev := func(ts int64) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":1,"positions":[]}}`, ts))
	}
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	tests := []struct {
		name   string
		events []json.RawMessage
		status int
	}{
		{"largest JSON-safe integer", []json.RawMessage{ev(1<<53 - 1)}, 400},
		{"year 2100", []json.RawMessage{ev(4102444800000)}, 400},
		{"a day ahead", []json.RawMessage{ev(ms(24 * time.Hour))}, 400},
		{"one bad event among good ones", []json.RawMessage{ev(ms(0)), ev(ms(time.Hour)), ev(ms(0))}, 400},
		{"eight days late", []json.RawMessage{ev(ms(-8 * 24 * time.Hour))}, 400},
		{"1970", []json.RawMessage{ev(1)}, 400},
		{"clock five minutes ahead", []json.RawMessage{ev(ms(5 * time.Minute))}, 202},
		{"six days late (outbox after an outage)", []json.RawMessage{ev(ms(-6 * 24 * time.Hour))}, 202},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			session := fmt.Sprintf("hostile_time_%02d", i)
			a := post(t, s.URL, s.WriteKey, "", batchBody(t, session, "visitor_hostile", 0, tc.events))
			if a.Status != tc.status {
				t.Fatalf("status %d, want %d (%v)", a.Status, tc.status, a.Body)
			}
			resp := s.Request(t, http.MethodGet, "/api/v1/sessions/"+session, nil)
			resp.Body.Close()
			if tc.status == 400 {
				if e, _ := a.Body["error"].(map[string]any); e["code"] != "timestamp_out_of_range" {
					t.Fatalf("error %v, want code timestamp_out_of_range", a.Body)
				}
				if resp.StatusCode != http.StatusNotFound {
					t.Fatalf("refused batch: GET session %d, want 404 (nothing stored)", resp.StatusCode)
				}
			} else if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET session: %d", resp.StatusCode)
			}
		})
	}
	for _, path := range []string{"/api/v1/sessions", "/api/v1/people", "/api/v1/sessions/hostile_time_06"} {
		var out any
		s.GetJSON(t, path, &out) // fails on any status but 200
	}
}

// TestIngest_RedactsEveryURL sends the URLs a page carries, with secrets
// in them, where the browser script and rrweb put them, and reads the
// session back through the API: no secret is stored or served, and what is
// not a secret comes back as sent.
func TestIngest_RedactsEveryURL(t *testing.T) {
	s := servertest.Start(t)
	const (
		secret   = "https://mail.example/inbox?email=jane@example.com&token=SECRET1"
		redacted = "https://mail.example/inbox?email=[redacted]&token=[redacted]"
		jwt      = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlMTIz"
	)
	ts := time.Now().UnixMilli()
	sent := []string{
		`{"type":4,"data":{"href":"https://shop.example/reset/` + jwt + `","width":1280,"height":800},"timestamp":%d}`,
		`{"type":2,"data":{"node":{"type":0,"childNodes":[{"type":2,"tagName":"html","attributes":{},"childNodes":[` +
			`{"type":2,"tagName":"a","attributes":{"href":"` + secret + `"},"childNodes":[{"type":3,"textContent":"` + secret + `","id":4}],"id":3},` +
			`{"type":2,"tagName":"img","attributes":{"src":"https://cdn.example/a.png?X-Amz-Signature=SECRET2&v=1","srcset":"https://cdn.example/a.png?api_key=SECRET3 2x"},"childNodes":[],"id":5}],"id":2}],"id":1},"initialOffset":{"left":0,"top":0}},"timestamp":%d}`,
		`{"type":5,"data":{"tag":"trailmap/page","payload":{"referrer":"` + secret + `","title":"Inbox"}},"timestamp":%d}`,
		`{"type":3,"data":{"source":0,"texts":[],"removes":[],"adds":[],"attributes":[{"id":3,"attributes":{"href":"/login?code=SECRET4"}}]},"timestamp":%d}`,
		`{"type":5,"data":{"tag":"signup","payload":{"from":"/pricing?sessionid=SECRET5","plan":"pro"}},"timestamp":%d}`,
	}
	want := []string{
		`{"type":4,"data":{"href":"https://shop.example/reset/[redacted]","width":1280,"height":800},"timestamp":%d}`,
		`{"type":2,"data":{"node":{"type":0,"childNodes":[{"type":2,"tagName":"html","attributes":{},"childNodes":[` +
			`{"type":2,"tagName":"a","attributes":{"href":"` + redacted + `"},"childNodes":[{"type":3,"textContent":"` + redacted + `","id":4}],"id":3},` +
			`{"type":2,"tagName":"img","attributes":{"src":"https://cdn.example/a.png?X-Amz-Signature=[redacted]&v=1","srcset":"https://cdn.example/a.png?api_key=[redacted] 2x"},"childNodes":[],"id":5}],"id":2}],"id":1},"initialOffset":{"left":0,"top":0}},"timestamp":%d}`,
		`{"type":5,"data":{"tag":"trailmap/page","payload":{"referrer":"` + redacted + `","title":"Inbox"}},"timestamp":%d}`,
		`{"type":3,"data":{"source":0,"texts":[],"removes":[],"adds":[],"attributes":[{"id":3,"attributes":{"href":"/login?code=[redacted]"}}]},"timestamp":%d}`,
		`{"type":5,"data":{"tag":"signup","payload":{"from":"/pricing?sessionid=[redacted]","plan":"pro"}},"timestamp":%d}`,
	}
	var evs, wantEvs []json.RawMessage
	for i := range sent {
		evs = append(evs, json.RawMessage(fmt.Sprintf(sent[i], ts+int64(i))))
		wantEvs = append(wantEvs, json.RawMessage(fmt.Sprintf(want[i], ts+int64(i))))
	}
	const session = "hostile_urls_session"
	if a := post(t, s.URL, s.WriteKey, "gzip", compress(t, "gzip", batchBody(t, session, "visitor_hostile", 0, evs))); a.Status != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", a.Status, a.Body)
	}
	check := func(t *testing.T) {
		sameEvents(t, events(t, s, session, ""), wantEvs)
		for _, path := range []string{"/api/v1/sessions/" + session + "/events", "/api/v1/sessions/" + session, "/api/v1/sessions"} {
			resp := s.Request(t, http.MethodGet, path, nil)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, leak := range []string{"SECRET", "jane@example.com", jwt} {
				if strings.Contains(string(body), leak) {
					t.Errorf("GET %s serves %q: %.300s", path, leak, body)
				}
			}
		}
	}
	t.Run("live", check)
	s.Restart(t) // stored in segments
	t.Run("stored", check)
}
