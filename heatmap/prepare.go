package heatmap

import (
	"unsafe"

	"github.com/trailmap/trailmap/internal/jsonscan"
	"github.com/trailmap/trailmap/internal/rrweb"
)

// decoded holds the fields of one event that the tracker reads: decoded
// ahead of the index transaction by Prepare, or on the spot.
type decoded struct {
	// Meta
	href         string
	metaW, metaH int64
	// FullSnapshot: the node tree and the initial scroll offset; snap is
	// the tree loaded in a mirror already (Prepare), taken by the first
	// tracker that uses it.
	node      []byte
	top, left float64
	snap      *mirror
	// Incremental
	source, typ, id      int64
	x, y, w, h           float64
	adds, removes, attrs []byte
}

func decodeMeta(data []byte, d *decoded) {
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "href":
			d.href = jsonscan.Str(val)
		case "width":
			d.metaW, _ = jsonscan.Int(val)
		case "height":
			d.metaH, _ = jsonscan.Int(val)
		}
		return true
	})
}

func decodeFullSnapshot(data []byte, d *decoded) {
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "node":
			d.node = val
		case "initialOffset":
			jsonscan.EachField(val, func(k, v []byte) bool {
				switch string(k) {
				case "top":
					d.top, _ = jsonscan.Num(v)
				case "left":
					d.left, _ = jsonscan.Num(v)
				}
				return true
			})
		}
		return true
	})
}

// decodeIncremental reads an incremental event's source and the fields the
// tracker uses; a mutation's lists only when mutations is set (there is a
// mirror to apply them to).
func decodeIncremental(data []byte, mutations bool, d *decoded) {
	d.source, d.typ = -1, -1
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "source":
			d.source, _ = jsonscan.Int(val)
			switch d.source {
			case srcMouseMove, srcTouchMove, srcInput, srcMediaInteraction, srcStyleSheetRule,
				srcCanvasMutation, srcStyleDeclaration, srcAdoptedStyleSheet:
				return false // nothing more needed from these, often large
			case srcMutation:
				return mutations
			}
		case "type":
			d.typ, _ = jsonscan.Int(val)
		case "id":
			d.id, _ = jsonscan.Int(val)
		case "x":
			d.x, _ = jsonscan.Num(val)
		case "y":
			d.y, _ = jsonscan.Num(val)
		case "width":
			d.w, _ = jsonscan.Num(val)
		case "height":
			d.h, _ = jsonscan.Num(val)
		case "adds":
			d.adds = val
		case "removes":
			d.removes = val
		case "attributes":
			d.attrs = val
		}
		return true
	})
}

// prepared is a batch's events decoded ahead of the index transaction.
type prepared struct {
	at   []int32   // by event: 1 + its index in evs, 0 for one the tracker ignores
	evs  []decoded // Meta, FullSnapshot and Incremental events
	none decoded   // what an ignored event decodes to
}

// get returns event i's decoded fields.
func (p *prepared) get(i int) *decoded {
	if j := p.at[i]; j > 0 {
		return &p.evs[j-1]
	}
	p.none = decoded{source: -1, typ: -1}
	return &p.none
}

// Prepare decodes what the tracker needs from a batch's events and loads
// full snapshots into DOM mirrors, so that the index transaction, which
// all batches share one at a time, only applies them. It runs on the
// request's goroutine (recorder.Preparer) and touches no shared state. The
// size is an estimate of the memory held until the batch is observed.
func (s *Service) Prepare(events []rrweb.Event) (any, int64) {
	p := &prepared{at: make([]int32, len(events))}
	var size int64
	for i, ev := range events {
		var d decoded
		switch ev.Type {
		case rrweb.Meta:
			decodeMeta(ev.Data, &d)
		case rrweb.FullSnapshot:
			decodeFullSnapshot(ev.Data, &d)
			d.snap = newMirror(s.cfg.MaxMirrorNodes)
			d.snap.loadSnapshot(d.node)
			size += int64(d.snap.size()) * mirrorNodeBytes
		case rrweb.Incremental:
			decodeIncremental(ev.Data, true, &d)
			switch d.source {
			case srcMouseMove, srcTouchMove:
				continue // nothing the tracker does with these
			}
		default:
			continue
		}
		p.evs = append(p.evs, d)
		p.at[i] = int32(len(p.evs))
	}
	size += int64(len(p.at))*4 + int64(cap(p.evs))*int64(unsafe.Sizeof(decoded{}))
	return p, size
}

// mirrorNodeBytes is about what a mirror keeps per node: the node, its
// index entry and its strings.
const mirrorNodeBytes = 100
