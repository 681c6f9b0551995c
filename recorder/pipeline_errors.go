package recorder

import (
	"errors"
	"fmt"
	"time"
)

// ErrShuttingDown is returned while the recorder drains for shutdown.
var ErrShuttingDown = errors.New("server is shutting down")

// ErrOverloaded is returned when more accepted data waits for the blob store
// than the recorder may hold (the store is down or slower than ingest);
// clients retry later. It wraps nothing: callers answer 503 with Retry-After.
var ErrOverloaded = errors.New("server is overloaded: buffered events are waiting for the blob store")

// RateLimitError is a rejection by a rate limit; it wraps ErrRateLimited and
// says when to retry.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: retry after %s", ErrRateLimited, e.RetryAfter.Round(time.Millisecond))
}

// Unwrap makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }
