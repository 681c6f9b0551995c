package ui_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

const testPassword = "correct horse battery"

var bundleOnce sync.Once

// ensureBundle builds the UI bundle (as `make js` does) unless the binary
// under test comes from `make test`, which built it already.
func ensureBundle(t testing.TB) {
	t.Helper()
	if os.Getenv("TRAILMAP_BIN") != "" {
		return
	}
	var err error
	var out []byte
	bundleOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		cmd := exec.Command("make", "-s", "js")
		cmd.Dir = root
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("make js: %v\n%s", err, out)
	}
}

// start runs the real server with the UI bundle built in.
func start(t testing.TB, extra ...string) *servertest.Server {
	t.Helper()
	ensureBundle(t)
	return servertest.Start(t, extra...)
}

// createUser runs `trailmap user create EMAIL` with the password on stdin.
func createUser(t testing.TB, s *servertest.Server, email string, args ...string) {
	t.Helper()
	cmd := exec.Command(servertest.Bin(t), append([]string{"user", "create", email, "--data", s.DataDir}, args...)...)
	cmd.Stdin = strings.NewReader(testPassword + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user create %s: %v\n%s", email, err, out)
	}
}

// fixture reads an rrweb fixture of the shared test data.
func fixture(t testing.TB, name string) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shared", "testdata", "rrweb-fixtures", name))
	if os.IsNotExist(err) {
		b, err = os.ReadFile(filepath.Join("/work/shared/testdata/rrweb-fixtures", name))
	}
	if err != nil {
		// The recorder keeps a copy of the same fixtures.
		b, err = os.ReadFile(filepath.Join("..", "recorder", "testdata", "rrweb", name))
	}
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	var evs []json.RawMessage
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return evs
}

// ingest posts one batch of a session with the project's write key.
func ingest(t testing.TB, s *servertest.Server, key, session string, seq int, events []json.RawMessage) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"session_id": session, "visitor_id": "visitor-" + session, "seq": seq, "events": events})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/ingest", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Trailmap-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("ingest %s seq %d: %d %s", session, seq, resp.StatusCode, b)
	}
}

// waitSession polls the API until the session is listed with events events.
func waitSession(t testing.TB, s *servertest.Server, id string, events int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got map[string]any
		resp := s.Request(t, http.MethodGet, "/api/v1/sessions/"+id, nil)
		if resp.StatusCode == http.StatusOK {
			json.NewDecoder(resp.Body).Decode(&got)
		}
		resp.Body.Close()
		if got != nil && int(got["event_count"].(float64)) >= events {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s not indexed with %d events within 30s (got %v)", id, events, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// client is an HTTP client with a cookie jar, logged in as email.
type client struct {
	*http.Client
	base string
	csrf string
}

var csrfMeta = regexp.MustCompile(`name="csrf-token" content="([^"]+)"`)
var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newClient(t testing.TB, s *servertest.Server) *client {
	jar, _ := cookiejar.New(nil)
	return &client{Client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, base: s.URL}
}

// login logs in through the form and returns the final status.
func (c *client) login(t testing.TB, email, password string) int {
	t.Helper()
	resp, err := c.Get(c.base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(b)
	if m == nil {
		t.Fatalf("login form has no csrf field: %s", b)
	}
	resp, err = c.PostForm(c.base+"/login", url.Values{"email": {email}, "password": {password}, "csrf": {string(m[1])}, "next": {"/sessions"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		page := c.get(t, "/sessions")
		if m := csrfMeta.FindStringSubmatch(page); m != nil {
			c.csrf = m[1]
		}
	}
	return resp.StatusCode
}

func (c *client) get(t testing.TB, path string) string {
	t.Helper()
	resp, err := c.Get(c.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// do sends a request with the cookie; csrf adds the X-CSRF-Token header.
func (c *client) do(t testing.TB, method, path string, body any, csrf bool) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// metric reads one counter from /metrics.
func metric(t testing.TB, s *servertest.Server, name string) float64 {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("metric %s not in /metrics", name)
	}
	var v float64
	fmt.Sscan(string(m[1]), &v)
	return v
}

// shotDir is where screenshots go: $TRAILMAP_SCREENSHOTS or a kept temp dir.
func shotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("TRAILMAP_SCREENSHOTS")
	if dir == "" {
		var err error
		dir, err = os.MkdirTemp("", "trailmap-ui-shots-")
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}
