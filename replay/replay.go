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
	var live [][]json.RawMessage
	for i, q := range liveSeqs {
		if !stored[q] {
			live = append(live, liveEvents[i])
		}
	}

	start := sess.StartedAt.UnixMilli()
	from, to := int64(-1<<62), int64(1<<62)
	if rg.FromMS >= 0 {
		from = start + rg.FromMS
	}
	if rg.ToMS >= 0 {
		to = start + rg.ToMS
	}

	// Where to begin: the latest full snapshot at or before from.
	startSeg, startLine, startOff := 0, 0, int64(0)
	liveStart := -1 // index into live batches, when the snapshot is there
	liveEv := 0
	if rg.FromMS > 0 {
		for i, sg := range segs {
			for _, sn := range sg.Snapshots {
				if sn[0] <= from {
					startSeg, startLine, startOff = i, int(sn[1]), sn[2]
				}
			}
		}
		for bi, evs := range live {
			for ei, ev := range evs {
				if typ, ts, ok := eventInfo(ev); ok && typ == 2 && ts <= from {
					liveStart, liveEv = bi, ei
					if ei > 0 {
						if pt, pts, ok := eventInfo(evs[ei-1]); ok && pt == 4 && pts <= ts {
							liveEv = ei - 1
						}
					}
				}
			}
		}
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

	if liveStart < 0 {
		for i := startSeg; i < len(segs); i++ {
			sg := segs[i]
			if sg.FirstTS > to && i > startSeg {
				return nil
			}
			line, off := 0, int64(0)
			if i == startSeg {
				line, off = startLine, startOff
			}
			stop, err := s.streamSegment(ctx, sg, line, off, emit)
			if err != nil || stop {
				return err
			}
		}
		liveStart, liveEv = 0, 0
	}
	for bi := liveStart; bi < len(live); bi++ {
		evs := live[bi]
		first := 0
		if bi == liveStart {
			first = liveEv
		}
		for _, ev := range evs[first:] {
			stop, err := emit(ev)
			if err != nil || stop {
				return err
			}
		}
	}
	return nil
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

// streamSegment decompresses one segment and emits its events from line
// (at uncompressed byte offset off) on.
func (s *Streamer) streamSegment(ctx context.Context, sg index.Segment, line int, off int64, emit func([]byte) (bool, error)) (bool, error) {
	rc, err := s.blobs.Get(ctx, sg.Key, 0, -1)
	if err != nil {
		return false, fmt.Errorf("open segment %s: %w", sg.Key, err)
	}
	defer rc.Close()
	s.segmentsRead.Add(1)
	var dec io.Reader
	if s.segs != nil {
		r, err := s.segs.Open(ctx, rc)
		if err != nil {
			return false, fmt.Errorf("read segment %s: %w", sg.Key, err)
		}
		defer r.Close()
		dec = r
	} else {
		d, err := s.getDecoder()
		if err != nil {
			return false, fmt.Errorf("zstd decoder: %w", err)
		}
		defer s.putDecoder(d)
		if err := d.Reset(rc); err != nil {
			return false, fmt.Errorf("read segment %s: %w", sg.Key, err)
		}
		dec = d
	}
	if off > 0 {
		if _, err := io.CopyN(io.Discard, dec, off); err != nil {
			return false, fmt.Errorf("seek in segment %s: %w", sg.Key, err)
		}
	}
	br := bufio.NewReaderSize(dec, 256<<10)
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An event longer than the buffer: gather it.
			full := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(full) > s.maxEvent {
					return false, fmt.Errorf("read segment %s: a line of over %d bytes: not an event", sg.Key, s.maxEvent)
				}
				b, err = br.ReadSlice('\n')
				full = append(full, b...)
			}
			b = full
		}
		if len(b) > 0 && b[len(b)-1] == '\n' {
			b = b[:len(b)-1]
		}
		if len(b) > 0 {
			stop, werr := emit(b)
			if werr != nil || stop {
				return stop, werr
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read segment %s: %w", sg.Key, err)
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
