package ui_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/internal/servertest"
)

// fromAddr sends every request of c as if from addr (the server trusts
// X-Forwarded-For in these tests, as behind a proxy).
type fromAddr struct {
	addr string
	next http.RoundTripper
}

func (f fromAddr) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.next.RoundTrip(r)
}

func clientFrom(t *testing.T, s *servertest.Server, addr string) *client {
	c := newClient(t, s)
	c.Transport = fromAddr{addr: addr, next: http.DefaultTransport}
	return c
}

// Someone guessing passwords for an email from one place does not lock its
// owner out from another; addresses of one IPv6 /64 share their allowance;
// failed logins are logged.
func TestSecurity_LoginLockout(t *testing.T) {
	s := start(t, "--trust-proxy")
	createUser(t, s, "analyst@example.com")

	attacker := clientFrom(t, s, "203.0.113.7")
	var codes []int
	for range 7 {
		codes = append(codes, attacker.login(t, "analyst@example.com", "wrong password"))
	}
	if codes[0] != http.StatusUnauthorized || codes[len(codes)-1] != http.StatusTooManyRequests {
		t.Fatalf("wrong passwords from one address: %v, want 401s then 429", codes)
	}
	owner := clientFrom(t, s, "198.51.100.20")
	if st := owner.login(t, "analyst@example.com", testPassword); st != http.StatusSeeOther {
		t.Fatalf("the owner from another address while the attacker is limited: %d, want 303", st)
	}
	if !strings.Contains(s.Logs(), "login failed") || !strings.Contains(s.Logs(), "203.0.113.0") {
		t.Errorf("failed logins not logged with the anonymised address:\n%s", s.Logs())
	}

	// Each attempt from a new address of one /64: limited like one address.
	codes = nil
	for i := range 14 {
		c := clientFrom(t, s, fmt.Sprintf("2001:db8:1:2::%x", i+1))
		codes = append(codes, c.login(t, fmt.Sprintf("nobody%d@example.com", i), "whatever1"))
	}
	if codes[len(codes)-1] != http.StatusTooManyRequests {
		t.Fatalf("attempts from one IPv6 /64: %v, want 429 at the end", codes)
	}
	other := clientFrom(t, s, "2001:db8:1:3::1")
	if st := other.login(t, "analyst@example.com", testPassword); st != http.StatusSeeOther {
		t.Fatalf("another /64: %d, want 303", st)
	}
}

// A post-login redirect never leaves the site, however it is spelled.
func TestSecurity_LoginNext(t *testing.T) {
	s := start(t)
	createUser(t, s, "analyst@example.com")
	c := newClient(t, s)
	if st := c.login(t, "analyst@example.com", testPassword); st != http.StatusSeeOther {
		t.Fatalf("login: %d", st)
	}
	for _, next := range []string{
		"/\t/evil.example/x", "/\n/evil.example", "/\r\n/evil.example", "//evil.example", "/\\evil.example",
		"https://evil.example/", "/x\\..\\\\evil.example", "\t//evil.example", "/%09/evil.example",
		"javascript:alert(1)", "/\x7f/evil.example",
	} {
		t.Run(next, func(t *testing.T) {
			resp, err := c.Get(s.URL + "/login?next=" + url.QueryEscape(next))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") ||
				strings.ContainsAny(loc, "\\\t\r\n\x7f") || strings.Contains(loc, "evil") && !strings.HasPrefix(loc, "/%09") {
				t.Errorf("next=%q: %d Location %q", next, resp.StatusCode, loc)
			}
		})
	}
	// An ordinary path is kept.
	resp, err := c.Get(s.URL + "/login?next=" + url.QueryEscape("/heatmaps?url=/pricing"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/heatmaps?url=/pricing" {
		t.Errorf("ordinary next: Location %q", loc)
	}
}
