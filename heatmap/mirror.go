package heatmap

import (
	"slices"
	"strconv"
	"strings"

	"github.com/trailmap/trailmap/internal/jsonscan"
	"github.com/trailmap/trailmap/internal/textcut"
)

// mirror is a light copy of a recorded DOM: for each rrweb node id its kind,
// tag, id and class attributes, a few flags, and its place in the tree
// (parent and sibling links, so selectors can say :nth-of-type). It is built
// from full snapshots and kept current with mutations; text content, styles
// and other attributes are not kept. About 80 bytes a node.
type mirror struct {
	idx   nodeIndex // rrweb id → index in nodes
	nodes []mnode
	free  []int32
	root  int32 // the document node
	max   int   // node cap; adds beyond it are ignored
	full  bool  // the cap was hit: selectors may be incomplete
	stack []int32
	// undo is what changed since the last mark, to go back to it
	// (rollback): a tracker's checkpoint shares the mirror with it.
	undo journal
}

type mnode struct {
	id                              int32
	parent, first, last, prev, next int32 // rrweb ids, 0 = none
	kind                            uint8 // rrweb node type: 0 document, 2 element, 3 text...
	flags                           uint8
	saved                           uint32 // the journal's epoch when its old value was kept
	tag                             string
	attrID, class                   string
}

// journal keeps what a mirror was at its last mark: the old value of each
// slot changed since (once per slot, on its first change), of each id the
// index mapped differently, and of the free list; slots added since are cut
// off. Its cost follows the changes, not the size of the DOM: copying a
// 3,000-node mirror at every transaction made the tracker 2.3 times slower
// (BenchmarkTracker).
type journal struct {
	epoch    uint32 // 0: no mark, nothing kept
	nodesLen int
	slots    []savedSlot
	idx      []savedID
	free     []int32
	freeKept bool
	root     int32
	full     bool
}

type savedSlot struct {
	i int32
	n mnode
}

type savedID struct {
	id, slot int32
	had      bool
}

// rrweb serialized node types.
const (
	nodeDocument = 0
	nodeElement  = 2
)

// Node flags that matter for frustration signals.
const (
	// flagNoResponse marks elements whose clicks need not change the page:
	// form fields, labels, media, contenteditable, links that open a new tab
	// or download.
	flagNoResponse uint8 = 1 << iota
)

const maxDepth = 512

func newMirror(maxNodes int) *mirror {
	return &mirror{max: maxNodes, undo: journal{nodesLen: -1}}
}

// nodeIndex maps rrweb node ids to slots in nodes. rrweb numbers a page's
// nodes from 1 up, so most ids index a slice (a map costs several times
// more, growing most of all: a snapshot adds thousands of nodes to a new
// session's mirror); ids far beyond the number of nodes held go to a map,
// which keeps the slice within a few times the node count.
type nodeIndex struct {
	dense  []int32 // id → slot+1; 0: none
	sparse map[int32]int32
	n      int
}

func (x *nodeIndex) len() int { return x.n }

func (x *nodeIndex) get(id int32) (int32, bool) {
	if id >= 0 && int(id) < len(x.dense) {
		v := x.dense[id]
		return v - 1, v != 0
	}
	v, ok := x.sparse[id]
	return v, ok
}

// set adds id, which the index does not hold, at slot.
func (x *nodeIndex) set(id, slot int32) {
	x.n++
	if id >= 0 && int(id) < len(x.dense) {
		x.dense[id] = slot + 1
		return
	}
	if id >= 0 && int(id) < 4*(x.n+1024) {
		x.dense = slices.Grow(x.dense, max(int(id)+1, 2*len(x.dense), 1024)-len(x.dense))
		x.dense = x.dense[:cap(x.dense)]
		// Ids the slice covers now may be in the map.
		for k, v := range x.sparse {
			if int(k) < len(x.dense) {
				x.dense[k] = v + 1
				delete(x.sparse, k)
			}
		}
		x.dense[id] = slot + 1
		return
	}
	if x.sparse == nil {
		x.sparse = make(map[int32]int32)
	}
	x.sparse[id] = slot
}

