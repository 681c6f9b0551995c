package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a manual clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLimiter_Allow(t *testing.T) {
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		steps     []step
	}{
		{
			name: "burst then refill", perSecond: 2, burst: 3,
			steps: []step{
				{key: "a", ok: true}, {key: "a", ok: true}, {key: "a", ok: true},
				{key: "a", ok: false, retry: 500 * time.Millisecond},
				{advance: 250 * time.Millisecond, key: "a", ok: false, retry: 250 * time.Millisecond},
				{advance: 250 * time.Millisecond, key: "a", ok: true},
				{key: "a", ok: false, retry: 500 * time.Millisecond},
			},
		},
		{
			name: "keys are independent", perSecond: 1, burst: 1,
			steps: []step{
				{key: "a", ok: true}, {key: "a", ok: false, retry: time.Second},
				{key: "b", ok: true}, {key: "b", ok: false, retry: time.Second},
			},
		},
		{
			name: "rejections do not cost tokens", perSecond: 1, burst: 1,
			steps: []step{
				{key: "a", ok: true},
				{key: "a", ok: false, retry: time.Second},
				{key: "a", ok: false, retry: time.Second},
				{advance: time.Second, key: "a", ok: true},
			},
		},
		{
			name: "burst below one acts as one", perSecond: 10, burst: 0,
			steps: []step{{key: "a", ok: true}, {key: "a", ok: false, retry: 100 * time.Millisecond}},
		},
		{
			name: "zero rate disables", perSecond: 0, burst: 1,
			steps: []step{{key: "a", ok: true}, {key: "a", ok: true}, {key: "a", ok: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := New(tt.perSecond, tt.burst, 100, c.now)
			for i, s := range tt.steps {
				c.advance(s.advance)
				ok, retry := l.Allow(s.key)
				if ok != s.ok || retry != s.retry {
					t.Fatalf("step %d (%s): Allow = %v, %v; want %v, %v", i, s.key, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

type step struct {
	advance time.Duration
	key     string
	ok      bool
	retry   time.Duration
}

func TestLimiter_boundedKeys(t *testing.T) {
	c := newClock()
	l := New(1, 1, 3, c.now)
	for i := range 10 {
		if ok, _ := l.Allow(fmt.Sprint("k", i)); !ok {
			t.Fatalf("first call for k%d rejected", i)
		}
		if n := l.Len(); n > 3 {
			t.Fatalf("after %d keys Len = %d, want at most 3", i+1, n)
		}
	}
	// k9 is recent and still drained.
	if ok, _ := l.Allow("k9"); ok {
		t.Error("k9 allowed again right away")
	}
	// k0 was evicted: it starts with a fresh bucket.
	if ok, _ := l.Allow("k0"); !ok {
		t.Error("evicted k0 not allowed")
	}
}

func TestLimiter_leastRecentlyUsedGoes(t *testing.T) {
	c := newClock()
	l := New(1, 1, 2, c.now)
	l.Allow("a")
	l.Allow("b")
	l.Allow("a") // a is now the most recent, drained
	l.Allow("c") // evicts b
	if ok, _ := l.Allow("a"); ok {
		t.Error("a was evicted; want b evicted as least recently used")
	}
}

func TestLimiter_idleBucketsDropped(t *testing.T) {
	c := newClock()
	l := New(10, 5, 1000, c.now) // full again after 500ms
	for i := range 4 {
		l.Allow(fmt.Sprint("old", i))
	}
	c.advance(499 * time.Millisecond)
	l.Allow("new1")
	if n := l.Len(); n != 5 {
		t.Fatalf("before buckets refill: Len = %d, want 5", n)
	}
	c.advance(time.Millisecond)
	l.Allow("new2")
	if n := l.Len(); n != 2 {
		t.Fatalf("after old buckets refilled: Len = %d, want 2 (new1, new2)", n)
	}
}

func TestLimiter_concurrent(t *testing.T) {
	c := newClock()
	l := New(1, 50, 1000, c.now)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if ok, _ := l.Allow("shared"); ok {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprint("g", g, "-", i%20))
			}
		}()
	}
	wg.Wait()
	// The clock does not move: exactly the burst of the shared key passes.
	if got := allowed.Load(); got != 50 {
		t.Errorf("allowed %d on the shared key, want the burst of 50", got)
	}
	if n := l.Len(); n != 1+8*20 {
		t.Errorf("Len = %d, want %d", n, 1+8*20)
	}
}

func TestLimiter_realClock(t *testing.T) {
	l := New(1000, 1, 10, nil)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("first call rejected")
	}
}

// Check looks without taking: only Allow spends the bucket.
func TestLimiter_Check(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(1, 2, 10, func() time.Time { return now })
	for range 5 {
		if ok, _ := l.Check("k"); !ok {
			t.Fatal("Check spent a token")
		}
	}
	l.Allow("k")
	l.Allow("k")
	ok, wait := l.Check("k")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("empty bucket: ok %v wait %v", ok, wait)
	}
	now = now.Add(time.Second)
	if ok, _ := l.Check("k"); !ok {
		t.Fatal("refilled bucket refused")
	}
}

func TestLimiter_Level(t *testing.T) {
	now := time.Unix(0, 0)
	l := New(1, 4, 10, func() time.Time { return now })
	if got := l.Level("a"); got != 1 {
		t.Fatalf("level of an unknown key %v, want 1", got)
	}
	l.Allow("a")
	l.Allow("a")
	if got := l.Level("a"); got != 0.5 {
		t.Fatalf("level after 2 of 4 %v, want 0.5", got)
	}
	now = now.Add(time.Second)
	if got := l.Level("a"); got != 0.75 {
		t.Fatalf("level a second later %v, want 0.75", got)
	}
	if got := New(0, 4, 10, nil).Level("a"); got != 1 {
		t.Fatalf("level of a disabled limiter %v, want 1", got)
	}
}
