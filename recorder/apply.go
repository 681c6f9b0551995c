package recorder

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/internal/textcut"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// applyGroupMax is the most batches recorded in one index transaction of
// stage 1. Stage 2 takes up to observeGroupMax batches per transaction but
// commits once its observers have worked observeGroupBudget: both stages
// share the index's single write connection, so a long stage 2 transaction
// delays the stage 1 commit that requests wait for, while one transaction
// per batch spends the writer on commits and on rewriting the same pages
// (sessions, heatmap aggregates) batch after batch. Measured sustained
// throughput / p99 at half peak (BenchmarkIngestServer, 3 runs each): one
// batch per transaction about 0.7 times what grouping gives; budget 1 ms
// 12.8-17.3 MB/s / 16-21 ms; 2 ms 15.9-19.5 MB/s / 19-40 ms; 3 ms
// 16.5-19.7 MB/s / 37-53 ms.
//
// On PostgreSQL the stages write on connections of their own, side by
// side, and stage 2 takes its contended row locks (heatmap cells, sessions
// counters) only in the flush before its commit, so a longer transaction
// delays nobody's commit; what it saves is round trips, the per-transaction
// statements (the buffers' flushes, begin and commit) shared by more
// batches. observeGroupBudgetConcurrent against 2 ms (BenchmarkIngestServer,
// 2026-12-05, interleaved runs): sustained on loopback 5.4-7.4 -> 8.1-8.6
// MB/s over three pairs (facts 484-501 -> 398-416 µs of CPU per batch;
// acknowledged 11.6-17.1 -> 11.0-13.2 MB/s, stage 2 taking more of the two
// cores while stage 1 runs); through postgres-remote's ~0.5 ms round trips
// 1.65-1.84 -> 2.62-2.66 MB/s (a 20 ms budget: 2.15-2.63).
const (
	applyGroupMax                = 16
	observeGroupMax              = 64
	observeGroupBudget           = 2 * time.Millisecond
	observeGroupBudgetConcurrent = 100 * time.Millisecond
)

// The index is written in two stages, each a single goroutine taking its
// queue in order. Stage 1 (applyLoop) records a batch's core rows (session,
// batch, pages, custom events, visitor); the request waits for it, so that a
// client reading right after the 202 finds the session. Stage 2 (observeLoop)
// runs the observers (heatmaps, journeys), which cost far more per batch,
// off that path. A batch is inserted with observed = 0 and stage 2 sets it to
// 1 in the transaction that runs its observers, so each batch is observed
// once also when the log is replayed. Segments wait for stage 2: the log keeps
// a batch until its observers ran, which is how a crash between the stages is
// repaired at the next start.

// Stage 2 backlog over which a request also waits for its batch's
// observers, so memory stays bounded when the observers fall behind.
const (
	observeBacklogEntries = 4096
	observeBacklogBytes   = 256 << 20
)

func (r *Recorder) enqueueApply(e *entry) {
	r.applyMu.Lock()
	r.applyQ = append(r.applyQ, e)
	r.applyIn++
	r.applyCond.Signal()
	r.applyMu.Unlock()
}

// applyBehind reports whether stage 1's backlog is over MaxUnindexed: then
// a request waits for its batch's index rows before it is acknowledged.
func (r *Recorder) applyBehind() bool {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	return r.applyIn-r.applyOut > int64(r.cfg.MaxUnindexed)
}

// applied notes that stage 1 is done with n more batches.
func (r *Recorder) applied(n int) {
	r.applyMu.Lock()
	r.applyOut += int64(n)
	close(r.applyTick)
	r.applyTick = make(chan struct{})
	r.applyMu.Unlock()
}

