package ui_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
)

var setupTokenLog = regexp.MustCompile(`setup_token=([A-Za-z0-9_-]+)`)

// setupTokens are the setup tokens logged in logs.
func setupTokens(logs string) []string {
	var out []string
	for _, m := range setupTokenLog.FindAllStringSubmatch(logs, -1) {
		out = append(out, m[1])
	}
	return out
}

// setup posts the setup form (with a fresh anti-forgery token when the
// page is there) and returns the answer's status and Location.
func (c *client) setup(t testing.TB, token, email, password string) (int, string) {
	t.Helper()
	resp, err := c.Get(c.base + "/setup")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := ""
	if m := csrfField.FindSubmatch(b); m != nil {
		csrf = string(m[1])
	}
	resp, err = c.PostForm(c.base+"/setup", url.Values{"token": {token}, "email": {email}, "password": {password}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// status is the status and Location of a GET without following redirects.
func (c *client) status(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := c.Get(c.base + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// A fresh install: the log holds a one-time setup token, the UI leads to
// /setup, a wrong token or bad input makes nobody, the right one makes the
// admin and logs them in, and /setup is gone from then on, also after a
// restart (which prints no token).
func TestSetup_FirstRun(t *testing.T) {
	s := start(t)
	toks := setupTokens(s.Logs())
	if len(toks) != 1 || len(toks[0]) < 22 { // 22 base64 characters: 128 bits
		t.Fatalf("setup tokens in the log: %q, want one of at least 128 bits\n%s", toks, s.Logs())
	}
	token := toks[0]
	if !strings.Contains(s.Logs(), s.URL+"/setup") {
		t.Errorf("the log does not name %s/setup:\n%s", s.URL, s.Logs())
	}

	c := newClient(t, s)
	for _, path := range []string{"/", "/login"} {
		if st, loc := c.status(t, path); st != http.StatusSeeOther || loc != "/setup" {
			t.Errorf("GET %s before setup: %d %q, want 303 to /setup", path, st, loc)
		}
	}
	page := c.get(t, "/setup")
	for _, want := range []string{`name="token"`, `name="email"`, `name="password"`, `name="csrf"`, `minlength="8"`} {
		if !strings.Contains(page, want) {
			t.Errorf("setup page lacks %s:\n%s", want, page)
		}
	}

	wrong := "x" + token[1:]
	if token[0] == 'x' { // 1 token in 64 starts with x
		wrong = "y" + token[1:]
	}
	refused := []struct {
		name, token, email, password string
		csrf                         bool
		want                         int
	}{
		{name: "wrong token", token: wrong, email: "owner@example.com", password: testPassword, csrf: true, want: http.StatusUnauthorized},
		{name: "no token", token: "", email: "owner@example.com", password: testPassword, csrf: true, want: http.StatusUnauthorized},
		{name: "short password", token: token, email: "owner@example.com", password: "short", csrf: true, want: http.StatusBadRequest},
		{name: "bad email", token: token, email: "owner", password: testPassword, csrf: true, want: http.StatusBadRequest},
		{name: "no anti-forgery token", token: token, email: "owner@example.com", password: testPassword, want: http.StatusForbidden},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			var st int
			if tc.csrf {
				st, _ = c.setup(t, tc.token, tc.email, tc.password)
			} else {
				resp, err := c.PostForm(s.URL+"/setup", url.Values{"token": {tc.token}, "email": {tc.email}, "password": {tc.password}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				st = resp.StatusCode
			}
			if st != tc.want {
				t.Errorf("status %d, want %d", st, tc.want)
			}
			if st, loc := c.status(t, "/"); loc != "/setup" {
				t.Errorf("after a refused setup / answers %d %q: somebody was created", st, loc)
			}
		})
	}
	if !strings.Contains(s.Logs(), "wrong setup token") {
		t.Errorf("wrong setup tokens not logged:\n%s", s.Logs())
	}

	st, loc := c.setup(t, token, "owner@example.com", testPassword)
	if st != http.StatusSeeOther || loc != "/sessions" {
		t.Fatalf("setup with the right token: %d %q, want 303 to /sessions", st, loc)
	}
	if page := c.get(t, "/sessions"); !strings.Contains(page, "owner@example.com") {
		t.Errorf("/sessions after setup is not the logged-in page:\n%.2000s", page)
	}
	resp, _ := c.do(t, http.MethodGet, "/api/v1/projects", nil, false)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/api/v1/projects with the setup's login cookie: %d", resp.StatusCode)
	}

	// Spent: a second use is 404, the UI leads to the login page, the
	// admin logs in with their password.
	other := newClient(t, s)
	if st, _ := other.setup(t, token, "second@example.com", testPassword); st != http.StatusNotFound {
		t.Errorf("second use of the setup token: %d, want 404", st)
	}
	if st, loc := other.status(t, "/"); loc != "/sessions" {
		t.Errorf("GET / after setup: %d %q, want to /sessions", st, loc)
	}
	if st, _ := other.status(t, "/login"); st != http.StatusOK {
		t.Errorf("GET /login after setup: %d, want 200", st)
	}
	if st := other.login(t, "second@example.com", testPassword); st != http.StatusUnauthorized {
		t.Errorf("the second setup made a user: login %d", st)
	}
	if st := other.login(t, "owner@example.com", testPassword); st != http.StatusSeeOther {
		t.Errorf("the admin's login: %d, want 303", st)
	}

	before := len(s.Logs())
	s.Restart(t)
	if toks := setupTokens(s.Logs()[before:]); len(toks) != 0 {
		t.Errorf("a setup token printed with a user in place: %q", toks)
	}
	if st, _ := newClient(t, s).status(t, "/setup"); st != http.StatusNotFound {
		t.Errorf("/setup after the restart: %d, want 404", st)
	}
}

// A user made with the CLI ends the setup: before start (no token, no
// page) and while the server runs (the page goes away).
func TestSetup_UserFromCLI(t *testing.T) {
	t.Run("before start", func(t *testing.T) {
		s := start(t)
		s.Stop(t)
		createUser(t, s, "cli@example.com")
		before := len(s.Logs())
		s.Restart(t)
		if toks := setupTokens(s.Logs()[before:]); len(toks) != 0 {
			t.Errorf("setup token printed with a user in place: %q", toks)
		}
		c := newClient(t, s)
		if st, _ := c.status(t, "/setup"); st != http.StatusNotFound {
			t.Errorf("/setup: %d, want 404", st)
		}
		if st, _ := c.status(t, "/login"); st != http.StatusOK {
			t.Errorf("/login: %d, want 200", st)
		}
	})
	t.Run("while running", func(t *testing.T) {
		s := start(t)
		toks := setupTokens(s.Logs())
		if len(toks) != 1 {
			t.Fatalf("setup tokens: %q, want one", toks)
		}
		c := newClient(t, s)
		page := c.get(t, "/setup") // the form, opened before the CLI's user
		createUser(t, s, "cli@example.com")
		if st, _ := c.status(t, "/setup"); st != http.StatusNotFound {
			t.Errorf("/setup after the CLI made a user: %d, want 404", st)
		}
		m := csrfField.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no csrf field:\n%s", page)
		}
		resp, err := c.PostForm(s.URL+"/setup", url.Values{"token": {toks[0]}, "email": {"late@example.com"}, "password": {testPassword}, "csrf": {m[1]}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("setup after the CLI made a user: %d, want 404", resp.StatusCode)
		}
		if st := c.login(t, "cli@example.com", testPassword); st != http.StatusSeeOther {
			t.Errorf("login of the CLI's user: %d, want 303", st)
		}
	})
}

// Wrong setup tokens are limited per client address (an attacker does not
// lock the owner out from elsewhere).
func TestSetup_RateLimit(t *testing.T) {
	s := start(t, "--trust-proxy")
	token := setupTokens(s.Logs())[0]
	attacker := clientFrom(t, s, "203.0.113.7")
	var codes []int
	for range 7 {
		st, _ := attacker.setup(t, "guess-"+strings.Repeat("a", 26), "x@example.com", testPassword)
		codes = append(codes, st)
	}
	if codes[0] != http.StatusUnauthorized || codes[len(codes)-1] != http.StatusTooManyRequests {
		t.Fatalf("wrong tokens from one address: %v, want 401s then 429", codes)
	}
	if st, _ := attacker.setup(t, token, "x@example.com", testPassword); st != http.StatusTooManyRequests {
		t.Errorf("the right token from the limited address: %d, want 429", st)
	}
	owner := clientFrom(t, s, "198.51.100.20")
	if st, loc := owner.setup(t, token, "owner@example.com", testPassword); st != http.StatusSeeOther || loc != "/sessions" {
		t.Errorf("the owner from another address: %d %q, want 303 to /sessions", st, loc)
	}
	if !strings.Contains(s.Logs(), "203.0.113.0") {
		t.Errorf("wrong tokens not logged with the anonymised address:\n%s", s.Logs())
	}
}

// The setup page in Chromium: it looks like the login page (screenshots of
// both), and filling it in lands on the sessions list, logged in.
func TestBrowser_Setup(t *testing.T) {
	s := start(t)
	token := setupTokens(s.Logs())[0]
	shots := shotDir(t)
	b := browsertest.Start(t, browsertest.WithTimeout(2*time.Minute), browsertest.LoopbackOnly())
	ctx := b.NewContext(t)
	con := browsertest.WatchConsole(t, ctx)

	run(t, ctx, chromedp.Navigate(s.URL+"/"))
	waitFor(t, ctx, "setup form", `location.pathname === '/setup' && document.querySelector('#token')`)
	shoot(t, ctx, shots, "setup")
	run(t, ctx,
		chromedp.SendKeys("#token", token),
		chromedp.SendKeys("#email", "owner@example.com"),
		chromedp.SendKeys("#password", testPassword),
		chromedp.Click("button[type=submit]"))
	waitFor(t, ctx, "sessions page", `location.pathname === '/sessions' && document.querySelector('#list')`)

	// The login page, for comparison, in a browser without the cookie.
	ctx2 := b.NewContext(t)
	run(t, ctx2, chromedp.Navigate(s.URL+"/login"))
	waitFor(t, ctx2, "login form", `document.querySelector('#email')`)
	shoot(t, ctx2, shots, "setup-then-login")
	if errs := con.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
