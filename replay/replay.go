// Package replay streams a session's rrweb events back in recorded order:
// from the stored segments, then from batches accepted but not yet flushed,
// never holding a whole session in memory. A time range starts from the
// latest full snapshot before it, reading only the segments it needs.
package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/internal/jsonscan"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/index"
)

// Blobs is what replay needs of the blob store.
type Blobs interface {
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
}

// Live gives the batches of a session that are accepted but not yet in a
// stored segment (the recorder implements it).
type Live interface {
	Unflushed(projectID int64, sessionID string) (seqs []int64, events [][]json.RawMessage)
}

// Range selects part of a session, in milliseconds from its start. A
// negative bound is open.
type Range struct {
	FromMS, ToMS int64
	// Trim keeps of the lead-in (from the full snapshot the stream starts
	// at to FromMS) only what draws the first frame: snapshots, Meta, DOM
	// mutations, scrolls, viewport, style sheet, font, canvas and custom
	// element changes. Custom and plugin events, pointer, touch, input,
	// media, selection, drag and console log events before FromMS are left
	// out: a share or an exported clip sends nothing of what happened
	// before its start but the page as it was drawn.
	Trim bool
}

// All is the whole session.
var All = Range{FromMS: -1, ToMS: -1}

// Streamer reads sessions back.
type Streamer struct {
	db           *index.DB
	blobs        Blobs
	live         Live
	segmentsRead atomic.Int64
	decoders     chan *zstd.Decoder // a small pool; decoders are costly to create
	segs         Segments           // nil: zstd alone
	maxEvent     int                // longest event line read from a segment
}

// maxEventBytes bounds one event read back from a segment, so a damaged
// object (a line that never ends) costs bounded memory. The recorder never
// stores a longer one: a batch's record in its write-ahead log is at most
// 256 MiB.
const maxEventBytes = 256 << 20

// Segments opens stored segments that may be written with a dictionary
// (zdict.Set).
type Segments interface {
	Open(ctx context.Context, r io.Reader) (io.ReadCloser, error)
}

// Option configures a Streamer.
type Option func(*Streamer)

// WithSegments reads segments through segs, which knows their
// dictionaries; without it they are read with zstd alone.
func WithSegments(segs Segments) Option { return func(s *Streamer) { s.segs = segs } }