// CaughtUp waits until stage 1 has recorded in the index every batch this
// node acknowledged before the call (or ctx ends): a read through the API
// right after a 202 finds the session, its pages and counts, although the
// 202 did not wait for them.
func (r *Recorder) CaughtUp(ctx context.Context) error {
	r.applyMu.Lock()
	target := r.applyIn
	for r.applyOut < target {
		tick := r.applyTick
		r.applyMu.Unlock()
		select {
		case <-tick:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.applyMu.Lock()
	}
	r.applyMu.Unlock()
	return nil
}

// applyLoop is stage 1: it records accepted batches in the index, many per
// transaction, and hands them to stage 2. The batch is already durable in
// the log, so a failure here is retried (and replayed at the next start)
// rather than reported to the client. It returns once stop is closed and its
// queue is empty.
func (r *Recorder) applyLoop() {
	defer close(r.applyDone)
	for {
		r.applyMu.Lock()
		for len(r.applyQ) == 0 {
			select {
			case <-r.stop:
				r.applyMu.Unlock()
				return
			default:
			}
			r.applyCond.Wait()
		}
		// Small groups: every request in a group waits for its commit; a
		// commit (WAL mode, no fsync) is cheap.
		group := r.applyQ
		if len(group) > applyGroupMax {
			group = group[:applyGroupMax]
		}
		r.applyQ = r.applyQ[len(group):]
		r.applyMu.Unlock()

		r.applyStall.begin()
		done, left := r.record(group)
		r.noteRecorded(done)
		r.applyStall.end()
		r.mu.Lock()
		for _, e := range done {
			if e.quarantined && e.s != nil {
				// Its session's later batches need not wait for its facts.
				e.s.observed[e.b.Seq] = true
			}
		}
		r.mu.Unlock()
		for _, e := range done {
			close(e.indexed)
			if e.quarantined {
				e.events = nil
				close(e.observed)
				continue
			}
			e.strikes, e.failedAlone = 0, 0 // what stage 1 held against it
			r.enqueueObserve(e)
		}
		for _, e := range left {
			// Shutting down with a broken index: the batches stay in the
			// log and are applied at the next start.
			e.abandoned = true
			close(e.indexed)
			close(e.observed)
		}
		r.applied(len(done) + len(left))
	}
}

// record applies group to the index in one transaction, retrying until it
// succeeds. When the group fails, its batches are tried alone (isolate) and
// a batch the index refuses while it takes others is quarantined; queued
// batches join the group meanwhile (they go through, or show that the index
// is down). It returns the batches done (recorded or quarantined) and,
// once stop is closed and a few attempts failed, those left.
func (r *Recorder) record(group []*entry) (done, left []*entry) {
	ctx := context.Background()
	iso := isolation{
		try:       func(e *entry) error { return r.applyGroup(ctx, []*entry{e}) },
		park:      r.quarantine,
		strikes:   poisonStrikes,
		probeLone: true,
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := r.applyGroup(ctx, group)
		if err == nil {
			r.m.busy(r.m.indexBusy, start)
			return append(done, group...), nil
		}
		var taken []*entry
		taken, group = r.failed("apply batches to index", attempt, group, err, iso)
		r.m.busy(r.m.indexBusy, start)
		if done = append(done, taken...); len(group) == 0 {
			return done, nil
		}
		select {
		case <-time.After(backoff(attempt)):
		case <-r.stop:
			if attempt > 3 {
				return done, group
			}
		}
		group = append(group, r.takeApply(applyGroupMax-len(group))...)
	}
}

// failed logs a stage's failed attempt at group and, unless the error says
// the database is out of service, tries its batches alone (isolate): it
// returns the batches taken and those left.
func (r *Recorder) failed(what string, attempt int, group []*entry, err error, iso isolation) (taken, rest []*entry) {
	r.log.Error(what, "batches", len(group), "attempt", attempt, slog.Any("error", err))
	r.m.indexErrors.Inc()
	if sqldb.IsUnavailable(err) {
		return nil, group
	}
	taken, rest, _ = r.isolate(group, iso)
	return taken, rest
}

// takeApply takes up to n batches from stage 1's queue.
func (r *Recorder) takeApply(n int) []*entry {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	n = max(0, min(n, len(r.applyQ)))
	more := r.applyQ[:n:n]
	r.applyQ = r.applyQ[n:]
	return more
}

func backoff(attempt int) time.Duration {
	return min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)
}

