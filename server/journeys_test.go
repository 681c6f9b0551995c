package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/storage/index"
)

// journeyMember logs every request with a "member" cookie in as a user who
// may see one project.
type journeyMember struct{ project int64 }

func (m journeyMember) AuthenticateCookie(r *http.Request) (*Principal, error) {
	if _, err := r.Cookie("member"); err != nil {
		return nil, nil
	}
	return &Principal{Kind: "user", Name: "member", UserID: 9, ProjectIDs: []int64{m.project}}, nil
}

type journeyServer struct {
	h            http.Handler
	token        string
	alpha, beta  int64
	betaFunnel   int64
	betaAudience int64
}

func newJourneyServer(t *testing.T, db *index.DB) *journeyServer {
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
	svc, err := journey.New(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	f, err := svc.CreateFunnel(ctx, b.ID, "beta funnel", journey.FunnelDef{Steps: []journey.Step{{Type: "page", Match: "/"}}})
	if err != nil {
		t.Fatal(err)
	}
	au, err := svc.CreateAudience(ctx, journey.Audience{ProjectID: b.ID, Name: "everyone"})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Addr: "127.0.0.1:0"}, Deps{Index: db, Logger: slog.New(slog.DiscardHandler),
		Extra: Extras{People: svc, Funnels: svc, Paths: svc, Intent: svc, Stages: svc, Audiences: svc, Segments: svc,
			Cookies: journeyMember{a.ID}}})
	return &journeyServer{h: s.Handler(), token: tok.Value, alpha: a.ID, beta: b.ID, betaFunnel: f.ID, betaAudience: au.ID}
}

func (js *journeyServer) do(t *testing.T, member bool, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if member {
		r.AddCookie(&http.Cookie{Name: "member", Value: "1"})
	} else {
		r.Header.Set("Authorization", "Bearer "+js.token)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	js.h.ServeHTTP(w, r)
	return w.Code, w.Body.Bytes()
}

func TestJourneyAPI_Errors(t *testing.T) {
	eachIndex(t, func(t *testing.T, db *index.DB) {
		js := newJourneyServer(t, db)
		seg := func(s string) string {
			return strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", ":", "%3A", ",", "%2C", " ", "%20").Replace(s)
		}
		for _, tc := range []struct {
			name         string
			member       bool
			method, path string
			body         string
			status       int
			msg          string // part of the error message
		}{
			{"unknown project", false, "GET", "/api/v1/paths?project=gamma&page=/", "", 404, "project"},
			{"other project's paths", true, "GET", "/api/v1/paths?project=beta&page=/", "", 403, "project"},
			{"other project's funnel", true, "GET", "/api/v1/funnels/%[1]d", "", 404, "funnel"},
			{"other project's funnel results", true, "GET", "/api/v1/funnels/%[1]d/results", "", 404, "funnel"},
			{"other project's audience CSV", true, "GET", "/api/v1/audiences/%[2]d/members.csv", "", 404, "audience"},
			{"create funnel in other project", true, "POST", "/api/v1/funnels", `{"project":"beta","name":"x","steps":[{"type":"page","match":"/"}]}`, 403, "project"},
			{"project required with several", false, "GET", "/api/v1/people", "", 400, "project is required"},
			{"bad segment JSON", false, "GET", "/api/v1/people?project=alpha&segment=" + seg(`{"and":`), "", 400, "segment"},
			{"unknown segment field", false, "GET", "/api/v1/paths?project=alpha&page=/&segment=" + seg(`{"field":"color","value":"red"}`), "", 400, `unknown field "color"`},
			{"path without page", false, "GET", "/api/v1/paths?project=alpha", "", 400, "page is required"},
			{"path depth", false, "GET", "/api/v1/paths?project=alpha&page=/&depth=9", "", 400, "depth"},
			{"path direction", false, "GET", "/api/v1/paths?project=alpha&page=/&direction=up", "", 400, "direction"},
			{"path relative page", false, "GET", "/api/v1/paths?project=alpha&page=pricing", "", 400, "must start with /"},
			{"bad time", false, "GET", "/api/v1/paths?project=alpha&page=/&from=yesterday", "", 400, "from"},
			{"to before from", false, "GET", "/api/v1/journey/search-terms?project=alpha&from=2026-03-02&to=2026-03-01", "", 400, "after"},
			{"funnel without steps", false, "POST", "/api/v1/funnels", `{"project":"alpha","name":"x","steps":[]}`, 400, "1 to 12 steps"},
			{"funnel bad step type", false, "POST", "/api/v1/funnels", `{"project":"alpha","name":"x","steps":[{"type":"click","match":"/"}]}`, 400, "step 1"},
			{"funnel unknown field", false, "POST", "/api/v1/funnels", `{"project":"alpha","name":"x","stpes":[]}`, 400, "unknown field"},
			{"funnel no name", false, "POST", "/api/v1/funnels", `{"project":"alpha","steps":[{"type":"page","match":"/"}]}`, 400, "name"},
			{"funnel bad window", false, "POST", "/api/v1/funnels/query", `{"project":"alpha","steps":[{"type":"page","match":"/"}],"window":"soon"}`, 400, "duration"},
			{"funnel not JSON", false, "POST", "/api/v1/funnels/query", `steps`, 400, "body"},
			{"funnel bad split", false, "POST", "/api/v1/funnels/query", `{"project":"alpha","steps":[{"type":"page","match":"/"}],"split":"shoe size"}`, 400, "split"},
			{"funnel sessions without step", false, "POST", "/api/v1/funnels/query/sessions", `{"project":"alpha","steps":[{"type":"page","match":"/"}]}`, 400, "step is required"},
			{"funnel sessions dropped at last step", false, "POST", "/api/v1/funnels/query/sessions", `{"project":"alpha","steps":[{"type":"page","match":"/"}],"step":1,"status":"dropped"}`, 400, "last step"},
			{"funnel id", false, "GET", "/api/v1/funnels/abc", "", 400, "id"},
			{"missing funnel", false, "GET", "/api/v1/funnels/999", "", 404, "funnel"},
			{"person id", false, "GET", "/api/v1/people/someone?project=alpha", "", 400, "person id"},
			{"missing person", false, "GET", "/api/v1/people/u:nobody?project=alpha", "", 404, "person"},
			{"settings", false, "PUT", "/api/v1/journey/settings?project=alpha", `{"search_params":["a=b"]}`, 400, "search parameter"},
			{"audience segment", false, "POST", "/api/v1/audiences", `{"project":"alpha","name":"x","segment":{"field":"visits","op":"gte","value":"many"}}`, 400, "number"},
			{"stage rules", false, "POST", "/api/v1/stages", `{"project":"alpha","name":"x","rules":[]}`, 400, "rules"},
			{"limit", false, "GET", "/api/v1/people?project=alpha&limit=0", "", 400, "limit"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				path := fmt.Sprintf(tc.path, js.betaFunnel, js.betaAudience)
				if !strings.Contains(tc.path, "%[") {
					path = tc.path
				}
				code, body := js.do(t, tc.member, tc.method, path, tc.body)
				var e apiError
				if err := json.Unmarshal(body, &e); err != nil {
					t.Fatalf("%d %s: not a JSON error", code, body)
				}
				if code != tc.status || !strings.Contains(e.Error.Message, tc.msg) {
					t.Errorf("%d %q, want %d with %q", code, e.Error.Message, tc.status, tc.msg)
				}
			})
		}
	})
}

