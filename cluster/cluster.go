// Package cluster routes every recording session to one node of a cluster
// (trailmap serve processes sharing one PostgreSQL index and one bucket):
// the node that derives the session's facts (heatmaps, journeys).
//
// Why routing: the observers derive a session's facts from state they keep
// in memory while its batches go by (the page's DOM as replayed so far, for
// element paths and dead clicks; the scroll position; the last clicks, for
// rage clicks; the page a click belongs to). A node that observes a batch
// without having seen the ones before resumes from what the index keeps,
// which is less, and nodes observing one session's batches at the same time
// take them out of order. Deriving facts later from stored segments under
// per-session leases would keep the state right but delays every heatmap by
// a segment's age (up to a minute) and reads each batch twice. So a session
// has an owner: the node that took its first batch. Any node takes any batch
// from a client; one that is not the owner forwards the request to the
// owner and relays its answer. Dedupe, the write-ahead log and the index
// rows are the same on every node, so correctness of what is stored never
// depends on routing, only the facts' session order does.
//
// A node says it is alive every Heartbeat; a node not seen for Stale loses
// its sessions to the next node that takes one of their batches (until then
// requests for them are answered 503 with Retry-After, and clients retry).
// A node that stops gracefully removes itself, so its sessions move at once.
package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Schema is the cluster tables' migrations (0070–0079), for sqldb.Open.
var Schema = sqldb.NewSchema("cluster", 70, 79, migrations)

// Headers of a request one node forwards to another.
const (
	headerFor  = "X-Trailmap-Forwarded-For" // the client's address, for rate limits and the recorded IP
	headerTime = "X-Trailmap-Forward-Time"  // unix seconds
	headerSig  = "X-Trailmap-Forward-Sig"   // HMAC-SHA256 of time, address and path under the cluster secret
	headerFrom = "X-Trailmap-Forwarded-By"  // the forwarding node, for logs
)

// sigWindow is how far a forwarded request's time may be from the clock.
const sigWindow = 5 * time.Minute

// Config is a node's place in its cluster.
type Config struct {
	// Self is this node's base URL as the other nodes reach it
	// (--advertise-url); it is also the node's name.
	Self string
	// Secret is shared by every node and signs forwarded requests
	// (--cluster-secret).
	Secret string
	// Heartbeat is how often the node says it is alive.
	Heartbeat time.Duration
	// Stale is how long a node may go unseen before its sessions are
	// taken over.
	Stale time.Duration
	// CacheTTL is how long an owner is remembered without asking the
	// index. Ownership only moves away from a node that is gone, and a
	// forward that fails or is refused forgets it at once.
	CacheTTL time.Duration
	// Forget is how long a session's owner is kept after its first batch.
	Forget time.Duration
}

// DefaultStale is how long a node may go unseen before its sessions are
// taken over, unless its Config says otherwise.
const DefaultStale = 10 * time.Second

// DefaultConfig is the configuration of a node at self with secret.
func DefaultConfig(self, secret string) Config {
	return Config{Self: strings.TrimRight(self, "/"), Secret: secret, Heartbeat: 2 * time.Second,
		Stale: DefaultStale, CacheTTL: 30 * time.Second, Forget: 48 * time.Hour}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	u, err := url.Parse(c.Self)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/"):
		return fmt.Errorf("cluster: advertise URL %q: want http(s)://host:port, the address other nodes reach this one at", c.Self)
	case len(c.Secret) < 16:
		return errors.New("cluster: the cluster secret must be at least 16 characters (the same on every node)")
	case c.Heartbeat <= 0 || c.Stale < 2*c.Heartbeat || c.CacheTTL <= 0 || c.Forget <= 0:
		return errors.New("cluster: heartbeat, cache and forget times must be positive and the stale time at least two heartbeats")
	}
	return nil
}

// Cluster is this node's view of its cluster. Create it with New, start
// its heartbeat with Run.
type Cluster struct {
	db   *sqldb.DB
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	http *http.Client

	forwarded *prometheus.CounterVec
	takeovers prometheus.Counter

	mu     sync.Mutex
	owners map[string]owned // session → its owner as last read
}

type owned struct {
	node string
	read time.Time
}

// maxCached bounds the owner cache (it is cleared when full).
const maxCached = 200_000

