package rrwebgen

import (
	"encoding/json"
	"testing"
)

func TestGen_Shapes(t *testing.T) {
	g := New(1, 1_700_000_000_000)
	page := g.Page(800)
	act := g.Activity(60)
	size := 0
	for _, ev := range append(page, act...) {
		var e struct {
			Type      int   `json:"type"`
			Timestamp int64 `json:"timestamp"`
		}
		if err := json.Unmarshal(ev, &e); err != nil {
			t.Fatal(err)
		}
		size += len(ev)
	}
	if len(page) != 2 || len(act) < 120 {
		t.Fatalf("page %d events, a minute of activity %d events", len(page), len(act))
	}
	t.Logf("snapshot %d bytes, one minute of activity %d events, total %d bytes", len(page[1]), len(act), size)
}