func (x *nodeIndex) del(id int32) {
	if id >= 0 && int(id) < len(x.dense) {
		if x.dense[id] != 0 {
			x.dense[id] = 0
			x.n--
		}
		return
	}
	if _, ok := x.sparse[id]; ok {
		delete(x.sparse, id)
		x.n--
	}
}

func (x *nodeIndex) clear() {
	clear(x.dense)
	clear(x.sparse)
	x.n = 0
}

func (m *mirror) size() int { return m.idx.len() }

// sized returns a new empty mirror with room for as many nodes as m holds.
func (m *mirror) sized() *mirror {
	c := newMirror(m.max)
	c.nodes = make([]mnode, 0, len(m.nodes))
	c.idx.dense = make([]int32, len(m.idx.dense))
	return c
}

// mark starts keeping what the mirror is now, for rollback; it forgets
// the previous mark.
func (m *mirror) mark() {
	j := &m.undo
	j.nextEpoch()
	j.nodesLen = len(m.nodes)
	if cap(j.slots) > 4096 { // one large change does not stay in memory
		j.slots, j.idx, j.free = nil, nil, nil
	}
	j.slots, j.idx, j.free = j.slots[:0], j.idx[:0], j.free[:0]
	j.freeKept = false
	j.root, j.full = m.root, m.full
}

// rollback puts the mirror back as it was at the last mark, which it
// forgets; without a mark it does nothing.
func (m *mirror) rollback() {
	j := &m.undo
	if !m.marked() {
		return
	}
	for k := len(j.slots) - 1; k >= 0; k-- {
		m.nodes[j.slots[k].i] = j.slots[k].n
	}
	clear(m.nodes[j.nodesLen:])
	m.nodes = m.nodes[:j.nodesLen]
	if j.freeKept {
		m.free = append(m.free[:0], j.free...)
	}
	for k := len(j.idx) - 1; k >= 0; k-- {
		s := j.idx[k]
		m.idx.del(s.id)
		if s.had {
			m.idx.set(s.id, s.slot)
		}
	}
	m.root, m.full = j.root, j.full
	m.forget()
}

// forget drops the mark.
func (m *mirror) forget() {
	j := &m.undo
	j.slots, j.idx, j.free = j.slots[:0], j.idx[:0], j.free[:0]
	j.freeKept = false
	j.nextEpoch() // stamps of the old epoch mean nothing now
	j.nodesLen = -1
}

// nextEpoch starts a new epoch (never 0, which no mark has).
func (j *journal) nextEpoch() {
	if j.epoch++; j.epoch == 0 {
		j.epoch = 1
	}
}

// marked reports whether the mirror keeps a mark.
func (m *mirror) marked() bool { return m.undo.nodesLen >= 0 && m.undo.epoch != 0 }

// keep saves slot i's value, on its first change since the mark.
func (m *mirror) keep(i int32) {
	j := &m.undo
	if !m.marked() || int(i) >= j.nodesLen || m.nodes[i].saved == j.epoch {
		return
	}
	j.slots = append(j.slots, savedSlot{i, m.nodes[i]})
	m.nodes[i].saved = j.epoch
}

// w returns node id to change (its old value kept), nil if unknown.
func (m *mirror) w(id int32) *mnode {
	i, ok := m.idx.get(id)
	if !ok {
		return nil
	}
	m.keep(i)
	return &m.nodes[i]
}

// keepFree saves the free list, on its first change since the mark.
func (m *mirror) keepFree() {
	if j := &m.undo; m.marked() && !j.freeKept {
		j.free = append(j.free[:0], m.free...)
		j.freeKept = true
	}
}

// keepID saves what the index maps id to, before it changes.
func (m *mirror) keepID(id int32) {
	if m.marked() {
		slot, had := m.idx.get(id)
		m.undo.idx = append(m.undo.idx, savedID{id, slot, had})
	}
}

func (m *mirror) reset() {
	if m.marked() {
		panic("heatmap: reset of a marked mirror") // its mark is a checkpoint's
	}
	m.idx.clear()
	m.nodes = m.nodes[:0]
	m.free = m.free[:0]
	m.root = 0
	m.full = false
}

func (m *mirror) get(id int32) *mnode {
	if i, ok := m.idx.get(id); ok {
		return &m.nodes[i]
	}
	return nil
}

