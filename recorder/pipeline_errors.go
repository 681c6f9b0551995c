package recorder

import (
	"errors"
	"fmt"
	"time"

	"github.com/trailmap/trailmap/internal/wal"
)

// ErrShuttingDown is returned while the recorder drains for shutdown.
var ErrShuttingDown = errors.New("server is shutting down")

// ErrOverloaded is returned, wrapped with the reason, when the recorder
// takes no more for now: more accepted data waits for the blob store than it
// may hold (the store is down or slower than ingest), or Config.MaxInFlight
// requests are in progress. Nothing of the request was kept; callers answer
// 503 with Retry-After and clients retry later.
var ErrOverloaded = errors.New("server is overloaded")

// ErrStorageFull is wrapped by Ingest's error when the write-ahead log's
// disk is full (or over a quota or file size limit). Nothing of the request
// was kept; callers answer 503 with Retry-After, and ingest works again as
// soon as there is room.
var ErrStorageFull = wal.ErrNoSpace

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
