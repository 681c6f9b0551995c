package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/audit"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

// changeWatcher is the recorder's side of a settings change: which
// projects were dropped from its cache.
type changeWatcher struct{ changed []int64 }

func (w *changeWatcher) Ingest(context.Context, recorder.Request) (recorder.Result, error) {
	return recorder.Result{}, nil
}
func (w *changeWatcher) RecordingRules(context.Context, string) (recorder.Rules, error) {
	return recorder.Rules{}, nil
}
func (w *changeWatcher) ProjectChanged(id int64) { w.changed = append(w.changed, id) }
func (w *changeWatcher) WriteKeyProject(context.Context, string, string) (int64, error) {
	return 0, recorder.ErrUnknownKey
}
func (w *changeWatcher) MaxBody() int64                 { return 1 << 20 }
func (w *changeWatcher) CaughtUp(context.Context) error { return nil }
func (w *changeWatcher) SessionOf([]byte, string) (string, error) {
	return "", recorder.ErrMalformed
}

type recordingServer struct {
	h       http.Handler
	db      *index.DB
	log     *audit.Log
	rec     *changeWatcher
	token   string
	project *index.Project
}

func newRecordingServer(t *testing.T) *recordingServer {
	t.Helper()
	ctx := context.Background()
	db := indextest.New(t, audit.Schema)
	p, err := db.CreateProject(ctx, "shop", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetProjectSettings(ctx, p.ID, json.RawMessage(`{"retention_days":30}`)); err != nil {
		t.Fatal(err)
	}
	tok, err := db.CreateToken(ctx, "ops", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	al := audit.New(db.SQL(), nil)
	rec := &changeWatcher{}
	s := New(Config{Addr: "127.0.0.1:0"}, Deps{Index: db, Recorder: rec, Logger: slog.New(slog.DiscardHandler),
		Extra: Extras{Audit: al, Cookies: journeyMember{p.ID}}})
	return &recordingServer{h: s.Handler(), db: db, log: al, rec: rec, token: tok.Value, project: p}
}

func (rs *recordingServer) do(t *testing.T, member bool, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if member {
		r.AddCookie(&http.Cookie{Name: "member", Value: "1"})
	} else {
		r.Header.Set("Authorization", "Bearer "+rs.token)
	}
	w := httptest.NewRecorder()
	rs.h.ServeHTTP(w, r)
	return w.Code, w.Body.Bytes()
}

func TestRecordingRulesAPI_Admin(t *testing.T) {
	rs := newRecordingServer(t)
	ctx := context.Background()
	const path = "/api/v1/projects/shop/settings/recording"
	if code, body := rs.do(t, false, "GET", path, ""); code != 200 || string(body) != "{}" {
		t.Fatalf("GET before: %d %s", code, body)
	}
	rules := `{"sample_rate":0.25,"min_duration_ms":10000,"require_interaction":true,"allow_urls":["/shop*"],"deny_urls":["/shop/admin*"],"start_after":{"event":"checkout"},"drop_bots":true}`
	code, body := rs.do(t, false, "PUT", path, rules)
	if code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	// Stored as parsed: the trigger's default buffer filled in.
	want := `{"sample_rate":0.25,"min_duration_ms":10000,"require_interaction":true,"allow_urls":["/shop*"],"deny_urls":["/shop/admin*"],"start_after":{"event":"checkout","buffer_ms":10000},"drop_bots":true}`
	if string(body) != want {
		t.Errorf("PUT answered %s\nwant %s", body, want)
	}
	// By id too; the other settings untouched; what the recorder reads.
	if code, body := rs.do(t, false, "GET", "/api/v1/projects/"+strconv.FormatInt(rs.project.ID, 10)+"/settings/recording", ""); code != 200 || string(body) != want {
		t.Errorf("GET by id: %d %s", code, body)
	}
	p, err := rs.db.ProjectByID(ctx, rs.project.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(p.Settings), `"retention_days":30`) {
		t.Errorf("other settings lost: %s", p.Settings)
	}
	if r, err := recorder.ParseRules(p.Settings); err != nil || !r.DropBots || r.MinDurationMS != 10000 || *r.SampleRate != 0.25 {
		t.Errorf("recorder reads %+v, %v", r, err)
	}
	if len(rs.rec.changed) != 1 || rs.rec.changed[0] != rs.project.ID {
		t.Errorf("recorder told of changes to %v", rs.rec.changed)
	}

	// The audit log says who changed what.
	entries, _, err := rs.log.List(ctx, audit.Filter{Action: "project.settings"})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit entries %+v, %v", entries, err)
	}
	e := entries[0]
	if e.ActorKind != audit.ActorToken || e.Actor != "ops" || e.Target != "shop" || e.ProjectID != rs.project.ID ||
		!strings.Contains(string(e.Detail), `"drop_bots":true`) || strings.Contains(string(e.Detail), "retention_days") {
		t.Errorf("audit entry %+v detail %s", e, e.Detail)
	}

	// {} removes the rules, and only them.
	if code, body := rs.do(t, false, "PUT", path, "{}"); code != 200 || string(body) != "{}" {
		t.Errorf("clear: %d %s", code, body)
	}
	if p, _ := rs.db.ProjectByID(ctx, rs.project.ID); string(p.Settings) != `{"retention_days":30}` {
		t.Errorf("after clearing: %s", p.Settings)
	}
	if entries, _, _ := rs.log.List(ctx, audit.Filter{Action: "project.settings"}); len(entries) != 2 || !strings.Contains(string(entries[0].Detail), `"recording":null`) {
		t.Errorf("clearing not audited: %+v", entries)
	}
}

func TestRecordingRulesAPI_Errors(t *testing.T) {
	rs := newRecordingServer(t)
	const path = "/api/v1/projects/shop/settings/recording"
	for _, tc := range []struct {
		name         string
		member       bool
		method, path string
		body         string
		status       int
		code, field  string
		msg          string
	}{
		{"member reads", true, "GET", path, "", 403, "forbidden", "", "admins"},
		{"member writes", true, "PUT", path, `{"drop_bots":true}`, 403, "forbidden", "", "admins"},
		{"unknown project", false, "GET", "/api/v1/projects/nope/settings/recording", "", 404, "not_found", "", "project"},
		{"sample rate over 1", false, "PUT", path, `{"sample_rate":1.5}`, 400, "invalid_rules", "sample_rate", "between 0 and 1"},
		{"sample rate text", false, "PUT", path, `{"sample_rate":"half"}`, 400, "invalid_rules", "sample_rate", "a number"},
		{"negative duration", false, "PUT", path, `{"min_duration_ms":-1}`, 400, "invalid_rules", "min_duration_ms", "between 0 and"},
		{"empty pattern", false, "PUT", path, `{"allow_urls":["/ok", " "]}`, 400, "invalid_rules", "allow_urls", "1–500 characters"},
		{"deny not a list", false, "PUT", path, `{"deny_urls":"/admin"}`, 400, "invalid_rules", "deny_urls", "list of strings"},
		{"trigger without event or url", false, "PUT", path, `{"start_after":{"buffer_ms":5000}}`, 400, "invalid_rules", "start_after", "event"},
		{"trigger buffer", false, "PUT", path, `{"start_after":{"event":"x","buffer_ms":600000}}`, 400, "invalid_rules", "start_after.buffer_ms", "between 0 and 120000"},
		{"unknown rule", false, "PUT", path, `{"sample":0.5}`, 400, "invalid_rules", "sample", "unknown rule"},
		{"not an object", false, "PUT", path, `[1]`, 400, "invalid_rules", "", "JSON object"},
		{"not JSON", false, "PUT", path, `{"drop_bots":true}, "x": 1`, 400, "invalid_rules", "", "not JSON"},
		{"empty body", false, "PUT", path, ``, 400, "bad_request", "", "JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := rs.do(t, tc.member, tc.method, tc.path, tc.body)
			var e apiError
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%d %s: not a JSON error", code, body)
			}
			if code != tc.status || e.Error.Code != tc.code || e.Error.Field != tc.field || !strings.Contains(e.Error.Message, tc.msg) {
				t.Errorf("%d %+v, want %d %s field %q with %q", code, e.Error, tc.status, tc.code, tc.field, tc.msg)
			}
		})
	}
	// Nothing was stored or audited.
	p, _ := rs.db.ProjectByID(context.Background(), rs.project.ID)
	if string(p.Settings) != `{"retention_days":30}` {
		t.Errorf("settings changed: %s", p.Settings)
	}
	if entries, _, _ := rs.log.List(context.Background(), audit.Filter{Action: "project."}); len(entries) != 0 {
		t.Errorf("audited %+v", entries)
	}
}

