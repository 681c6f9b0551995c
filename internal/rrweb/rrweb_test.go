package rrweb

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestSplit_Fixtures: on every event of the shared rrweb corpus the
// envelope agrees with encoding/json.
func TestSplit_Fixtures(t *testing.T) {
	files, err := filepath.Glob("../../../shared/testdata/rrweb-fixtures/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var events []json.RawMessage
		if err := json.Unmarshal(b, &events); err != nil {
			continue // not an event stream (README)
		}
		for i, raw := range events {
			var want struct {
				Type      *int64
				Timestamp *int64
				Data      json.RawMessage
			}
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			got := Split(raw)
			if want.Type == nil || got.Type != *want.Type {
				t.Errorf("%s #%d: type %d, want %v", filepath.Base(f), i, got.Type, want.Type)
			}
			if want.Timestamp == nil || !got.HasTimestamp || got.Timestamp != *want.Timestamp {
				t.Errorf("%s #%d: timestamp %d (%v), want %v", filepath.Base(f), i, got.Timestamp, got.HasTimestamp, want.Timestamp)
			}
			if !bytes.Equal(bytes.TrimSpace(got.Data), bytes.TrimSpace(want.Data)) {
				t.Errorf("%s #%d: data differs", filepath.Base(f), i)
			}
			n++
		}
	}
	if n < 100 {
		t.Fatalf("only %d events checked", n)
	}
}

func TestSplit_Missing(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Event
	}{
		{`{}`, Event{Type: -1}},
		{`{"type":"x","timestamp":"1"}`, Event{Type: -1}},
		{`{"data":{"a":1},"type":3}`, Event{Type: 3, Data: []byte(`{"a":1}`)}},
	} {
		got := Split(json.RawMessage(tc.in))
		if got.Type != tc.want.Type || got.HasTimestamp != tc.want.HasTimestamp || got.Timestamp != tc.want.Timestamp || !bytes.Equal(got.Data, tc.want.Data) {
			t.Errorf("%s: %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
