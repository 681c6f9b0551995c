// Package ratelimit holds token buckets by key (a write key, an IP) in
// bounded memory.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxIdleSweep bounds the idle buckets one Allow call drops, so a call
// never does much more than its own work.
const maxIdleSweep = 4

// Limiter is a set of token buckets, one per key, each refilling at the same
// rate. It keeps at most maxKeys buckets: a bucket idle long enough to be
// full again is dropped (a new one is the same), and beyond maxKeys the
// least recently used bucket goes, which may forgive a key part of its debt;
// that is the price of bounded memory under a flood of keys. It is safe for
// concurrent use.
type Limiter struct {
	limit    rate.Limit
	burst    int
	maxKeys  int
	fullIn   time.Duration // an idle bucket is full again after this long
	now      func() time.Time
	disabled bool

	mu   sync.Mutex
	keys map[string]*list.Element // of *bucket
	lru  list.List                // front: most recently used
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

// New returns a limiter allowing perSecond events per key on average and
// bursts of burst (at least 1). perSecond <= 0 or +Inf disables limiting.
// maxKeys (at least 1) bounds the buckets kept. now is the clock; nil
// means time.Now.
func New(perSecond float64, burst int, maxKeys int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{
		limit:   rate.Limit(perSecond),
		burst:   max(burst, 1),
		maxKeys: max(maxKeys, 1),
		now:     now,
		keys:    map[string]*list.Element{},
	}
	if perSecond <= 0 || math.IsInf(perSecond, 1) || math.IsNaN(perSecond) {
		l.disabled = true
		return l
	}
	l.fullIn = time.Duration(float64(l.burst) / perSecond * float64(time.Second))
	return l
}

// Allow takes a token from key's bucket. When there is none it returns
// false and how long until there will be one.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.disabled {
		return true, 0
	}
	t := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(key, t)
	b.last = t
	r := b.lim.ReserveN(t, 1)
	if !r.OK() {
		return false, l.fullIn
	}
	d := r.DelayFrom(t)
	if d <= 0 {
		return true, 0
	}
	r.CancelAt(t)
	return false, d
}

// Check tells whether key's bucket holds a token, without taking it: for
// limits that count only failures, checked before the attempt and charged
// (with Allow) after it failed.
func (l *Limiter) Check(key string) (ok bool, retryAfter time.Duration) {
	if l.disabled {
		return true, 0
	}
	t := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	el := l.keys[key]
	if el == nil {
		return true, 0
	}
	tokens := el.Value.(*bucket).lim.TokensAt(t)
	if tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
}

// Level is the share (0 to 1) of its burst that key's bucket holds now,
// without taking a token; 1 for a key without a bucket (a full one).
func (l *Limiter) Level(key string) float64 {
	if l.disabled {
		return 1
	}
	t := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	el := l.keys[key]
	if el == nil {
		return 1
	}
	return max(el.Value.(*bucket).lim.TokensAt(t), 0) / float64(l.burst)
}

// Len returns the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

func (l *Limiter) bucketLocked(key string, t time.Time) *bucket {
	if el := l.keys[key]; el != nil {
		l.lru.MoveToFront(el)
		return el.Value.(*bucket)
	}
	// Drop buckets idle long enough to be full: forgetting them changes nothing.
	for range maxIdleSweep {
		el := l.lru.Back()
		if el == nil || t.Sub(el.Value.(*bucket).last) < l.fullIn {
			break
		}
		l.removeLocked(el)
	}
	for len(l.keys) >= l.maxKeys {
		l.removeLocked(l.lru.Back())
	}
	b := &bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst), last: t}
	l.keys[key] = l.lru.PushFront(b)
	return b
}

func (l *Limiter) removeLocked(el *list.Element) {
	delete(l.keys, el.Value.(*bucket).key)
	l.lru.Remove(el)
}
