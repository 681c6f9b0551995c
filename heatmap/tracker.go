package heatmap

import (
	"maps"
	"math"
	"slices"

	"github.com/trailmap/trailmap/internal/jsonscan"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/internal/textcut"
)

// rrweb incremental sources (rrweb's IncrementalSource enum); the event
// types are in internal/rrweb.
const (
	srcMutation          = 0
	srcMouseMove         = 1
	srcMouseInteraction  = 2
	srcScroll            = 3
	srcViewportResize    = 4
	srcInput             = 5
	srcTouchMove         = 6
	srcMediaInteraction  = 7
	srcStyleSheetRule    = 8
	srcCanvasMutation    = 9
	srcStyleDeclaration  = 13
	srcAdoptedStyleSheet = 15

	mouseDown  = 1
	mouseClick = 2
)

// CellPx is the grid resolution: clicks are counted in 8×8 page-pixel
// cells. 8 px is below the kernel radius, so rendering from cells is as
// smooth as from points, and a 1280×6000 page has at most 120k cells.
const CellPx = 8

// WidthBucketPx rounds document widths: clicks are aggregated per width
// bucket, so maps of different widths can be combined by scaling x.
const WidthBucketPx = 16

// Ratio cells: the offset of a click inside its element is kept on a
// RatioCells×RatioCells grid of the element's box.
const RatioCells = 16

// Grid limits: clicks beyond 16384 px across or 65536 px down are not
// drawn (they are still counted for elements and signals).
const (
	maxCellX = 16384 / CellPx
	maxCellY = 65536 / CellPx
)

// Signal types.
const (
	SignalRage  = "rage"
	SignalDead  = "dead"
	SignalError = "error"
)

// box is a rectangle in CSS pixels.
type box struct{ X, Y, W, H float64 }

// pageview is one page shown in a session: a Meta event, or the last one
// restored from the index after a restart.
type pageview struct {
	rowID      int64
	pageID     int64
	key, url   string
	start      int64 // unix ms
	snapshotTS int64 // full snapshot of this page view, 0 if none yet
	vw, vh     int   // viewport at the start: the fold
	docW, docH int   // document scroll size from trailmap/doc, 0 unknown
	maxBottom  float64
	// What this page view adds to the scroll aggregates now (bucket -1:
	// nothing), so a change can be applied as a difference.
	bucket         int
	foldPx, foldPm int
	clicks         int
	device         string
	dirty          bool
	// What the index row currently contributes (applied by the sink).
	aBucket, aFoldPx, aFoldPm, aDocH int
}

// click is one placed click.
type click struct {
	rowID  int64
	pv     *pageview
	ts     int64
	vx, vy float64 // viewport (clientX/Y)
	px, py float64 // page
	wb     int     // document width bucket
	node   int32
	sel    string
	selID  int64 // set by the sink
	tag    string
	class  string
	hasBox bool
	box    box // page coordinates
	ox, oy float64
	flags  uint8
	rage   *signal
	// waiting for the dead-click window
	deadDone bool
	// given to the sink (txSink writes its row at the end of the
	// transaction, with the box and flags it has then)
	given bool
}

// Click flags, also stored in heat_clicks.flags.
const (
	clickRage  uint8 = 1
	clickDead  uint8 = 2
	clickError uint8 = 4
)

// signal is a frustration signal found in a session.
type signal struct {
	rowID   int64
	typ     string
	c       *click // the (first) click
	count   int
	message string
	// its row waits for the end of the transaction (txSink)
	queued bool
}

// sink receives what a tracker finds, in order, inside the index
// transaction; each method may fail, which fails the batch.
type sink interface {
	startPageview(pv *pageview) error
	savePageview(pv *pageview) error
	click(c *click) error
	clickBox(c *click) error
	signal(s *signal, clicks []*click) error
}