// put creates or replaces node id (keeping no links) and returns it.
func (m *mirror) put(id int32) *mnode {
	if i, ok := m.idx.get(id); ok {
		m.unlink(id)
		m.keep(i)
		m.nodes[i] = mnode{id: id, saved: m.nodes[i].saved}
		return &m.nodes[i]
	}
	if m.idx.len() >= m.max {
		m.full = true
		return nil
	}
	var i int32
	if n := len(m.free); n > 0 {
		m.keepFree()
		i = m.free[n-1]
		m.free = m.free[:n-1]
		m.keep(i)
		m.nodes[i] = mnode{id: id, saved: m.nodes[i].saved}
	} else {
		i = int32(len(m.nodes))
		m.nodes = append(m.nodes, mnode{id: id})
	}
	m.keepID(id)
	m.idx.set(id, i)
	return &m.nodes[i]
}

// loadSnapshot replaces the mirror with a full snapshot's node tree.
func (m *mirror) loadSnapshot(node []byte) {
	m.reset()
	_, id := m.parseNode(node, 0, 0)
	m.root = id
}

// parseNode reads the serialized node that starts at b[i], and its
// children, in one pass: a node's id may follow its childNodes, so children
// are linked once the whole object has been read. It returns the index after
// the object and the node's id (0 when it has none).
func (m *mirror) parseNode(b []byte, i int, depth int) (int, int32) {
	i = jsonscan.SkipSpace(b, i)
	if i >= len(b) || b[i] != '{' || depth > maxDepth {
		return jsonscan.SkipValue(b, i), 0
	}
	var id int32
	kind := uint8(255)
	var tag string
	var attrs []byte
	mark := len(m.stack)
	j := i + 1
	ok := false
	for {
		j = jsonscan.SkipSpace(b, j)
		if j < len(b) && b[j] == '}' {
			j++
			ok = true
			break
		}
		if j >= len(b) || b[j] != '"' {
			break
		}
		ke := jsonscan.SkipString(b, j)
		if ke < 0 {
			break
		}
		key := b[j+1 : ke-1]
		j = jsonscan.SkipSpace(b, ke)
		if j >= len(b) || b[j] != ':' {
			break
		}
		j = jsonscan.SkipSpace(b, j+1)
		var ve int
		if string(key) == "childNodes" && j < len(b) && b[j] == '[' {
			ve = m.parseChildren(b, j, depth)
		} else {
			ve = jsonscan.SkipValue(b, j)
		}
		if ve < 0 {
			break
		}
		val := b[j:ve]
		switch string(key) {
		case "id":
			if v, ok := jsonscan.Int(val); ok && v > 0 && v < 1<<31 {
				id = int32(v)
			}
		case "type":
			if v, ok := jsonscan.Int(val); ok && v >= 0 && v < 255 {
				kind = uint8(v)
			}
		case "tagName":
			tag = internTag(val)
		case "attributes":
			attrs = val
		}
		j = jsonscan.SkipSpace(b, ve)
		if j < len(b) && b[j] == ',' {
			j++
		}
	}
	children := m.stack[mark:]
	m.stack = m.stack[:mark]
	if !ok {
		return -1, 0
	}
	if id == 0 {
		return j, 0
	}
	n := m.put(id)
	if n == nil {
		return j, 0
	}
	n.kind, n.tag = kind, tag
	if kind == nodeElement {
		m.setAttrs(n, attrs)
	}
	for _, c := range children {
		m.appendChild(id, c)
	}
	return j, id
}

// parseChildren parses the array of child nodes at b[i], pushing their ids
// on m.stack, and returns the index after the array.
func (m *mirror) parseChildren(b []byte, i int, depth int) int {
	return jsonscan.Elems(b, i, func(j int) int {
		e, id := m.parseNode(b, j, depth+1)
		if e >= 0 && id != 0 {
			m.stack = append(m.stack, id)
		}
		return e
	})
}

// setAttrs reads the attributes the mirror keeps from a serialized
// attributes object (full values, as in snapshots and added nodes).
func (m *mirror) setAttrs(n *mnode, attrs []byte) {
	n.attrID, n.class = "", ""
	n.flags = 0
	switch n.tag {
	case "input", "textarea", "select", "option", "label", "video", "audio":
		n.flags |= flagNoResponse
	}
	m.updateAttrs(n, attrs)
}

