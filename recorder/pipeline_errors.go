package recorder

import (
	"errors"
	"fmt"
	"time"
)

// ErrShuttingDown is returned while the recorder drains for shutdown.
var ErrShuttingDown = errors.New("server is shutting down")

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