// earlyBox is a trailmap/click event seen before its rrweb click.
type earlyBox struct {
	ts     int64
	node   int32
	vx, vy float64
	box    box // viewport coordinates
}

type pendingReload struct {
	ts, snapTS int64
	href       string
}

// tracker follows one session's events: pages, viewport, document and main
// container scroll, the DOM (in a mirror), and recent clicks for
// frustration signals.
type tracker struct {
	set    *Settings
	mirror *mirror // nil: unknown DOM (evicted, or restarted mid-session)
	pv     *pageview
	// noDOM counts the clicks placed without a mirror (no element), until
	// the service takes the count.
	noDOM int

	vw, vh        int
	scrollX       float64
	scrollY       float64
	docNode       int32
	mainNode      int32 // element the page scrolls instead of the document
	mainX, mainY  float64
	elemScroll    map[int32][2]float64
	docMaxScroll  float64
	sawLoad       bool // Load/DOMContentLoaded since the last Meta
	awaitSnapshot bool // a Meta started a page view; a full snapshot may follow
	// reload is a Meta that repeated the current URL without a page load
	// event: a checkout or repair snapshot, or a reload if the recorder's
	// trailmap/page follows.
	reload         *pendingReload
	lastMouseDown  int64
	lastActivity   int64
	lastTS         int64
	chain          []*click // current rage chain
	recent         []*click // last clicks, newest last, for error clicks and late boxes
	pending        []*click // clicks in their dead-click window
	early          []earlyBox
	unwritten      []*click // placed, not yet given to the sink (waiting for a box)
	maxMirrorNodes int

	// batches is the session's observed count after the last batch this
	// tracker saw; a gap means a rolled-back transaction or lost state.
	batches int64
}

const (
	maxRecent     = 16
	maxPending    = 64
	maxElemScroll = 64
	maxEarly      = 8
	boxMatchMS    = 1500
)

func newTracker(set *Settings, maxMirrorNodes int) *tracker {
	return &tracker{set: set, maxMirrorNodes: maxMirrorNodes, docNode: 1}
}

// checkpoint returns a copy of the tracker as it is now, to follow the
// session on from here (restore) if what t follows next is rolled back:
// nothing the copy holds changes with t. The page views, clicks and signals
// are copied (a few dozen at most); the DOM mirror, thousands of nodes, is
// shared and marked: it keeps what t changes in it until the next mark, and
// restore puts that back. t makes itself a new mirror for a full snapshot.
func (t *tracker) checkpoint() *tracker {
	c := *t
	if t.mirror != nil {
		t.mirror.mark()
	}
	var cp copier
	if n := len(t.recent) + len(t.pending); n > 0 {
		// (most clicks held are recent; pending and chain ones mostly too)
		cp.block = make([]click, 0, n)
		cp.copied = make([]pair[click], 0, n)
	}
	c.pv = cp.pageview(t.pv)
	c.chain = cp.clicks(t.chain)
	c.recent = cp.clicks(t.recent)
	c.pending = cp.clicks(t.pending)
	c.unwritten = cp.clicks(t.unwritten)
	c.early = slices.Clone(t.early)
	c.elemScroll = maps.Clone(t.elemScroll)
	if t.reload != nil {
		r := *t.reload
		c.reload = &r
	}
	return &c
}

// restore makes a checkpoint the session's tracker, the tracker it was
// taken of forgotten: its mirror goes back to the mark.
func (t *tracker) restore() {
	if t.mirror != nil {
		t.mirror.rollback()
	}
}

// copier deep-copies a tracker's page views, clicks and signals, keeping
// which of them point to which (a click in the rage chain and in the
// recent clicks is one click). A tracker holds a few dozen at most, so the
// copies are found again by a linear search (maps cost more here), and the
// clicks are copied into one block.
type copier struct {
	pvs    []pair[pageview]
	copied []pair[click]
	sigs   []pair[signal]
	block  []click
}

type pair[T any] struct{ old, new *T }

