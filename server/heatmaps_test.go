package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// memberCookie logs every request with a cookie in as a member of one
// project (the UI's users are tested in ui/; here only the principal
// matters).
type memberCookie struct{ project int64 }

func (m memberCookie) AuthenticateCookie(r *http.Request) (*Principal, error) {
	if _, err := r.Cookie("member"); err != nil {
		return nil, nil
	}
	return &Principal{Kind: "user", Name: "member", UserID: 7, ProjectIDs: []int64{m.project}}, nil
}

type heatServer struct {
	h        http.Handler
	token    string
	projA    int64
	projB    int64
	sessionA string
}

// eachIndex runs fn as the subtests "sqlite" and "postgres", each on a
// fresh index of that backend with every owner's schema.
func eachIndex(t *testing.T, fn func(t *testing.T, db *index.DB)) {
	t.Helper()
	indextest.Each(t, fn, heatmap.Schema, accounts.Schema, journey.Schema)
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func newHeatServer(t *testing.T, db *index.DB) *heatServer {
	t.Helper()
	ctx := context.Background()
	a, err := db.CreateProject(ctx, "alpha", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.CreateProject(ctx, "beta", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := db.CreateToken(ctx, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	svc, err := heatmap.New(ctx, heatmap.DefaultConfig(), db.SQL(), db, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	const t0 = 1_764_000_000_000
	var sid int64
	err = db.SQL().Write().QueryRow(`INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, device)
		VALUES (?, 'sessionA1', 'v1', ?, ?, ?, 'desktop') RETURNING id`, a.ID, t0, t0, t0).Scan(&sid)
	if err != nil {
		t.Fatal(err)
	}
	page := `{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[
		{"type":2,"id":3,"tagName":"body","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"button","attributes":{"id":"go"},"childNodes":[]}]}]}]}`
	ev := func(typ int, ts int64, data string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"type":%d,"data":%s,"timestamp":%d}`, typ, data, ts))
	}
	events := []json.RawMessage{
		ev(4, t0, `{"href":"https://alpha.test/home","width":1280,"height":800}`),
		ev(2, t0+1, `{"node":`+page+`,"initialOffset":{"top":0,"left":0}}`),
		ev(5, t0+2, `{"tag":"trailmap/doc","payload":{"width":1280,"height":2000}}`),
		ev(3, t0+1000, `{"source":2,"type":2,"id":4,"x":100,"y":100}`),
		ev(3, t0+6000, `{"source":1,"positions":[]}`),
	}
	err = db.SQL().InSharedTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.SQL().Exec(`INSERT INTO session_observed (session_id, observed_count) VALUES (?, 1)`, sid); err != nil {
			return err
		}
		return svc.ObserveBatch(ctx, tx, sid, rrweb.SplitAll(events))
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Addr: "127.0.0.1:0"}, Deps{
		Index:  db,
		Logger: logger,
		Extra:  Extras{Heatmaps: svc, Cookies: memberCookie{project: b.ID}},
	})
	return &heatServer{h: srv.Handler(), token: tok.Value, projA: a.ID, projB: b.ID, sessionA: "sessionA1"}
}

func (s *heatServer) get(t *testing.T, path string, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	switch auth {
	case "token":
		req.Header.Set("Authorization", "Bearer "+s.token)
	case "member":
		req.AddCookie(&http.Cookie{Name: "member", Value: "1"})
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

func TestServer_Heatmaps(t *testing.T) {
	eachIndex(t, func(t *testing.T, db *index.DB) {
		s := newHeatServer(t, db)
		range_ := "&from=2025-11-20&to=2025-11-30"
		seg := func(js string) string { return "&segment=" + url.QueryEscape(js) }
		desktop, mobile := seg(`{"field":"device","op":"eq","value":"desktop"}`), seg(`{"field":"device","op":"eq","value":"mobile"}`)
		tests := []struct {
			name     string
			path     string
			auth     string
			status   int
			code     string // error code, or content type for 200
			contains string
		}{
			{"clicks png", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home&device=desktop&width=1280" + range_, "token", 200, "image/png", ""},
			{"clicks json", "/api/v1/heatmaps/clicks?project=alpha&url=https://alpha.test/home" + range_, "token", 200, "application/json", `"clicks":1`},
			{"element mode", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home&mode=element" + range_, "token", 200, "image/png", ""},
			{"rage mode", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home&mode=rage" + range_, "token", 200, "image/png", ""},
			{"scroll json", "/api/v1/heatmaps/scroll?project=alpha&url=/home" + range_, "token", 200, "application/json", `"pageviews":1`},
			{"scroll png", "/api/v1/heatmaps/scroll.png?project=alpha&url=/home&height=2000" + range_, "token", 200, "image/png", ""},
			{"pages", "/api/v1/heatmaps/pages?project=alpha" + range_, "token", 200, "application/json", `"page":"/home"`},
			{"snapshot", "/api/v1/heatmaps/snapshot?project=alpha&url=/home&width=1280" + range_, "token", 200, "application/json", `"session_id":"sessionA1","url":"https://alpha.test/home"`},
			{"signals", "/api/v1/sessions/sessionA1/signals", "token", 200, "application/json", `"type":"dead_click","time":"2025-11-24T16:00:01Z","offset_ms":1000,"x":100,"y":100`},
			{"segment clicks", "/api/v1/heatmaps/clicks?project=alpha&url=/home" + range_ + desktop, "token", 200, "application/json", `"clicks":1`},
			{"segment clicks none", "/api/v1/heatmaps/clicks?project=alpha&url=/home" + range_ + mobile, "token", 200, "application/json", `"clicks":0`},
			{"segment clicks png", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home&mode=element" + range_ + desktop, "token", 200, "image/png", ""},
			{"segment scroll", "/api/v1/heatmaps/scroll?project=alpha&url=/home" + range_ + mobile, "token", 200, "application/json", `"all_pageviews":0`},
			{"segment scroll png", "/api/v1/heatmaps/scroll.png?project=alpha&url=/home" + range_ + desktop, "token", 200, "image/png", ""},
			{"segment pages", "/api/v1/heatmaps/pages?project=alpha" + range_ + desktop, "token", 200, "application/json", `"page":"/home","pageviews":1,"clicks":1`},
			{"segment pages none", "/api/v1/heatmaps/pages?project=alpha" + range_ + mobile, "token", 200, "application/json", `"pages":[]`},
			{"empty segment", "/api/v1/heatmaps/clicks?project=alpha&url=/home" + range_ + seg(`{}`), "token", 200, "application/json", `"clicks":1`},
			{"project by id", fmt.Sprintf("/api/v1/heatmaps/clicks?project=%d&url=/home", s.projA), "token", 200, "application/json", ""},

			{"unauthenticated", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home", "", 401, "unauthorized", ""},
			{"unauthenticated signals", "/api/v1/sessions/sessionA1/signals", "", 401, "unauthorized", ""},
			{"other project", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home", "member", 403, "forbidden", ""},
			{"other project's session", "/api/v1/sessions/sessionA1/signals", "member", 404, "not_found", ""},
			{"member's own project", "/api/v1/heatmaps/pages", "member", 200, "application/json", `"pages":[]`},
			{"unknown project", "/api/v1/heatmaps/clicks?project=gamma&url=/home", "token", 404, "not_found", ""},
			{"project needed", "/api/v1/heatmaps/clicks?url=/home", "token", 400, "bad_request", "project is required"},
			{"url needed", "/api/v1/heatmaps/clicks.png?project=alpha", "token", 400, "bad_request", "url"},
			{"bad device", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home&device=watch", "token", 400, "bad_request", "device"},
			{"bad mode", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home&mode=fire", "token", 400, "bad_request", "mode"},
			{"bad width", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home&width=wide", "token", 400, "bad_request", "width"},
			{"width out of range", "/api/v1/heatmaps/clicks.png?project=alpha&url=/home&width=99999", "token", 400, "bad_request", "width"},
			{"negative height", "/api/v1/heatmaps/scroll.png?project=alpha&url=/home&height=-5", "token", 400, "bad_request", "height"},
			{"bad from", "/api/v1/heatmaps/clicks?project=alpha&url=/home&from=yesterday", "token", 400, "bad_request", "from"},
			{"to before from", "/api/v1/heatmaps/clicks?project=alpha&url=/home&from=2025-11-20&to=2025-11-10", "token", 400, "bad_request", "to must be after from"},
			{"bad limit", "/api/v1/heatmaps/pages?project=alpha&limit=0", "token", 400, "bad_request", "limit"},
			{"bad segment json", "/api/v1/heatmaps/clicks?project=alpha&url=/home" + seg(`{"field":`), "token", 400, "bad_request", "segment"},
			{"bad segment field", "/api/v1/heatmaps/scroll?project=alpha&url=/home" + seg(`{"field":"shoe_size","op":"eq","value":1}`), "token", 400, "bad_request", ""},
			{"bad segment pages", "/api/v1/heatmaps/pages?project=alpha" + seg(`{"nope":1}`), "token", 400, "bad_request", "segment"},
			{"no snapshot", "/api/v1/heatmaps/snapshot?project=alpha&url=/nowhere", "token", 404, "not_found", "no page views"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec := s.get(t, tt.path, tt.auth)
				if rec.Code != tt.status {
					t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body.String())
				}
				body := rec.Body.Bytes()
				if tt.status == 200 {
					if ct := rec.Header().Get("Content-Type"); !bytes.HasPrefix([]byte(ct), []byte(tt.code)) {
						t.Errorf("content type %q, want %s", ct, tt.code)
					}
					if tt.code == "image/png" {
						if _, err := png.Decode(bytes.NewReader(body)); err != nil {
							t.Errorf("not a PNG: %v", err)
						}
					}
				} else {
					var e apiError
					if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tt.code {
						t.Errorf("error body %s, want code %s", body, tt.code)
					}
				}
				if tt.contains != "" && !bytes.Contains(body, []byte(tt.contains)) {
					t.Errorf("body does not contain %s:\n%.600s", tt.contains, body)
				}
			})
		}
	})
}

var _ Heatmaps = (*heatmap.Service)(nil)
