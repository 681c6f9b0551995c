package recorder

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"time"

	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// stmts are the prepared statements of the apply loop, on the index writer.
type stmts struct {
	upsertSession, insertBatch, updateSession, insertPage, insertCustom, upsertVisitor, identify, markObserved *sql.Stmt
}

func prepare(ctx context.Context, db *index.DB) (*stmts, error) {
	var s stmts
	for _, p := range []struct {
		dst *(*sql.Stmt)
		sql string
	}{
		{&s.upsertSession, `
			INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, user_agent, ip, browser, browser_version, os)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (project_id, public_id) DO UPDATE SET closed = 0
			RETURNING id, batch_count = 0`},
		{&s.insertBatch, `INSERT OR IGNORE INTO batches (session_id, seq, events, received_at, observed) VALUES (?, ?, ?, ?, ?)`},
		{&s.updateSession, `
			UPDATE sessions SET
				started_at = MIN(started_at, :first), ended_at = MAX(ended_at, :last), last_received = MAX(last_received, :received),
				batch_count = batch_count + 1, event_count = event_count + :events, click_count = click_count + :clicks,
				page_count = page_count + :pages, raw_bytes = raw_bytes + :bytes, errors = errors + :errors,
				dropped_events = dropped_events + :dropped,
				viewport_w = CASE WHEN :vw > 0 THEN :vw ELSE viewport_w END,
				viewport_h = CASE WHEN :vh > 0 THEN :vh ELSE viewport_h END,
				device = CASE WHEN device = '' THEN :device ELSE device END,
				-- A batch older than everything so far (batches may arrive out
				-- of order) has the real entry page and referrer.
				entry_url = CASE WHEN :entry != '' AND (entry_url = '' OR :first < started_at) THEN :entry ELSE entry_url END,
				referrer = CASE WHEN :referrer != '' AND (referrer = '' OR :first < started_at) THEN :referrer ELSE referrer END
			WHERE id = :id`},
		{&s.insertPage, `INSERT INTO pages (session_id, ts, url, path, width, height) VALUES (?, ?, ?, ?, ?, ?)`},
		{&s.insertCustom, `INSERT INTO custom_events (session_id, ts, name, props) VALUES (?, ?, ?, ?)`},
		{&s.upsertVisitor, `
			INSERT INTO visitors (project_id, id, first_seen, last_seen, sessions) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (project_id, id) DO UPDATE SET
				first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen),
				sessions = sessions + excluded.sessions`},
		{&s.identify, `UPDATE visitors SET user_id = ?, traits = COALESCE(?, traits) WHERE project_id = ? AND id = ?`},
		{&s.markObserved, `UPDATE batches SET observed = 1 WHERE session_id = ? AND seq = ? AND observed = 0`},
	} {
		st, err := db.Write().PrepareContext(ctx, p.sql)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare apply statement: %w", err)
		}
		*p.dst = st
	}
	return &s, nil
}

func (s *stmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.upsertSession, s.insertBatch, s.updateSession, s.insertPage, s.insertCustom, s.upsertVisitor, s.identify, s.markObserved} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

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
const (
	applyGroupMax      = 16
	observeGroupMax    = 64
	observeGroupBudget = 2 * time.Millisecond
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
	r.applyCond.Signal()
	r.applyMu.Unlock()
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

		ok := r.retry(r.stop, "apply batches to index", len(group), func() error {
			return r.applyGroup(context.Background(), group)
		})
		for _, e := range group {
			if !ok {
				// Shutting down with a broken index: the batches stay in
				// the log and are applied at the next start.
				e.abandoned = true
				close(e.indexed)
				close(e.observed)
				continue
			}
			close(e.indexed)
			r.enqueueObserve(e)
		}
	}
}

