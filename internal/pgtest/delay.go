package pgtest

import (
	"net"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Delayed returns dbURL through a proxy on loopback that holds every
// chunk of bytes, in each direction, for oneWay before passing it on: a
// database on another host, oneWay apart, for a benchmark of what each
// round trip costs. Chunks keep their order and are read while earlier
// ones wait, so the delay adds latency, not a bandwidth limit. The proxy's
// own hops add to it: with oneWay 0.1 ms a query's round trip takes ~0.6
// ms through it, ~0.07 ms directly (on the 2-core development machine).
// The proxy stops when the test ends.
func Delayed(t testing.TB, dbURL string, oneWay time.Duration) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	target := u.Host
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); delayCopy(up, c, oneWay) }()
			go func() { defer wg.Done(); delayCopy(c, up, oneWay) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	u.Host = ln.Addr().String()
	return u.String()
}

// delayCopy copies src to dst, each chunk oneWay after it was read, and
// closes dst's writing side (or dst) when src ends.
func delayCopy(dst, src net.Conn, oneWay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				// A copy of what was read: the benchmark's process shares
				// the cores, so no 64 KB per chunk for the collector.
				q <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(oneWay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.at); d > 0 {
			// The runtime's timers wake a millisecond late or more; a
			// nanosleep of this thread wakes within ~0.1 ms.
			ts := syscall.NsecToTimespec(int64(d))
			syscall.Nanosleep(&ts, nil)
		}
		if _, err := dst.Write(c.b); err != nil {
			src.Close()
			for range q { // let the reader end
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
		return
	}
	dst.Close()
}