func find[T any](ps []pair[T], p *T) *T {
	for _, x := range ps {
		if x.old == p {
			return x.new
		}
	}
	return nil
}

// copyOnce returns p's copy, made on the first call for p (fresh: the
// caller copies what the new one points to).
func copyOnce[T any](ps *[]pair[T], p *T) (q *T, fresh bool) {
	if q := find(*ps, p); q != nil {
		return q, false
	}
	q = new(T)
	*q = *p
	*ps = append(*ps, pair[T]{p, q})
	return q, true
}

func (cp *copier) pageview(p *pageview) *pageview {
	if p == nil {
		return nil
	}
	q, _ := copyOnce(&cp.pvs, p)
	return q
}

func (cp *copier) click(c *click) *click {
	if c == nil {
		return nil
	}
	if q := find(cp.copied, c); q != nil {
		return q
	}
	var q *click
	if len(cp.block) < cap(cp.block) {
		cp.block = append(cp.block, *c)
		q = &cp.block[len(cp.block)-1]
	} else {
		q = new(click)
		*q = *c
	}
	cp.copied = append(cp.copied, pair[click]{c, q})
	q.pv = cp.pageview(c.pv)
	q.rage = cp.signal(c.rage)
	return q
}

func (cp *copier) signal(s *signal) *signal {
	if s == nil {
		return nil
	}
	q, fresh := copyOnce(&cp.sigs, s)
	if fresh {
		q.c = cp.click(s.c)
	}
	return q
}

func (cp *copier) clicks(cs []*click) []*click {
	if cs == nil {
		return nil
	}
	out := make([]*click, len(cs), cap(cs))
	for i, c := range cs {
		out[i] = cp.click(c)
	}
	return out
}

// observe processes a batch of events in order.
func (t *tracker) observe(events []rrweb.Event, out sink) error {
	for _, ev := range events {
		if err := t.event(ev, out); err != nil {
			return err
		}
	}
	return t.settle(out)
}

// settle gives the sink the clicks and the page view state of a batch.
func (t *tracker) settle(out sink) error {
	if err := t.flush(out); err != nil {
		return err
	}
	if t.pv != nil && t.pv.dirty {
		t.pv.dirty = false
		return out.savePageview(t.pv)
	}
	return nil
}

func (t *tracker) event(ev rrweb.Event, out sink) error {
	typ, ts, data := ev.Type, ev.Timestamp, ev.Data
	if ts > 0 {
		if err := t.expire(ts, out); err != nil {
			return err
		}
		t.lastTS = max(t.lastTS, ts)
	}
	if t.awaitSnapshot && typ != rrweb.Meta && typ != rrweb.FullSnapshot {
		// A page view without its own full snapshot: a single page app's
		// route change. Its first frame is the DOM at the Meta, which a
		// replay reaches from the previous full snapshot.
		t.awaitSnapshot = false
		if t.pv != nil && t.pv.snapshotTS == 0 && t.mirror != nil {
			t.pv.snapshotTS = t.pv.start
			t.pv.dirty = true
		}
	}
	switch typ {
	case rrweb.DOMContentLoaded, rrweb.Load:
		t.sawLoad = true
	case rrweb.Meta:
		return t.meta(ts, data, out)
	case rrweb.FullSnapshot:
		t.fullSnapshot(ts, data)
		t.activity(ts)
	case rrweb.Incremental:
		return t.incremental(ts, data, out)
	case rrweb.Custom:
		return t.custom(ts, data, out)
	}
	return nil
}

