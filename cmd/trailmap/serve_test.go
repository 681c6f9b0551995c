package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/internal/servertest"
)

func TestParseServe_Retention(t *testing.T) {
	c, err := parseServe(nil, io.Discard)
	if err != nil || c.Retention.MaxAge != 0 {
		t.Fatalf("default: retention %v, %v; want 0 (keep forever)", c.Retention.MaxAge, err)
	}
	if c, err = parseServe([]string{"--retention-days", "30"}, io.Discard); err != nil || c.Retention.MaxAge != 30*24*time.Hour {
		t.Fatalf("--retention-days 30: %v, %v", c.Retention.MaxAge, err)
	}
	t.Setenv("TRAILMAP_RETENTION_DAYS", "90")
	if c, err = parseServe(nil, io.Discard); err != nil || c.Retention.MaxAge != 90*24*time.Hour {
		t.Fatalf("TRAILMAP_RETENTION_DAYS=90: %v, %v", c.Retention.MaxAge, err)
	}
	if _, err = parseServe([]string{"--retention-days", "-1"}, io.Discard); err == nil || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("--retention-days -1: %v, want a usage error about retention", err)
	}
}

// A cluster node needs a PostgreSQL index, a reachable URL and a secret.
func TestParseServe_Cluster(t *testing.T) {
	pg := "postgres://trailmap@127.0.0.1:5432/trailmap"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--advertise-url", "http://10.0.0.5:8080", "--cluster-secret", "0123456789abcdefgh"}, "PostgreSQL"},
		{[]string{"--index-url", pg, "--advertise-url", "10.0.0.5:8080", "--cluster-secret", "0123456789abcdefgh"}, "advertise URL"},
		{[]string{"--index-url", pg, "--advertise-url", "http://10.0.0.5:8080"}, "secret"},
		{[]string{"--index-url", pg, "--advertise-url", "http://10.0.0.5:8080", "--cluster-secret", "0123456789abcdefgh"}, ""},
	} {
		_, err := parseServe(c.args, io.Discard)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q: %v, want an error about %q", c.args, err, c.want)
		}
	}
}

// The heatmap's memory bounds come from --heatmap-sessions and
// --heatmap-dom-nodes (or their environment twins), checked.
func TestParseServe_HeatmapMemory(t *testing.T) {
	c, err := parseServe(nil, io.Discard)
	if err != nil || c.HeatmapSessions != 20000 || c.HeatmapDOMNodes != 3_000_000 {
		t.Fatalf("defaults: %d sessions, %d nodes, %v", c.HeatmapSessions, c.HeatmapDOMNodes, err)
	}
	t.Setenv("TRAILMAP_HEATMAP_DOM_NODES", "30000000")
	if c, err = parseServe([]string{"--heatmap-sessions", "60000"}, io.Discard); err != nil || c.HeatmapSessions != 60000 || c.HeatmapDOMNodes != 30_000_000 {
		t.Fatalf("set: %d sessions, %d nodes, %v", c.HeatmapSessions, c.HeatmapDOMNodes, err)
	}
	for _, bad := range [][]string{{"--heatmap-sessions", "0"}, {"--heatmap-dom-nodes", "1000"}} {
		if _, err := parseServe(bad, io.Discard); err == nil || !strings.Contains(err.Error(), "heatmap") {
			t.Errorf("%q: %v, want an error about the heatmap", bad, err)
		}
	}
}

func TestProjectSettingsCommand(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	cmd := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(ctx, append(args, "--data", data), strings.NewReader(""), &out, io.Discard)
		return out.String(), err
	}
	if _, err := cmd("project", "create", "shop"); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd("project", "settings", "shop"); err != nil || strings.TrimSpace(out) != "{}" {
		t.Fatalf("fresh project: %q, %v", out, err)
	}
	if _, err := cmd("project", "settings", "shop", `{"retention_days": 30, "redact_params": ["iban_no"]}`); err != nil {
		t.Fatal(err)
	}
	out, err := cmd("project", "settings", "shop", `{"retention_days": null, "allow_params": ["utm_source"]}`)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if _, ok := got["retention_days"]; ok || got["redact_params"] == nil || got["allow_params"] == nil {
		t.Errorf("merged settings %v: want retention_days removed, both lists kept", got)
	}
	for _, bad := range []string{`[1]`, `{"retention_days": "x"}`, `{"retention_days": 0}`, `{"redact_params": "iban"}`, `{"allow_params": [""]}`, `not json`} {
		var ue usageError
		if _, err := cmd("project", "settings", "shop", bad); !errors.As(err, &ue) {
			t.Errorf("%s: %v, want a usage error", bad, err)
		}
	}
	if out2, _ := cmd("project", "settings", "shop"); out2 != out {
		t.Errorf("rejected changes were saved: %s, want %s", out2, out)
	}
	if _, err := cmd("project", "settings", "shop", `{"retention_days": 7}`, "--replace"); err != nil {
		t.Fatal(err)
	}
	if out, _ := cmd("project", "settings", "shop"); strings.Contains(out, "redact_params") || !strings.Contains(out, `"retention_days": 7`) {
		t.Errorf("--replace: %s", out)
	}
	var ue usageError
	if _, err := cmd("project", "settings", "nope"); !errors.As(err, &ue) {
		t.Errorf("unknown project: %v, want a usage error", err)
	}
}

