// Package unixms turns stored unix-millisecond timestamps into times that
// can always be written as JSON.
package unixms

import "time"

// Bounds of the times encoding/json writes: RFC 3339 has four-digit years.
var (
	minTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
)

// Time returns ms as a UTC time, clamped to the years 0000 to 9999. Ingest
// refuses events dated far from its clock, but an index may hold older rows
// (or rows written by other means): one of them must not make every
// response that lists it fail to encode.
func Time(ms int64) time.Time {
	switch {
	case ms > maxTime.UnixMilli():
		return maxTime
	case ms < minTime.UnixMilli():
		return minTime
	}
	return time.UnixMilli(ms).UTC()
}