// observe runs the observers of group (see observeGroup), retrying until
// they succeed. When the group fails, its batches are tried alone (isolate)
// and a batch the observers refuse while they take others has its facts
// skipped. It returns the batches done and the rest: over the budget, or
// after a refused batch, or after a failed attempt while other batches are
// queued (they go back to the front of the queue, where they meet those);
// ok is false when stop was closed and a few attempts failed: then rest is
// every batch not done.
func (r *Recorder) observe(group []*entry) (done, rest []*entry, ok bool) {
	ctx := context.Background()
	iso := isolation{
		try: func(e *entry) error {
			_, err := r.observeGroup(ctx, []*entry{e})
			return err
		},
		park:      r.skipFacts,
		inOrder:   true,
		probeLone: true,
		// One more round than stage 1: the heatmap observer drops the
		// heatmap facts alone of a session's batch after its fifth failure
		// in a row (a group and an alone attempt fail per round), which
		// keeps the batch's journey facts.
		strikes: poisonStrikes + 1,
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		n, err := r.observeGroup(ctx, group)
		if err == nil {
			r.m.busy(r.m.factsBusy, start)
			return append(done, group[:n]...), group[n:], true
		}
		var taken []*entry
		taken, group = r.failed("observe batches", attempt, group, err, iso)
		r.m.busy(r.m.factsBusy, start)
		if done = append(done, taken...); len(group) == 0 || len(taken) > 0 {
			return done, group, true
		}
		select {
		case <-time.After(backoff(attempt)):
		case <-r.obsStop:
			if attempt > 3 {
				return done, group, false
			}
			continue
		}
		r.obsMu.Lock()
		queued := len(r.obsQ) > 0
		r.obsMu.Unlock()
		if queued {
			// Back to the queue, to be taken with the batches queued
			// since: they go through, or show the observers are down.
			return done, group, true
		}
	}
}

// inSessionOrder reorders group so that each session's batches are
// observed in seq order (clients may send a session's batches at once and
// they are taken in the order they arrive): a session's batches take the
// place of its first one, sorted by seq; sessions keep their order.
func inSessionOrder(group []*entry) {
	first := make(map[int64]int, len(group))
	for i, e := range group {
		if _, ok := first[e.sid]; !ok {
			first[e.sid] = i
		}
	}
	sort.SliceStable(group, func(i, j int) bool {
		a, b := group[i], group[j]
		if fa, fb := first[a.sid], first[b.sid]; fa != fb {
			return fa < fb
		}
		return a.b.Seq < b.b.Seq
	})
}