// retry runs fn until it succeeds, backing off between attempts; once giveUp
// is closed it stops after a few attempts and returns false.
func (r *Recorder) retry(giveUp <-chan struct{}, what string, n int, fn func() error) bool {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return true
		}
		r.log.Error(what, "batches", n, "attempt", attempt, slog.Any("error", err))
		r.m.indexErrors.Inc()
		select {
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
		case <-giveUp:
			if attempt > 3 {
				return false
			}
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
		r.closeDue, r.closeAfter = true, r.obsTaken+int64(len(r.obsQ))
	}
	r.obsCond.Signal()
	r.obsMu.Unlock()
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
		if len(group) > observeGroupMax {
			group = group[:observeGroupMax]
		}
		r.obsQ = r.obsQ[len(group):]
		r.obsTaken += int64(len(group))
		r.obsMu.Unlock()

		done := len(group)
		ok := r.retry(r.obsStop, "observe batches", len(group), func() error {
			var err error
			done, err = r.observeGroup(context.Background(), group)
			return err
		})
		if ok && done < len(group) {
			// Out of budget: the rest goes back to the front of the queue.
			rest := group[done:]
			group = group[:done]
			r.obsMu.Lock()
			r.obsQ = append(rest[:len(rest):len(rest)], r.obsQ...)
			r.obsTaken -= int64(len(rest))
			r.obsMu.Unlock()
		}
		var raw int64
		for _, e := range group {
			// Shutting down with a broken index: the batches stay in the
			// log (flush skips abandoned entries) and are observed at the
			// next start.
			e.abandoned = !ok
			if ok {
				e.events = nil // the observers are done with them
			}
			close(e.observed)
			raw += e.raw
		}
		r.obsMu.Lock()
		r.obsDone += int64(len(group))
		r.obsBacklog -= len(group)
		r.obsBacklogBytes -= raw
		r.obsMu.Unlock()
	}
}

func (r *Recorder) applyGroup(ctx context.Context, group []*entry) error {
	return r.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, e := range group {
			if err := r.applyOne(ctx, tx, e); err != nil {
				return fmt.Errorf("session %s seq %d: %w", e.b.SessionID, e.b.Seq, err)
			}
		}
		return nil
	})
}

// observeGroup runs the observers of indexed batches not observed yet and
// marks them observed, in one transaction, stopping early once the
// observers have worked observeGroupBudget; it returns how many batches of
// group it took.
func (r *Recorder) observeGroup(ctx context.Context, group []*entry) (int, error) {
	done := 0
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		start := time.Now()
		for i, e := range group {
			done = i + 1
			res, err := tx.StmtContext(ctx, r.stmts.markObserved).ExecContext(ctx, e.sid, e.b.Seq)
			if err != nil {
				return fmt.Errorf("session %s seq %d: mark observed: %w", e.b.SessionID, e.b.Seq, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // observed before
			}
			for _, o := range r.observers {
				if err := o.ObserveBatch(ctx, sqldb.WrapTx(tx), e.sid, e.events); err != nil {
					return fmt.Errorf("session %s seq %d: observer: %w", e.b.SessionID, e.b.Seq, err)
				}
			}
			if time.Since(start) >= observeGroupBudget {
				break
			}
		}
		return nil
	})
	return done, err
}

