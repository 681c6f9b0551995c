package recorder

import (
	"fmt"
	"testing"
)

// TestLockOrder: stage 1 takes a group's batches by project and session
// id, each session's in the order they came, and leaves the group as it was.
func TestLockOrder(t *testing.T) {
	batch := func(project int64, session string, seq int64) *entry {
		return &entry{b: &Batch{ProjectID: project, SessionID: session, Seq: seq}}
	}
	group := []*entry{batch(2, "a", 0), batch(1, "b", 4), batch(1, "a", 1), batch(1, "b", 3), batch(1, "a", 0), batch(1, "B", 7)}
	name := func(es []*entry) string {
		s := ""
		for _, e := range es {
			s += fmt.Sprintf("%d/%s/%d ", e.b.ProjectID, e.b.SessionID, e.b.Seq)
		}
		return s
	}
	before := name(group)
	if got, want := name(lockOrder(group)), "1/B/7 1/a/1 1/a/0 1/b/4 1/b/3 2/a/0 "; got != want {
		t.Errorf("lockOrder = %s, want %s", got, want)
	}
	if name(group) != before {
		t.Errorf("the group changed: %s", name(group))
	}
}
