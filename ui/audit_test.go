package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/trailmap/trailmap/internal/browsertest"
)

type auditEntry struct {
	ActorKind string          `json:"actor_kind"`
	Actor     string          `json:"actor"`
	Action    string          `json:"action"`
	Target    string          `json:"target"`
	ProjectID int64           `json:"project_id"`
	IP        string          `json:"ip"`
	Detail    json.RawMessage `json:"detail"`
}

type auditPage struct {
	Entries    []auditEntry `json:"entries"`
	NextCursor string       `json:"next_cursor"`
}

// What people do to the dashboard's data lands in the audit log, with who
// did it and an anonymised address; only admins read it.
func TestAudit_Log(t *testing.T) {
	s := start(t)
	createUser(t, s, "admin@example.com")
	createUser(t, s, "member@example.com", "--projects", "test")
	demo := fixture(t, "player-demo-recording.json")
	ingest(t, s, s.WriteKey, "audit-session-001", 0, demo)
	waitSession(t, s, "audit-session-001", len(demo))

	admin := newClient(t, s)
	if st := admin.login(t, "admin@example.com", "wrong password"); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", st)
	}
	if st := admin.login(t, "admin@example.com", testPassword); st != http.StatusSeeOther {
		t.Fatalf("login: %d", st)
	}
	resp, body := admin.do(t, "POST", "/api/v1/shares", map[string]any{"session_id": "audit-session-001", "start_ms": 0, "end_ms": 5000}, true)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("share: %d %s", resp.StatusCode, body)
	}
	var created struct {
		Share struct{ ID int64 } `json:"share"`
	}
	json.Unmarshal(body, &created)
	if resp, body := admin.do(t, "DELETE", fmt.Sprintf("/api/v1/shares/%d", created.Share.ID), nil, true); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	exp := s.Request(t, http.MethodGet, "/api/v1/sessions/audit-session-001/export", nil)
	exp.Body.Close()
	if exp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d", exp.StatusCode)
	}

	var page auditPage
	s.GetJSON(t, "/api/v1/audit", &page)
	find := func(action string) *auditEntry {
		for i := range page.Entries {
			if page.Entries[i].Action == action {
				return &page.Entries[i]
			}
		}
		t.Errorf("no %s entry in %+v", action, page.Entries)
		return nil
	}
	if e := find("login.failed"); e != nil && (e.ActorKind != "anonymous" || e.Target != "admin@example.com" || e.IP != "127.0.0.0") {
		t.Errorf("failed login entry %+v", e)
	}
	if e := find("login"); e != nil && (e.ActorKind != "user" || e.Actor != "admin@example.com" || e.IP != "127.0.0.0") {
		t.Errorf("login entry %+v", e)
	}
	if e := find("share.create"); e != nil && (e.Actor != "admin@example.com" || e.Target != fmt.Sprintf("share %d", created.Share.ID) || e.ProjectID == 0 || !strings.Contains(string(e.Detail), "audit-session-001")) {
		t.Errorf("share entry %+v", e)
	}
	if e := find("share.revoke"); e != nil && e.Actor != "admin@example.com" {
		t.Errorf("revoke entry %+v", e)
	}
	if e := find("export"); e != nil && (e.ActorKind != "token" || e.Target != "session audit-session-001") {
		t.Errorf("export entry %+v", e)
	}
	if e := find("user.create"); e != nil && (e.ActorKind != "cli" || e.Target != "member@example.com") {
		t.Errorf("CLI entry %+v", e)
	}

	// Filters and paging.
	var shares auditPage
	s.GetJSON(t, "/api/v1/audit?action=share.", &shares)
	if len(shares.Entries) != 2 || shares.Entries[0].Action != "share.revoke" {
		t.Errorf("action prefix: %+v", shares.Entries)
	}
	var seen []string
	cursor := ""
	for range 20 {
		var p auditPage
		s.GetJSON(t, "/api/v1/audit?limit=2&cursor="+cursor, &p)
		for _, e := range p.Entries {
			seen = append(seen, e.Action)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(seen) != len(page.Entries) {
		t.Errorf("paged %d entries, listed %d", len(seen), len(page.Entries))
	}
	for _, bad := range []string{"?limit=0x", "?since=yesterday", "?cursor=%25%25", "?limit=1000"} {
		r := s.Request(t, http.MethodGet, "/api/v1/audit"+bad, nil)
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, r.StatusCode)
		}
	}

	// A member may not read it.
	m := newClient(t, s)
	if st := m.login(t, "member@example.com", testPassword); st != http.StatusSeeOther {
		t.Fatalf("member login: %d", st)
	}
	if resp, body := m.do(t, "GET", "/api/v1/audit", nil, false); resp.StatusCode != http.StatusForbidden {
		t.Errorf("member: %d %s", resp.StatusCode, body)
	}
	if resp, _ := anonymous(t, s, "GET", "/api/v1/audit", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", resp.StatusCode)
	}
}

// The audit page lists the entries for an admin and filters them.
func TestBrowser_AuditPage(t *testing.T) {
	s := start(t)
	createUser(t, s, "admin@example.com")
	c := newClient(t, s)
	c.login(t, "admin@example.com", "wrong password")
	shots := shotDir(t)
	b := browsertest.Start(t, browsertest.WithTimeout(2*time.Minute), browsertest.LoopbackOnly())
	ctx := b.NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	loginInBrowser(t, ctx, s, "admin@example.com")
	run(t, ctx, chromedp.Navigate(s.URL+"/audit"))
	waitFor(t, ctx, "audit rows", `document.querySelectorAll('#audit tbody tr').length >= 3`)
	text := eval[string](t, ctx, `document.querySelector('#audit').innerText`)
	for _, want := range []string{"login.failed", "user.create", "Command line", "127.0.0.0"} {
		if !strings.Contains(text, want) {
			t.Errorf("audit page lacks %q:\n%s", want, text)
		}
	}
	shoot(t, ctx, shots, "13-audit")
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#a-action').value = 'login.failed'`), chromedp.Click("#audit-form button[type=submit]"))
	waitFor(t, ctx, "filtered", `document.querySelectorAll('#audit tbody tr').length === 1`)
	if errs := con.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
