package heatmap

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
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

// mirrorState is what a mirror holds, for comparing two: its slots (the
// journal's stamps left out), free list, index, root and cap flag.
type mirrorState struct {
	nodes      []mnode
	free       []int32
	ids        map[int32]int32
	root       int32
	full, none bool
}

func stateOf(m *mirror) mirrorState {
	s := mirrorState{ids: map[int32]int32{}, root: m.root, full: m.full, free: slices.Clone(m.free)}
	for _, n := range m.nodes {
		n.saved = 0
		s.nodes = append(s.nodes, n)
	}
	for id := range int32(len(m.idx.dense)) {
		if slot, ok := m.idx.get(id); ok {
			s.ids[id] = slot
		}
	}
	for id, slot := range m.idx.sparse {
		s.ids[id] = slot
	}
	return s
}

// TestMirror_Rollback: a mirror marked, then changed by random mutations
// (nodes added with children, moved, removed with their subtrees, their
// attributes changed, ids beyond the index's slice, the node cap hit), goes
// back exactly to what it was at the mark; marks taken again forget the
// earlier ones.
func TestMirror_Rollback(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	tr := newTracker(nil, 400)
	tr.mirror = newMirror(400)
	tr.mirror.loadSnapshot([]byte(testDOM))
	next := int32(100)
	ids := func() []int32 {
		var out []int32
		for id := range int32(len(tr.mirror.idx.dense)) {
			if _, ok := tr.mirror.idx.get(id); ok {
				out = append(out, id)
			}
		}
		for id := range tr.mirror.idx.sparse {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	pick := func() int32 {
		if all := ids(); len(all) > 0 && r.IntN(10) > 0 {
			return all[r.IntN(len(all))]
		}
		return int32(r.IntN(200)) // perhaps unknown
	}
	newNode := func() string {
		next++
		if r.IntN(20) == 0 {
			next += 1 << 20 // far beyond: the index's map
		}
		id := next
		kids := ""
		for k := range r.IntN(4) {
			next++
			if k > 0 {
				kids += ","
			}
			kids += fmt.Sprintf(`{"type":2,"id":%d,"tagName":"span","attributes":{"class":"k%d"},"childNodes":[]}`, next, k)
		}
		return fmt.Sprintf(`{"type":2,"id":%d,"tagName":"div","attributes":{"class":"c%d"},"childNodes":[%s]}`, id, r.IntN(5), kids)
	}
	mutate := func() {
		var adds, removes, attrs []string
		for range r.IntN(4) {
			switch r.IntN(5) {
			case 0, 1:
				node := newNode()
				if r.IntN(4) == 0 { // an existing node again: a move
					node = fmt.Sprintf(`{"type":2,"id":%d,"tagName":"p","attributes":{},"childNodes":[]}`, pick())
				}
				adds = append(adds, fmt.Sprintf(`{"parentId":%d,"nextId":%d,"previousId":%d,"node":%s}`, pick(), []int32{0, pick()}[r.IntN(2)], []int32{0, pick()}[r.IntN(2)], node))
			case 2:
				removes = append(removes, fmt.Sprintf(`{"parentId":0,"id":%d}`, pick()))
			default:
				attrs = append(attrs, fmt.Sprintf(`{"id":%d,"attributes":{"class":"a%d","id":null,"contenteditable":"%v"}}`, pick(), r.IntN(9), r.IntN(2) == 0))
			}
		}
		tr.mutation([]byte("["+strings.Join(adds, ",")+"]"), []byte("["+strings.Join(removes, ",")+"]"), []byte("["+strings.Join(attrs, ",")+"]"))
	}
	var at *mirrorState
	rollbacks := 0
	for step := range 4000 {
		switch op := r.IntN(100); {
		case op < 8:
			tr.mirror.mark()
			s := stateOf(tr.mirror)
			at = &s
		case op < 14 && at != nil:
			tr.mirror.rollback()
			if got := stateOf(tr.mirror); !reflect.DeepEqual(got, *at) {
				t.Fatalf("step %d: after the rollback the mirror differs from the mark:\n got %+v\nwant %+v", step, got, *at)
			}
			if tr.mirror.marked() {
				t.Fatalf("step %d: still marked after the rollback", step)
			}
			tr.mirror.rollback() // without a mark: nothing
			if got := stateOf(tr.mirror); !reflect.DeepEqual(got, *at) {
				t.Fatalf("step %d: a rollback without a mark changed the mirror", step)
			}
			at = nil
			rollbacks++
		default:
			mutate()
		}
		if tr.mirror.size() == 0 || tr.mirror.root == 0 {
			tr.mirror.forget()
			tr.mirror.loadSnapshot([]byte(testDOM))
			at = nil
		}
	}
	if rollbacks < 100 || !tr.mirror.full && next < 400 {
		t.Errorf("%d rollbacks, cap hit %v: the test did not reach its cases", rollbacks, tr.mirror.full)
	}
}