// again runs fn, and again after an error that another try may not meet
// (other nodes of a cluster holding the same rows: a deadlock), a few
// times with a pause; any other error, or the last, is returned.
func (r *Recorder) again(ctx context.Context, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !sqldb.IsTransient(err) || attempt == 9 {
			return err
		}
		r.log.Warn(what+": retrying", "attempt", attempt, slog.Any("error", err))
		select {
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// enqueueObserve hands an indexed batch to stage 2; without observers there
// is nothing to do there.
func (r *Recorder) enqueueObserve(e *entry) {
	if len(r.observers) == 0 {
		close(e.observed)
		return
	}
	r.obsMu.Lock()
	r.obsQ = append(r.obsQ, e)
	r.obsBacklog++
	r.obsBacklogBytes += e.raw
	r.obsCond.Signal()
	r.obsMu.Unlock()
}

// observeBehind reports whether stage 2's backlog is over its bound.
func (r *Recorder) observeBehind() bool {
	r.obsMu.Lock()
	defer r.obsMu.Unlock()
	return r.obsBacklog > observeBacklogEntries || r.obsBacklogBytes > observeBacklogBytes
}

// requestCloseIdle asks stage 2 to close idle sessions once the batches
// queued now are observed: observers must see a session's batches before
// they hear that it ended.
func (r *Recorder) requestCloseIdle() {
	r.obsMu.Lock()
	if !r.closeDue {
		r.closeDue, r.closeAfter = true, r.obsTaken+int64(len(r.obsQ)+len(r.obsHeld))
	}
	r.obsCond.Signal()
	r.obsMu.Unlock()
}

// How long stage 2 holds a batch back for the batch before it (see ready):
// one this node accepted and has yet to observe, and one it has not seen
// (still on its way from a client that sent both at once or retries it
// after a backoff, through another node of a cluster that forwards it, or
// never coming: a client that gave up on it). A batch the recording rules
// kept out is not waited for (accept marks it observed). Five seconds
// cover a client's first retries (ours backs off 0.5-1 s, then 1-2 s) and
// a forward on a loaded node; one second did not: a cluster test on a busy
// 2-core machine saw a session's batch forwarded later than that, and two
// batches' clicks counted on the page before.
//
// A batch recorded by another node (or by this node before it restarted)
// and not yet observed is in that node's log: a node that was killed
// observes it when it starts again, so a session taken over from it waits
// for that, asking the index every elsewhereRecheck.
const (
	holdForQueued    = 2 * time.Minute
	holdForUnseen    = 5 * time.Second
	heldRecheck      = 20 * time.Millisecond
	elsewhereRecheck = 500 * time.Millisecond
)

// holdBack returns the batches of group (in session order) whose facts can
// be derived now and keeps the others back, in order, for a later group:
// facts follow a session in seq order, also when a client sends several of
// its batches at once or retries one late.
func (r *Recorder) holdBack(group []*entry) []*entry {
	r.checkElsewhere(group)
	now := r.now()
	inGroup := map[*session]int64{} // the last seq of a session taken into this group
	ready := group[:0:0]
	var held []*entry
	r.mu.Lock()
	for _, e := range group {
		if r.ready(e, inGroup, now) {
			ready = append(ready, e)
			if e.s != nil {
				inGroup[e.s] = e.b.Seq
			}
			continue
		}
		held = append(held, e)
	}
	r.mu.Unlock()
	if len(held) == 0 {
		return group
	}
	r.obsMu.Lock()
	r.obsHeld = append(r.obsHeld, held...)
	r.obsTaken -= int64(len(held))
	if !r.obsWake {
		// Every heldRecheck all of them are looked at again (a wait may
		// have run out, another node may have observed the batch before);
		// in between only those of a session with a batch just observed.
		r.obsWake = true
		time.AfterFunc(heldRecheck, func() {
			r.obsMu.Lock()
			r.obsWake = false
			r.requeueHeldLocked(nil)
			r.obsMu.Unlock()
		})
	}
	r.obsMu.Unlock()
	return ready
}

// checkElsewhere asks the index whether the batches other nodes hold
// that batches of group wait for are observed by now.
func (r *Recorder) checkElsewhere(group []*entry) {
	now := r.now()
	var ask []*entry
	r.mu.Lock()
	for _, e := range group {
		if e.s != nil && e.b.Seq > 0 && e.s.waitsElsewhere(e.b.Seq-1) && now.Sub(e.checked) >= elsewhereRecheck {
			e.checked = now
			ask = append(ask, e)
		}
	}
	r.mu.Unlock()
	for _, e := range ask {
		ok, err := r.db.BatchObserved(context.Background(), e.sid, e.b.Seq-1)
		if err != nil {
			r.log.Warn("read whether a batch is observed", "session", e.b.SessionID, "seq", e.b.Seq-1, slog.Any("error", err))
			continue
		}
		if ok {
			r.mu.Lock()
			e.s.observed[e.b.Seq-1] = true
			delete(e.s.elsewhere, e.b.Seq-1)
			r.mu.Unlock()
		}
	}
}

// waitsElsewhere tells whether seq, not observed, may be observed by
// another node (or this one before a restart): it was recorded, not
// observed, when the session was loaded, or this node took the session over
// and has not seen it (it may be in the log of the node that is gone).
// Called with r.mu held.
func (s *session) waitsElsewhere(seq int64) bool {
	return s.elsewhere[seq] || (s.takenOver && !s.seen[seq])
}

// ready tells whether e's facts can be derived now: it begins its session,
// the batch before it is observed (or comes before it in this group), or
// it waited long enough for that batch. Called with r.mu held.
func (r *Recorder) ready(e *entry, inGroup map[*session]int64, now time.Time) bool {
	q := e.b.Seq
	if q == 0 || e.s == nil {
		return true
	}
	if e.s.observed[q-1] {
		return true
	}
	if last, ok := inGroup[e.s]; ok && last == q-1 {
		return true
	}
	wait := holdForUnseen
	if e.s.seen[q-1] || e.s.waitsElsewhere(q-1) {
		wait = holdForQueued
	}
	if now.Sub(e.at) < wait && !r.obsDraining.Load() {
		return false
	}
	r.m.outOfOrder.Inc()
	return true
}

// requeueHeldLocked puts held batches back at the front of stage 2's
// queue: those of the sessions in of, or all when of is nil. Called with
// r.obsMu held.
func (r *Recorder) requeueHeldLocked(of map[*session]bool) {
	if len(r.obsHeld) == 0 {
		return
	}
	back := r.obsHeld
	if of != nil {
		back = nil
		kept := r.obsHeld[:0]
		for _, e := range r.obsHeld {
			if of[e.s] {
				back = append(back, e)
			} else {
				kept = append(kept, e)
			}
		}
		clear(r.obsHeld[len(kept):])
		if r.obsHeld = kept; len(back) == 0 {
			return
		}
	} else {
		r.obsHeld = nil
	}
	r.obsQ = append(back, r.obsQ...)
	r.obsCond.Signal()
}

// observeLoop is stage 2: it runs the observers of indexed batches in
// stage 1's order, observeGroupMax per transaction, and closes idle
// sessions when asked. It returns once obsStop is closed (after stage 1 has
// stopped) and its queue is empty.
func (r *Recorder) observeLoop() {
	defer close(r.observeDone)
	for {
		r.obsMu.Lock()
		for len(r.obsQ) == 0 && !(r.closeDue && r.obsDone >= r.closeAfter) {
			select {
			case <-r.obsStop:
				if len(r.obsHeld) > 0 {
					// Stopping: what is held back goes now.
					r.obsDraining.Store(true)
					r.requeueHeldLocked(nil)
					continue
				}
				r.obsMu.Unlock()
				return
			default:
			}
			r.obsCond.Wait()
		}
		if r.closeDue && r.obsDone >= r.closeAfter {
			r.closeDue = false
			r.obsMu.Unlock()
			if err := r.closeIdle(context.Background()); err != nil {
				r.log.Error("close idle sessions", slog.Any("error", err))
			}
			continue
		}
		group := r.obsQ
		if n := r.factsWorkers * observeGroupMax; len(group) > n {
			group = group[:n]
		}
		r.obsQ = r.obsQ[len(group):]
		r.obsTaken += int64(len(group))
		r.obsMu.Unlock()
		inSessionOrder(group)
		if group = r.holdBack(group); len(group) == 0 {
			continue
		}

		r.obsStall.begin()
		done, rest, left := r.observeShares(group)
		r.obsStall.end()
		if len(rest) > 0 {
			// Out of budget, or waiting behind a batch the observers
			// refused: the rest goes back to the front of the queue.
			r.obsMu.Lock()
			r.obsQ = append(rest[:len(rest):len(rest)], r.obsQ...)
			r.obsTaken -= int64(len(rest))
			r.obsMu.Unlock()
		}
		var raw int64
		var observedIn map[*session]bool // sessions with a batch observed now
		r.mu.Lock()
		for _, e := range done {
			if e.s != nil {
				e.s.observed[e.b.Seq] = true
				if observedIn == nil {
					observedIn = map[*session]bool{}
				}
				observedIn[e.s] = true
			}
		}
		r.mu.Unlock()
		for _, e := range done {
			e.events = nil // the observers are done with them
			close(e.observed)
			raw += e.raw
		}
		for _, e := range left {
			// Shutting down with a broken index: the batches stay in the
			// log (flush skips abandoned entries) and are observed at the
			// next start.
			e.abandoned = true
			close(e.observed)
			raw += e.raw
		}
		r.obsMu.Lock()
		r.obsDone += int64(len(done) + len(left))
		r.obsBacklog -= len(done) + len(left)
		r.obsBacklogBytes -= raw
		if observedIn != nil {
			r.requeueHeldLocked(observedIn) // their turn may have come
		}
		r.obsMu.Unlock()
	}
}

// observeShares observes group (see observe): on one transaction, or, with
// several facts workers, split by session into up to factsWorkers shares
// observed at once, each in transactions of its own. A session's batches
// stay in one share, in order. It returns the batches done, those to queue
// again (rest) and those abandoned because the recorder is stopping with
// a broken index (left).
func (r *Recorder) observeShares(group []*entry) (done, rest, left []*entry) {
	shares := splitShares(group, r.factsWorkers)
	results := make([]struct {
		done, rest []*entry
		ok         bool
	}, len(shares))
	if len(shares) == 1 {
		results[0].done, results[0].rest, results[0].ok = r.observe(shares[0])
	} else {
		var wg sync.WaitGroup
		for i, sh := range shares {
			// (the goroutines inherit stage 2's profiler labels)
			wg.Go(func() { results[i].done, results[i].rest, results[i].ok = r.observe(sh) })
		}
		wg.Wait()
	}
	for _, res := range results {
		done = append(done, res.done...)
		if res.ok {
			rest = append(rest, res.rest...)
		} else {
			left = append(left, res.rest...)
		}
	}
	return done, rest, left
}

// splitShares splits group into up to n shares by session id, keeping
// each share in group's order; empty shares are left out.
func splitShares(group []*entry, n int) [][]*entry {
	if n <= 1 {
		return [][]*entry{group}
	}
	shares := make([][]*entry, n)
	for _, e := range group {
		i := int(uint64(e.sid) % uint64(n))
		shares[i] = append(shares[i], e)
	}
	return slices.DeleteFunc(shares, func(s []*entry) bool { return len(s) == 0 })
}

func (r *Recorder) applyGroup(ctx context.Context, group []*entry) error {
	return r.stmts.Tx(ctx, func(tx *index.IngestTx) error {
		for _, e := range lockOrder(group) {
			if err := r.applyOne(ctx, tx, e); err != nil {
				return fmt.Errorf("session %s seq %d: %w", e.b.SessionID, e.b.Seq, err)
			}
		}
		if err := addUsage(ctx, tx, group); err != nil {
			return fmt.Errorf("daily usage: %w", err)
		}
		return nil
	})
}

// lockOrder returns group's batches in the order in which every writer of
// the index locks sessions rows, by project and session id (see
// storage/index's sessionWrites): a stage 1 transaction that took two
// sessions in one order while stage 2, the idle sweep or another node took
// them in the other would deadlock. A session's batches keep their order.
func lockOrder(group []*entry) []*entry {
	sorted := slices.Clone(group)
	slices.SortStableFunc(sorted, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.b.ProjectID, b.b.ProjectID), strings.Compare(a.b.SessionID, b.b.SessionID))
	})
	return sorted
}

