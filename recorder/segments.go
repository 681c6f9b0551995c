package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/internal/wal"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/zdict"
)

// SegmentKey is the blob key of a segment, as DESIGN.md lays it out:
// <project>/sessions/<yyyy>/<mm>/<dd>/<session_id>/<first_seq>-<last_seq>.zst,
// dated by the session's start (UTC).
func SegmentKey(projectID int64, sessionID string, started time.Time, firstSeq, lastSeq int64) string {
	d := started.UTC()
	return fmt.Sprintf("%d/sessions/%04d/%02d/%02d/%s/%d-%d.zst", projectID, d.Year(), d.Month(), d.Day(), sessionID, firstSeq, lastSeq)
}

// Snapshot marks where a full snapshot starts inside a segment: its
// timestamp, the line of the first event to play from (the Meta event right
// before the snapshot, if there is one) and that line's byte offset in the
// uncompressed segment.
type Snapshot struct {
	TS     int64
	Line   int
	Offset int64
}

// MarshalJSON writes a Snapshot compactly as [ts, line, offset].
func (s Snapshot) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]int64{s.TS, int64(s.Line), s.Offset})
}

// UnmarshalJSON reads [ts, line, offset].
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var a [3]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	s.TS, s.Line, s.Offset = a[0], int(a[1]), a[2]
	return nil
}

// Compressor compresses a project's segment; fast says ingest is under
// pressure and flushes must keep pace.
type Compressor interface {
	Compress(ctx context.Context, project int64, raw []byte, fast bool) []byte
}

// segmentEncoders compresses segments: with the configured Compressor, or
// with zstd alone at its best level normally (segments are written once
// and kept for months, and this runs off the acknowledgement path), the
// faster "better" level when the buffer is filling up and flushes must
// keep pace with ingest.
type segmentEncoders struct {
	with       Compressor
	best, fast *zdict.Encoders
	// raw keeps the buffers segments are laid out in before compression:
	// a new one per segment grew by doubling through freshly cleared
	// memory (a quarter of the server's page faults in the ingest
	// benchmark).
	raw chan []byte
}

// maxKeptRaw bounds a kept layout buffer (a segment is flushed at
// Config.SegmentMaxBytes, 8 MB by default, plus its last batch).
const maxKeptRaw = 16 << 20

func newSegmentEncoders(c Compressor, keep int) *segmentEncoders {
	encoders := func(level zstd.EncoderLevel) *zdict.Encoders {
		return zdict.NewEncoders(keep, zdict.SegmentOptions(level)...)
	}
	return &segmentEncoders{with: c, best: encoders(zstd.SpeedBestCompression), fast: encoders(zstd.SpeedBetterCompression),
		raw: make(chan []byte, keep)}
}

// rawBuf returns an empty buffer to lay a segment out in.
func (s *segmentEncoders) rawBuf() []byte {
	select {
	case b := <-s.raw:
		return b[:0]
	default:
		return nil
	}
}

// keepRaw takes a layout buffer back once its segment is compressed.
func (s *segmentEncoders) keepRaw(b []byte) {
	if cap(b) > maxKeptRaw {
		return
	}
	select {
	case s.raw <- b:
	default:
	}
}

// compress compresses a segment of project.
func (s *segmentEncoders) compress(ctx context.Context, project int64, raw []byte, fast bool) []byte {
	switch {
	case s.with != nil:
		return s.with.Compress(ctx, project, raw, fast)
	case fast:
		return s.fast.EncodeAll(raw, make([]byte, 0, len(raw)/6))
	default:
		return s.best.EncodeAll(raw, make([]byte, 0, len(raw)/6))
	}
}

// builtSegment is a segment ready to store.
type builtSegment struct {
	data      []byte
	seqs      [][2]int64
	events    int
	raw       int64
	firstTS   int64
	lastTS    int64
	snapshots []Snapshot
}

