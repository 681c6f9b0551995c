package recorder

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestCode(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		ok     bool
	}{
		{"malformed", fmt.Errorf("%w: events[2]: type is required", ErrMalformed), http.StatusBadRequest, "malformed", true},
		{"invalid id", fmt.Errorf("%w: session_id must match", ErrInvalidID), http.StatusBadRequest, "invalid_id", true},
		{"unknown key", ErrUnknownKey, http.StatusUnauthorized, "unknown_key", true},
		{"too large", fmt.Errorf("decompress: %w", fmt.Errorf("%w: body over 10 bytes", ErrTooLarge)), http.StatusRequestEntityTooLarge, "too_large", true},
		{"too many events", ErrTooManyEvents, http.StatusRequestEntityTooLarge, "too_many_events", true},
		{"event too large", ErrEventTooLarge, http.StatusRequestEntityTooLarge, "event_too_large", true},
		{"unsupported encoding", ErrUnsupportedEncoding, http.StatusUnsupportedMediaType, "unsupported_encoding", true},
		{"rate limited", fmt.Errorf("%w: retry after 1s", ErrRateLimited), http.StatusTooManyRequests, "rate_limited", true},
		{"joined", errors.Join(errors.New("x"), ErrTooLarge), http.StatusRequestEntityTooLarge, "too_large", true},
		{"other", errors.New("disk full"), 0, "", false},
		{"nil", nil, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, ok := Code(tt.err)
			if status != tt.status || code != tt.code || ok != tt.ok {
				t.Errorf("Code(%v) = %d, %q, %v; want %d, %q, %v", tt.err, status, code, ok, tt.status, tt.code, tt.ok)
			}
		})
	}
}
