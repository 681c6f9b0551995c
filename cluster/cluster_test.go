package cluster

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const secret = "a-cluster-secret-of-some-length"

// clock is a settable clock for the nodes of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// node starts a cluster node at self on db, with the test's clock.
func node(t *testing.T, db *index.DB, self string, clk *clock) *Cluster {
	t.Helper()
	c, err := New(context.Background(), db.SQL(), DefaultConfig(self, secret), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c.now = clk.now
	if err := c.beat(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	return c
}

// A session belongs to the node that asked first; the others agree, also
// after their cache expires; a node that is not seen for the stale time
// loses it to the next node that asks, and a node that comes back does
// not take it back.
func TestOwner_ClaimAndTakeOver(t *testing.T) {
	indextest.Each(t, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Now()}
		a := node(t, db, "http://10.0.0.1:8080", clk)
		b := node(t, db, "http://10.0.0.2:8080/", clk) // a trailing slash is the same node
		if b.Self() != "http://10.0.0.2:8080" {
			t.Fatalf("self %q", b.Self())
		}
		for _, c := range []*Cluster{a, b, a} {
			got, err := c.Owner(ctx, "session-one")
			if err != nil || got != a.Self() {
				t.Fatalf("%s: owner %q, %v; want %s", c.Self(), got, err, a.Self())
			}
		}
		if got, _ := b.Owner(ctx, "session-two"); got != b.Self() {
			t.Fatalf("session-two owned by %q, want b", got)
		}
		// a stops beating; b keeps going.
		clk.add(8 * time.Second)
		if err := b.beat(ctx, false); err != nil {
			t.Fatal(err)
		}
		b.forget("session-one")
		if got, _ := b.Owner(ctx, "session-one"); got != a.Self() {
			t.Fatalf("after 8 s owner %q, want a still (stale after 10 s)", got)
		}
		clk.add(3 * time.Second)
		if err := b.beat(ctx, false); err != nil {
			t.Fatal(err)
		}
		b.forget("session-one")
		if got, _ := b.Owner(ctx, "session-one"); got != b.Self() {
			t.Fatalf("after 11 s without a heartbeat owner %q, want b (taken over)", got)
		}
		// a is back: the session stays with b.
		if err := a.beat(ctx, false); err != nil {
			t.Fatal(err)
		}
		a.forget("session-one")
		if got, _ := a.Owner(ctx, "session-one"); got != b.Self() {
			t.Fatalf("a back: owner %q, want b", got)
		}
		if !a.Misdirected(ctx, "session-one") || a.Misdirected(ctx, "session-new") {
			t.Error("a should refuse session-one (b's) and take a new session")
		}
	}, Schema)
}

