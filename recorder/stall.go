package recorder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrIndexStalled is returned by IndexReady while the index does not take
// the recorder's writes.
var ErrIndexStalled = errors.New("index writes stalled")

// stallAfter is how long a stage may work on one group of batches before the
// index counts as stalled: a healthy group commits in milliseconds, while a
// locked or failing index keeps a stage retrying (each attempt waits for
// SQLite's busy timeout).
const stallAfter = 5 * time.Second

// stall notes since when a stage has been working on its current group.
// It measures real time (time.Now), not the recorder's clock: it is about
// the process, not the data.
type stall struct {
	mu    sync.Mutex
	since time.Time // zero while idle
}

func (s *stall) begin() {
	s.mu.Lock()
	s.since = time.Now()
	s.mu.Unlock()
}

func (s *stall) end() {
	s.mu.Lock()
	s.since = time.Time{}
	s.mu.Unlock()
}

// stuck returns for how long the current group has been in work, if over
// stallAfter.
func (s *stall) stuck() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since.IsZero() {
		return 0, false
	}
	d := time.Since(s.since)
	return d, d > stallAfter
}

// IndexReady reports whether the index takes the recorder's writes: it
// fails (ErrIndexStalled) while either index stage has been stuck on one
// group of batches for more than a few seconds, as when another process
// holds the SQLite write lock or the index's disk fails. Accepted batches
// stay in the write-ahead log meanwhile and are applied once the index is
// back; /readyz reports it so that a balancer can send ingest elsewhere.
func (r *Recorder) IndexReady(context.Context) error {
	if d, ok := r.applyStall.stuck(); ok {
		return fmt.Errorf("%w: recording batches for %s", ErrIndexStalled, d.Round(time.Second))
	}
	if d, ok := r.obsStall.stuck(); ok {
		return fmt.Errorf("%w: observing batches for %s", ErrIndexStalled, d.Round(time.Second))
	}
	return nil
}