// applyOne records the core rows of one batch (stage 1) and notes its
// session row for stage 2; it does nothing more for a batch already
// recorded, which makes replaying the log at start-up safe.
func (r *Recorder) applyOne(ctx context.Context, tx *sql.Tx, e *entry) error {
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
	var sid int64
	var isNew bool
	err := tx.StmtContext(ctx, r.stmts.upsertSession).QueryRowContext(ctx,
		b.ProjectID, b.SessionID, b.VisitorID, first, last, b.ReceivedAt, b.UserAgent, b.IP,
		ua.Browser, ua.BrowserVersion, ua.OS).Scan(&sid, &isNew)
	if err != nil {
		return fmt.Errorf("upsert session: %w", err)
	}
	e.sid = sid
	observed := 0 // stage 2 runs the observers
	if len(r.observers) == 0 {
		observed = 1
	}
	res, err := tx.StmtContext(ctx, r.stmts.insertBatch).ExecContext(ctx, sid, b.Seq, len(b.Events), b.ReceivedAt, observed)
	if err != nil {
		return fmt.Errorf("insert batch: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // already recorded
	}

	pages, err := r.pageViews(ctx, tx, sid, f)
	if err != nil {
		return err
	}
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
	referrer := pageReferrer(f)
	_, err = tx.StmtContext(ctx, r.stmts.updateSession).ExecContext(ctx,
		sql.Named("first", first), sql.Named("last", last), sql.Named("received", b.ReceivedAt),
		sql.Named("events", f.Events), sql.Named("clicks", f.Clicks), sql.Named("pages", len(pages)),
		sql.Named("bytes", f.Bytes), sql.Named("errors", f.Errors), sql.Named("dropped", f.Dropped),
		sql.Named("vw", f.ViewportW), sql.Named("vh", f.ViewportH), sql.Named("device", device),
		sql.Named("entry", entryURL), sql.Named("referrer", referrer), sql.Named("id", sid))
	if err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	for _, p := range pages {
		if _, err := tx.StmtContext(ctx, r.stmts.insertPage).ExecContext(ctx, sid, p.TS, p.URL, p.Path, p.Width, p.Height); err != nil {
			return fmt.Errorf("insert page: %w", err)
		}
	}
	for _, c := range f.Custom {
		props := string(c.Payload)
		if props == "" || props == "null" {
			props = "{}"
		}
		if _, err := tx.StmtContext(ctx, r.stmts.insertCustom).ExecContext(ctx, sid, c.TS, truncate(c.Tag, 200), props); err != nil {
			return fmt.Errorf("insert custom event: %w", err)
		}
	}
	newSession := 0
	if isNew {
		newSession = 1
	}
	if _, err := tx.StmtContext(ctx, r.stmts.upsertVisitor).ExecContext(ctx, b.ProjectID, b.VisitorID, first, last, newSession); err != nil {
		return fmt.Errorf("upsert visitor: %w", err)
	}
	if b.User != nil && b.User.ID != "" {
		var traits any
		if len(b.User.Traits) > 0 && string(b.User.Traits) != "null" {
			traits = string(b.User.Traits)
		}
		if _, err := tx.StmtContext(ctx, r.stmts.identify).ExecContext(ctx, b.User.ID, traits, b.ProjectID, b.VisitorID); err != nil {
			return fmt.Errorf("identify visitor: %w", err)
		}
	}
	return nil
}

// pageViews returns the page views among a batch's Meta events. rrweb
// writes a Meta before every full snapshot, also the ones a recorder takes to
// repair a replay (after dropped events) on the same page; Trailmap's
// recorder marks real page views with a "trailmap/page" event. So when a
// batch has no such event, a Meta repeating the session's current URL is a
// repair snapshot, not a new view.
func (r *Recorder) pageViews(ctx context.Context, tx *sql.Tx, sid int64, f Facts) ([]Page, error) {
	if len(f.Pages) == 0 {
		return nil, nil
	}
	for _, c := range f.Internal {
		if c.Tag == "trailmap/page" {
			return f.Pages, nil
		}
	}
	var last string
	err := tx.QueryRowContext(ctx, `SELECT url FROM pages WHERE session_id = ? ORDER BY ts DESC, id DESC LIMIT 1`, sid).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("last page: %w", err)
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
				return truncate(u.Scheme+"://"+u.Host, 512)
			}
		}
	}
	return ""
}

// closeIdle marks sessions that have been quiet for the idle timeout as
// closed, telling observers, including sessions only the index knows of. It
// runs on stage 2's goroutine (see requestCloseIdle).
func (r *Recorder) closeIdle(ctx context.Context) error {
	cutoff := r.now().Add(-r.cfg.SessionIdle).UnixMilli()
	var ids []int64
	rows, err := r.db.Read().QueryContext(ctx,
		`SELECT id FROM sessions WHERE closed = 0 AND last_received < ? LIMIT 1000`, cutoff)
	if err != nil {
		return fmt.Errorf("find idle sessions: %w", err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("scan idle session: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		return nil
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return r.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `UPDATE sessions SET closed = 1 WHERE id = ? AND closed = 0 AND last_received < ?`, id, cutoff)
			if err != nil {
				return fmt.Errorf("close session: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			for _, o := range r.observers {
				if err := o.SessionClosed(ctx, sqldb.WrapTx(tx), id); err != nil {
					return fmt.Errorf("observer session closed: %w", err)
				}
			}
		}
		return nil
	})
}
