package recorder

import (
	"fmt"
	"testing"
)

// Batches waiting together for the observers are put in seq order per
// session, each session where its first batch was.
func TestInSessionOrder(t *testing.T) {
	mk := func(sid, seq int64) *entry { return &entry{sid: sid, b: &Batch{Seq: seq}} }
	group := []*entry{mk(7, 3), mk(9, 1), mk(7, 1), mk(8, 0), mk(9, 0), mk(7, 2)}
	inSessionOrder(group)
	var got string
	for _, e := range group {
		got += fmt.Sprintf("%d/%d ", e.sid, e.b.Seq)
	}
	if want := "7/1 7/2 7/3 9/0 9/1 8/0 "; got != want {
		t.Errorf("order %q, want %q", got, want)
	}
}