func (t *tracker) meta(ts int64, data []byte, out sink) error {
	var href string
	var w, h int64
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "href":
			href = jsonscan.Str(val)
		case "width":
			w, _ = jsonscan.Int(val)
		case "height":
			h, _ = jsonscan.Int(val)
		}
		return true
	})
	if w > 0 && h > 0 {
		t.vw, t.vh = clampDim(w), clampDim(h)
	}
	t.activity(ts)
	// rrweb emits Meta again before every checkout snapshot: that is the
	// same page view unless the URL changed or the page loaded again (a
	// Load event, or the recorder's trailmap/page right after).
	if t.pv != nil && t.pv.url == href && !t.sawLoad {
		t.reload = &pendingReload{ts: ts, href: href}
		return nil
	}
	t.reload = nil
	t.sawLoad = false
	t.awaitSnapshot = true
	return t.startPageview(ts, href, out)
}

// flush gives the sink the clicks it has not seen yet. Clicks wait for
// the end of the batch because the recorder's box event usually follows the
// click in the same batch: written together, the element counts are
// written once.
func (t *tracker) flush(out sink) error {
	for i, c := range t.unwritten {
		if err := out.click(c); err != nil {
			return err
		}
		c.given = true
		t.unwritten[i] = nil
	}
	t.unwritten = t.unwritten[:0]
	return nil
}

func (t *tracker) startPageview(ts int64, href string, out sink) error {
	if err := t.flush(out); err != nil {
		return err
	}
	if t.pv != nil && t.pv.dirty {
		t.pv.dirty = false
		if err := out.savePageview(t.pv); err != nil {
			return err
		}
	}
	t.resolvePending()
	t.chain = t.chain[:0]
	t.scrollX, t.scrollY, t.docMaxScroll = 0, 0, 0
	t.mainNode, t.mainX, t.mainY = 0, 0, 0
	clear(t.elemScroll)
	t.pv = &pageview{key: t.set.Heatmap.PageKey(href), url: textcut.Head(href, 2048), start: ts, vw: t.vw, vh: t.vh, bucket: -1, aBucket: -1}
	t.pv.maxBottom = float64(t.vh)
	if err := out.startPageview(t.pv); err != nil {
		return err
	}
	t.updateDepth()
	return nil
}

func (t *tracker) fullSnapshot(ts int64, data []byte) {
	var node []byte
	var top, left float64
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "node":
			node = val
		case "initialOffset":
			jsonscan.EachField(val, func(k, v []byte) bool {
				switch string(k) {
				case "top":
					top, _ = jsonscan.Num(v)
				case "left":
					left, _ = jsonscan.Num(v)
				}
				return true
			})
		}
		return true
	})
	t.awaitSnapshot = false
	switch {
	case t.mirror == nil:
		t.mirror = newMirror(t.maxMirrorNodes)
	case t.mirror.marked():
		// A marked mirror stays as it is, for its checkpoint; the new
		// one has room for as many nodes (the page's next snapshot is
		// about as large), as the reused one had.
		t.mirror = t.mirror.sized()
	}
	t.mirror.loadSnapshot(node)
	if t.mirror.root != 0 {
		t.docNode = t.mirror.root
	}
	if t.reload != nil && t.reload.snapTS == 0 {
		t.reload.snapTS = ts
	}
	t.scrollX, t.scrollY = max(left, 0), max(top, 0)
	t.mainNode, t.mainX, t.mainY = 0, 0, 0
	clear(t.elemScroll)
	if t.pv != nil {
		if t.pv.snapshotTS == 0 {
			t.pv.snapshotTS = ts
			t.pv.dirty = true
		}
		t.updateDepth()
	}
}