// serve --index-url postgres://… runs every feature on PostgreSQL: the
// admin commands and the server share the database, a session ingested
// through the binary is listed, its clicks make the heatmap JSON and its
// pages a funnel. The same run on the embedded SQLite index is the
// reference: both backends answer the same.
func TestServe_IndexURLPostgres(t *testing.T) {
	got := map[string]indexRun{}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			url := ""
			if backend == "postgres" {
				url = pgtest.Shared(t).Database(t)
			}
			got[backend] = runOnIndex(t, url)
		})
	}
	if t.Failed() {
		return
	}
	if !reflect.DeepEqual(got["sqlite"], got["postgres"]) {
		t.Errorf("backends differ:\nsqlite   %+v\npostgres %+v", got["sqlite"], got["postgres"])
	}
}

// indexRun is what runOnIndex saw through the API.
type indexRun struct {
	Sessions    []string // ids, newest first
	Pages       []int    // page counts, same order
	Clicks      int64    // on the heatmap of /pricing
	Pageviews   int64
	Elements    int
	FunnelSteps []int
}

func runOnIndex(t *testing.T, indexURL string) indexRun {
	srv := servertest.StartOn(t, indexURL)
	t0 := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	ev := func(typ int, ts int64, data string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"type":%d,"data":%s,"timestamp":%d}`, typ, data, ts))
	}
	meta := func(ts int64, href string) json.RawMessage {
		return ev(4, ts, fmt.Sprintf(`{"href":%q,"width":1280,"height":800}`, href))
	}
	// html > body > button#buy (node 4)
	full := func(ts int64) json.RawMessage {
		return ev(2, ts, `{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[`+
			`{"type":2,"id":3,"tagName":"body","attributes":{},"childNodes":[`+
			`{"type":2,"id":4,"tagName":"button","attributes":{"id":"buy"},"childNodes":[]}]}]}]},"initialOffset":{"top":0,"left":0}}`)
	}
	click := func(ts int64, x, y int) []json.RawMessage {
		return []json.RawMessage{
			ev(3, ts-50, fmt.Sprintf(`{"source":2,"type":1,"id":4,"x":%d,"y":%d}`, x, y)),
			ev(3, ts, fmt.Sprintf(`{"source":2,"type":2,"id":4,"x":%d,"y":%d}`, x, y)),
		}
	}
	send := func(session, visitor string, seq int, evs ...[]json.RawMessage) {
		t.Helper()
		var all []json.RawMessage
		for _, e := range evs {
			all = append(all, e...)
		}
		if a := post(t, srv.URL, srv.WriteKey, "", batchBody(t, session, visitor, seq, all)); a.Status != http.StatusAccepted {
			t.Fatalf("ingest %s/%d: %d %v", session, seq, a.Status, a.Body)
		}
	}
	one := func(e json.RawMessage) []json.RawMessage { return []json.RawMessage{e} }
	// B (sent first) comes from a client whose User-Agent is not UTF-8 (a
	// header may carry any bytes), and its second batch has a custom event
	// whose name holds an escaped NUL: PostgreSQL's text refused both, and
	// stage 1 stalled on them for every session after.
	bBody := batchBody(t, "sessPgB00001", "visitorPgB1", 0, []json.RawMessage{meta(ms(time.Minute), "https://shop.test/pricing"), full(ms(time.Minute))})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/ingest", bytes.NewReader(bBody))
	req.Header.Set("X-Trailmap-Key", srv.WriteKey)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11) \xff\xfe broken")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ingest with a User-Agent not UTF-8: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	send("sessPgB00001", "visitorPgB1", 1, one(ev(5, ms(time.Minute+time.Second), `{"tag":"odd\u0000name","payload":{}}`)))
	// A: /pricing, three clicks on the button, then /signup. B: /pricing only.
	send("sessPgA00001", "visitorPgA1", 0, one(meta(ms(0), "https://shop.test/pricing")), one(full(ms(0))),
		click(ms(2*time.Second), 100, 200), click(ms(4*time.Second), 104, 204))
	send("sessPgA00001", "visitorPgA1", 1, click(ms(6*time.Second), 108, 208),
		one(meta(ms(10*time.Second), "https://shop.test/signup")), one(full(ms(10*time.Second))))

	project := fmt.Sprint(srv.ProjectID)
	var run indexRun
	deadline := time.Now().Add(30 * time.Second)
	for {
		run = indexRun{}
		var list struct {
			Sessions []struct {
				ID        string `json:"id"`
				PageCount int    `json:"page_count"`
			} `json:"sessions"`
		}
		srv.GetJSON(t, "/api/v1/sessions?project="+project, &list)
		for _, s := range list.Sessions {
			run.Sessions = append(run.Sessions, s.ID)
			run.Pages = append(run.Pages, s.PageCount)
		}
		q := map[string]any{
			"project": project, "from": t0.Add(-time.Hour).Format(time.RFC3339), "to": t0.Add(time.Hour).Format(time.RFC3339),
			"steps": []map[string]string{{"type": "page", "match": "/pricing"}, {"type": "page", "match": "/signup"}},
		}
		body, _ := json.Marshal(q)
		resp := srv.Request(t, http.MethodPost, "/api/v1/funnels/query", body)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("funnel: %d %s", resp.StatusCode, raw)
		}
		var fr struct {
			Steps []struct {
				Count int `json:"count"`
			} `json:"steps"`
		}
		if err := json.Unmarshal(raw, &fr); err != nil {
			t.Fatalf("funnel: %v in %s", err, raw)
		}
		for _, st := range fr.Steps {
			run.FunnelSteps = append(run.FunnelSteps, st.Count)
		}
		// A complete funnel does not mean complete heatmap rows: a funnel
		// query derives a session the observers have not reached yet from
		// its pages. So the heatmap is read once no batch waits for its
		// observers (it is not polled: a map is cached for a while).
		backlog := metric(t, srv, "trailmap_observe_backlog_batches")
		if len(run.Sessions) == 2 && slices.Equal(run.FunnelSteps, []int{2, 1}) && backlog == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within 30 s: want 2 sessions, the funnel [2 1] and no batch waiting for observers; got %+v, %v waiting", run, backlog)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rng := "&from=" + t0.Add(-time.Hour).Format(time.RFC3339) + "&to=" + t0.Add(time.Hour).Format(time.RFC3339)
	var hm struct {
		Clicks    int64             `json:"clicks"`
		Pageviews int64             `json:"pageviews"`
		Elements  []json.RawMessage `json:"elements"`
	}
	srv.GetJSON(t, "/api/v1/heatmaps/clicks?project="+project+"&url=https://shop.test/pricing&width=1280"+rng, &hm)
	run.Clicks, run.Pageviews, run.Elements = hm.Clicks, hm.Pageviews, len(hm.Elements)
	// What the heatmap holds to follow the two sessions: both followed,
	// their pages' DOM mirrored, nothing dropped, every click named.
	if f, n := metric(t, srv, "trailmap_heatmap_sessions_followed"), metric(t, srv, "trailmap_heatmap_dom_nodes"); f != 2 || n == 0 {
		t.Errorf("heatmap memory: %v sessions followed, %v DOM nodes; want 2 and some", f, n)
	}
	if d, c := metric(t, srv, "trailmap_heatmap_dom_dropped_total"), metric(t, srv, "trailmap_heatmap_clicks_without_dom_total"); d != 0 || c != 0 {
		t.Errorf("heatmap memory: %v mirrors dropped, %v clicks without DOM; want none", d, c)
	}
	// A name with an escaped NUL: SQLite stores it, PostgreSQL cannot (a
	// 400 saying so, not a 500).
	nul := srv.Request(t, http.MethodPost, "/api/v1/funnels", []byte(`{"project":`+project+
		`,"name":"a\u0000b","steps":[{"type":"page","match":"/pricing"},{"type":"page","match":"/signup"}]}`))
	nul.Body.Close()
	if nul.StatusCode >= 500 {
		t.Errorf("a funnel named with a NUL: %d", nul.StatusCode)
	}
	if run.Clicks != 3 || run.Pageviews != 2 || run.Elements == 0 {
		t.Errorf("heatmap of /pricing: %d clicks on %d page views, %d elements; want 3 on 2, the button", run.Clicks, run.Pageviews, run.Elements)
	}
	if !slices.Equal(run.Sessions, []string{"sessPgB00001", "sessPgA00001"}) || !slices.Equal(run.Pages, []int{1, 2}) {
		t.Errorf("sessions %v with pages %v, want [sessPgB00001 sessPgA00001] (newest first) with [1 2]", run.Sessions, run.Pages)
	}
	if _, err := os.Stat(filepath.Join(srv.DataDir, "index.db")); indexURL != "" && err == nil {
		t.Errorf("a SQLite index was created in the data directory despite --index-url")
	}
	return run
}
