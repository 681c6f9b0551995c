package ui_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// A 60-minute single-page visit with a full snapshot every 5 minutes (as
// the script's periodic checkouts take them): a share of minutes 30–31
// sends nothing older than the snapshot at 30 min, and of the lead-in only
// what draws the first frame — no custom, mouse or input events before
// its start; the downloaded clip holds the same. Seeking to minute 55 in
// the events API starts at the snapshot of minute 55.
func TestShare_LeadInFromLatestCheckout(t *testing.T) {
	s := start(t)
	createUser(t, s, "admin@example.com")
	const sid = "leadin-session-0001"
	t0 := time.Now().Add(-2 * time.Hour).UnixMilli()
	const minute = int64(60_000)
	var batch []json.RawMessage
	seq, total := 0, 0
	flush := func() {
		if len(batch) > 0 {
			ingest(t, s, s.WriteKey, sid, seq, batch)
			seq++
			total += len(batch)
			batch = nil
		}
	}
	add := func(format string, args ...any) {
		batch = append(batch, json.RawMessage(fmt.Sprintf(format, args...)))
	}
	for ts := t0; ts <= t0+60*minute; ts += 10_000 {
		if (ts-t0)%(5*minute) == 0 {
			if ts > t0 {
				add(`{"type":5,"timestamp":%d,"data":{"tag":"trailmap/checkout","payload":{}}}`, ts)
			}
			add(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/app","width":1280,"height":800}}`, ts)
			add(`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[{"type":2,"id":3,"tagName":"body","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"input","attributes":{"type":"text"},"childNodes":[]}]}]}]},"initialOffset":{"top":0,"left":0}}}`, ts)
		}
		add(`{"type":3,"timestamp":%d,"data":{"source":0,"texts":[],"attributes":[{"id":3,"attributes":{"data-t":"%d"}}],"removes":[],"adds":[]}}`, ts+1, ts)
		add(`{"type":3,"timestamp":%d,"data":{"source":1,"positions":[{"x":10,"y":20,"id":3,"timeOffset":0}]}}`, ts+2)
		add(`{"type":3,"timestamp":%d,"data":{"source":5,"id":4,"text":"***","isChecked":false}}`, ts+3)
		add(`{"type":3,"timestamp":%d,"data":{"source":3,"id":1,"x":0,"y":%d}}`, ts+4, (ts-t0)/1000)
		add(`{"type":5,"timestamp":%d,"data":{"tag":"tick","payload":{"at":%d}}}`, ts+5, ts)
		if len(batch) >= 300 {
			flush()
		}
	}
	flush()
	waitSession(t, s, sid, total)

	admin := newClient(t, s)
	if st := admin.login(t, "admin@example.com", testPassword); st != http.StatusSeeOther {
		t.Fatalf("login: %d", st)
	}
	from, to := 30*minute+15_000, 31*minute+15_000
	resp, body := admin.do(t, "POST", "/api/v1/shares", map[string]any{"session_id": sid, "start_ms": from, "end_ms": to}, true)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("share: %d %s", resp.StatusCode, body)
	}
	var created struct {
		Token string `json:"token"`
	}
	json.Unmarshal(body, &created)

	type ev struct {
		Type int   `json:"type"`
		TS   int64 `json:"timestamp"`
		Data struct {
			Source *int   `json:"source"`
			Tag    string `json:"tag"`
		} `json:"data"`
	}
	check := func(what string, evs []ev) {
		t.Helper()
		if len(evs) < 2 || evs[0].Type != 4 || evs[1].Type != 2 || evs[1].TS != t0+30*minute {
			t.Fatalf("%s starts with %+v, want the snapshot of minute 30", what, evs[:min(len(evs), 2)])
		}
		start := t0 + from
		var kinds = map[string]int{}
		for _, e := range evs {
			if e.TS < t0+30*minute {
				t.Fatalf("%s: an event at %d ms, before the snapshot", what, e.TS-t0)
			}
			if e.TS > t0+to {
				t.Fatalf("%s: an event at %d ms, after the end", what, e.TS-t0)
			}
			if e.TS >= start {
				continue
			}
			switch {
			case e.Type == 5:
				kinds["custom"]++
			case e.Type == 3 && e.Data.Source != nil && (*e.Data.Source == 1 || *e.Data.Source == 5):
				kinds["mouse or input"]++
			case e.Type == 3:
				kinds["draws"]++
			}
		}
		if kinds["custom"] != 0 || kinds["mouse or input"] != 0 || kinds["draws"] == 0 {
			t.Errorf("%s lead-in: %v; want only what draws the page (mutations, scrolls)", what, kinds)
		}
	}
	r, body := anonymous(t, s, "GET", "/s/"+created.Token+"/events", "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("share events: %d", r.StatusCode)
	}
	var shared []ev
	if err := json.Unmarshal(body, &shared); err != nil {
		t.Fatal(err)
	}
	check("share", shared)

	// Seeking late in the player reads from the last checkout on.
	seek := s.Request(t, http.MethodGet, fmt.Sprintf("/api/v1/sessions/%s/events?from_ms=%d", sid, 55*minute+30_000), nil)
	raw, _ := io.ReadAll(seek.Body)
	seek.Body.Close()
	var late []ev
	if err := json.Unmarshal(raw, &late); err != nil {
		t.Fatal(err)
	}
	if len(late) < 2 || late[1].Type != 2 || late[1].TS != t0+55*minute {
		t.Errorf("seek to 55:30 starts at %d ms, want the snapshot of minute 55", late[1].TS-t0)
	}
	var pages struct {
		Pages int `json:"page_count"`
	}
	s.GetJSON(t, "/api/v1/sessions/"+sid, &pages)
	if pages.Pages != 1 {
		t.Errorf("page_count %d, want 1: checkouts are no page views", pages.Pages)
	}
}