func (t *tracker) incremental(ts int64, data []byte, out sink) error {
	var source int64 = -1
	var typ int64 = -1
	var id int64
	var x, y, w, h float64
	var adds, removes, attrs []byte
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "source":
			source, _ = jsonscan.Int(val)
			switch source {
			case srcMouseMove, srcTouchMove, srcInput, srcMediaInteraction, srcStyleSheetRule,
				srcCanvasMutation, srcStyleDeclaration, srcAdoptedStyleSheet:
				return false // nothing more needed from these, often large
			case srcMutation:
				return t.mirror != nil
			}
		case "type":
			typ, _ = jsonscan.Int(val)
		case "id":
			id, _ = jsonscan.Int(val)
		case "x":
			x, _ = jsonscan.Num(val)
		case "y":
			y, _ = jsonscan.Num(val)
		case "width":
			w, _ = jsonscan.Num(val)
		case "height":
			h, _ = jsonscan.Num(val)
		case "adds":
			adds = val
		case "removes":
			removes = val
		case "attributes":
			attrs = val
		}
		return true
	})
	switch source {
	case srcMutation:
		t.activity(ts)
		if t.mirror != nil {
			t.mutation(adds, removes, attrs)
		}
	case srcScroll:
		t.activity(ts)
		t.scroll(int32(id), x, y)
	case srcViewportResize:
		if w > 0 && h > 0 {
			// The page view keeps its viewport at load (its fold); the
			// depth follows the current one.
			t.vw, t.vh = clampDim(int64(w)), clampDim(int64(h))
			t.updateDepth()
		}
	case srcInput, srcMediaInteraction, srcStyleSheetRule, srcCanvasMutation, srcStyleDeclaration, srcAdoptedStyleSheet:
		t.activity(ts)
	case srcMouseInteraction:
		switch typ {
		case mouseDown:
			t.lastMouseDown = ts
		case mouseClick:
			return t.click(ts, int32(id), x, y, out)
		}
	}
	return nil
}

func (t *tracker) mutation(adds, removes, attrs []byte) {
	m := t.mirror
	// rrweb applies removes, then adds, then attributes.
	jsonscan.EachElem(removes, func(v []byte) bool {
		jsonscan.EachField(v, func(key, val []byte) bool {
			if string(key) == "id" {
				if id, ok := jsonscan.Int(val); ok {
					m.remove(int32(id))
				}
			}
			return true
		})
		return true
	})
	jsonscan.EachElem(adds, func(v []byte) bool {
		var parent, next, prev int64
		var node []byte
		jsonscan.EachField(v, func(key, val []byte) bool {
			switch string(key) {
			case "parentId":
				parent, _ = jsonscan.Int(val)
			case "nextId":
				next, _ = jsonscan.Int(val)
			case "previousId":
				prev, _ = jsonscan.Int(val)
			case "node":
				node = val
			}
			return true
		})
		if node != nil {
			m.add(int32(parent), int32(next), int32(prev), node)
		}
		return true
	})
	jsonscan.EachElem(attrs, func(v []byte) bool {
		var id int64
		var a []byte
		jsonscan.EachField(v, func(key, val []byte) bool {
			switch string(key) {
			case "id":
				id, _ = jsonscan.Int(val)
			case "attributes":
				a = val
			}
			return true
		})
		if n := m.get(int32(id)); n != nil && n.kind == nodeElement {
			n = m.w(int32(id))
			m.updateAttrs(n, a)
		}
		return true
	})
}

// scroll follows the document's scroll and the element that scrolls
// instead of it on pages whose body is a fixed frame around a scrolling
// container: the element that scrolled furthest down while the document
// never scrolled. Clicks inside it are placed in its content coordinates.
func (t *tracker) scroll(id int32, x, y float64) {
	x, y = max(x, 0), max(y, 0)
	if id == t.docNode || id <= 0 {
		t.scrollX, t.scrollY = x, y
		t.docMaxScroll = max(t.docMaxScroll, y)
		if y > 0 {
			t.mainNode, t.mainX, t.mainY = 0, 0, 0 // the document scrolls after all
		}
		t.updateDepth()
		return
	}
	if t.elemScroll == nil {
		t.elemScroll = make(map[int32][2]float64, 4)
	}
	prev, known := t.elemScroll[id]
	if !known && len(t.elemScroll) >= maxElemScroll {
		return
	}
	t.elemScroll[id] = [2]float64{x, max(y, prev[1])}
	if id == t.mainNode {
		t.mainX, t.mainY = x, y
		t.updateDepth()
		return
	}
	if t.docMaxScroll == 0 && y >= 1 && max(y, prev[1]) > t.elemScroll[t.mainNode][1] {
		t.mainNode, t.mainX, t.mainY = id, x, y
		t.updateDepth()
	}
}

