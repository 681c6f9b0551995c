package heatmap

import (
	"math/rand/v2"
	"testing"

	"github.com/trailmap/trailmap/internal/jsonscan"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/internal/rrwebgen"
)

// TestNodeIndex: the mirror's id index answers as a map would through
// adds, deletes and clears, with ids from 1 up (a page's snapshot), far
// beyond the nodes held (long sessions) and back, so ids move from the
// map to the slice as it grows.
func TestNodeIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var x nodeIndex
	want := map[int32]int32{}
	check := func(step int) {
		t.Helper()
		if x.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, x.len(), len(want))
		}
		for id, slot := range want {
			if got, ok := x.get(id); !ok || got != slot {
				t.Fatalf("step %d: get(%d) = %d, %v; want %d", step, id, got, ok, slot)
			}
		}
	}
	next, most := int32(1), 0
	for step := range 20000 {
		switch op := r.IntN(10); {
		case op < 5: // the next id, as rrweb hands them out
			if _, ok := want[next]; !ok {
				x.set(next, int32(step))
				want[next] = int32(step)
			}
			next++
		case op < 6: // an id far beyond
			id := int32(r.IntN(1 << 30))
			if _, ok := want[id]; !ok {
				x.set(id, int32(step))
				want[id] = int32(step)
			}
		case op < 9: // a delete, of a held id or not
			id := int32(r.IntN(int(next) + 10))
			x.del(id)
			delete(want, id)
		default:
			if r.IntN(500) == 0 {
				x.clear()
				clear(want)
			}
		}
		if _, ok := x.get(next + 1000); ok {
			t.Fatalf("step %d: an id never added is held", step)
		}
		most = max(most, x.len())
		if step%997 == 0 {
			check(step)
		}
	}
	check(-1)
	if len(x.dense) > 8*(most+1024) {
		t.Errorf("a slice of %d for at most %d ids held at once", len(x.dense), most)
	}
}

// BenchmarkMirrorSnapshot is a new session's first full snapshot (a
// generated page of about 2,000 nodes) read into a new mirror.
func BenchmarkMirrorSnapshot(b *testing.B) {
	g := rrwebgen.New(1, 1_764_000_000_000)
	evs := rrweb.SplitAll(g.Page(2000))
	var node []byte
	jsonscan.EachField(evs[1].Data, func(k, v []byte) bool {
		if string(k) == "node" {
			node = v
		}
		return true
	})
	b.SetBytes(int64(len(node)))
	b.ReportAllocs()
	for b.Loop() {
		m := newMirror(50000)
		m.loadSnapshot(node)
		if m.size() < 1000 {
			b.Fatalf("%d nodes", m.size())
		}
	}
}