// observeGroup runs the observers of indexed batches not observed yet and
// marks them observed, in one transaction, stopping early once the
// observers have worked r.observeBudget; it returns how many batches of
// group it took.
func (r *Recorder) observeGroup(ctx context.Context, group []*entry) (int, error) {
	done := 0
	err := r.stmts.Tx(ctx, func(tx *index.IngestTx) error {
		start := time.Now()
		for i, e := range group {
			if r.markChunk > 1 && i%r.markChunk == 0 {
				// The chunk's observed marks in one round trip on
				// PostgreSQL; the budget ends a group only after a
				// whole chunk (a batch marked must be observed).
				chunk := group[i:min(i+r.markChunk, len(group))]
				keys := make([]index.BatchKey, len(chunk))
				for j, c := range chunk {
					keys[j] = index.BatchKey{SessionID: c.sid, Seq: c.b.Seq}
				}
				if err := tx.MarkObservedMany(ctx, keys); err != nil {
					return err
				}
			}
			done = i + 1
			fresh, err := tx.MarkObserved(ctx, e.sid, e.b.Seq)
			if err != nil {
				return fmt.Errorf("session %s seq %d: %w", e.b.SessionID, e.b.Seq, err)
			}
			if !fresh {
				continue // observed before
			}
			for _, o := range r.observers {
				if err := o.ObserveBatch(ctx, tx.Shared(), e.sid, e.events); err != nil {
					return fmt.Errorf("session %s seq %d: observer: %w", e.b.SessionID, e.b.Seq, err)
				}
			}
			if done%r.markChunk == 0 && time.Since(start) >= r.observeBudget {
				break
			}
		}
		return nil
	})
	return done, err
}