// updateDepth recomputes the page view's deepest viewport bottom and its
// scroll-depth contribution.
func (t *tracker) updateDepth() {
	pv := t.pv
	if pv == nil || t.vh <= 0 {
		return
	}
	top := t.scrollY
	if t.mainNode != 0 {
		top += t.mainY
	}
	if b := top + float64(t.vh); b > pv.maxBottom {
		pv.maxBottom = b
		pv.dirty = true
	}
	bucket, foldPx, foldPm := -1, 0, 0
	// With a main container the document is one screen tall and says
	// nothing of the content height: depth is unknown then unless the
	// recorder reported a taller document.
	if pv.docH > 0 && (t.mainNode == 0 || pv.docH > t.vh+1) {
		d := min(pv.maxBottom/float64(pv.docH), 1)
		bucket = int(math.Floor(d * 100))
		foldPx = pv.vh
		if foldPx == 0 {
			foldPx = t.vh
		}
		foldPm = int(math.Round(min(float64(foldPx)/float64(pv.docH), 1) * 1000))
	}
	if bucket != pv.bucket || foldPx != pv.foldPx || foldPm != pv.foldPm {
		pv.bucket, pv.foldPx, pv.foldPm = bucket, foldPx, foldPm
		pv.dirty = true
	}
}

func (t *tracker) custom(ts int64, data []byte, out sink) error {
	var tag string
	var payload []byte
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "tag":
			tag = jsonscan.Str(val)
		case "payload":
			payload = val
		}
		return true
	})
	switch tag {
	case "trailmap/doc":
		var w, h float64
		jsonscan.EachField(payload, func(key, val []byte) bool {
			switch string(key) {
			case "width":
				w, _ = jsonscan.Num(val)
			case "height":
				h, _ = jsonscan.Num(val)
			}
			return true
		})
		if t.pv != nil && w > 0 && h > 0 {
			t.pv.docW, t.pv.docH = clampDim(int64(w)), clampDim(int64(h))
			t.pv.dirty = true
			t.updateDepth()
		}
	case "trailmap/click":
		return t.clickBoxEvent(ts, payload, out)
	case "trailmap/error":
		var msg string
		jsonscan.EachField(payload, func(key, val []byte) bool {
			if string(key) == "message" {
				msg = textcut.Head(jsonscan.Str(val), 500)
			}
			return true
		})
		return t.errorEvent(ts, msg, out)
	case "trailmap/page":
		var href string
		jsonscan.EachField(payload, func(key, val []byte) bool {
			if string(key) == "href" {
				href = jsonscan.Str(val)
			}
			return true
		})
		t.activity(ts)
		if r := t.reload; r != nil && ts-r.ts < 10000 {
			// A reload: a new page view from the Meta, with the scroll
			// state of its snapshot.
			t.reload = nil
			sx, sy := t.scrollX, t.scrollY
			if err := t.startPageview(r.ts, r.href, out); err != nil {
				return err
			}
			t.scrollX, t.scrollY = sx, sy
			t.awaitSnapshot = false
			if r.snapTS != 0 {
				t.pv.snapshotTS = r.snapTS
			}
			t.updateDepth()
			return nil
		}
		// A single page app's route change, when a recorder reports one.
		if href != "" && t.pv != nil && href != t.pv.url {
			return t.startPageview(ts, href, out)
		}
	}
	return nil
}