// buildSegment lays out entries (sorted by seq) as newline-delimited events
// in buf and compresses them into one zstd frame with compress. It returns
// buf, perhaps grown, for the next segment.
func buildSegment(entries []*entry, buf []byte, compress func([]byte) []byte) (builtSegment, []byte) {
	size := 0
	for _, e := range entries {
		for _, ev := range e.b.Events {
			size += len(ev) + 1
		}
	}
	raw := bytes.NewBuffer(slices.Grow(buf[:0], size))
	var bs builtSegment
	bs.firstTS, bs.lastTS = 1<<62, -1<<62
	line := 0
	metaLine, metaOff, metaTS := -1, int64(0), int64(0)
	for _, e := range entries {
		bs.seqs = append(bs.seqs, [2]int64{e.b.Seq, int64(len(e.b.Events))})
		for _, ev := range e.b.Events {
			typ, ts, _ := EventInfo(ev)
			off := int64(raw.Len())
			switch typ {
			case 4: // Meta comes right before the full snapshot it describes
				metaLine, metaOff, metaTS = line, off, ts
			case 2:
				s := Snapshot{TS: ts, Line: line, Offset: off}
				if metaLine == line-1 && metaTS <= ts {
					s.Line, s.Offset = metaLine, metaOff
				}
				bs.snapshots = append(bs.snapshots, s)
			}
			bs.firstTS = min(bs.firstTS, ts)
			bs.lastTS = max(bs.lastTS, ts)
			raw.Write(ev)
			raw.WriteByte('\n')
			line++
			bs.events++
		}
	}
	if bs.events == 0 {
		bs.firstTS, bs.lastTS = 0, 0
	}
	bs.raw = int64(raw.Len())
	bs.data = compress(raw.Bytes())
	return bs, raw.Bytes()
}

func sortEntries(es []*entry) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].b.Seq < es[j].b.Seq })
}

// sweepLoop closes idle sessions and flushes segments that are due.
func (r *Recorder) sweepLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.SweepEvery)
	defer t.Stop()
	lastIdle := time.Time{}
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		ctx := context.Background()
		if err := r.flushAll(ctx, false); err != nil {
			r.log.Error("flush segments", slog.Any("error", err))
		}
		if r.now().Sub(lastIdle) >= min(r.cfg.SessionIdle/10, time.Minute) {
			lastIdle = r.now()
			r.requestCloseIdle()
		}
	}
}

