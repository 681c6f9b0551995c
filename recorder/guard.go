package recorder

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Guards of the ingest against abuse of the write key, which is public (it
// sits in every recorded page): per-address and per-key rate limits, a
// negative cache of unknown keys, daily quotas (quota.go), limits on user
// traits (traits.go) and verified identify claims.
//
// Rate limits: the per-address limit (RatePerIP, per IPv4 address or IPv6
// /64) is checked first, before the key is even looked up, so a flood of
// made-up keys costs one map lookup per request and no database read. The
// per-key limit (RatePerKey) is a ceiling for the whole project that is
// meant to be far above what real visitors send; when it is reached, only
// addresses that are themselves heavy (less than half of their own burst
// left) are refused, so that a few addresses sending as fast as their own
// limit allows cannot starve the project's other visitors. A per-(key,
// address) bucket would not do better: the address limit must come before
// the key lookup, and an address is one client whichever key it uses.

// lightShare is the share of its burst an address must have left to pass a
// project's exhausted key ceiling.
const lightShare = 0.5

// clientBucket is the rate-limit key of a client address: an IPv4 address,
// or the /64 of an IPv6 address (one end site is usually given a /64 or
// more, so a single client can send from 2^64 addresses).
func clientBucket(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// unknownKeyTTL is how long a key that names no project is refused without
// looking it up again. Write keys are random: a key created meanwhile was
// never asked for before, so the cache delays nothing real.
const unknownKeyTTL = 10 * time.Second

// keyCache remembers keys that name no project, in bounded memory.
type keyCache struct {
	mu   sync.Mutex
	keys map[string]time.Time // key → when it was found unknown
}

func (c *keyCache) unknown(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.keys[key]
	if ok && now.Sub(t) >= unknownKeyTTL {
		delete(c.keys, key)
		return false
	}
	return ok
}

func (c *keyCache) add(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || len(c.keys) >= 10000 {
		c.keys = map[string]time.Time{}
	}
	c.keys[key] = now
}

// Identify verification: a project's backend signs the user id with the
// project's identity secret (hex HMAC-SHA256 of the id), the page passes the
// signature to trailmap.identify and the recorder sends it as
// user.signature. With require_verified_identity in the project's settings,
// an identify without a valid signature is dropped (the batch is kept).

// IdentitySignature is the signature of userID under a project's identity
// secret: the hex HMAC-SHA256 of the id, as the site's backend computes it.
func IdentitySignature(secret, userID string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(userID))
	return hex.EncodeToString(m.Sum(nil))
}

// projectIdentity reads require_verified_identity from a project's settings.
func projectIdentity(settings json.RawMessage) (bool, error) {
	var s struct {
		Require *bool `json:"require_verified_identity"`
	}
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &s); err != nil {
			return false, fmt.Errorf("require_verified_identity must be true or false: %w", err)
		}
	}
	return s.Require != nil && *s.Require, nil
}

// verifyIdentity checks the identify claim of b against the project's
// secret, drops it when the project requires verification and the claim is
// not signed right, and counts the outcome.
func (r *Recorder) verifyIdentity(pe *projectEntry, b *Batch) {
	if b.User == nil {
		return
	}
	sig := "missing"
	if b.User.Signature != "" {
		sig = "invalid"
		if secret := pe.project.IdentitySecret; secret != "" &&
			hmac.Equal([]byte(b.User.Signature), []byte(IdentitySignature(secret, b.User.ID))) {
			sig = "valid"
		}
	}
	applied := "yes"
	if pe.requireIdentity && sig != "valid" {
		b.User, applied = nil, "no"
	}
	r.gm.identify.WithLabelValues(projectLabel(pe.project.ID), sig, applied).Inc()
}

// guardMetrics are the guards' series in /metrics.
type guardMetrics struct {
	quota    *prometheus.CounterVec
	identify *prometheus.CounterVec
}

func newGuardMetrics(reg prometheus.Registerer, m *metrics) *guardMetrics {
	g := &guardMetrics{
		quota: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_ingest_quota_exceeded_total",
			Help: "Batches refused (429 quota_exceeded) by a project's daily quota, by project id and kind (sessions, events, bytes).",
		}, []string{"project", "kind"}),
		identify: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_ingest_identify_total",
			Help: "Batches carrying an identify claim, by project id, signature (valid, missing, invalid) and whether the identify was applied (no: the project requires verification).",
		}, []string{"project", "signature", "applied"}),
	}
	for _, r := range []string{"quota_exceeded", "invalid_traits"} {
		m.rejects.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(g.quota, g.identify)
	}
	return g
}