// observeMarkChunk is how many batches stage 2 marks observed in one
// statement on PostgreSQL: a round trip per batch before (the statements
// per batch in BenchmarkIngestServer/postgres: see the README).
const observeMarkChunk = 16

// applyOne records the core rows of one batch (stage 1) and notes its
// session row for stage 2; it does nothing more for a batch already
// recorded, which makes replaying the log at start-up safe.
func (r *Recorder) applyOne(ctx context.Context, tx *index.IngestTx, e *entry) error {
	b := e.b
	if e.facts == nil { // replayed from the log
		e.events = rrweb.SplitAll(b.Events)
		f := factsOf(e.events)
		e.facts, e.ua = &f, r.ua.Parse(b.UserAgent)
	}
	f, ua := *e.facts, e.ua
	first, last := f.FirstTS, f.LastTS
	if f.Events == 0 {
		first, last = b.ReceivedAt, b.ReceivedAt
	}
	sess := index.SessionStart{
		ProjectID: b.ProjectID, PublicID: b.SessionID, VisitorID: b.VisitorID,
		StartedAt: first, EndedAt: last, LastReceived: b.ReceivedAt, UserAgent: b.UserAgent, IP: b.IP,
		Browser: ua.Browser, BrowserVersion: ua.BrowserVersion, OS: ua.OS,
	}
	// Without observers stage 2 has nothing to do for the batch.
	observed := len(r.observers) == 0
	var (
		sid                    int64
		isNew, inserted, found bool
		pages                  []Page
		err                    error
	)
	// A session whose row stage 1 wrote before: the batch's row and its
	// counts in one round trip.
	if e.s != nil {
		if sid = e.s.sid.Load(); sid != 0 {
			if pages, err = pageViews(ctx, tx, sid, f); err != nil {
				return err
			}
			found, isNew, inserted, err = tx.RecordKnownBatch(ctx, sid, sess, b.Seq, len(b.Events), b.ReceivedAt, observed, r.batchCounts(b, f, ua, first, last, pages))
			if err != nil {
				return err
			}
		}
	}
	if !found {
		if sid, isNew, inserted, err = tx.RecordBatch(ctx, sess, b.Seq, len(b.Events), b.ReceivedAt, observed); err != nil {
			return err
		}
		if inserted {
			if pages, err = pageViews(ctx, tx, sid, f); err != nil {
				return err
			}
			if err := tx.CountBatch(ctx, sid, r.batchCounts(b, f, ua, first, last, pages)); err != nil {
				return err
			}
		}
		if e.s != nil {
			e.s.sid.Store(sid)
		}
	}
	e.sid = sid
	e.recorded, e.newSession = inserted, inserted && isNew
	if !inserted {
		return nil // already recorded
	}
	for _, p := range pages {
		if err := tx.AddPage(ctx, sid, p.TS, p.URL, p.Path, p.Width, p.Height); err != nil {
			return err
		}
	}
	for _, c := range f.Custom {
		props := string(c.Payload)
		if props == "" || props == "null" {
			props = "{}"
		}
		if err := tx.AddCustomEvent(ctx, sid, c.TS, textcut.Head(c.Tag, 200), props); err != nil {
			return err
		}
	}
	if err := tx.UpsertVisitor(ctx, b.ProjectID, b.VisitorID, first, last, isNew); err != nil {
		return err
	}
	if b.User != nil && b.User.ID != "" {
		traits := "" // keep the visitor's traits
		if len(b.User.Traits) > 0 && string(b.User.Traits) != "null" {
			traits = string(b.User.Traits)
		}
		if err := tx.Identify(ctx, b.ProjectID, b.VisitorID, b.User.ID, traits); err != nil {
			return err
		}
	}
	return nil
}

