package recorder

import (
	"errors"
	"net/http"
)

// Ingest errors. Functions of this package wrap them with a message saying
// what exactly was wrong; the server maps them to a status and a JSON error
// code with Code.
var (
	// ErrMalformed means the body is not the JSON batch the contract describes.
	ErrMalformed = errors.New("malformed batch")
	// ErrInvalidID means a session, visitor or user id is missing or does not
	// match its pattern.
	ErrInvalidID = errors.New("invalid id")
	// ErrUnknownKey means the write key names no project.
	ErrUnknownKey = errors.New("unknown write key")
	// ErrTooLarge means the body is over a size limit, compressed or decompressed.
	ErrTooLarge = errors.New("body too large")
	// ErrTooManyEvents means a batch holds more events than allowed.
	ErrTooManyEvents = errors.New("too many events")
	// ErrEventTooLarge means one event is over the per-event size limit.
	ErrEventTooLarge = errors.New("event too large")
	// ErrUnsupportedEncoding means the content encoding is not one we decode.
	ErrUnsupportedEncoding = errors.New("unsupported encoding")
	// ErrRateLimited means the client sent more than its rate allows.
	ErrRateLimited = errors.New("rate limited")
	// ErrTimestampOutOfRange means an event is dated too far in the future
	// or the past of the server's clock (Limits.MaxClockSkew, MaxEventAge).
	ErrTimestampOutOfRange = errors.New("timestamp out of range")
)

var errorCodes = [...]struct {
	err    error
	status int
	code   string
}{
	{ErrMalformed, http.StatusBadRequest, "malformed"},
	{ErrInvalidID, http.StatusBadRequest, "invalid_id"},
	{ErrUnknownKey, http.StatusUnauthorized, "unknown_key"},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{ErrTooManyEvents, http.StatusRequestEntityTooLarge, "too_many_events"},
	{ErrEventTooLarge, http.StatusRequestEntityTooLarge, "event_too_large"},
	{ErrUnsupportedEncoding, http.StatusUnsupportedMediaType, "unsupported_encoding"},
	{ErrRateLimited, http.StatusTooManyRequests, "rate_limited"},
	{ErrTimestampOutOfRange, http.StatusBadRequest, "timestamp_out_of_range"},
	{ErrQuotaExceeded, http.StatusTooManyRequests, "quota_exceeded"},
	{ErrInvalidTraits, http.StatusBadRequest, "invalid_traits"},
	{ErrInvalidRules, http.StatusBadRequest, "invalid_rules"},
}

// Code maps an error wrapping one of the ingest errors to its HTTP status
// and the code of the JSON error body. ok is false for any other error,
// which the caller treats as an internal error.
func Code(err error) (status int, code string, ok bool) {
	if err == nil {
		return 0, "", false
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.status, c.code, true
		}
	}
	return 0, "", false
}