// updateAttrs applies an attribute object; null values remove.
func (m *mirror) updateAttrs(n *mnode, attrs []byte) {
	jsonscan.EachField(attrs, func(key, val []byte) bool {
		switch string(key) {
		case "id":
			n.attrID = jsonscan.Str(val)
		case "class":
			n.class = jsonscan.Str(val)
		case "contenteditable":
			if jsonscan.IsNull(val) || jsonscan.Str(val) == "false" {
				n.flags &^= flagNoResponse
			} else {
				n.flags |= flagNoResponse
			}
		case "target":
			if n.tag == "a" && jsonscan.Str(val) == "_blank" {
				n.flags |= flagNoResponse
			}
		case "download":
			if n.tag == "a" && !jsonscan.IsNull(val) {
				n.flags |= flagNoResponse
			}
		}
		return true
	})
}

// add applies one "adds" entry of a mutation.
func (m *mirror) add(parent, next, prev int32, node []byte) {
	_, id := m.parseNode(node, 0, 0)
	if id == 0 {
		return
	}
	switch {
	case next != 0 && m.get(next) != nil && m.get(next).parent == parent:
		m.insertBefore(parent, id, next)
	case prev != 0 && m.get(prev) != nil && m.get(prev).parent == parent:
		m.insertAfter(parent, id, prev)
	default:
		m.appendChild(parent, id)
	}
}

// remove drops a node and its subtree.
func (m *mirror) remove(id int32) {
	if m.get(id) == nil {
		return
	}
	m.unlink(id)
	m.dropTree(id, 0)
}

func (m *mirror) dropTree(id int32, depth int) {
	n := m.get(id)
	if n == nil {
		return
	}
	if depth < maxDepth {
		for c := n.first; c != 0; {
			cn := m.get(c)
			if cn == nil {
				break
			}
			next := cn.next
			m.dropTree(c, depth+1)
			c = next
		}
	}
	i, _ := m.idx.get(id)
	m.keepID(id)
	m.idx.del(id)
	m.keep(i)
	m.nodes[i] = mnode{saved: m.nodes[i].saved}
	m.keepFree()
	m.free = append(m.free, i)
	if m.root == id {
		m.root = 0
	}
}

// unlink takes node id out of its parent's child list.
func (m *mirror) unlink(id int32) {
	n := m.w(id)
	if n == nil {
		return
	}
	parent, prev, next := n.parent, n.prev, n.next
	n.parent, n.prev, n.next = 0, 0, 0
	// (n stays valid: nodes are neither added nor moved below)
	if p := m.w(parent); p != nil {
		if p.first == id {
			p.first = next
		}
		if p.last == id {
			p.last = prev
		}
	}
	if pr := m.w(prev); pr != nil {
		pr.next = next
	}
	if nx := m.w(next); nx != nil {
		nx.prev = prev
	}
}

func (m *mirror) appendChild(parent, id int32) {
	if m.get(id) == nil || id == parent {
		return
	}
	m.unlink(id)
	n := m.w(id)
	n.parent = parent
	p := m.w(parent)
	if p == nil {
		return // parent unknown (mirror rebuilt mid-session): keep the link up
	}
	if last := m.w(p.last); last != nil {
		last.next = id
		n.prev = p.last
	} else {
		p.first = id
	}
	p.last = id
}

func (m *mirror) insertBefore(parent, id, next int32) {
	if m.get(id) == nil || id == next {
		return
	}
	m.unlink(id)
	n, nx, p := m.w(id), m.w(next), m.w(parent)
	n.parent, n.next, n.prev = parent, next, nx.prev
	if pr := m.w(nx.prev); pr != nil {
		pr.next = id
	} else if p != nil {
		p.first = id
	}
	nx.prev = id
}

func (m *mirror) insertAfter(parent, id, prev int32) {
	pr := m.get(prev)
	if pr.next != 0 {
		m.insertBefore(parent, id, pr.next)
		return
	}
	m.appendChild(parent, id)
}

