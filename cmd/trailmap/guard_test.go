package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

// postFrom sends one ingest request as if from client address addr (the
// server runs with --trust-proxy).
func postFrom(t testing.TB, url, key, addr string, body []byte) ingestAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/ingest", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Trailmap-Key", key)
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post ingest: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := ingestAnswer{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		t.Fatalf("ingest answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

func errCode(a ingestAnswer) any {
	e, _ := a.Body["error"].(map[string]any)
	return e["code"]
}

// metric returns the value of the /metrics series that starts with series
// (name and labels, in Prometheus' label order), 0 when absent.
func metric(t testing.TB, s *servertest.Server, series string) float64 {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(raw)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sessionStatus(t testing.TB, s *servertest.Server, id string) int {
	t.Helper()
	resp := s.Request(t, http.MethodGet, "/api/v1/sessions/"+id, nil)
	resp.Body.Close()
	return resp.StatusCode
}

// TestIngest_Quota checks the daily quotas: a new session over the session
// quota is refused with 429 quota_exceeded and a Retry-After until the next
// UTC day, with nothing stored, while a session already recording goes on;
// the count survives a restart; a project's settings override the server's
// default; refusals are counted in /metrics.
func TestIngest_Quota(t *testing.T) {
	s := servertest.Start(t, "--quota-sessions-per-day", "2")
	good := fixtures(t)["example.json"]
	send := func(session string, seq int) ingestAnswer {
		return post(t, s.URL, s.WriteKey, "", batchBody(t, session, "quota_visitor", seq, good))
	}
	accepted := 0
	for _, b := range []struct {
		session string
		seq     int
	}{{"quota_session_a", 0}, {"quota_session_b", 0}, {"quota_session_a", 1}} {
		if a := send(b.session, b.seq); a.Status != http.StatusAccepted {
			t.Fatalf("%s/%d: %d %v", b.session, b.seq, a.Status, a.Body)
		}
		accepted++
	}
	refused := func(session string, seq int, kind string) {
		t.Helper()
		a := send(session, seq)
		if a.Status != http.StatusTooManyRequests || errCode(a) != "quota_exceeded" {
			t.Fatalf("%s/%d over the %s quota: %d %v", session, seq, kind, a.Status, a.Body)
		}
		if !strings.Contains(fmt.Sprint(a.Body), kind) {
			t.Errorf("message does not name the %s quota: %v", kind, a.Body)
		}
		now := time.Now().UTC()
		untilMidnight := now.Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now)
		ra, err := strconv.Atoi(a.Header.Get("Retry-After"))
		if err != nil || ra < 1 || time.Duration(ra)*time.Second < untilMidnight-10*time.Second || time.Duration(ra)*time.Second > untilMidnight+10*time.Second {
			t.Errorf("Retry-After %q, want about %s (the next UTC day)", a.Header.Get("Retry-After"), untilMidnight)
		}
		if st := sessionStatus(t, s, session); seq == 0 && st != http.StatusNotFound {
			t.Errorf("refused session %s: GET answers %d, want 404", session, st)
		}
	}
	refused("quota_session_c", 0, "sessions")
	refused("quota_session_c", 1, "sessions")
	if got := metric(t, s, `trailmap_ingest_quota_exceeded_total{kind="sessions",project="`+strconv.FormatInt(s.ProjectID, 10)+`"}`); got != 2 {
		t.Errorf("quota_exceeded metric %v, want 2", got)
	}

	// The count is in the index: still used up after a restart, and the
	// session already recording still goes on.
	s.Restart(t)
	refused("quota_session_d", 0, "sessions")
	if a := send("quota_session_b", 1); a.Status != http.StatusAccepted {
		t.Fatalf("a started session after the restart: %d %v", a.Status, a.Body)
	}
	accepted++

	// A project's settings override the default: no session limit, room
	// for exactly one more batch of events.
	settings := fmt.Sprintf(`{"quota": {"sessions_per_day": 0, "events_per_day": %d}}`, (accepted+1)*len(good))
	s.Admin(t, nil, "project", "settings", "test", settings)
	s.Restart(t)
	if a := send("quota_session_d", 0); a.Status != http.StatusAccepted {
		t.Fatalf("with the session quota lifted: %d %v", a.Status, a.Body)
	}
	refused("quota_session_e", 0, "events")
	refused("quota_session_a", 2, "events")
	if got := len(events(t, s, "quota_session_a", "")); got != 2*len(good) {
		t.Fatalf("session a holds %d events, want %d", got, 2*len(good))
	}
}

// TestIngest_FairRateLimit checks that a few addresses sending as fast as
// their own limit allows cannot use up a project's rate for everyone: once
// the key's ceiling is reached, a visitor with a light address still gets
// through while the heavy addresses stay refused.
func TestIngest_FairRateLimit(t *testing.T) {
	s := servertest.Start(t, "--trust-proxy", "--rate-per-ip", "0.5", "--rate-per-key", "0.5") // bursts of 3
	good := fixtures(t)["example.json"]
	n := 0
	send := func(addr string) ingestAnswer {
		n++
		return postFrom(t, s.URL, s.WriteKey, addr, batchBody(t, fmt.Sprintf("fair_session_%03d", n), "fair_visitor", 0, good))
	}
	for _, attacker := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		limited := false
		for range 10 {
			a := send(attacker)
			if a.Status == http.StatusTooManyRequests {
				limited = true
				break
			}
			if a.Status != http.StatusAccepted {
				t.Fatalf("%s: %d %v", attacker, a.Status, a.Body)
			}
		}
		if !limited {
			t.Fatalf("%s was never limited", attacker)
		}
	}
	if a := send("203.0.113.1"); a.Status != http.StatusTooManyRequests {
		t.Fatalf("a heavy address: %d, want 429", a.Status)
	}
	if a := send("198.51.100.7"); a.Status != http.StatusAccepted {
		t.Fatalf("a real visitor after the key's ceiling was reached: %d %v, want 202", a.Status, a.Body)
	}
}

// TestIngest_UnknownKeyRateLimited checks that requests with made-up keys
// are limited per address like any others.
func TestIngest_UnknownKeyRateLimited(t *testing.T) {
	s := servertest.Start(t, "--trust-proxy", "--rate-per-ip", "0.5") // burst 3
	body := batchBody(t, "unknown_key_session", "unknown_key_visitor", 0, fixtures(t)["example.json"])
	var got []int
	for i := range 5 {
		a := postFrom(t, s.URL, fmt.Sprintf("wk_madeup%d", i), "203.0.113.9", body)
		got = append(got, a.Status)
	}
	if fmt.Sprint(got) != "[401 401 401 429 429]" {
		t.Fatalf("statuses %v, want [401 401 401 429 429]", got)
	}
}

// TestIngest_IPv6RateLimitPer64 checks that the per-address limit counts an
// IPv6 /64 as one client.
func TestIngest_IPv6RateLimitPer64(t *testing.T) {
	s := servertest.Start(t, "--trust-proxy", "--rate-per-ip", "0.5") // burst 3
	good := fixtures(t)["example.json"]
	var got []int
	for i, addr := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa::3", "2001:db8:1:2:ffff:1:2:3", "2001:db8:1:3::1"} {
		a := postFrom(t, s.URL, s.WriteKey, addr, batchBody(t, fmt.Sprintf("ipv6_session_%d", i), "ipv6_visitor", 0, good))
		got = append(got, a.Status)
	}
	if fmt.Sprint(got) != "[202 202 202 429 202]" {
		t.Fatalf("statuses %v, want [202 202 202 429 202]: the 4th address shares the first three's /64, the 5th does not", got)
	}
}