// batchCounts is what batch b, with facts f and pages (its new page
// views), adds to its session row.
func (r *Recorder) batchCounts(b *Batch, f Facts, ua UA, first, last int64, pages []Page) index.BatchCounts {
	device := DeviceClass(f.ViewportW, r.cfg.Devices)
	if device == "" {
		switch {
		case ua.Tablet:
			device = "tablet"
		case ua.Mobile:
			device = "mobile"
		}
	}
	entryURL := ""
	if len(f.Pages) > 0 {
		entryURL = f.Pages[0].URL
	}
	return index.BatchCounts{
		First: first, Last: last, Received: b.ReceivedAt,
		Events: f.Events, Clicks: f.Clicks, Interactions: f.Interactions, Pages: len(pages), Errors: f.Errors,
		FullSnapshots: f.FullSnapshots, FirstSnapshot: f.FirstSnapshotTS,
		Bytes: f.Bytes, Dropped: f.Dropped, ViewportW: f.ViewportW, ViewportH: f.ViewportH,
		Device: device, EntryURL: entryURL, Referrer: pageReferrer(f),
	}
}

// pageViews returns the page views among a batch's Meta events. rrweb
// writes a Meta before every full snapshot, also the ones a recorder takes to
// repair a replay (after dropped events) on the same page; Trailmap's
// recorder marks real page views with a "trailmap/page" event. So when a
// batch has no such event, a Meta repeating the session's current URL is a
// repair snapshot, not a new view.
func pageViews(ctx context.Context, tx *index.IngestTx, sid int64, f Facts) ([]Page, error) {
	if len(f.Pages) == 0 {
		return nil, nil
	}
	for _, c := range f.Internal {
		if c.Tag == "trailmap/page" {
			return f.Pages, nil
		}
	}
	last, err := tx.LastPageURL(ctx, sid)
	if err != nil {
		return nil, err
	}
	var out []Page
	for _, p := range f.Pages {
		if p.URL != last {
			out = append(out, p)
			last = p.URL
		}
	}
	return out, nil
}