func TestJourneyAPI_SavedObjects(t *testing.T) {
	eachIndex(t, func(t *testing.T, db *index.DB) {
		js := newJourneyServer(t, db)
		code, body := js.do(t, true, "POST", "/api/v1/funnels",
			`{"project":"alpha","name":"checkout","steps":[{"type":"page","match":"/"},{"type":"event","match":"purchase"}],"count_by":"person"}`)
		if code != http.StatusCreated {
			t.Fatalf("create: %d %s", code, body)
		}
		var f journey.Funnel
		if err := json.Unmarshal(body, &f); err != nil {
			t.Fatal(err)
		}
		if f.ProjectID != js.alpha || f.Window != journey.Duration(30*24*time.Hour) || f.Steps[1].Label != "purchase" {
			t.Errorf("created %+v", f)
		}
		if !bytes.Contains(body, []byte(`"window":"30d"`)) {
			t.Errorf("window not written as a duration: %s", body)
		}
		for _, tc := range []struct {
			method, path, body string
			status             int
			contains           string
		}{
			{"GET", "/api/v1/funnels?project=alpha", "", 200, `"name":"checkout"`},
			{"GET", fmt.Sprintf("/api/v1/funnels/%d/results?from=2026-03-01&to=2026-03-02", f.ID), "", 200, `"count_by":"person"`},
			{"GET", fmt.Sprintf("/api/v1/funnels/%d/sessions?step=1&status=dropped&from=2026-03-01&to=2026-03-02", f.ID), "", 200, `"total":0`},
			{"PUT", fmt.Sprintf("/api/v1/funnels/%d", f.ID), `{"name":"renamed","steps":[{"type":"page","match":"/"}]}`, 200, `"name":"renamed"`},
			{"PUT", fmt.Sprintf("/api/v1/funnels/%d", f.ID), `{"project":"beta","name":"moved","steps":[{"type":"page","match":"/"}]}`, 400, "another project"},
			{"GET", "/api/v1/journey/settings?project=alpha", "", 200, `"search_params":["q"]`},
			{"GET", "/api/v1/journey/segment-fields", "", 200, `"visits"`},
			{"POST", "/api/v1/stages", `{"project":"alpha","name":"research","rules":[{"type":"page","match":"/pricing"}]}`, 201, `"position":1`},
			{"GET", "/api/v1/stages/flow?project=alpha", "", 200, `"research"`},
			{"POST", "/api/v1/audiences", `{"project":"alpha","name":"mobile","segment":{"field":"device","value":"mobile"},"window_days":14}`, 201, `"window_days":14`},
			{"GET", "/api/v1/paths?project=alpha&page=/pricing", "", 200, `"nodes":[{"id":0,"level":0,"name":"/pricing"`},
			{"GET", "/api/v1/journey/conversion-stats?project=alpha", "", 200, `"conversion":"event purchase"`},
			{"DELETE", fmt.Sprintf("/api/v1/funnels/%d", f.ID), "", 204, ""},
			{"GET", fmt.Sprintf("/api/v1/funnels/%d", f.ID), "", 404, "not found"},
		} {
			code, body := js.do(t, true, tc.method, tc.path, tc.body)
			if code != tc.status || !bytes.Contains(body, []byte(tc.contains)) {
				t.Errorf("%s %s: %d %s, want %d with %s", tc.method, tc.path, code, body, tc.status, tc.contains)
			}
		}
	})
}