// activity notes a DOM change, navigation, scroll or input: clicks waiting
// in their dead-click window got a response.
func (t *tracker) activity(ts int64) {
	t.lastActivity = max(t.lastActivity, ts)
	if len(t.pending) == 0 {
		return
	}
	keep := t.pending[:0]
	for _, c := range t.pending {
		if c.ts > ts {
			keep = append(keep, c)
		}
	}
	clear(t.pending[len(keep):])
	t.pending = keep
}

// resolvePending ends every dead-click window without a verdict of dead
// (the page changed, or the session ended before the window did).
func (t *tracker) resolvePending() {
	clear(t.pending)
	t.pending = t.pending[:0]
}

// expire turns clicks whose window passed without a response into dead
// clicks. A click that is part of a rage click is reported as that only.
func (t *tracker) expire(ts int64, out sink) error {
	for len(t.pending) > 0 && ts-t.pending[0].ts > t.set.Frustration.DeadWindowMS {
		c := t.pending[0]
		t.pending[0] = nil
		t.pending = t.pending[1:]
		if c.flags&clickRage != 0 {
			continue
		}
		c.flags |= clickDead
		if err := t.flush(out); err != nil {
			return err
		}
		if err := out.signal(&signal{typ: SignalDead, c: c, count: 1}, []*click{c}); err != nil {
			return err
		}
	}
	return nil
}

func (t *tracker) click(ts int64, node int32, vx, vy float64, out sink) error {
	if t.pv == nil {
		return nil // no page yet: nothing to place the click on
	}
	pv := t.pv
	c := &click{pv: pv, ts: ts, vx: vx, vy: vy, node: node}
	c.px, c.py = vx+t.scrollX, vy+t.scrollY
	inMain := t.mainNode != 0 && t.mirror != nil && t.mirror.contains(t.mainNode, node)
	if inMain {
		c.px += t.mainX
		c.py += t.mainY
	}
	c.px, c.py = max(c.px, 0), max(c.py, 0)
	docW := pv.docW
	if docW <= 0 {
		docW = t.vw
	}
	c.wb = widthBucket(docW)
	noResponse := false
	if t.mirror != nil {
		c.sel, c.tag, c.class = t.mirror.selector(node)
		noResponse = t.mirror.noResponse(node)
	} else {
		t.noDOM++
	}
	for i, e := range t.early {
		if e.node == node && abs(e.vx-vx) < 1 && abs(e.vy-vy) < 1 && abs(e.ts-ts) < boxMatchMS {
			t.setBox(c, e.box, inMain)
			t.early = append(t.early[:i], t.early[i+1:]...)
			break
		}
	}
	pv.clicks++
	t.unwritten = append(t.unwritten, c)
	if len(t.recent) == maxRecent {
		copy(t.recent, t.recent[1:])
		t.recent = t.recent[:maxRecent-1]
	}
	t.recent = append(t.recent, c)

	// Rage: each click within the radius and window of the previous one.
	f := t.set.Frustration
	if n := len(t.chain); n > 0 {
		p := t.chain[n-1]
		if ts-p.ts > f.RageWindowMS || ts < p.ts || math.Hypot(c.px-p.px, c.py-p.py) > f.RageRadiusPx {
			clear(t.chain)
			t.chain = t.chain[:0]
		}
	}
	t.chain = append(t.chain, c)
	if n := len(t.chain); n >= f.RageClicks {
		if err := t.flush(out); err != nil {
			return err
		}
		first := t.chain[0]
		if first.rage == nil {
			s := &signal{typ: SignalRage, c: first, count: n}
			for _, cc := range t.chain {
				cc.flags |= clickRage
				cc.rage = s
			}
			if err := out.signal(s, t.chain); err != nil {
				return err
			}
		} else {
			first.rage.count = n
			c.flags |= clickRage
			c.rage = first.rage
			if err := out.signal(first.rage, []*click{c}); err != nil {
				return err
			}
		}
	}
	if len(t.chain) > 256 {
		t.chain = t.chain[len(t.chain)-1:]
	}

	// Dead: wait for a response, unless one came since the button went down
	// (handlers that act on mousedown), or the element needs none.
	if noResponse || (t.lastMouseDown > 0 && ts-t.lastMouseDown < 1000 && t.lastActivity >= t.lastMouseDown) {
		return nil
	}
	if len(t.pending) >= maxPending {
		t.pending[0] = nil
		t.pending = t.pending[1:]
	}
	t.pending = append(t.pending, c)
	return nil
}

