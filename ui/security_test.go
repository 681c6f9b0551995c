package ui_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/trailmap/trailmap/internal/servertest"
	"github.com/trailmap/trailmap/ui"
)

// anonymous requests a path with no credentials (or with only a cookie).
func anonymous(t *testing.T, s *servertest.Server, method, path, cookie string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// apiRoutes are the dashboard API routes of the UI work (besides the core ones).
var apiRoutes = []struct{ method, path string }{
	{"GET", "/api/v1/projects"},
	{"GET", "/api/v1/sessions"},
	{"GET", "/api/v1/sessions/demo-session-0001"},
	{"GET", "/api/v1/sessions/demo-session-0001/events"},
	{"GET", "/api/v1/sessions/demo-session-0001/events?from_ms=1000"},
	{"GET", "/api/v1/sessions/demo-session-0001/notes"},
	{"POST", "/api/v1/sessions/demo-session-0001/notes"},
	{"DELETE", "/api/v1/sessions/demo-session-0001/notes/1"},
	{"GET", "/api/v1/sessions/demo-session-0001/export"},
	{"GET", "/api/v1/shares"},
	{"POST", "/api/v1/shares"},
	{"GET", "/api/v1/shares/1"},
	{"DELETE", "/api/v1/shares/1"},
}

func TestSecurity_AnonymousRefused(t *testing.T) {
	s := start(t)
	createUser(t, s, "analyst@example.com")
	demo := fixture(t, "player-demo-recording.json")
	ingest(t, s, s.WriteKey, "demo-session-0001", 0, demo)
	waitSession(t, s, "demo-session-0001", len(demo))

	web, err := ui.NewWeb()
	if err != nil {
		t.Fatal(err)
	}
	for _, cookie := range []string{"", "trailmap_session=forged-or-expired-login"} {
		for _, p := range web.Pages() {
			path := strings.ReplaceAll(p.Path, ":id", "demo-session-0001")
			path = strings.NewReplacer(":", "x").Replace(path)
			resp, _ := anonymous(t, s, "GET", path, cookie)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
				t.Errorf("page %s (cookie %q): %d %s, want 303 to the login", path, cookie, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		for _, r := range apiRoutes {
			resp, body := anonymous(t, s, r.method, r.path, cookie)
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			json.Unmarshal(body, &e)
			if resp.StatusCode != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
				t.Errorf("%s %s (cookie %q): %d %s, want 401 JSON", r.method, r.path, cookie, resp.StatusCode, body)
			}
		}
	}
	// A logged-in user gets the pages; the login page itself is public.
	c := newClient(t, s)
	if st := c.login(t, "analyst@example.com", testPassword); st != http.StatusSeeOther {
		t.Fatalf("login: %d", st)
	}
	for _, p := range web.Pages() {
		path := strings.ReplaceAll(p.Path, ":id", "demo-session-0001")
		resp, _ := c.do(t, "GET", path, nil, false)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("page %s logged in: %d, headers %v", path, resp.StatusCode, resp.Header)
		}
	}
	// Logging out ends the login on the server, not just in the browser.
	old := c.Jar.Cookies(mustURL(s.URL))
	resp, err := c.PostForm(s.URL+"/logout", url.Values{"csrf": {c.csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	var cookie string
	for _, ck := range old {
		if ck.Name == "trailmap_session" {
			cookie = ck.Name + "=" + ck.Value
		}
	}
	if resp, _ := anonymous(t, s, "GET", "/api/v1/sessions", cookie); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old login cookie after logout: %d, want 401", resp.StatusCode)
	}
}

func mustURL(s string) *url.URL {
	u, _ := url.Parse(s)
	return u
}

func TestSecurity_CrossProject(t *testing.T) {
	s := start(t)
	var other struct {
		ID       int64  `json:"id"`
		WriteKey string `json:"write_key"`
	}
	s.Admin(t, &other, "project", "create", "other")
	createUser(t, s, "admin@example.com")
	createUser(t, s, "member@example.com", "--projects", "other")
	demo := fixture(t, "player-demo-recording.json")
	ingest(t, s, s.WriteKey, "secret-session-01", 0, demo)
	ingest(t, s, other.WriteKey, "member-session-01", 0, fixture(t, "example.json"))
	waitSession(t, s, "secret-session-01", len(demo))
	waitSession(t, s, "member-session-01", 6)

	admin := newClient(t, s)
	admin.login(t, "admin@example.com", testPassword)
	resp, body := admin.do(t, "POST", "/api/v1/shares", map[string]any{"session_id": "secret-session-01", "start_ms": 0, "end_ms": 5000}, true)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("admin share: %d %s", resp.StatusCode, body)
	}
	var created struct {
		Share struct{ ID int64 } `json:"share"`
	}
	json.Unmarshal(body, &created)
	resp, body = admin.do(t, "POST", "/api/v1/sessions/secret-session-01/notes", map[string]any{"offset_ms": 1000, "body": "admin note"}, true)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("admin note: %d %s", resp.StatusCode, body)
	}

	m := newClient(t, s)
	if st := m.login(t, "member@example.com", testPassword); st != http.StatusSeeOther {
		t.Fatalf("member login: %d", st)
	}
	_, body = m.do(t, "GET", "/api/v1/sessions", nil, false)
	if !strings.Contains(string(body), "member-session-01") || strings.Contains(string(body), "secret-session-01") {
		t.Fatalf("member's session list: %s", body)
	}
	_, body = m.do(t, "GET", "/api/v1/projects", nil, false)
	if strings.Contains(string(body), s.WriteKey) || !strings.Contains(string(body), other.WriteKey) {
		t.Fatalf("member's projects: %s", body)
	}
	sid := "/api/v1/shares/" + jsonNumber(created.Share.ID)
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/api/v1/sessions/secret-session-01", nil, 404},
		{"GET", "/api/v1/sessions/secret-session-01/events", nil, 404},
		{"GET", "/api/v1/sessions/secret-session-01/events?from_ms=2000", nil, 404},
		{"GET", "/api/v1/sessions/secret-session-01/notes", nil, 404},
		{"POST", "/api/v1/sessions/secret-session-01/notes", map[string]any{"offset_ms": 1, "body": "x"}, 404},
		{"DELETE", "/api/v1/sessions/secret-session-01/notes/1", nil, 404},
		{"GET", "/api/v1/sessions/secret-session-01/export", nil, 404},
		{"POST", "/api/v1/shares", map[string]any{"session_id": "secret-session-01", "start_ms": 0, "end_ms": 1000}, 404},
		{"GET", sid, nil, 404},
		{"DELETE", sid, nil, 404},
		{"GET", "/api/v1/sessions?project=test", nil, 403},
		{"GET", "/api/v1/sessions/member-session-01", nil, 200},
	} {
		resp, body := m.do(t, c.method, c.path, c.body, true)
		if resp.StatusCode != c.want {
			t.Errorf("member %s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.want)
		}
	}
	_, body = m.do(t, "GET", "/api/v1/shares", nil, false)
	if strings.Contains(string(body), "secret-session-01") {
		t.Errorf("member sees another project's share links: %s", body)
	}
	// The admin's link still works: the member could not revoke it.
	_, body = admin.do(t, "GET", sid, nil, false)
	if !strings.Contains(string(body), `"state":"active"`) {
		t.Errorf("share after the member's attempts: %s", body)
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestSecurity_CSRF(t *testing.T) {
	s := start(t)
	createUser(t, s, "analyst@example.com")
	demo := fixture(t, "player-demo-recording.json")
	ingest(t, s, s.WriteKey, "demo-session-0001", 0, demo)
	waitSession(t, s, "demo-session-0001", len(demo))
	c := newClient(t, s)
	c.login(t, "analyst@example.com", testPassword)
	if c.csrf == "" {
		t.Fatal("no csrf token on the page")
	}
	share := map[string]any{"session_id": "demo-session-0001", "start_ms": 0, "end_ms": 5000}
	note := map[string]any{"offset_ms": 10, "body": "hi"}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		header string
		origin string
		want   int
	}{
		{"share without token", "POST", "/api/v1/shares", share, "", "", 403},
		{"share with a wrong token", "POST", "/api/v1/shares", share, "0123456789abcdef0123456789abcdef", "", 403},
		{"share from another site", "POST", "/api/v1/shares", share, "ok", "https://evil.example", 403},
		{"note without token", "POST", "/api/v1/sessions/demo-session-0001/notes", note, "", "", 403},
		{"revoke without token", "DELETE", "/api/v1/shares/1", nil, "", "", 403},
		{"share with the token", "POST", "/api/v1/shares", share, "ok", s.URL, 201},
		{"note with the token", "POST", "/api/v1/sessions/demo-session-0001/notes", note, "ok", "", 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := json.Marshal(tc.body)
			req, _ := http.NewRequest(tc.method, s.URL+tc.path, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			switch tc.header {
			case "ok":
				req.Header.Set("X-CSRF-Token", c.csrf)
			case "":
			default:
				req.Header.Set("X-CSRF-Token", tc.header)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
	t.Run("logout without token", func(t *testing.T) {
		resp, err := c.PostForm(s.URL+"/logout", url.Values{})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("logout without csrf: %d", resp.StatusCode)
		}
		if resp, _ := c.do(t, "GET", "/api/v1/sessions", nil, false); resp.StatusCode != http.StatusOK {
			t.Fatalf("still logged in after a forged logout? %d", resp.StatusCode)
		}
	})
	t.Run("login without the form's token", func(t *testing.T) {
		fresh := newClient(t, s)
		resp, err := fresh.PostForm(s.URL+"/login", url.Values{"email": {"analyst@example.com"}, "password": {testPassword}, "csrf": {"guess"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) == 0 || resp.Cookies()[0].Name == "trailmap_session" {
			t.Fatalf("login without csrf cookie: %d %v", resp.StatusCode, resp.Cookies())
		}
	})
	t.Run("cookie flags", func(t *testing.T) {
		fresh := newClient(t, s)
		resp, _ := fresh.Get(s.URL + "/login")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tok := csrfField.FindSubmatch(b)[1]
		resp, err := fresh.PostForm(s.URL+"/login", url.Values{"email": {"analyst@example.com"}, "password": {testPassword}, "csrf": {string(tok)}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var found bool
		for _, ck := range resp.Cookies() {
			if ck.Name == "trailmap_session" {
				found = true
				if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
					t.Fatalf("session cookie %+v", ck)
				}
			}
		}
		if !found {
			t.Fatal("no session cookie")
		}
	})
}

func TestSecurity_SecureCookies(t *testing.T) {
	s := start(t, "--secure-cookies")
	createUser(t, s, "analyst@example.com")
	c := newClient(t, s)
	resp, _ := c.Get(s.URL + "/login")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := csrfField.FindSubmatch(b)[1]
	resp, err := c.PostForm(s.URL+"/login", url.Values{"email": {"analyst@example.com"}, "password": {testPassword}, "csrf": {string(tok)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "trailmap_session" && !ck.Secure {
			t.Fatalf("session cookie not Secure with --secure-cookies: %+v", ck)
		}
	}
}

func TestSecurity_LoginRateLimit(t *testing.T) {
	s := start(t)
	createUser(t, s, "analyst@example.com")
	c := newClient(t, s)
	var codes []int
	for range 7 {
		codes = append(codes, c.login(t, "analyst@example.com", "wrong password"))
	}
	if codes[0] != http.StatusUnauthorized || codes[len(codes)-1] != http.StatusTooManyRequests {
		t.Fatalf("wrong passwords for one email: %v, want 401s then 429", codes)
	}
	// Limited, even the right password waits.
	if st := c.login(t, "analyst@example.com", testPassword); st != http.StatusTooManyRequests {
		t.Fatalf("right password while limited: %d, want 429", st)
	}
	// Many emails from one address are limited too.
	codes = nil
	for i := range 12 {
		codes = append(codes, c.login(t, "guess"+jsonNumber(int64(i))+"@example.com", "whatever1"))
	}
	if codes[len(codes)-1] != http.StatusTooManyRequests {
		t.Fatalf("guessing emails from one IP: %v, want 429 at the end", codes)
	}
	// Retry-After is set.
	resp, _ := c.Get(s.URL + "/login")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := csrfField.FindSubmatch(b)[1]
	resp, err := c.PostForm(s.URL+"/login", url.Values{"email": {"x@example.com"}, "password": {"y"}, "csrf": {string(tok)}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "Too many login attempts") {
		t.Fatalf("limited login: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestSecurity_ShareTokens(t *testing.T) {
	s := start(t)
	demo := fixture(t, "player-demo-recording.json")
	ingest(t, s, s.WriteKey, "demo-session-0001", 0, demo)
	waitSession(t, s, "demo-session-0001", len(demo))

	// Bad input to the shares API: 4xx with a JSON error.
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{"not JSON", `{`, 400},
		{"missing fields", `{}`, 400},
		{"end before start", `{"session_id":"demo-session-0001","start_ms":5000,"end_ms":1000}`, 400},
		{"negative start", `{"session_id":"demo-session-0001","start_ms":-1,"end_ms":1000}`, 400},
		{"past expiry", `{"session_id":"demo-session-0001","start_ms":0,"end_ms":1000,"expires_at":"2001-01-01T00:00:00Z"}`, 400},
		{"negative expiry", `{"session_id":"demo-session-0001","start_ms":0,"end_ms":1000,"expires_in_days":-2}`, 400},
		{"long title", `{"session_id":"demo-session-0001","start_ms":0,"end_ms":1000,"title":"` + strings.Repeat("t", 201) + `"}`, 400},
		{"unknown session", `{"session_id":"nope-nope-nope","start_ms":0,"end_ms":1000}`, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.Request(t, "POST", "/api/v1/shares", []byte(tc.body))
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if resp.StatusCode != tc.want || json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
				t.Fatalf("%d %s, want %d with a JSON error", resp.StatusCode, b, tc.want)
			}
		})
	}
	if resp := s.Request(t, "DELETE", "/api/v1/shares/abc", nil); resp.StatusCode != 400 {
		t.Fatalf("DELETE /api/v1/shares/abc: %d", resp.StatusCode)
	}

	resp := s.Request(t, "POST", "/api/v1/shares", []byte(`{"session_id":"demo-session-0001","start_ms":1000,"end_ms":9000,"title":"T"}`))
	var created struct {
		Token string
		URL   string
		Share struct {
			ID    int64
			Hint  string
			State string
		}
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 201 || len(created.Token) < 32 || created.Share.Hint != created.Token[:4] || created.Share.State != "active" {
		t.Fatalf("create share: %d %+v", resp.StatusCode, created)
	}

	// Wrong tokens: all the same 404, whatever they look like.
	var first []byte
	for _, tok := range []string{
		created.Token[:len(created.Token)-1] + "A", // one character off
		strings.Repeat("A", len(created.Token)),
		"x", "..%2F..%2Fapi%2Fv1%2Fsessions", strings.Repeat("z", 300),
		strings.ToUpper(created.Token),
	} {
		if tok == created.Token {
			continue
		}
		r, body := anonymous(t, s, "GET", "/s/"+tok, "")
		if r.StatusCode != http.StatusNotFound {
			t.Fatalf("/s/%s: %d", tok, r.StatusCode)
		}
		if first == nil {
			first = body
		} else if !bytes.Equal(first, body) {
			t.Errorf("/s/%s answers differently from other unknown tokens", tok)
		}
		if r, _ := anonymous(t, s, "GET", "/s/"+tok+"/events", ""); r.StatusCode != http.StatusNotFound {
			t.Errorf("/s/%s/events: %d", tok, r.StatusCode)
		}
	}
	if r, _ := anonymous(t, s, "GET", "/s/"+created.Token, ""); r.StatusCode != http.StatusOK || r.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("the real token: %d %v", r.StatusCode, r.Header)
	}
	if r, _ := anonymous(t, s, "GET", "/s/"+created.Token+"/embed", ""); !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors *") {
		t.Errorf("embed may not be framed: %v", r.Header)
	}

	// The index keeps a hash of the token, never the token.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.DataDir, "index.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var hash []byte
	var hint string
	if err := db.QueryRow(`SELECT token_hash, token_hint FROM shares WHERE id = ?`, created.Share.ID).Scan(&hash, &hint); err != nil {
		t.Fatal(err)
	}
	if len(hash) != 32 || bytes.Contains(hash, []byte(created.Token)) || hint != created.Token[:4] {
		t.Fatalf("stored token_hash %x hint %q", hash, hint)
	}

	// Revoked: 410, with a page that says so.
	if r := s.Request(t, "DELETE", "/api/v1/shares/"+jsonNumber(created.Share.ID), nil); r.StatusCode != 200 {
		t.Fatalf("revoke: %d", r.StatusCode)
	}
	r, body := anonymous(t, s, "GET", "/s/"+created.Token, "")
	if r.StatusCode != http.StatusGone || !strings.Contains(string(body), "revoked") {
		t.Fatalf("revoked: %d %s", r.StatusCode, body)
	}
}