// New returns a Streamer; live may be nil.
func New(db *index.DB, blobs Blobs, live Live, opts ...Option) *Streamer {
	s := &Streamer{db: db, blobs: blobs, live: live, decoders: make(chan *zstd.Decoder, 4), maxEvent: maxEventBytes}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SegmentsRead counts segment objects opened since start (tests and metrics
// use it to check that seeking reads only what it needs).
func (s *Streamer) SegmentsRead() int64 { return s.segmentsRead.Load() }

// EventWriter receives events one by one, in order.
type EventWriter interface {
	WriteEvent(ev []byte) error
}

// Stream writes the events of sess within rg to w.
//
// Events come in batch (seq) order. On one node a session's segments hold
// runs of seqs one after the other; when several nodes took batches of one
// session, their segments' seq ranges overlap, and those segments are read
// together, batch by batch, in seq order. The batches this node holds in
// memory (not yet in a segment) take their place by seq the same way;
// another node's are seen once that node stores them (--segment-max-age).
func (s *Streamer) Stream(ctx context.Context, sess *index.Session, rg Range, w EventWriter) error {
	// Take the live batches before listing segments: a flush finishing in
	// between then shows up in both, and seqs already stored are dropped
	// from the live set, instead of showing up in neither.
	var liveSeqs []int64
	var liveEvents [][]json.RawMessage
	if s.live != nil {
		liveSeqs, liveEvents = s.live.Unflushed(sess.ProjectID, sess.ID)
	}
	segs, err := s.db.SessionSegments(ctx, sess.RowID)
	if err != nil {
		return err
	}
	stored := map[int64]bool{}
	for _, sg := range segs {
		for _, p := range sg.Seqs {
			stored[p[0]] = true
		}
	}
	srcs := make([]*source, 0, len(segs)+1)
	for i := range segs {
		sg := &segs[i]
		srcs = append(srcs, &source{seg: sg, lo: sg.FirstSeq, hi: sg.LastSeq, batches: sg.Seqs, firstTS: sg.FirstTS})
	}
	if lv := liveSource(liveSeqs, liveEvents, stored, rg.FromMS > 0); lv != nil {
		srcs = append(srcs, lv)
	}
	sort.SliceStable(srcs, func(i, j int) bool { return srcs[i].lo < srcs[j].lo })
	groups := groupSources(srcs)

	start := sess.StartedAt.UnixMilli()
	from, to := int64(-1<<62), int64(1<<62)
	if rg.FromMS >= 0 {
		from = start + rg.FromMS
	}
	if rg.ToMS >= 0 {
		to = start + rg.ToMS
	}

	// Where to begin: the latest full snapshot at or before from.
	at := position{}
	if rg.FromMS > 0 {
		at = startAt(groups, from)
	}

	trim := rg.Trim && rg.FromMS > 0
	emit := func(ev []byte) (stop bool, err error) {
		if rg.ToMS >= 0 || trim {
			e := rrweb.Split(ev)
			if e.HasTimestamp && e.Timestamp > to {
				return true, nil
			}
			if trim && e.HasTimestamp && e.Timestamp < from && !drawsFrame(e) {
				return false, nil
			}
		}
		return false, w.WriteEvent(ev)
	}

	for gi := at.group; gi < len(groups); gi++ {
		g := groups[gi]
		if gi > at.group && g.firstTS() > to {
			return nil
		}
		var stop bool
		var err error
		switch {
		case len(g) == 1 && gi == at.group:
			stop, err = s.streamSource(ctx, g[0], at.line, at.off, emit)
		case len(g) == 1:
			stop, err = s.streamSource(ctx, g[0], 0, 0, emit)
		case gi == at.group:
			stop, err = s.mergeSources(ctx, g, at.src, at.line, emit)
		default:
			stop, err = s.mergeSources(ctx, g, -1, 0, emit)
		}
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// source is a run of a session's batches: a stored segment, or the
// batches this node holds in memory.
type source struct {
	seg     *index.Segment    // nil for the live batches
	live    []json.RawMessage // the live batches' events, one after the other
	batches [][2]int64        // [seq, events] in order
	lo, hi  int64             // first and last seq
	firstTS int64
	snaps   [][3]int64 // live: [timestamp, line, 0]
}

func (src *source) snapshots() [][3]int64 {
	if src.seg != nil {
		return src.seg.Snapshots
	}
	return src.snaps
}

// liveSource is the live batches not stored yet (nil when none); with
// seek, their snapshots are found (to start a range at one). Their first
// timestamp is not read: a range's end stops them at their first later
// event anyway.
func liveSource(seqs []int64, events [][]json.RawMessage, stored map[int64]bool, seek bool) *source {
	var src *source
	for i, q := range seqs {
		if stored[q] {
			continue
		}
		if src == nil {
			src = &source{lo: q, hi: q, firstTS: -1 << 62}
		}
		src.lo, src.hi = min(src.lo, q), max(src.hi, q)
		if seek {
			for ei, ev := range events[i] {
				typ, ts, ok := eventInfo(ev)
				if !ok || typ != 2 {
					continue
				}
				line := int64(len(src.live) + ei)
				// Start at the Meta event right before a snapshot.
				if ei > 0 {
					if pt, pts, ok := eventInfo(events[i][ei-1]); ok && pt == 4 && pts <= ts {
						line--
					}
				}
				src.snaps = append(src.snaps, [3]int64{ts, line, 0})
			}
		}
		src.live = append(src.live, events[i]...)
		src.batches = append(src.batches, [2]int64{q, int64(len(events[i]))})
	}
	return src
}

// group is sources whose seq ranges overlap, read together.
type group []*source

func (g group) firstTS() int64 {
	ts := int64(1 << 62)
	for _, s := range g {
		ts = min(ts, s.firstTS)
	}
	return ts
}

// groupSources joins sources (sorted by first seq) whose seq ranges
// overlap.
func groupSources(srcs []*source) []group {
	var out []group
	hi := int64(-1 << 62)
	for _, s := range srcs {
		if len(out) > 0 && s.lo <= hi {
			out[len(out)-1] = append(out[len(out)-1], s)
		} else {
			out = append(out, group{s})
		}
		hi = max(hi, s.hi)
	}
	return out
}

// position is where a stream starts: a group, a source in it, a line of
// that source and (for a segment) the line's uncompressed byte offset.
type position struct {
	group, src, line int
	off              int64
}

// startAt finds the latest full snapshot at or before from.
func startAt(groups []group, from int64) position {
	at, best := position{}, int64(-1<<62)
	for gi, g := range groups {
		for si, src := range g {
			for _, sn := range src.snapshots() {
				if sn[0] <= from && sn[0] >= best {
					best = sn[0]
					at = position{group: gi, src: si, line: int(sn[1]), off: sn[2]}
				}
			}
		}
	}
	return at
}

// streamSource emits a source's events from line (at byte offset off of a
// segment) on.
func (s *Streamer) streamSource(ctx context.Context, src *source, line int, off int64, emit func([]byte) (bool, error)) (bool, error) {
	if src.seg != nil {
		return s.streamSegment(ctx, *src.seg, line, off, emit)
	}
	for _, ev := range src.live[line:] {
		if stop, err := emit(ev); err != nil || stop {
			return stop, err
		}
	}
	return false, nil
}

// mergeSources emits the events of a group's sources batch by batch in seq
// order. With startSrc >= 0, nothing is emitted before line startLine of
// source startSrc (a snapshot to start from).
func (s *Streamer) mergeSources(ctx context.Context, g group, startSrc, startLine int, emit func([]byte) (bool, error)) (bool, error) {
	type cursor struct {
		src   *source
		next  func() ([]byte, error)
		close func()
		batch int // index into src.batches
		line  int // lines read
	}
	cs := make([]*cursor, 0, len(g))
	defer func() {
		for _, c := range cs {
			if c.close != nil {
				c.close()
			}
		}
	}()
	for _, src := range g {
		c := &cursor{src: src}
		if src.seg != nil {
			r, err := s.openSegment(ctx, *src.seg)
			if err != nil {
				return false, err
			}
			c.next, c.close = r.next, r.close
		} else {
			evs := src.live
			c.next = func() ([]byte, error) {
				if len(evs) == 0 {
					return nil, io.EOF
				}
				ev := evs[0]
				evs = evs[1:]
				return ev, nil
			}
		}
		cs = append(cs, c)
	}
	started := startSrc < 0
	for {
		var pick *cursor
		pi := -1
		for i, c := range cs {
			if c.batch < len(c.src.batches) && (pick == nil || c.src.batches[c.batch][0] < pick.src.batches[pick.batch][0]) {
				pick, pi = c, i
			}
		}
		if pick == nil {
			return false, nil
		}
		n := pick.src.batches[pick.batch][1]
		pick.batch++
		for range n {
			ev, err := pick.next()
			if err == io.EOF {
				return false, fmt.Errorf("read segment %s: fewer events than its batches list", segKey(pick.src))
			}
			if err != nil {
				return false, err
			}
			if !started && pi == startSrc && pick.line == startLine {
				started = true
			}
			pick.line++
			if started {
				if stop, err := emit(ev); err != nil || stop {
					return stop, err
				}
			}
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
}

func segKey(src *source) string {
	if src.seg != nil {
		return src.seg.Key
	}
	return "(live)"
}

func (s *Streamer) getDecoder() (*zstd.Decoder, error) {
	select {
	case d := <-s.decoders:
		return d, nil
	default:
		return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
	}
}

func (s *Streamer) putDecoder(d *zstd.Decoder) {
	select {
	case s.decoders <- d:
	default:
		d.Close()
	}
}

// segmentReader reads a segment's events, one line at a time.
type segmentReader struct {
	key      string
	br       *bufio.Reader
	maxEvent int
	closers  []func()
}

func (r *segmentReader) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// next returns the next event (valid until the next call), io.EOF after
// the last.
func (r *segmentReader) next() ([]byte, error) {
	for {
		b, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An event longer than the buffer: gather it.
			full := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(full) > r.maxEvent {
					return nil, fmt.Errorf("read segment %s: a line of over %d bytes: not an event", r.key, r.maxEvent)
				}
				b, err = r.br.ReadSlice('\n')
				full = append(full, b...)
			}
			b = full
		}
		if len(b) > 0 && b[len(b)-1] == '\n' {
			b = b[:len(b)-1]
		}
		if len(b) > 0 {
			return b, nil
		}
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("read segment %s: %w", r.key, err)
		}
	}
}

// openSegment opens a stored segment for reading its events.
func (s *Streamer) openSegment(ctx context.Context, sg index.Segment) (*segmentReader, error) {
	rc, err := s.blobs.Get(ctx, sg.Key, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", sg.Key, err)
	}
	r := &segmentReader{key: sg.Key, maxEvent: s.maxEvent, closers: []func(){func() { rc.Close() }}}
	s.segmentsRead.Add(1)
	var dec io.Reader
	if s.segs != nil {
		zr, err := s.segs.Open(ctx, rc)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("read segment %s: %w", sg.Key, err)
		}
		r.closers = append(r.closers, func() { zr.Close() })
		dec = zr
	} else {
		d, err := s.getDecoder()
		if err != nil {
			r.close()
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		r.closers = append(r.closers, func() { s.putDecoder(d) })
		if err := d.Reset(rc); err != nil {
			r.close()
			return nil, fmt.Errorf("read segment %s: %w", sg.Key, err)
		}
		dec = d
	}
	r.br = bufio.NewReaderSize(dec, 256<<10)
	return r, nil
}

// streamSegment decompresses one segment and emits its events from line
// (at uncompressed byte offset off) on.
func (s *Streamer) streamSegment(ctx context.Context, sg index.Segment, line int, off int64, emit func([]byte) (bool, error)) (bool, error) {
	r, err := s.openSegment(ctx, sg)
	if err != nil {
		return false, err
	}
	defer r.close()
	if off > 0 {
		if _, err := io.CopyN(io.Discard, r.br, off); err != nil {
			return false, fmt.Errorf("seek in segment %s: %w", sg.Key, err)
		}
	}
	for {
		b, err := r.next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if stop, werr := emit(b); werr != nil || stop {
			return stop, werr
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
}

// drawsFrame tells whether a lead-in event is needed to draw the page as it
// is at the end of the lead-in (see Range.Trim).
func drawsFrame(e rrweb.Event) bool {
	switch e.Type {
	case rrweb.Custom, 6: // custom, plugin
		return false
	case rrweb.Incremental:
		source := int64(-1)
		jsonscan.EachField(e.Data, func(key, val []byte) bool {
			if string(key) == "source" {
				source, _ = jsonscan.Int(val)
				return false
			}
			return true
		})
		switch source {
		case 1, 2, 5, 6, 7, 11, 12, 14: // mouse move, mouse interaction, input, touch move, media, log, drag, selection
			return false
		}
	}
	return true
}

// eventInfo reads an event's type and timestamp.
func eventInfo(ev []byte) (typ int, ts int64, ok bool) {
	var h struct {
		Type      int   `json:"type"`
		Timestamp int64 `json:"timestamp"`
	}
	if json.Unmarshal(ev, &h) != nil {
		return 0, 0, false
	}
	return h.Type, h.Timestamp, true
}

// ArrayWriter writes events as one JSON array.
type ArrayWriter struct {
	W     io.Writer
	n     int
	Count int
}

// WriteEvent appends one event to the array.
func (a *ArrayWriter) WriteEvent(ev []byte) error {
	sep := []byte{','}
	if a.n == 0 {
		sep = []byte{'['}
	}
	if _, err := a.W.Write(sep); err != nil {
		return err
	}
	a.n++
	a.Count++
	_, err := a.W.Write(ev)
	return err
}

// Close ends the array.
func (a *ArrayWriter) Close() error {
	if a.n == 0 {
		_, err := io.WriteString(a.W, "[]")
		return err
	}
	_, err := io.WriteString(a.W, "]")
	return err
}