// New returns the cluster of the node cfg describes on db (whose schemas
// include Schema) and registers this node as alive.
func New(ctx context.Context, db *sqldb.DB, cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Cluster, error) {
	cfg.Self = strings.TrimRight(cfg.Self, "/")
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		db: db, cfg: cfg, log: logger.With("component", "cluster"), now: time.Now,
		http: &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}},
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_cluster_forwarded_total",
			Help: "Ingest requests forwarded to the node owning their session, by result (ok, refused: the other node does not own it, failed: not reachable).",
		}, []string{"result"}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_cluster_takeovers_total",
			Help: "Sessions this node took over from a node that was not seen for the stale time.",
		}),
		owners: map[string]owned{},
	}
	if reg != nil {
		reg.MustRegister(c.forwarded, c.takeovers)
	}
	if err := c.beat(ctx, true); err != nil {
		return nil, err
	}
	return c, nil
}

// Self is this node's name (its advertise URL).
func (c *Cluster) Self() string { return c.cfg.Self }

// beat says this node is alive; first also sets its start time.
func (c *Cluster) beat(ctx context.Context, first bool) error {
	now := c.now().UnixMilli()
	q := `INSERT INTO cluster_nodes (id, started_at, seen_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at`
	if first {
		q += `, started_at = excluded.started_at`
	}
	if _, err := c.db.Write().ExecContext(ctx, q, c.cfg.Self, now, now); err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	return nil
}

// Run keeps saying this node is alive, and forgets the owners of old
// sessions, until ctx ends; then it removes the node, so that its sessions
// move to other nodes at once.
func (c *Cluster) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	lastForget := time.Time{}
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := c.db.Write().ExecContext(dctx, `DELETE FROM cluster_nodes WHERE id = ?`, c.cfg.Self); err != nil {
				c.log.Warn("leave cluster", slog.Any("error", err))
			}
			return
		case <-t.C:
		}
		if err := c.beat(ctx, false); err != nil && ctx.Err() == nil {
			c.log.Error("heartbeat", slog.Any("error", err))
		}
		if c.now().Sub(lastForget) >= time.Hour {
			lastForget = c.now()
			before := c.now().Add(-c.cfg.Forget).UnixMilli()
			if _, err := c.db.Write().ExecContext(ctx, `DELETE FROM cluster_sessions WHERE claimed_at < ?`, before); err != nil && ctx.Err() == nil {
				c.log.Warn("forget old session owners", slog.Any("error", err))
			}
		}
	}
}

// Owner returns the node that derives session's facts: the node that
// claimed it first, or this node when nobody has, or when its owner has not
// been seen for the stale time (taken over).
func (c *Cluster) Owner(ctx context.Context, session string) (string, error) {
	node, _, err := c.cachedOwner(ctx, session)
	return node, err
}

// cachedOwner is Owner, also telling whether this node took the session
// over just now.
func (c *Cluster) cachedOwner(ctx context.Context, session string) (node string, took bool, err error) {
	c.mu.Lock()
	o, ok := c.owners[session]
	c.mu.Unlock()
	if ok && c.now().Sub(o.read) < c.cfg.CacheTTL {
		return o.node, false, nil
	}
	return c.owner(ctx, session)
}

// owner reads (claiming or taking over: took) session's owner from the
// index.
func (c *Cluster) owner(ctx context.Context, session string) (node string, took bool, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		now := c.now()
		var seen int64
		err := c.db.Read().QueryRowContext(ctx, `SELECT s.node, COALESCE(n.seen_at, 0) FROM cluster_sessions s
			LEFT JOIN cluster_nodes n ON n.id = s.node WHERE s.session_id = ?`, session).Scan(&node, &seen)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := c.db.Write().ExecContext(ctx, `INSERT INTO cluster_sessions (session_id, node, claimed_at) VALUES (?, ?, ?)
				ON CONFLICT (session_id) DO NOTHING`, session, c.cfg.Self, now.UnixMilli()); err != nil {
				return "", false, fmt.Errorf("cluster: claim session: %w", err)
			}
			continue // read who has it: this node, or one that claimed it first
		case err != nil:
			return "", false, fmt.Errorf("cluster: read session owner: %w", err)
		}
		if node != c.cfg.Self && now.UnixMilli()-seen > c.cfg.Stale.Milliseconds() {
			res, err := c.db.Write().ExecContext(ctx, `UPDATE cluster_sessions SET node = ?, claimed_at = ? WHERE session_id = ? AND node = ?`,
				c.cfg.Self, now.UnixMilli(), session, node)
			if err != nil {
				return "", false, fmt.Errorf("cluster: take over session: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // another node was quicker
			}
			c.takeovers.Inc()
			c.log.Info("took over a session of a node not seen", "session", session, "from", node, "seen_ms_ago", now.UnixMilli()-seen)
			node, took = c.cfg.Self, true
		}
		c.remember(session, node, now)
		return node, took, nil
	}
	return "", false, fmt.Errorf("cluster: session %s: its owner changed three times while being read", session)
}