// setBox stores the target's box (viewport coordinates) in page
// coordinates and the click's offset ratio inside it.
func (t *tracker) setBox(c *click, b box, inMain bool) {
	if b.W <= 0 || b.H <= 0 {
		return
	}
	dx, dy := t.scrollX, t.scrollY
	if inMain {
		dx += t.mainX
		dy += t.mainY
	}
	c.hasBox = true
	c.box = box{X: b.X + dx, Y: b.Y + dy, W: b.W, H: b.H}
	c.ox = clamp01((c.vx - b.X) / b.W)
	c.oy = clamp01((c.vy - b.Y) / b.H)
}

func (t *tracker) clickBoxEvent(ts int64, payload []byte, out sink) error {
	var e earlyBox
	e.ts = ts
	jsonscan.EachField(payload, func(key, val []byte) bool {
		switch string(key) {
		case "id":
			v, _ := jsonscan.Int(val)
			e.node = int32(v)
		case "x":
			e.vx, _ = jsonscan.Num(val)
		case "y":
			e.vy, _ = jsonscan.Num(val)
		case "box":
			jsonscan.EachField(val, func(k, v []byte) bool {
				f, _ := jsonscan.Num(v)
				switch string(k) {
				case "x":
					e.box.X = f
				case "y":
					e.box.Y = f
				case "w", "width":
					e.box.W = f
				case "h", "height":
					e.box.H = f
				}
				return true
			})
		}
		return true
	})
	for i := len(t.recent) - 1; i >= 0; i-- {
		c := t.recent[i]
		if c.hasBox || c.node != e.node || abs(c.vx-e.vx) >= 1 || abs(c.vy-e.vy) >= 1 || abs(c.ts-ts) >= boxMatchMS {
			continue
		}
		inMain := t.mainNode != 0 && t.mirror != nil && t.mirror.contains(t.mainNode, c.node)
		t.setBox(c, e.box, inMain)
		if !c.hasBox || !c.given {
			return nil // not given to the sink yet: given with its box
		}
		return out.clickBox(c)
	}
	if len(t.early) == maxEarly {
		t.early = t.early[1:]
	}
	t.early = append(t.early, e)
	return nil
}

func (t *tracker) errorEvent(ts int64, msg string, out sink) error {
	for i := len(t.recent) - 1; i >= 0; i-- {
		c := t.recent[i]
		if c.ts > ts {
			continue
		}
		if ts-c.ts > t.set.Frustration.ErrorWindowMS {
			break
		}
		if c.flags&clickError != 0 {
			return nil
		}
		c.flags |= clickError
		if err := t.flush(out); err != nil {
			return err
		}
		return out.signal(&signal{typ: SignalError, c: c, count: 1, message: msg}, []*click{c})
	}
	return nil
}

// closed ends the session: clicks still in their dead-click window are not
// dead, as the page may have been closed in response.
func (t *tracker) closed(out sink) error {
	t.resolvePending()
	return t.settle(out)
}

// widthBucket rounds a document width to WidthBucketPx.
func widthBucket(w int) int {
	if w <= 0 {
		return 0
	}
	return max(WidthBucketPx, (w+WidthBucketPx/2)/WidthBucketPx*WidthBucketPx)
}

func clampDim(v int64) int { return int(min(max(v, 0), 1<<20)) }

func clamp01(v float64) float64 { return min(max(v, 0), 1) }

func abs[T int64 | float64](v T) T {
	if v < 0 {
		return -v
	}
	return v
}