// TestIngest_TraitsLimits checks that user.traits over the limits is
// refused with 400 invalid_traits, and nothing of the batch is stored.
func TestIngest_TraitsLimits(t *testing.T) {
	s := servertest.Start(t)
	good := fixtures(t)["example.json"]
	many := map[string]any{}
	for i := range 101 {
		many[fmt.Sprintf("k%d", i)] = i
	}
	tests := []struct {
		name   string
		traits any
		status int
	}{
		{"usual traits", map[string]any{"plan": "pro", "email": "a@example.com", "seats": 5, "tags": []any{"a", "b"}, "company": map[string]any{"name": "ACME"}}, 202},
		{"too many keys", many, 400},
		{"too large", map[string]any{"a": strings.Repeat("x", 2000), "b": strings.Repeat("x", 2000), "c": strings.Repeat("x", 2000), "d": strings.Repeat("x", 2000), "e": strings.Repeat("x", 2000), "f": strings.Repeat("x", 2000), "g": strings.Repeat("x", 2000), "h": strings.Repeat("x", 2000), "i": strings.Repeat("x", 2000)}, 400},
		{"too deep", map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": 1}}}}, 400},
		{"array too deep", map[string]any{"a": []any{[]any{[]any{1}}}}, 400},
		{"long key", map[string]any{strings.Repeat("k", 129): 1}, 400},
		{"long value", map[string]any{"bio": strings.Repeat("é", 2049)}, 400},
		{"12 MB", map[string]any{"blob": strings.Repeat("x", 12<<20)}, 0}, // 413 (body) or 400: refused either way
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			session := fmt.Sprintf("traits_session_%d", i)
			b, _ := json.Marshal(map[string]any{"session_id": session, "visitor_id": "traits_visitor", "seq": 0, "events": good,
				"user": map[string]any{"id": "user-1", "traits": tc.traits}})
			a := post(t, s.URL, s.WriteKey, "gzip", compress(t, "gzip", b))
			switch {
			case tc.status == 202 && a.Status != 202:
				t.Fatalf("%d %v, want 202", a.Status, a.Body)
			case tc.status == 400 && (a.Status != 400 || errCode(a) != "invalid_traits"):
				t.Fatalf("%d %v, want 400 invalid_traits", a.Status, a.Body)
			case tc.status == 0 && a.Status < 400:
				t.Fatalf("%d %v, want a refusal", a.Status, a.Body)
			}
			if st := sessionStatus(t, s, session); tc.status != 202 && st != http.StatusNotFound {
				t.Fatalf("refused batch: session answers %d, want 404", st)
			}
		})
	}
}

