package recorder

import (
	"fmt"
	"time"
)

// maxClockSkew bounds Limits.MaxClockSkew: together with the receive time
// it keeps every stored timestamp a time that JSON can carry.
const maxClockSkew = 7 * 24 * time.Hour

// checkTimes refuses a batch (wrapping ErrTimestampOutOfRange) when one of
// its events is dated more than lim.MaxClockSkew after b.ReceivedAt or,
// when lim.MaxEventAge is set, more than MaxEventAge before it. Stored
// dates drive the session list, retention and every time filter: a session
// dated in the year 2100 would head the list for decades, and one past the
// year 9999 cannot even be written as JSON.
func checkTimes(b *Batch, lim Limits) error {
	if latest := b.ReceivedAt + lim.MaxClockSkew.Milliseconds(); b.maxTS > latest {
		return fmt.Errorf("%w: an event is dated %s, more than %v after the server's time %s",
			ErrTimestampOutOfRange, formatMS(b.maxTS), lim.MaxClockSkew, formatMS(b.ReceivedAt))
	}
	if lim.MaxEventAge > 0 {
		if earliest := b.ReceivedAt - lim.MaxEventAge.Milliseconds(); b.minTS < earliest {
			return fmt.Errorf("%w: an event is dated %s, more than %v before the server's time %s",
				ErrTimestampOutOfRange, formatMS(b.minTS), lim.MaxEventAge, formatMS(b.ReceivedAt))
		}
	}
	return nil
}

// formatMS writes unix ms for an error message.
func formatMS(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
