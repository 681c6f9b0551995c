package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/storage/index"
)

// TestListSessions_Segment checks that ?segment= reaches the sessions list
// as a typed condition, including one on journey's own data (searches).
func TestListSessions_Segment(t *testing.T) {
	eachIndex(t, testListSessionsSegment)
}

func testListSessionsSegment(t *testing.T, db *index.DB) {
	ctx := context.Background()
	p, err := db.CreateProject(ctx, "alpha", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := db.CreateToken(ctx, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC).UnixMilli()
	for i, s := range []struct{ id, device, url string }{
		{"s-search-mobile", "mobile", "https://shop.test/search?q=red+shoes"},
		{"s-search-desktop", "desktop", "https://shop.test/search?q=boots"},
		{"s-plain-mobile", "mobile", "https://shop.test/pricing"},
	} {
		at := start + int64(i)*60000
		var row int64
		err := db.SQL().Write().QueryRowContext(ctx, `INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, closed, device, entry_url)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) RETURNING id`, p.ID, s.id, "v-"+s.id, at, at+1000, at+1000, s.device, s.url).Scan(&row)
		if err != nil {
			t.Fatal(err)
		}
		path, _, _ := strings.Cut(strings.TrimPrefix(s.url, "https://shop.test"), "?")
		if _, err := db.SQL().Write().ExecContext(ctx, `INSERT INTO pages (session_id, ts, url, path) VALUES (?, ?, ?, ?)`, row, at, s.url, path); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := journey.New(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if _, err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	h := New(Config{Addr: "127.0.0.1:0"}, Deps{Index: db, Logger: slog.New(slog.DiscardHandler),
		Extra: Extras{Segments: svc}}).Handler()

	for _, tc := range []struct {
		name, segment string
		status        int
		want          string // public ids, sorted
	}{
		{"none", ``, 200, "s-plain-mobile s-search-desktop s-search-mobile"},
		{"empty", `{}`, 200, "s-plain-mobile s-search-desktop s-search-mobile"},
		{"device", `{"field":"device","value":"mobile"}`, 200, "s-plain-mobile s-search-mobile"},
		{"searched", `{"field":"search","op":"exists","value":true}`, 200, "s-search-desktop s-search-mobile"},
		{"searched and mobile", `{"and":[{"field":"search","op":"contains","value":"shoe"},{"field":"device","value":"mobile"}]}`, 200, "s-search-mobile"},
		{"not searched", `{"field":"search","op":"exists","value":false}`, 200, "s-plain-mobile"},
		{"bad field", `{"field":"color","value":"red"}`, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/api/v1/sessions?project=alpha"
			if tc.segment != "" {
				path += "&segment=" + url.QueryEscape(tc.segment)
			}
			r := httptest.NewRequest("GET", path, nil)
			r.Header.Set("Authorization", "Bearer "+tok.Value)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.status)
			}
			if tc.status != http.StatusOK {
				return
			}
			var out struct {
				Sessions []struct {
					ID string `json:"id"`
				} `json:"sessions"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range out.Sessions {
				got = append(got, s.ID)
			}
			sort.Strings(got)
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}