// TestIngest_IdentityVerification checks verified identify: with
// require_verified_identity, an unsigned or wrongly signed user id does not
// join the visitor to the person, the batch is still stored, and each case
// is counted; rotating the secret invalidates the old signatures.
func TestIngest_IdentityVerification(t *testing.T) {
	s := servertest.Start(t)
	var sec struct {
		Project string `json:"project"`
		Secret  string `json:"identity_secret"`
	}
	s.Admin(t, &sec, "project", "identity-secret", "test")
	if sec.Project != "test" || len(sec.Secret) < 32 {
		t.Fatalf("identity-secret printed %+v", sec)
	}
	var settings map[string]any
	s.Admin(t, &settings, "project", "settings", "test", `{"require_verified_identity": true}`)
	if strings.Contains(fmt.Sprint(settings), sec.Secret) {
		t.Fatal("the secret shows in the project settings")
	}
	sign := func(secret, id string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(id))
		return hex.EncodeToString(m.Sum(nil))
	}
	good := fixtures(t)["example.json"]
	send := func(session, user, sig string) {
		t.Helper()
		u := map[string]any{"id": user, "traits": map[string]any{"plan": "pro"}}
		if sig != "" {
			u["signature"] = sig
		}
		b, _ := json.Marshal(map[string]any{"session_id": session, "visitor_id": "visitor_" + session, "seq": 0, "events": good, "user": u})
		if a := post(t, s.URL, s.WriteKey, "", b); a.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %v (the batch must be kept whatever the claim)", session, a.Status, a.Body)
		}
	}
	userOf := func(session string) string {
		t.Helper()
		var d struct {
			UserID string `json:"user_id"`
		}
		s.GetJSON(t, "/api/v1/sessions/"+session, &d)
		return d.UserID
	}
	send("idv_signed_01", "user-1", sign(sec.Secret, "user-1"))
	send("idv_unsigned1", "user-2", "")
	send("idv_badsig_01", "user-3", sign("not the secret", "user-3"))
	send("idv_othersig1", "user-4", sign(sec.Secret, "user-1")) // user-1's signature, claiming user-4
	for session, want := range map[string]string{"idv_signed_01": "user-1", "idv_unsigned1": "", "idv_badsig_01": "", "idv_othersig1": ""} {
		if got := userOf(session); got != want {
			t.Errorf("%s: user %q, want %q", session, got, want)
		}
		if n := len(events(t, s, session, "")); n != len(good) {
			t.Errorf("%s: %d events stored, want %d", session, n, len(good))
		}
	}
	p := strconv.FormatInt(s.ProjectID, 10)
	for series, want := range map[string]float64{
		`trailmap_ingest_identify_total{applied="yes",project="` + p + `",signature="valid"}`:  1,
		`trailmap_ingest_identify_total{applied="no",project="` + p + `",signature="missing"}`: 1,
		`trailmap_ingest_identify_total{applied="no",project="` + p + `",signature="invalid"}`: 2,
	} {
		if got := metric(t, s, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}

	// Rotation: the old secret's signatures stop verifying.
	var rotated struct {
		Secret string `json:"identity_secret"`
	}
	s.Admin(t, &rotated, "project", "identity-secret", "test")
	if rotated.Secret == "" || rotated.Secret == sec.Secret {
		t.Fatalf("rotation printed %q", rotated.Secret)
	}
	s.Restart(t) // rather than wait for the project cache
	send("idv_oldsecret", "user-5", sign(sec.Secret, "user-5"))
	send("idv_newsecret", "user-6", sign(rotated.Secret, "user-6"))
	if got := userOf("idv_oldsecret"); got != "" {
		t.Errorf("old secret's signature applied: user %q", got)
	}
	if got := userOf("idv_newsecret"); got != "user-6" {
		t.Errorf("new secret's signature: user %q, want user-6", got)
	}
}