// Asset copy settings, next to the recording rules: admins read and
// replace them, other settings stay, bad origins get a 400, members a 403.
func TestAssetSettingsAPI(t *testing.T) {
	rs := newRecordingServer(t)
	ctx := context.Background()
	const path = "/api/v1/projects/shop/settings/assets"
	if code, body := rs.do(t, false, "GET", path, ""); code != 200 || strings.TrimSpace(string(body)) != "{}" {
		t.Fatalf("GET before: %d %s", code, body)
	}
	if code, body := rs.do(t, false, "PUT", path, `{"origins":["https://cdn.shop.example","https://img.shop.example:8443"]}`); code != 200 ||
		string(body) != `{"origins":["https://cdn.shop.example","https://img.shop.example:8443"]}` {
		t.Fatalf("PUT: %d %s", code, body)
	}
	p, _ := rs.db.ProjectByID(ctx, rs.project.ID)
	if !strings.Contains(string(p.Settings), `"retention_days":30`) || !strings.Contains(string(p.Settings), "cdn.shop.example") {
		t.Errorf("settings after PUT: %s", p.Settings)
	}
	if code, body := rs.do(t, false, "GET", path, ""); code != 200 || !strings.Contains(string(body), "img.shop.example:8443") {
		t.Errorf("GET after: %d %s", code, body)
	}
	for _, bad := range []string{`{"origins":["https://cdn.example/path"]}`, `{"origins":["ftp://x"]}`, `{"origins":"x"}`, `nope`, ``} {
		if code, body := rs.do(t, false, "PUT", path, bad); code != 400 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("PUT %q: %d %s", bad, code, body)
		}
	}
	if code, _ := rs.do(t, true, "PUT", path, `{"enabled":false}`); code != 403 {
		t.Errorf("member PUT: %d", code)
	}
	if code, body := rs.do(t, false, "PUT", path, `{}`); code != 200 || string(body) != "{}" {
		t.Errorf("PUT {}: %d %s", code, body)
	}
	p, _ = rs.db.ProjectByID(ctx, rs.project.ID)
	if strings.Contains(string(p.Settings), "assets") {
		t.Errorf("settings after clearing: %s", p.Settings)
	}
}