// pageReferrer takes the referrer's origin (scheme and host) from the
// recorder's "trailmap/page" event, if the batch has one. The path and query
// are dropped: they may carry personal data and journeys group by host.
func pageReferrer(f Facts) string {
	for _, c := range f.Internal {
		if c.Tag != "trailmap/page" {
			continue
		}
		var p struct {
			Referrer string `json:"referrer"`
		}
		if json.Unmarshal(c.Payload, &p) == nil && p.Referrer != "" {
			if u, err := url.Parse(p.Referrer); err == nil && u.Host != "" {
				return textcut.Head(u.Scheme+"://"+u.Host, 512)
			}
		}
	}
	return ""
}

// closeIdle marks sessions that have been quiet for the idle timeout as
// closed, telling observers, including sessions only the index knows of. A
// session that closes short of its project's keep rule (min_duration_ms,
// require_interaction) is marked discarded: whichever client recorded it,
// it leaves the lists now and the index with the next retention sweep. It
// runs on stage 2's goroutine (see requestCloseIdle).
func (r *Recorder) closeIdle(ctx context.Context) error {
	cutoff := r.now().Add(-r.cfg.SessionIdle).UnixMilli()
	idle, err := r.db.IdleSessions(ctx, cutoff, 1000)
	if err != nil {
		return err
	}
	if len(idle) == 0 {
		return nil
	}
	keep := map[int64]index.KeepRule{}
	for _, s := range idle {
		if _, ok := keep[s.ProjectID]; !ok {
			keep[s.ProjectID] = r.keepRule(ctx, s.ProjectID)
		}
	}
	return r.stmts.Tx(ctx, func(tx *index.IngestTx) error {
		for _, s := range idle {
			closed, discarded, err := tx.CloseSession(ctx, s.ID, cutoff, keep[s.ProjectID])
			if err != nil {
				return err
			}
			if !closed {
				continue
			}
			if discarded {
				r.rm.discarded.Inc()
			}
			for _, o := range r.observers {
				if err := o.SessionClosed(ctx, tx.Shared(), s.ID); err != nil {
					return fmt.Errorf("observer session closed: %w", err)
				}
			}
		}
		return nil
	})
}