// noResponse reports whether the node or one of its close ancestors is
// something a click need not visibly change (see flagNoResponse).
func (m *mirror) noResponse(id int32) bool {
	for d := 0; d < 6 && id != 0; d++ {
		n := m.get(id)
		if n == nil {
			return false
		}
		if n.flags&flagNoResponse != 0 {
			return true
		}
		id = n.parent
	}
	return false
}

// contains reports whether anc is id or one of its ancestors.
func (m *mirror) contains(anc, id int32) bool {
	for d := 0; d < maxDepth && id != 0; d++ {
		if id == anc {
			return true
		}
		n := m.get(id)
		if n == nil {
			return false
		}
		id = n.parent
	}
	return false
}

// selector returns a CSS selector path for element id that also matches in
// a replay of another visitor's session of the same page: tag names with
// :nth-of-type where siblings share the tag, anchored at the nearest
// ancestor with a stable id attribute or at html. Classes are left out on
// purpose: they change with state (".active") and between visitors (A/B
// variants), which would split one element into many. "" when the node is
// unknown.
func (m *mirror) selector(id int32) (sel, tag, class string) {
	n := m.get(id)
	if n == nil || n.kind != nodeElement {
		return "", "", ""
	}
	tag, class = n.tag, n.class
	var segs [24]string
	k := 0
	anchored := false
	for cur := n; cur != nil && cur.kind == nodeElement && k < len(segs); cur = m.get(cur.parent) {
		if stableID(cur.attrID) {
			segs[k] = cur.tag + "#" + cur.attrID
			k++
			anchored = true
			break
		}
		seg := cur.tag
		if seg == "" {
			return "", tag, class
		}
		if seg != "html" && seg != "body" && seg != "head" {
			if nth, shared := m.nthOfType(cur); shared {
				seg += ":nth-of-type(" + strconv.Itoa(nth) + ")"
			}
		}
		segs[k] = seg
		k++
		if seg == "html" {
			anchored = true
			break
		}
	}
	if k == 0 {
		return "", tag, class
	}
	var b strings.Builder
	for i := k - 1; i >= 0; i-- {
		b.WriteString(segs[i])
		if i > 0 {
			b.WriteString(" > ")
		}
	}
	sel = b.String()
	_ = anchored // an unanchored path (shadow DOM, cut-off tree) still narrows well
	if len(sel) > maxKeyLen {
		sel = textcut.Tail(sel, maxKeyLen)
		if i := strings.Index(sel, " > "); i >= 0 {
			sel = sel[i+3:]
		}
	}
	return sel, tag, class
}

// nthOfType returns the 1-based position of n among its element siblings
// with the same tag, and whether it has any such sibling.
func (m *mirror) nthOfType(n *mnode) (int, bool) {
	pos, shared := 1, false
	for s := m.get(n.prev); s != nil; s = m.get(s.prev) {
		if s.kind == nodeElement && s.tag == n.tag {
			pos++
			shared = true
		}
	}
	if !shared {
		for s := m.get(n.next); s != nil; s = m.get(s.next) {
			if s.kind == nodeElement && s.tag == n.tag {
				shared = true
				break
			}
		}
	}
	return pos, shared
}

// stableID reports whether an id attribute looks hand-written, and so is
// the same for every visitor: a CSS identifier without long digit runs
// (generated ids like "ember123", ":r1:" or "mui-48213" are not).
func stableID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	digits := 0
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
			if i == 0 {
				return false
			}
			if digits++; digits >= 3 {
				return false
			}
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_':
		default:
			return false
		}
		digits = 0
	}
	return true
}

// internTag returns a tag name without keeping the batch alive; common
// tags share one string.
func internTag(val []byte) string {
	if len(val) >= 2 && val[0] == '"' {
		if s, ok := commonTags[string(val[1:len(val)-1])]; ok {
			return s
		}
	}
	return strings.ToLower(jsonscan.Str(val))
}

var commonTags = func() map[string]string {
	m := map[string]string{}
	for _, t := range strings.Fields(`a abbr address area article aside audio b body br button canvas caption
		code dd details dialog div dl dt em fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 head
		header hr html i iframe img input label legend li link main mark meta nav noscript ol optgroup
		option p path picture pre section select small source span strong style sub summary sup svg
		table tbody td template textarea tfoot th thead title tr u ul video g use circle rect polygon`) {
		m[t] = t
	}
	return m
}()
