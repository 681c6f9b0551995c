package journey_test

// End-to-end: batches ingested through the real trailmap binary reach the
// journey tables through the recorder observer, and the API answers with
// them.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
	"github.com/trailmap/trailmap/journey"
)

type batch struct {
	Session string            `json:"session_id"`
	Visitor string            `json:"visitor_id"`
	Seq     int               `json:"seq"`
	Events  []json.RawMessage `json:"events"`
	User    *struct {
		ID string `json:"id"`
	} `json:"user,omitempty"`
}

func meta(ts time.Time, href string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":4,"data":{"href":%q,"width":1280,"height":800},"timestamp":%d}`, href, ts.UnixMilli()))
}

func snapshot(ts time.Time) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":2,"data":{"node":{"type":0,"id":1,"childNodes":[]},"initialOffset":{"left":0,"top":0}},"timestamp":%d}`, ts.UnixMilli()))
}

func custom(ts time.Time, tag, payload string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":5,"data":{"tag":%q,"payload":%s},"timestamp":%d}`, tag, payload, ts.UnixMilli()))
}

func moves(ts time.Time) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":3,"data":{"source":1,"positions":[{"x":1,"y":2,"id":1,"timeOffset":0}]},"timestamp":%d}`, ts.UnixMilli()))
}

func ingest(t *testing.T, srv *servertest.Server, b batch) {
	t.Helper()
	body, _ := json.Marshal(b)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/ingest", bytes.NewReader(body))
	req.Header.Set("X-Trailmap-Key", srv.WriteKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("ingest %s/%d: %d %s", b.Session, b.Seq, resp.StatusCode, msg)
	}
}

