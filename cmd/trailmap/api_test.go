package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/internal/servertest"
)

// visit builds one session's events: for each page a Meta and a full
// snapshot, then a click, spread over durMS.
func visit(width int, start int64, durMS int64, paths ...string) []json.RawMessage {
	var evs []json.RawMessage
	step := durMS / int64(len(paths))
	for i, p := range paths {
		ts := start + int64(i)*step
		evs = append(evs,
			json.RawMessage(fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.example%s?email=jane@example.com","width":%d,"height":700}}`, ts, p, width)),
			json.RawMessage(fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"tagName":"html","attributes":{},"id":2,"childNodes":[{"type":3,"textContent":"page %s","id":3}]}]},"initialOffset":{"top":0,"left":0}}}`, ts+1, p)),
			json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":3,"x":10,"y":10}}`, ts+step/2)),
			json.RawMessage(fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"viewed","payload":{"path":%q}}}`, ts+step-1, p)),
		)
	}
	return evs
}

func TestSessionsAPI(t *testing.T) {
	s := servertest.Start(t)
	const day = int64(1_764_403_200_000) // 2025-11-29T08:00:00Z
	type sess struct {
		id, visitor string
		width       int
		start, dur  int64
		paths       []string
	}
	all := []sess{
		{"api_mobile_0001", "visitor_a0001", 390, day, 60_000, []string{"/", "/pricing"}},
		{"api_tablet_0001", "visitor_b0001", 800, day + 3_600_000, 10_000, []string{"/blog/post"}},
		{"api_desktop_001", "visitor_c0001", 1280, day + 7_200_000, 300_000, []string{"/", "/pricing", "/checkout"}},
		{"api_desktop_002", "visitor_a0001", 1440, day + 86_400_000, 5_000, []string{"/docs"}},
	}
	for _, x := range all {
		body := map[string]any{"session_id": x.id, "visitor_id": x.visitor, "seq": 0, "events": visit(x.width, x.start, x.dur, x.paths...)}
		if x.id == "api_desktop_002" {
			body["user"] = map[string]any{"id": "user-42", "traits": map[string]any{"plan": "pro"}}
		}
		b, _ := json.Marshal(body)
		if a := post(t, s.URL, s.WriteKey, "", b); a.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %v", x.id, a.Status, a.Body)
		}
	}

	type list struct {
		Sessions []struct {
			ID       string `json:"id"`
			Device   string `json:"device"`
			Duration int64  `json:"duration_ms"`
			EntryURL string `json:"entry_url"`
			UserID   string `json:"user_id"`
		} `json:"sessions"`
		Next string `json:"next_cursor"`
	}
	ids := func(l list) string {
		var out []string
		for _, x := range l.Sessions {
			out = append(out, x.ID)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name, query, want string
	}{
		{"all, newest first", "", "api_desktop_002,api_desktop_001,api_tablet_0001,api_mobile_0001"},
		{"by project name", "project=test", "api_desktop_002,api_desktop_001,api_tablet_0001,api_mobile_0001"},
		{"mobile", "device=mobile", "api_mobile_0001"},
		{"tablet", "device=tablet", "api_tablet_0001"},
		{"desktop", "device=desktop", "api_desktop_002,api_desktop_001"},
		{"visited /pricing", "url=/pricing", "api_desktop_001,api_mobile_0001"},
		{"url substring", "url=checkout", "api_desktop_001"},
		{"visitor", "visitor=visitor_a0001", "api_desktop_002,api_mobile_0001"},
		{"identified user (joins the visitor's earlier session)", "visitor=user-42", "api_desktop_002,api_mobile_0001"},
		{"min duration 59 s", "min_duration=59", "api_desktop_001,api_mobile_0001"},
		{"min duration as duration", "min_duration=2m", "api_desktop_001"},
		{"from", "from=2025-11-29T09:30:00Z", "api_desktop_002,api_desktop_001"},
		{"from/to", "from=2025-11-29T08:30:00Z&to=2025-11-29T10:30:00Z", "api_desktop_001,api_tablet_0001"},
		{"no rage clicks", "has=rage_click", ""},
		{"segment: device in", "segment=" + url.QueryEscape(`{"field":"device","op":"in","value":["mobile","tablet"]}`), "api_tablet_0001,api_mobile_0001"},
		{"segment: identified people", "segment=" + url.QueryEscape(`{"field":"identified","op":"eq","value":true}`), "api_desktop_002,api_mobile_0001"},
		{"segment and filter", "device=mobile&segment=" + url.QueryEscape(`{"not":{"field":"identified","op":"eq","value":true}}`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l list
			s.GetJSON(t, "/api/v1/sessions?"+tc.query, &l)
			if got := ids(l); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		var got []string
		cursor := ""
		for range 10 {
			var l list
			s.GetJSON(t, "/api/v1/sessions?limit=1&cursor="+cursor, &l)
			got = append(got, ids(l))
			if cursor = l.Next; cursor == "" {
				break
			}
		}
		if strings.Join(got, ",") != "api_desktop_002,api_desktop_001,api_tablet_0001,api_mobile_0001" {
			t.Fatalf("pages: %v", got)
		}
	})

	t.Run("redacted and identified", func(t *testing.T) {
		var l list
		s.GetJSON(t, "/api/v1/sessions?visitor=user-42", &l)
		for _, x := range l.Sessions {
			if strings.Contains(x.EntryURL, "jane@") || x.UserID != "user-42" {
				t.Fatalf("%+v", l.Sessions)
			}
		}
	})

	bad := []struct {
		name, query string
		status      int
	}{
		{"bad device", "device=fridge", 400},
		{"bad date", "from=yesterday", 400},
		{"bad limit", "limit=0", 400},
		{"bad cursor", "cursor=!!", 400},
		{"bad has", "has=joy", 400},
		{"bad duration", "min_duration=soon", 400},
		{"unknown project", "project=nope", 404},
		{"bad segment", "segment=" + url.QueryEscape(`{"field":"shoe_size","op":"eq","value":9}`), 400},
		{"segment not JSON", "segment=device", 400},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.Request(t, http.MethodGet, "/api/v1/sessions?"+tc.query, nil)
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body["error"] == nil {
				t.Fatalf("%d %v, want %d with JSON error", resp.StatusCode, body, tc.status)
			}
		})
	}

	t.Run("detail", func(t *testing.T) {
		var d struct {
			ID     string `json:"id"`
			Device string `json:"device"`
			Pages  []struct {
				Path     string `json:"path"`
				URL      string `json:"url"`
				OffsetMS int64  `json:"offset_ms"`
			} `json:"pages"`
			Custom []struct {
				Name string `json:"name"`
			} `json:"custom_events"`
			Clicks int `json:"click_count"`
		}
		s.GetJSON(t, "/api/v1/sessions/api_desktop_001", &d)
		if len(d.Pages) != 3 || d.Pages[1].Path != "/pricing" || d.Pages[1].OffsetMS != 100_000 || d.Clicks != 3 || len(d.Custom) != 3 {
			t.Fatalf("%+v", d)
		}
		if strings.Contains(d.Pages[0].URL, "jane@example.com") {
			t.Fatalf("email not redacted: %s", d.Pages[0].URL)
		}
		resp := s.Request(t, http.MethodGet, "/api/v1/sessions/does_not_exist", nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("missing session: %d", resp.StatusCode)
		}
	})

	checkRange := func(t *testing.T) {
		// From 150 s: the latest snapshot before is page 2 (at 100 s).
		evs := events(t, s, "api_desktop_001", "?from_ms=150000")
		var first []struct {
			Type int   `json:"type"`
			TS   int64 `json:"timestamp"`
		}
		for _, e := range evs {
			var x struct {
				Type int   `json:"type"`
				TS   int64 `json:"timestamp"`
			}
			json.Unmarshal(e, &x)
			first = append(first, x)
		}
		if len(first) != 8 || first[0].Type != 4 || first[1].Type != 2 || first[0].TS != day+7_200_000+100_000 {
			t.Fatalf("from_ms=150000 gave %+v", first)
		}
		evs = events(t, s, "api_desktop_001", "?from_ms=0&to_ms=60000")
		if len(evs) != 3 {
			t.Fatalf("to_ms=60000 gave %d events, want 3", len(evs))
		}
	}
	t.Run("range live", checkRange)
	s.Restart(t)
	t.Run("range stored", checkRange)

	t.Run("accept-encoding", func(t *testing.T) {
		want := events(t, s, "api_desktop_001", "")
		for _, enc := range []string{"gzip", "zstd", "br;q=1, zstd;q=0.5"} {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/v1/sessions/api_desktop_001/events", nil)
			req.Header.Set("Authorization", "Bearer "+s.Token)
			req.Header.Set("Accept-Encoding", enc)
			tr := &http.Transport{DisableCompression: true}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var plain []byte
			switch ce := resp.Header.Get("Content-Encoding"); ce {
			case "gzip":
				zr, _ := gzip.NewReader(bytes.NewReader(raw))
				plain, _ = io.ReadAll(zr)
			case "zstd":
				zr, _ := zstd.NewReader(bytes.NewReader(raw))
				plain, _ = io.ReadAll(zr)
			default:
				t.Fatalf("%s: Content-Encoding %q", enc, ce)
			}
			var got []json.RawMessage
			if err := json.Unmarshal(plain, &got); err != nil {
				t.Fatalf("%s: %v", enc, err)
			}
			sameEvents(t, got, want)
		}
	})

	t.Run("health", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get(s.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", p, resp.StatusCode, b)
			}
			if p == "/metrics" && !bytes.Contains(b, []byte("trailmap_ingest_batches_total")) {
				t.Fatalf("metrics lack ingest counters")
			}
		}
	})
}