func (c *Cluster) remember(session, node string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.owners) >= maxCached {
		clear(c.owners)
	}
	c.owners[session] = owned{node: node, read: at}
}

// forget drops session's cached owner.
func (c *Cluster) forget(session string) {
	c.mu.Lock()
	delete(c.owners, session)
	c.mu.Unlock()
}

// Errors of Route.
var (
	// ErrOwnerUnreachable means the session's owner did not answer and is
	// not yet stale: the client should try again shortly.
	ErrOwnerUnreachable = errors.New("the node recording this session is not reachable")
)

// Request is an ingest request to route: its body is read already.
type Request struct {
	Session  string
	ClientIP string
	HTTP     *http.Request
	Body     []byte
}

// Route sends req to its session's owner unless that is this node: it
// returns the owner's answer, or nil when this node should handle the
// request itself (it owns the session, or took it over just now from a node
// that is gone: took). A request another node forwarded is always this
// node's to handle, unless this node knows the session is another's: then
// it is refused with 421 (see Misdirected) and the sender asks the index
// again.
func (c *Cluster) Route(ctx context.Context, req Request) (resp *http.Response, took bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		owner, took, err := c.cachedOwner(ctx, req.Session)
		if err != nil {
			return nil, false, err
		}
		if owner == c.cfg.Self {
			return nil, took, nil
		}
		resp, err := c.forward(ctx, owner, req)
		if err != nil {
			c.forwarded.WithLabelValues("failed").Inc()
			c.forget(req.Session)
			c.log.Warn("forward to session owner", "session", req.Session, "owner", owner, slog.Any("error", err))
			now, took, err := c.owner(ctx, req.Session)
			if err != nil {
				return nil, false, err
			}
			if now == c.cfg.Self {
				return nil, took, nil
			}
			if now == owner {
				return nil, false, fmt.Errorf("%w (%s)", ErrOwnerUnreachable, owner)
			}
			continue // it moved meanwhile
		}
		if resp.StatusCode == http.StatusMisdirectedRequest {
			resp.Body.Close()
			c.forwarded.WithLabelValues("refused").Inc()
			c.forget(req.Session)
			continue
		}
		c.forwarded.WithLabelValues("ok").Inc()
		return resp, false, nil
	}
	// Two owners disagreed: take it here rather than bounce it around.
	return nil, false, nil
}

// forward posts req to owner with this node's signature.
func (c *Cluster) forward(ctx context.Context, owner string, req Request) (*http.Response, error) {
	r := req.HTTP
	out, err := http.NewRequestWithContext(ctx, r.Method, owner+r.URL.RequestURI(), bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Content-Type", "Content-Encoding", "X-Trailmap-Key", "User-Agent", "Origin"} {
		if v := r.Header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	out.Header.Set(headerFor, req.ClientIP)
	out.Header.Set(headerTime, ts)
	out.Header.Set(headerSig, c.sign(ts, req.ClientIP, r.URL.Path))
	out.Header.Set(headerFrom, c.cfg.Self)
	return c.http.Do(out)
}

func (c *Cluster) sign(ts, ip, path string) string {
	m := hmac.New(sha256.New, []byte(c.cfg.Secret))
	m.Write([]byte(ts + "\n" + ip + "\n" + path))
	return hex.EncodeToString(m.Sum(nil))
}

// Forwarded reports whether r was forwarded by a node of this cluster (its
// signature checks out) and the client address it carries.
func (c *Cluster) Forwarded(r *http.Request) (clientIP string, ok bool) {
	sig, ts := r.Header.Get(headerSig), r.Header.Get(headerTime)
	if sig == "" || ts == "" {
		return "", false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || c.now().Sub(time.Unix(sec, 0)).Abs() > sigWindow {
		return "", false
	}
	ip := r.Header.Get(headerFor)
	want := c.sign(ts, ip, r.URL.Path)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "", false
	}
	return ip, true
}

// Misdirected reports whether a forwarded request for session should be
// refused (421) because this node knows another owns it: the sender's
// view was out of date. An error reading the owner is not a refusal.
func (c *Cluster) Misdirected(ctx context.Context, session string) bool {
	owner, err := c.Owner(ctx, session)
	return err == nil && owner != c.cfg.Self
}