func identify(id string) *struct {
	ID string `json:"id"`
} {
	return &struct {
		ID string `json:"id"`
	}{id}
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s; last: %s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func postJSON(t *testing.T, srv *servertest.Server, method, path string, in, out any) int {
	t.Helper()
	body, _ := json.Marshal(in)
	resp := srv.Request(t, method, path, body)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

func TestEndToEnd_IngestToJourneys(t *testing.T) {
	servertest.EachIndex(t, func(t *testing.T, indexURL string) {
		srv := servertest.StartOn(t, indexURL)
		t0 := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
		// Visitor A, desktop, from Google: home, product, cart. Batch 1 arrives
		// before batch 0.
		ingest(t, srv, batch{Session: "sessA0000001", Visitor: "visitorA001", Seq: 1, Events: []json.RawMessage{
			meta(t0.Add(time.Minute), "https://shop.test/product/1"), snapshot(t0.Add(time.Minute)), moves(t0.Add(70 * time.Second)),
		}})
		ingest(t, srv, batch{Session: "sessA0000001", Visitor: "visitorA001", Seq: 0, Events: []json.RawMessage{
			meta(t0, "https://shop.test/?utm_source=google&utm_medium=cpc"), snapshot(t0),
			custom(t0, "trailmap/page", `{"referrer":"https://www.google.com/search?q=shoes","title":"Shop"}`),
			meta(t0.Add(5*time.Second), "https://shop.test/search?q=Red+Shoes"),
		}})
		ingest(t, srv, batch{Session: "sessA0000001", Visitor: "visitorA001", Seq: 2, Events: []json.RawMessage{
			meta(t0.Add(2*time.Minute), "https://shop.test/cart"), snapshot(t0.Add(2 * time.Minute)),
		}})
		// Visitor B, another device, an hour later: buys; identifies in its
		// second batch.
		t1 := t0.Add(time.Hour)
		ingest(t, srv, batch{Session: "sessB0000001", Visitor: "visitorB001", Seq: 0, Events: []json.RawMessage{
			meta(t1, "https://shop.test/cart"), snapshot(t1), custom(t1.Add(30*time.Second), "purchase", `{"total":42}`),
		}})
		ingest(t, srv, batch{Session: "sessB0000001", Visitor: "visitorB001", Seq: 1, User: identify("user-1"),
			Events: []json.RawMessage{moves(t1.Add(40 * time.Second))}})
		// Visitor C: home only. Visitor A again later, identified late (second
		// batch of a later session): its first session joins user-1 too.
		ingest(t, srv, batch{Session: "sessC0000001", Visitor: "visitorC001", Seq: 0, Events: []json.RawMessage{
			meta(t0.Add(10*time.Minute), "https://shop.test/"), snapshot(t0.Add(10 * time.Minute)),
		}})
		t2 := t0.Add(2 * time.Hour)
		ingest(t, srv, batch{Session: "sessA0000002", Visitor: "visitorA001", Seq: 0, Events: []json.RawMessage{
			meta(t2, "https://shop.test/account"), snapshot(t2),
		}})
		ingest(t, srv, batch{Session: "sessA0000002", Visitor: "visitorA001", Seq: 1, User: identify("user-1"),
			Events: []json.RawMessage{moves(t2.Add(time.Second))}})

		project := fmt.Sprint(srv.ProjectID)
		var people journey.PeoplePage
		eventually(t, "one person for A and B", func() (bool, string) {
			srv.GetJSON(t, "/api/v1/people?project="+project, &people)
			var ids []string
			for _, p := range people.People {
				ids = append(ids, p.ID)
			}
			return slices.Equal(ids, []string{"u:user-1", "v:visitorC001"}) && people.People[0].Visits == 3, fmt.Sprint(ids)
		})

		// People come from the core's rows (stage 1); searches and
		// conversions from the observers (stage 2), which follow.
		var person journey.Person
		eventually(t, "the observers' facts of user-1", func() (bool, string) {
			person = journey.Person{}
			srv.GetJSON(t, "/api/v1/people/"+url.PathEscape("u:user-1")+"?project="+project, &person)
			return person.Conversions == 1 && len(person.VisitList) == 3 && len(person.VisitList[0].Searches) == 1,
				fmt.Sprintf("%d conversions, %d visits", person.Conversions, len(person.VisitList))
		})
		var visits []string
		for _, v := range person.VisitList {
			visits = append(visits, v.ID)
		}
		if !slices.Equal(visits, []string{"sessA0000001", "sessB0000001", "sessA0000002"}) {
			t.Fatalf("visits %q", visits)
		}
		first := person.VisitList[0]
		var paths []string
		for _, p := range first.Pages {
			paths = append(paths, p.Path)
		}
		if !slices.Equal(paths, []string{"/", "/search", "/product/1", "/cart"}) || first.Source.ReferrerHost != "google.com" ||
			first.Source.UTMSource != "google" || !slices.Equal(first.Searches, []string{"red shoes"}) || first.Device != "desktop" {
			t.Errorf("first visit: pages %q source %+v searches %q", paths, first.Source, first.Searches)
		}
		if person.VisitList[1].Conversions != 1 || person.Conversions != 1 {
			t.Errorf("conversions: visit %d, person %d", person.VisitList[1].Conversions, person.Conversions)
		}

		// The sessions list's has=conversion filter sees what the observer
		// counted.
		var list struct {
			Sessions []struct {
				ID string `json:"id"`
			} `json:"sessions"`
		}
		srv.GetJSON(t, "/api/v1/sessions?project="+project+"&has=conversion", &list)
		if len(list.Sessions) != 1 || list.Sessions[0].ID != "sessB0000001" {
			t.Errorf("has=conversion: %+v", list.Sessions)
		}

		// A funnel's drop-off opens exactly those sessions' recordings.
		q := map[string]any{
			"project": project, "from": t0.Add(-time.Hour).Format(time.RFC3339), "to": t0.Add(4 * time.Hour).Format(time.RFC3339),
			"steps": []journey.Step{{Type: "page", Match: "/"}, {Type: "page", Match: "/product/*"}, {Type: "page", Match: "/cart"}, {Type: "event", Match: "purchase"}},
		}
		// (Every session's timeline is derived by stage 2, shortly after
		// its batches were acknowledged.)
		var res journey.FunnelResult
		eventually(t, "session funnel [2 1 1 0]", func() (bool, string) {
			res = journey.FunnelResult{}
			if code := postJSON(t, srv, http.MethodPost, "/api/v1/funnels/query", q, &res); code != http.StatusOK {
				t.Fatalf("funnel: %d", code)
			}
			var counts []int
			for _, s := range res.Steps {
				counts = append(counts, s.Count)
			}
			return slices.Equal(counts, []int{2, 1, 1, 0}), fmt.Sprint(counts)
		})
		q["step"], q["status"] = 1, "dropped"
		var dropped journey.SessionPage
		postJSON(t, srv, http.MethodPost, "/api/v1/funnels/query/sessions", q, &dropped)
		if dropped.Total != res.Steps[0].Dropped || len(dropped.Sessions) != 1 || dropped.Sessions[0].ID != "sessC0000001" {
			t.Fatalf("dropped at step 1: %+v", dropped)
		}
		resp := srv.Request(t, http.MethodGet, dropped.Sessions[0].Recording, nil)
		rec, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(rec), `shop.test/`) {
			t.Errorf("recording %s: %d %.200s", dropped.Sessions[0].Recording, resp.StatusCode, rec)
		}

		// Counted per person, A's cart and B's purchase join up.
		q["count_by"], q["window"] = "person", "1d"
		delete(q, "step")
		delete(q, "status")
		postJSON(t, srv, http.MethodPost, "/api/v1/funnels/query", q, &res)
		var counts []int
		for _, s := range res.Steps {
			counts = append(counts, s.Count)
		}
		if !slices.Equal(counts, []int{2, 1, 1, 1}) {
			t.Errorf("person funnel %v, want [2 1 1 1]", counts)
		}

		// Changing the conversion definition recounts sessions.
		var st struct {
			Rebuilding bool `json:"rebuilding"`
		}
		if code := postJSON(t, srv, http.MethodPut, "/api/v1/journey/settings?project="+project,
			journey.Settings{SearchParams: []string{"q"}, ConversionPages: []string{"/account"}}, &st); code != http.StatusOK {
			t.Fatalf("settings: %d", code)
		}
		eventually(t, "conversions recounted", func() (bool, string) {
			srv.GetJSON(t, "/api/v1/sessions?project="+project+"&has=conversion", &list)
			var ids []string
			for _, s := range list.Sessions {
				ids = append(ids, s.ID)
			}
			sort.Strings(ids)
			return slices.Equal(ids, []string{"sessA0000002"}), fmt.Sprint(ids)
		})

		// Audience export.
		var a journey.Audience
		if code := postJSON(t, srv, http.MethodPost, "/api/v1/audiences", map[string]any{
			"project": project, "name": "searchers", "segment": map[string]any{"field": "search", "op": "exists", "value": true},
		}, &a); code != http.StatusCreated {
			t.Fatalf("audience: %d", code)
		}
		resp = srv.Request(t, http.MethodGet, fmt.Sprintf("/api/v1/audiences/%d/members.csv", a.ID), nil)
		csv, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "visitor_id,user_id,last_visit,visits,search_terms\n" +
			"visitorA001,user-1," + t2.Format(time.RFC3339) + ",3,red shoes\n" +
			"visitorB001,user-1," + t2.Format(time.RFC3339) + ",3,red shoes\n"
		if resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || string(csv) != want {
			t.Errorf("csv %s:\n%s\nwant\n%s", resp.Header.Get("Content-Type"), csv, want)
		}
	})
}