// Route forwards to the owner with a signature the owner checks and the
// client's address; a node that is gone gets its sessions taken over once
// stale (503 before); a refused forward (421) asks the index again.
func TestRoute(t *testing.T) {
	db := indextest.Open(t, pgtest.Shared(t).Database(t), Schema)
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	var owner *Cluster
	var gotIP, gotBody, gotKey string
	refuse := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, ok := owner.Forwarded(r)
		if !ok {
			http.Error(w, "unsigned", http.StatusForbidden)
			return
		}
		if refuse {
			w.WriteHeader(http.StatusMisdirectedRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		gotIP, gotBody, gotKey = ip, string(b), r.Header.Get("X-Trailmap-Key")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	owner = node(t, db, srv.URL, clk)
	other := node(t, db, "http://127.0.0.1:1", clk) // nothing listens there
	if got, _ := owner.Owner(ctx, "routed"); got != owner.Self() {
		t.Fatal("owner did not claim")
	}
	in := httptest.NewRequest(http.MethodPost, "/api/v1/ingest?session=routed", nil)
	in.Header.Set("X-Trailmap-Key", "wk_1")
	resp, _, err := other.Route(ctx, Request{Session: "routed", ClientIP: "203.0.113.9", HTTP: in, Body: []byte(`{"x":1}`)})
	if err != nil || resp == nil {
		t.Fatalf("route: %v, %v", resp, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || gotIP != "203.0.113.9" || gotBody != `{"x":1}` || gotKey != "wk_1" {
		t.Fatalf("forwarded: %d, ip %q, body %q, key %q", resp.StatusCode, gotIP, gotBody, gotKey)
	}

	// Signatures: a wrong one, another path, an old time.
	fwd := func(mod func(r *http.Request)) bool {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/ingest", nil)
		ts := strconv.FormatInt(clk.now().Unix(), 10)
		r.Header.Set(headerTime, ts)
		r.Header.Set(headerFor, "198.51.100.1")
		r.Header.Set(headerSig, other.sign(ts, "198.51.100.1", "/api/v1/ingest"))
		mod(r)
		_, ok := owner.Forwarded(r)
		return ok
	}
	if !fwd(func(*http.Request) {}) {
		t.Error("a good signature was refused")
	}
	if fwd(func(r *http.Request) { r.Header.Set(headerFor, "198.51.100.2") }) {
		t.Error("a changed client address was taken")
	}
	if fwd(func(r *http.Request) { r.URL.Path = "/api/v1/other" }) {
		t.Error("a signature of another path was taken")
	}
	if fwd(func(r *http.Request) {
		ts := strconv.FormatInt(clk.now().Add(-10*time.Minute).Unix(), 10)
		r.Header.Set(headerTime, ts)
		r.Header.Set(headerSig, other.sign(ts, "198.51.100.1", "/api/v1/ingest"))
	}) {
		t.Error("a signature ten minutes old was taken")
	}
	if _, ok := owner.Forwarded(httptest.NewRequest(http.MethodPost, "/api/v1/ingest", nil)); ok {
		t.Error("an unsigned request counted as forwarded")
	}

	// Refused: the other node asks the index again (still the owner), and
	// after a second refusal takes the request itself.
	refuse = true
	if resp, took, err := other.Route(ctx, Request{Session: "routed", HTTP: in}); err != nil || resp != nil || took {
		t.Fatalf("refused twice: %v, %v, %v; want this node to take it (not a take-over)", resp, took, err)
	}
	refuse = false

	// The owner is gone: 503 until it is stale, then taken over.
	srv.Close()
	if _, _, err := other.Route(ctx, Request{Session: "routed", HTTP: in}); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("owner down, not stale: %v, want ErrOwnerUnreachable", err)
	}
	clk.add(11 * time.Second)
	if err := other.beat(ctx, false); err != nil {
		t.Fatal(err)
	}
	if resp, took, err := other.Route(ctx, Request{Session: "routed", HTTP: in}); err != nil || resp != nil || !took {
		t.Fatalf("owner stale: %v, %v, %v; want it taken over", resp, took, err)
	}
	if got, _ := other.Owner(ctx, "routed"); got != other.Self() {
		t.Fatalf("owner %q after take-over", got)
	}
	// A node that never asked about a session before takes it over on its
	// first request, and says so too.
	if got, _ := owner.Owner(ctx, "second"); got != owner.Self() {
		t.Fatal("owner did not claim the second session")
	}
	third := node(t, db, "http://127.0.0.1:2", clk)
	clk.add(11 * time.Second)
	if err := third.beat(ctx, false); err != nil {
		t.Fatal(err)
	}
	if resp, took, err := third.Route(ctx, Request{Session: "second", HTTP: in}); err != nil || resp != nil || !took {
		t.Fatalf("first request of a stale owner's session: %v, %v, %v; want it taken over here", resp, took, err)
	}
}

// Run removes the node when it stops, so its sessions move at once.
func TestRun_LeavesOnStop(t *testing.T) {
	db := indextest.Open(t, pgtest.Shared(t).Database(t), Schema)
	clk := &clock{t: time.Now()}
	a := node(t, db, "http://10.0.0.1:8080", clk)
	b := node(t, db, "http://10.0.0.2:8080", clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	if got, _ := a.Owner(context.Background(), "s-leaving"); got != a.Self() {
		t.Fatal("a did not claim")
	}
	cancel()
	<-done
	if got, _ := b.Owner(context.Background(), "s-leaving"); got != b.Self() {
		t.Fatalf("after a left, owner %q, want b", got)
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, c := range []Config{
		DefaultConfig("", secret),
		DefaultConfig("10.0.0.1:8080", secret),
		DefaultConfig("http://10.0.0.1:8080/trailmap", secret),
		DefaultConfig("http://10.0.0.1:8080", "short"),
	} {
		if c.Validate() == nil {
			t.Errorf("%q / %q: want an error", c.Self, c.Secret)
		}
	}
	if err := DefaultConfig("https://node-1.internal:8443", secret).Validate(); err != nil {
		t.Error(err)
	}
}