// flushAll writes segments for sessions that are due (by size, age,
// idleness or memory pressure), or for every session when all is true.
func (r *Recorder) flushAll(ctx context.Context, all bool) error {
	now := r.now()
	r.mu.Lock()
	var due []*session
	over := r.buffered - r.cfg.MaxBuffered
	var rest []*session
	for k, s := range r.sessions {
		if len(s.pending) == 0 {
			if len(s.flushing) == 0 && s.refs == 0 && now.Sub(s.lastReceived) >= r.cfg.SessionIdle {
				delete(r.sessions, k) // its seqs are in the index now
			}
			continue
		}
		if len(s.flushing) > 0 {
			continue // one flush per session at a time keeps segments in order
		}
		idle := now.Sub(s.lastReceived) >= r.cfg.SessionIdle
		if all || idle || s.pendingBytes >= r.cfg.SegmentMaxBytes || now.Sub(s.firstPending) >= r.cfg.SegmentMaxAge {
			due = append(due, s)
			over -= s.pendingBytes
		} else {
			rest = append(rest, s)
		}
	}
	if over > 0 {
		sort.Slice(rest, func(i, j int) bool { return rest[i].pendingBytes > rest[j].pendingBytes })
		for _, s := range rest {
			if over <= 0 {
				break
			}
			due = append(due, s)
			over -= s.pendingBytes
		}
	}
	type job struct {
		s       *session
		entries []*entry
	}
	var jobs []job
	for _, s := range due {
		es := s.pending
		s.flushing, s.pending, s.pendingBytes = es, nil, 0
		jobs = append(jobs, job{s, es})
	}
	r.mu.Unlock()

	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		r.flushSem <- struct{}{}
		// Under the segments label also when Close calls it at a stop.
		go pprof.Do(ctx, pprof.Labels("stage", "segments"), func(ctx context.Context) {
			defer wg.Done()
			defer func() { <-r.flushSem }()
			errs[i] = r.flush(ctx, j.s, j.entries)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// flush stores one segment of a session. On failure the entries go back to
// the session's pending list and are tried again at the next sweep.
func (r *Recorder) flush(ctx context.Context, s *session, entries []*entry) error {
	// The segment row needs the session row, and the log must keep every
	// batch until its observers ran: a crash before then is repaired by
	// replaying the log.
	for _, e := range entries {
		select {
		case <-e.observed:
		case <-ctx.Done():
			r.unflush(s, entries)
			return ctx.Err()
		}
		if e.abandoned {
			r.unflush(s, entries)
			return fmt.Errorf("store segment of session %s: batch %d not recorded or not observed in the index, left in the log", s.key.id, e.b.Seq)
		}
	}
	sortEntries(entries)
	// Quarantined batches are in the quarantine: they only leave the log.
	quarantined := func(e *entry) bool { return e.quarantined }
	stored := entries
	if slices.ContainsFunc(entries, quarantined) {
		stored = slices.DeleteFunc(slices.Clone(entries), quarantined)
	}
	if len(stored) > 0 {
		start := time.Now()
		if err := r.storeSegment(ctx, s.key, stored); err != nil {
			r.unflush(s, entries)
			return fmt.Errorf("store segment of session %s: %w", s.key.id, err)
		}
		r.m.flushSeconds.Observe(time.Since(start).Seconds())
	}
	var raw int64
	for _, e := range entries {
		raw += e.raw
		if err := r.wal.Release(e.pos); err != nil {
			r.log.Warn("release wal", slog.Any("error", err))
		}
	}
	r.mu.Lock()
	s.flushing = nil
	r.buffered -= raw
	r.mu.Unlock()
	return nil
}

func (r *Recorder) unflush(s *session, entries []*entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.pending = append(entries, s.pending...)
	s.flushing = nil
	for _, e := range entries {
		s.pendingBytes += e.raw
	}
	if s.firstPending.IsZero() || len(s.pending) == len(entries) {
		s.firstPending = r.now()
	}
}

// storeSegment writes the segment row as pending, PUTs the object, then
// marks the row done. After a crash between the two, recovery finds the
// pending row and PUTs the same batches under the same key again.
func (r *Recorder) storeSegment(ctx context.Context, k sessKey, entries []*entry) error {
	sid, started, err := r.db.SessionRow(ctx, k.project, k.id)
	if err != nil {
		return err
	}
	return r.storeSegmentRow(ctx, sid, k, started, entries, 0)
}

func (r *Recorder) storeSegmentRow(ctx context.Context, sid int64, k sessKey, started int64, entries []*entry, pendingID int64) error {
	r.mu.Lock()
	pressure := r.buffered > r.cfg.MaxBuffered/2
	r.mu.Unlock()
	bs, buf := buildSegment(entries, r.enc.rawBuf(), func(raw []byte) []byte {
		defer r.m.busy(r.m.segmentsBusy, time.Now())
		return r.enc.compress(ctx, k.project, raw, pressure)
	})
	r.enc.keepRaw(buf)
	key := SegmentKey(k.project, k.id, time.UnixMilli(started), bs.seqs[0][0], bs.seqs[len(bs.seqs)-1][0])
	seqs, _ := json.Marshal(bs.seqs)
	snaps, _ := json.Marshal(bs.snapshots)
	if bs.snapshots == nil {
		snaps = []byte("[]")
	}
	id := pendingID
	if id == 0 {
		var err error
		id, err = r.db.AddPendingSegment(ctx, index.NewSegment{
			SessionID: sid, Key: key, FirstSeq: bs.seqs[0][0], LastSeq: bs.seqs[len(bs.seqs)-1][0],
			Seqs: seqs, Snapshots: snaps, Events: bs.events, RawBytes: bs.raw, Stored: int64(len(bs.data)),
			FirstTS: bs.firstTS, LastTS: bs.lastTS, CreatedAt: r.now().UnixMilli(),
		})
		if err != nil {
			return err
		}
	}
	if err := r.blobs.Put(ctx, key, bytes.NewReader(bs.data), int64(len(bs.data))); err != nil {
		r.m.blobErrors.WithLabelValues("put").Inc()
		if pendingID == 0 {
			// The batches go back to the session and may be stored later
			// with others under another key; a PUT that stored the object
			// and lost only its answer must not leave it behind. (A retry
			// from recovery keeps its row and key: nothing to remove.)
			r.dropObject(ctx, key)
			if derr := r.db.DropPendingSegment(context.WithoutCancel(ctx), id); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := r.db.MarkSegmentDone(context.WithoutCancel(ctx), id); err != nil {
		return err
	}
	r.m.segments.Inc()
	r.m.bytesStored.Add(float64(len(bs.data)))
	r.m.rawFlushed.Add(float64(bs.raw))
	return nil
}

// dropObject deletes an object that no segment row will refer to, best
// effort: a failure is counted and logged (the object, if it exists, is
// left behind). Only the session's own flush writes its keys, and flushes
// of a session do not overlap, so no PUT of the same key races with it.
func (r *Recorder) dropObject(ctx context.Context, key string) {
	if err := r.blobs.Delete(context.WithoutCancel(ctx), key); err != nil {
		r.m.blobErrors.WithLabelValues("delete").Inc()
		r.log.Warn("could not delete an object no segment refers to", "key", key, slog.Any("error", err))
	}
}

// recover replays the write-ahead log at start: batches already in stored
// segments are released, interrupted segments are stored again with the
// same batches under the same key, and the rest is buffered as if just
// accepted (and applied to the index, which ignores batches it has).
func (r *Recorder) recover(ctx context.Context) error {
	var entries []*entry
	l, err := wal.Open(r.cfg.walDir(), r.cfg.WALFileBytes, func(rec []byte, pos wal.Pos) error {
		b, err := decodeBatch(bytes.Clone(rec))
		if err != nil {
			return err
		}
		entries = append(entries, newEntry(b, pos))
		return nil
	})
	if err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	r.wal = l
	if entries, err = r.unquarantine(ctx, entries); err != nil {
		return err
	}
	if entries, err = r.dropForgotten(ctx, entries); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	// Make sure every logged batch is in the index and observed (a crash
	// may have come between the log and either stage); both stages skip
	// what they did before. A batch the index refuses alone while it takes
	// others (or, when there are no others, while it takes an empty
	// transaction) is quarantined; one the observers refuse while they
	// take others has its facts skipped (see quarantine.go).
	for i := 0; i < len(entries); i += 512 {
		group := entries[i:min(i+512, len(entries))]
		if err := r.replay(ctx, "replay wal into index", group, func(g []*entry) (int, error) { return len(g), r.applyGroup(ctx, g) }, isolation{
			try:        func(e *entry) error { return r.applyGroup(ctx, []*entry{e}) },
			park:       r.quarantine,
			strikes:    1,
			probeFirst: true,
		}); err != nil {
			return err
		}
		for _, e := range group {
			close(e.indexed)
		}
		obs := slices.DeleteFunc(slices.Clone(group), func(e *entry) bool { return e.quarantined })
		inSessionOrder(obs)
		if len(r.observers) > 0 && len(obs) > 0 {
			if err := r.replay(ctx, "replay wal into observers", obs, func(g []*entry) (int, error) { return r.observeGroup(ctx, g) }, isolation{
				try: func(e *entry) error {
					_, err := r.observeGroup(ctx, []*entry{e})
					return err
				},
				park:    r.skipFacts,
				strikes: 1,
				inOrder: true,
			}); err != nil {
				return err
			}
		}
		for _, e := range group {
			e.events = nil
			close(e.observed)
		}
	}
	kept := entries[:0]
	for _, e := range entries {
		if !e.quarantined {
			kept = append(kept, e)
		} else if err := r.wal.Release(e.pos); err != nil {
			return fmt.Errorf("release a quarantined batch: %w", err)
		}
	}
	if entries = kept; len(entries) == 0 {
		return nil
	}
	bySession := map[sessKey][]*entry{}
	var order []sessKey
	for _, e := range entries {
		k := sessKey{e.b.ProjectID, e.b.SessionID}
		if _, ok := bySession[k]; !ok {
			order = append(order, k)
		}
		bySession[k] = append(bySession[k], e)
	}
	var replayed, released int
	for _, k := range order {
		es := bySession[k]
		rest, n, err := r.recoverSession(ctx, k, es)
		if err != nil {
			return err
		}
		released += n
		if len(rest) == 0 {
			continue
		}
		seqs, err := r.storedSeqs(ctx, k)
		if err != nil {
			return err
		}
		s := newSession(k, seqs)
		r.sessions[k] = s
		for _, e := range rest {
			s.seen[e.b.Seq] = true
			r.bufferLocked(s, e)
			replayed++
		}
	}
	r.log.Info("recovered write-ahead log", "batches", len(entries), "buffered", replayed, "already_stored", released)
	return nil
}

// replay runs fn over group at start (fn returns how many batches it took)
// until it has taken them all, running it again after transient errors;
// after any other error the batches are tried alone (isolate with iso), and
// the replay fails only when none goes through.
func (r *Recorder) replay(ctx context.Context, what string, group []*entry, fn func([]*entry) (int, error), iso isolation) error {
	for rest := group; len(rest) > 0; {
		var n int
		err := r.again(ctx, what, func() (err error) { n, err = fn(rest); return err })
		if err == nil {
			rest = rest[n:]
			continue
		}
		r.log.Error(what, "batches", len(rest), slog.Any("error", err))
		done, left, ierr := r.isolate(rest, iso)
		if len(done) == 0 {
			return fmt.Errorf("%s: %w", what, errors.Join(err, ierr))
		}
		rest = left
	}
	return nil
}

// recoverSession settles one session's logged batches against its segment
// rows; it returns the batches still to be stored and how many it released.
// dropForgotten releases the logged batches of sessions that were deleted
// by forgetting a person since they were logged (a log file lives until all
// of its batches are stored, so it may still hold theirs): replaying them
// would record the person again.
func (r *Recorder) dropForgotten(ctx context.Context, entries []*entry) ([]*entry, error) {
	ids := map[int64][]string{}
	seen := map[sessKey]bool{}
	for _, e := range entries {
		k := sessKey{e.b.ProjectID, e.b.SessionID}
		if !seen[k] {
			seen[k] = true
			ids[k.project] = append(ids[k.project], k.id)
		}
	}
	gone := map[sessKey]bool{}
	for project, list := range ids {
		for i := 0; i < len(list); i += 500 {
			f, err := r.db.ForgottenSessions(ctx, project, list[i:min(i+500, len(list))])
			if err != nil {
				return nil, fmt.Errorf("recover: %w", err)
			}
			for id := range f {
				gone[sessKey{project, id}] = true
			}
		}
	}
	if len(gone) == 0 {
		return entries, nil
	}
	kept := entries[:0]
	for _, e := range entries {
		if gone[sessKey{e.b.ProjectID, e.b.SessionID}] {
			if err := r.wal.Release(e.pos); err != nil {
				return nil, fmt.Errorf("release a forgotten session's batch: %w", err)
			}
			continue
		}
		kept = append(kept, e)
	}
	r.log.Info("dropped logged batches of forgotten sessions", "sessions", len(gone), "batches", len(entries)-len(kept))
	return kept, nil
}

func (r *Recorder) recoverSession(ctx context.Context, k sessKey, es []*entry) ([]*entry, int, error) {
	sid, started, err := r.db.SessionRow(ctx, k.project, k.id)
	if err != nil {
		return nil, 0, fmt.Errorf("recover session %s: %w", k.id, err)
	}
	rows, err := r.db.SegmentStates(ctx, sid)
	if err != nil {
		return nil, 0, fmt.Errorf("recover segments: %w", err)
	}
	type seg struct {
		id      int64
		key     string
		seqs    map[int64]bool
		pending bool
	}
	segs := make([]seg, 0, len(rows))
	for _, row := range rows {
		sg := seg{id: row.ID, key: row.Key, seqs: map[int64]bool{}, pending: row.Pending}
		for _, p := range row.Seqs {
			sg.seqs[p[0]] = true
		}
		segs = append(segs, sg)
	}

	bySeq := map[int64]*entry{}
	for _, e := range es {
		bySeq[e.b.Seq] = e
	}
	released := 0
	take := func(seq int64) *entry {
		e := bySeq[seq]
		delete(bySeq, seq)
		return e
	}
	for _, sg := range segs {
		var group []*entry
		for q := range sg.seqs {
			if e := take(q); e != nil {
				group = append(group, e)
			}
		}
		if len(group) == 0 {
			continue
		}
		if sg.pending {
			if len(group) != len(sg.seqs) {
				// Cannot rebuild the exact object: the row is stale (its
				// batches were re-logged elsewhere); drop it and re-buffer.
				// Its object may have been stored before the crash.
				r.dropObject(ctx, sg.key)
				if err := r.db.DeleteSegment(ctx, sg.id); err != nil {
					return nil, 0, fmt.Errorf("drop stale pending segment: %w", err)
				}
				for _, e := range group {
					bySeq[e.b.Seq] = e
				}
				continue
			}
			sortEntries(group)
			if err := r.storeSegmentRow(ctx, sid, k, started, group, sg.id); err != nil {
				return nil, 0, fmt.Errorf("finish interrupted segment: %w", err)
			}
		}
		for _, e := range group {
			if err := r.wal.Release(e.pos); err != nil {
				return nil, 0, err
			}
			released++
		}
	}
	var rest []*entry
	for _, e := range es {
		if bySeq[e.b.Seq] == e {
			rest = append(rest, e)
		}
	}
	return rest, released, nil
}
