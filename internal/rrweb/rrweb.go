// Package rrweb reads the envelope of rrweb events (type, timestamp and the
// raw data value) in one pass. The recorder reads it once per event on the
// request's goroutine and hands it to everything after it (facts, heatmap
// and journey observers), so the single index writer never scans an
// event's bytes just to find its type.
package rrweb

import (
	"encoding/json"

	"github.com/trailmap/trailmap/internal/jsonscan"
)

// Event types this module looks into.
const (
	DOMContentLoaded = 0
	Load             = 1
	FullSnapshot     = 2
	Incremental      = 3
	Meta             = 4
	Custom           = 5
)

// Event is an rrweb event with its envelope read.
type Event struct {
	Type         int64 // -1 when missing or not an integer
	Timestamp    int64
	HasTimestamp bool   // the event has an integer timestamp
	Data         []byte // the raw "data" value; nil when missing
	Raw          json.RawMessage
}

// Split reads the envelope of one event, known to be valid JSON.
func Split(raw json.RawMessage) Event {
	e := Event{Type: -1, Raw: raw}
	jsonscan.EachField(raw, func(key, val []byte) bool {
		switch string(key) {
		case "type":
			if v, ok := jsonscan.Int(val); ok {
				e.Type = v
			}
		case "timestamp":
			e.Timestamp, e.HasTimestamp = jsonscan.Int(val)
		case "data":
			e.Data = val
		}
		return true
	})
	return e
}

// SplitAll reads the envelopes of events.
func SplitAll(raws []json.RawMessage) []Event {
	out := make([]Event, len(raws))
	for i, r := range raws {
		out[i] = Split(r)
	}
	return out
}
