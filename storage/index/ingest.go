package index

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Ingest is the write side of the recorder's two index stages: statements
// prepared once on the writer and bound to each transaction, since the
// ingest runs them for every batch. Make it with DB.Ingest, close it with
// Close once no transaction runs.
type Ingest struct {
	db    *DB
	stmts [numIngestStmts]*sql.Stmt
}

// The ingest's statements, by index into Ingest.stmts.
const (
	stUpsertSession = iota
	stInsertBatch
	stCountBatch
	stLastPage
	stInsertPage
	stInsertCustom
	stUpsertVisitor
	stIdentify
	stMarkObserved
	stCloseSession
	stRecordBatch
	stVisitorsMany
	stRecordKnown
	stCountKnown
	stKnownExists
	stMarkObservedMany
	numIngestStmts
)

// upsertSession creates a session's row or reopens it, returning its id
// and whether it has no batch yet (fresh).
const upsertSession = `
		INSERT INTO sessions (project_id, public_id, visitor_id, started_at, ended_at, last_received, user_agent, ip, browser, browser_version, os)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (project_id, public_id) DO UPDATE SET closed = 0
		RETURNING id, batch_count = 0 AS fresh`

// countSetSQLite and countSetPostgres add a batch to its session row
// (CountBatch), with numbered parameters in the order of CountBatch's
// arguments: ?N on SQLite, $N on PostgreSQL ($15, the row id, is not among
// them). Every expression reads the row as it was before the update, in
// both.
const countSetSQLite = `
			started_at = MIN(started_at, ?1), ended_at = MAX(ended_at, ?2), last_received = MAX(last_received, ?3),
			batch_count = batch_count + 1, event_count = event_count + ?4, click_count = click_count + ?5,
			page_count = page_count + ?6, raw_bytes = raw_bytes + ?7, errors = errors + ?8,
			dropped_events = dropped_events + ?9,
			viewport_w = CASE WHEN ?10 > 0 THEN ?10 ELSE viewport_w END,
			viewport_h = CASE WHEN ?11 > 0 THEN ?11 ELSE viewport_h END,
			device = CASE WHEN device = '' THEN ?12 ELSE device END,
			-- A batch older than everything so far (batches may arrive out
			-- of order) has the real entry page and referrer.
			entry_url = CASE WHEN ?13 != '' AND (entry_url = '' OR ?1 < started_at) THEN ?13 ELSE entry_url END,
			referrer = CASE WHEN ?14 != '' AND (referrer = '' OR ?1 < started_at) THEN ?14 ELSE referrer END,
			interactions = interactions + ?16,
			full_snapshots = full_snapshots + ?17,
			first_snapshot_at = CASE WHEN ?18 > 0 AND (first_snapshot_at = 0 OR ?18 < first_snapshot_at) THEN ?18 ELSE first_snapshot_at END`

const countSetPostgres = `
			started_at = LEAST(started_at, $1), ended_at = GREATEST(ended_at, $2), last_received = GREATEST(last_received, $3),
			batch_count = batch_count + 1, event_count = event_count + $4, click_count = click_count + $5,
			page_count = page_count + $6, raw_bytes = raw_bytes + $7, errors = errors + $8,
			dropped_events = dropped_events + $9,
			viewport_w = CASE WHEN $10 > 0 THEN $10 ELSE viewport_w END,
			viewport_h = CASE WHEN $11 > 0 THEN $11 ELSE viewport_h END,
			device = CASE WHEN device = '' THEN $12 ELSE device END,
			entry_url = CASE WHEN $13 != '' AND (entry_url = '' OR $1 < started_at) THEN $13 ELSE entry_url END,
			referrer = CASE WHEN $14 != '' AND (referrer = '' OR $1 < started_at) THEN $14 ELSE referrer END,
			interactions = interactions + $16,
			full_snapshots = full_snapshots + $17,
			first_snapshot_at = CASE WHEN CAST($18 AS BIGINT) > 0 AND (first_snapshot_at = 0 OR $18 < first_snapshot_at) THEN $18 ELSE first_snapshot_at END`

// ingestSQL holds the ingest's statements: SQLite's, and PostgreSQL's twin
// where it differs ("" when SQLite's text serves both, unless sqliteOnly).
var ingestSQL = [numIngestStmts]struct {
	sqlite, postgres string
	sqliteOnly       bool
}{
	stUpsertSession: {sqlite: upsertSession},
	stInsertBatch: {
		sqlite:   `INSERT OR IGNORE INTO batches (session_id, seq, events, received_at, observed) VALUES (?, ?, ?, ?, ?)`,
		postgres: `INSERT INTO batches (session_id, seq, events, received_at, observed) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
	},
	// Numbered parameters, in the order of CountBatch's arguments: ?N on
	// SQLite, $N on PostgreSQL. Every SET expression reads the row as it
	// was before the update, in both.
	stCountBatch: {
		sqlite:   `UPDATE sessions SET ` + countSetSQLite + ` WHERE id = ?15`,
		postgres: `UPDATE sessions SET ` + countSetPostgres + ` WHERE id = $15`,
	},
	stLastPage:     {sqlite: `SELECT url FROM pages WHERE session_id = ? ORDER BY ts DESC, id DESC LIMIT 1`},
	stInsertPage:   {sqlite: `INSERT INTO pages (session_id, ts, url, path, width, height) VALUES (?, ?, ?, ?, ?, ?)`},
	stInsertCustom: {sqlite: `INSERT INTO custom_events (session_id, ts, name, props) VALUES (?, ?, ?, ?)`},
	stUpsertVisitor: {
		sqlite: `
		INSERT INTO visitors (project_id, id, first_seen, last_seen, sessions) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (project_id, id) DO UPDATE SET
			first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen),
			sessions = sessions + excluded.sessions`,
		// The existing row's columns are qualified: "sessions" alone is
		// ambiguous beside excluded's.
		postgres: `
		INSERT INTO visitors (project_id, id, first_seen, last_seen, sessions) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (project_id, id) DO UPDATE SET
			first_seen = LEAST(visitors.first_seen, excluded.first_seen), last_seen = GREATEST(visitors.last_seen, excluded.last_seen),
			sessions = visitors.sessions + excluded.sessions`,
	},
	stIdentify: {sqlite: `UPDATE visitors SET user_id = ?, traits = COALESCE(?, traits) WHERE project_id = ? AND id = ?`},
	// The mark also returns what the observers read next (SessionState) in
	// the same statement: the trigger that counts the batch in
	// session_observed fires after the count before it was read — on
	// PostgreSQL at the end of the statement, after the SELECT; on SQLite
	// a RETURNING clause does not see what the statement's triggers change
	// (TestSessionCounters_afterMarkObserved holds both to it).
	stMarkObserved: {
		sqlite: `
		UPDATE batches SET observed = 1 WHERE session_id = ? AND seq = ? AND observed = 0
		RETURNING (SELECT project_id FROM sessions WHERE id = batches.session_id),
			(SELECT device FROM sessions WHERE id = batches.session_id),
			COALESCE((SELECT observed_count FROM session_observed WHERE session_id = batches.session_id), 0) + 1`,
		postgres: `
		WITH m AS (UPDATE batches SET observed = 1 WHERE session_id = ? AND seq = ? AND observed = 0 RETURNING session_id)
		SELECT s.project_id, s.device, COALESCE(o.observed_count, 0) + 1
		FROM m JOIN sessions s ON s.id = m.session_id LEFT JOIN session_observed o ON o.session_id = s.id`,
	},
	// PostgreSQL only (MarkObservedMany): several batches marked in one
	// round trip, each session's count as it was before.
	stMarkObservedMany: {postgres: `
		WITH m AS (UPDATE batches b SET observed = 1 FROM unnest(?::bigint[], ?::bigint[]) AS u(session_id, seq)
			WHERE b.session_id = u.session_id AND b.seq = u.seq AND b.observed = 0 RETURNING b.session_id, b.seq)
		SELECT m.session_id, m.seq, s.project_id, s.device, COALESCE(o.observed_count, 0)
		FROM m JOIN sessions s ON s.id = m.session_id LEFT JOIN session_observed o ON o.session_id = s.id`},
	// A session that closes without meeting its project's keep rule is
	// marked discarded (hidden from lists, deleted by the next retention
	// sweep); one that reopens and closes again is judged again.
	stCloseSession: {sqlite: `UPDATE sessions SET closed = 1,
		discarded = CASE WHEN ended_at - started_at < ? OR (? AND interactions = 0) THEN 1 ELSE 0 END
		WHERE id = ? AND closed = 0 AND last_received < ?
		RETURNING discarded`},
	// PostgreSQL only (RecordBatch): the session's upsert and the batch's
	// dedupe row in one round trip. SQLite runs the two statements above.
	stRecordBatch: {postgres: `
		WITH s AS (` + upsertSession + `),
		b AS (
			INSERT INTO batches (session_id, seq, events, received_at, observed)
			SELECT id, ?::bigint, ?::bigint, ?::bigint, ?::integer FROM s
			ON CONFLICT DO NOTHING RETURNING session_id)
		SELECT s.id, s.fresh, EXISTS (SELECT 1 FROM b) FROM s`},
	// RecordKnownBatch: the batch's dedupe row, if the session's row still
	// has the id the caller knows, then the batch counted in that row (and
	// the session reopened). PostgreSQL does it in one round trip: $15 is
	// the row id, as in CountBatch, and the counts' parameters come first.
	// The row is found by its id alone (r: given all three columns, the
	// planner chose the visitor index on a small table and read every
	// session of the project) and locked first, before the batch row's
	// foreign key check shares a lock that the update then has to raise.
	// Inside PostgreSQL (pg_stat_statements, BenchmarkIngestServer): 300-335
	// µs per call before the two, ~100 after, against 163 for the upsert
	// and CountBatch it replaces.
	// SQLite inserts (here), counts (stCountKnown) and, when no row was
	// inserted, asks whether the session is there (stKnownExists).
	stRecordKnown: {
		sqlite: `
		INSERT OR IGNORE INTO batches (session_id, seq, events, received_at, observed)
		SELECT id, ?, ?, ?, ? FROM sessions WHERE id = ? AND project_id = ? AND public_id = ?`,
		postgres: `
		WITH r AS MATERIALIZED (SELECT id, project_id, public_id FROM sessions WHERE id = $15 FOR NO KEY UPDATE),
		s AS (SELECT id FROM r WHERE project_id = $19 AND public_id = $20),
		b AS (
			INSERT INTO batches (session_id, seq, events, received_at, observed)
			SELECT id, $21::bigint, $22::bigint, $23::bigint, $24::integer FROM s
			ON CONFLICT DO NOTHING RETURNING session_id),
		u AS (
			UPDATE sessions SET closed = 0,` + countSetPostgres + `
			WHERE id = $15 AND EXISTS (SELECT 1 FROM b)
			RETURNING batch_count = 1 AS fresh)
		SELECT EXISTS (SELECT 1 FROM s), (SELECT fresh FROM u)`,
	},
	stCountKnown:  {sqliteOnly: true, sqlite: `UPDATE sessions SET closed = 0,` + countSetSQLite + ` WHERE id = ?15 RETURNING batch_count = 1`},
	stKnownExists: {sqliteOnly: true, sqlite: `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ? AND project_id = ? AND public_id = ?)`},
	// PostgreSQL only (visitorBuffer): a transaction's visitor rows in one
	// statement, one row per visitor, in key order.
	stVisitorsMany: {postgres: `
		INSERT INTO visitors AS v (project_id, id, first_seen, last_seen, sessions)
		SELECT * FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[])
		ON CONFLICT (project_id, id) DO UPDATE SET
			first_seen = LEAST(v.first_seen, excluded.first_seen), last_seen = GREATEST(v.last_seen, excluded.last_seen),
			sessions = v.sessions + excluded.sessions`},
}

// Ingest prepares the ingest's statements on the writer.
func (db *DB) Ingest(ctx context.Context) (*Ingest, error) {
	in := &Ingest{db: db}
	for i, q := range ingestSQL {
		text := q.sqlite
		if q.postgres != "" || q.sqliteOnly {
			text = db.pick(q.sqlite, q.postgres)
		}
		if text == "" {
			continue // the other dialect's
		}
		st, err := db.db.Write().PrepareContext(ctx, text)
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("prepare ingest statement: %w", err)
		}
		in.stmts[i] = st
	}
	return in, nil
}

// Close releases the prepared statements.
func (in *Ingest) Close() error {
	var errs []error
	for _, st := range in.stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// ConcurrentWriters reports whether the two stages' transactions run side
// by side (PostgreSQL) or take turns on one write connection (SQLite).
func (in *Ingest) ConcurrentWriters() bool { return in.db.db.ConcurrentWriters() }

// Tx runs fn in a write transaction, committing if fn returns nil; the
// observers' buffers (sqldb.Buffer) are flushed before the commit and told
// of it after.
func (in *Ingest) Tx(ctx context.Context, fn func(tx *IngestTx) error) error {
	return in.db.db.InSharedTx(ctx, func(stx *sqldb.Tx) error {
		return fn(&IngestTx{in: in, tx: stx.SQL(), shared: stx})
	})
}

// IngestTx is one transaction of the ingest. Its methods record a batch's
// core rows (stage 1) or mark batches observed and close sessions (stage 2,
// where Shared hands the same transaction to the observers).
type IngestTx struct {
	in     *Ingest
	tx     *sql.Tx
	bound  [numIngestStmts]*sql.Stmt // in.stmts bound to tx, on first use
	shared *sqldb.Tx
	// the batches MarkObservedMany took, for MarkObserved to answer for
	marked map[BatchKey]premark
}

// premark is what MarkObservedMany found for a batch: marked now (fresh),
// with its session's state then, or observed before.
type premark struct {
	fresh bool
	state SessionState
}

// BatchKey names a batch by its session's row id and its seq.
type BatchKey struct{ SessionID, Seq int64 }

func (t *IngestTx) stmt(ctx context.Context, i int) *sql.Stmt {
	if t.bound[i] == nil {
		t.bound[i] = t.tx.StmtContext(ctx, t.in.stmts[i])
	}
	return t.bound[i]
}

// Shared is this transaction for the other owners' observers.
func (t *IngestTx) Shared() *sqldb.Tx { return t.shared }

// SessionStart is what any batch tells a session row when it is created.
// Times are Unix milliseconds.
type SessionStart struct {
	ProjectID                        int64
	PublicID, VisitorID              string
	StartedAt, EndedAt, LastReceived int64
	UserAgent, IP                    string
	Browser, BrowserVersion, OS      string
}

// args are upsertSession's arguments.
func (s SessionStart) args() []any {
	return []any{s.ProjectID, s.PublicID, s.VisitorID, s.StartedAt, s.EndedAt, s.LastReceived, s.UserAgent, s.IP,
		s.Browser, s.BrowserVersion, s.OS}
}

// UpsertSession creates the session row of s, or reopens the existing one
// (a closed session that receives a batch is live again). It returns the
// row id and whether the session had no batch yet.
func (t *IngestTx) UpsertSession(ctx context.Context, s SessionStart) (id int64, isNew bool, err error) {
	err = t.stmt(ctx, stUpsertSession).QueryRowContext(ctx, s.args()...).Scan(&id, &isNew)
	if err != nil {
		return 0, false, fmt.Errorf("upsert session: %w", err)
	}
	return id, isNew, nil
}

// RecordBatch is UpsertSession and then InsertBatch of batch seq, in one
// round trip on PostgreSQL: it returns the session's row id, whether the
// session had no batch yet, and whether the batch is new (when it is not,
// nothing else is to be recorded).
func (t *IngestTx) RecordBatch(ctx context.Context, s SessionStart, seq int64, events int, receivedAt int64, observed bool) (id int64, isNew, inserted bool, err error) {
	if t.in.db.db.Dialect() != sqldb.Postgres {
		if id, isNew, err = t.UpsertSession(ctx, s); err != nil {
			return 0, false, false, err
		}
		inserted, err = t.InsertBatch(ctx, id, seq, events, receivedAt, observed)
		return id, isNew, inserted, err
	}
	obs := 0
	if observed {
		obs = 1
	}
	err = t.stmt(ctx, stRecordBatch).QueryRowContext(ctx, append(s.args(), seq, events, receivedAt, obs)...).Scan(&id, &isNew, &inserted)
	if err != nil {
		return 0, false, false, fmt.Errorf("record batch: %w", err)
	}
	return id, isNew, inserted, nil
}

// InsertBatch records batch seq of a session (its dedupe row); observed
// says whether its observers have nothing left to do. It returns false when
// the batch was recorded before, and then nothing else is to be recorded.
func (t *IngestTx) InsertBatch(ctx context.Context, sessionID, seq int64, events int, receivedAt int64, observed bool) (bool, error) {
	obs := 0
	if observed {
		obs = 1
	}
	res, err := t.stmt(ctx, stInsertBatch).ExecContext(ctx, sessionID, seq, events, receivedAt, obs)
	if err != nil {
		return false, fmt.Errorf("insert batch: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// BatchCounts is what one newly recorded batch adds to its session row.
// Times are Unix milliseconds; zero viewport sizes and empty strings leave
// the session's values alone.
type BatchCounts struct {
	First, Last, Received         int64
	Events, Clicks, Pages, Errors int
	Interactions                  int // see recorder.Facts
	FullSnapshots                 int
	FirstSnapshot                 int64 // time of the batch's first full snapshot; 0: none
	Bytes, Dropped                int64
	ViewportW, ViewportH          int
	Device                        string // kept once set
	EntryURL, Referrer            string // taken when the batch is the session's earliest
}

// args are the count statements' numbered parameters (countSetSQLite),
// the session's row id among them.
func (c BatchCounts) args(sessionID int64) []any {
	return []any{c.First, c.Last, c.Received, c.Events, c.Clicks, c.Pages, c.Bytes, c.Errors, c.Dropped,
		c.ViewportW, c.ViewportH, c.Device, c.EntryURL, c.Referrer, sessionID, c.Interactions,
		c.FullSnapshots, c.FirstSnapshot}
}

// CountBatch adds a newly recorded batch to its session row.
func (t *IngestTx) CountBatch(ctx context.Context, sessionID int64, c BatchCounts) error {
	if _, err := t.stmt(ctx, stCountBatch).ExecContext(ctx, c.args(sessionID)...); err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	return nil
}

// RecordKnownBatch is RecordBatch and CountBatch for a session whose row
// id the caller learnt from an earlier batch, in one round trip on
// PostgreSQL (two on SQLite) instead of three. It writes nothing and returns
// found false when no row has that id for s's project and public id any
// more (the session was deleted, or the id came from a transaction that
// rolled back): record the batch with RecordBatch then. Otherwise inserted
// says whether the batch is new (when it is not, nothing was written) and
// isNew whether it is the session's first.
func (t *IngestTx) RecordKnownBatch(ctx context.Context, sessionID int64, s SessionStart, seq int64, events int, receivedAt int64, observed bool, c BatchCounts) (found, isNew, inserted bool, err error) {
	obs := 0
	if observed {
		obs = 1
	}
	counts := c.args(sessionID)
	if t.in.db.db.Dialect() == sqldb.Postgres {
		var fresh sql.NullBool
		err = t.stmt(ctx, stRecordKnown).QueryRowContext(ctx, append(counts, s.ProjectID, s.PublicID, seq, events, receivedAt, obs)...).Scan(&found, &fresh)
		if err != nil {
			return false, false, false, fmt.Errorf("record batch: %w", err)
		}
		return found, fresh.Bool, fresh.Valid, nil
	}
	res, err := t.stmt(ctx, stRecordKnown).ExecContext(ctx, seq, events, receivedAt, obs, sessionID, s.ProjectID, s.PublicID)
	if err != nil {
		return false, false, false, fmt.Errorf("insert batch: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		err = t.stmt(ctx, stKnownExists).QueryRowContext(ctx, sessionID, s.ProjectID, s.PublicID).Scan(&found)
		if err != nil {
			return false, false, false, fmt.Errorf("find session: %w", err)
		}
		return found, false, false, nil
	}
	if err := t.stmt(ctx, stCountKnown).QueryRowContext(ctx, counts...).Scan(&isNew); err != nil {
		return false, false, false, fmt.Errorf("update session: %w", err)
	}
	return true, isNew, true, nil
}

// LastPageURL is the URL of the session's latest page view, "" if it has
// none.
func (t *IngestTx) LastPageURL(ctx context.Context, sessionID int64) (string, error) {
	var u string
	err := t.stmt(ctx, stLastPage).QueryRowContext(ctx, sessionID).Scan(&u)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("last page: %w", err)
	}
	return u, nil
}

// AddPage records a page view of a session at ts (Unix milliseconds).
func (t *IngestTx) AddPage(ctx context.Context, sessionID, ts int64, url, path string, width, height int) error {
	if _, err := t.stmt(ctx, stInsertPage).ExecContext(ctx, sessionID, ts, url, path, width, height); err != nil {
		return fmt.Errorf("insert page: %w", err)
	}
	if t.in.db.db.Dialect() == sqldb.Postgres {
		newPageURLsOf(t.shared).rows[pageURLKey{sessionID, url}] = path
	}
	return nil
}

// AddCustomEvent records a custom event of a session; props is a JSON
// object.
func (t *IngestTx) AddCustomEvent(ctx context.Context, sessionID, ts int64, name, props string) error {
	if _, err := t.stmt(ctx, stInsertCustom).ExecContext(ctx, sessionID, ts, name, props); err != nil {
		return fmt.Errorf("insert custom event: %w", err)
	}
	return nil
}

// UpsertVisitor records that a visitor was seen from first to last (Unix
// milliseconds), counting a session more when newSession is set. On
// PostgreSQL the transaction's visitors are written at its end, one row
// each, in one statement (visitorBuffer): a round trip less per batch.
func (t *IngestTx) UpsertVisitor(ctx context.Context, projectID int64, visitorID string, first, last int64, newSession bool) error {
	n := int64(0)
	if newSession {
		n = 1
	}
	if t.in.db.db.Dialect() == sqldb.Postgres {
		vb := t.shared.Buffer(visitorsKey{}, func() sqldb.Buffer { return &visitorBuffer{in: t.in} }).(*visitorBuffer)
		vb.add(visitorKey{projectID, visitorID}, first, last, n)
		return nil
	}
	if _, err := t.stmt(ctx, stUpsertVisitor).ExecContext(ctx, projectID, visitorID, first, last, n); err != nil {
		return fmt.Errorf("upsert visitor: %w", err)
	}
	return nil
}

type visitorsKey struct{}

type visitorKey struct {
	project int64
	id      string
}

// visitorSeen is what a transaction's batches say of a visitor: the
// earliest and latest times and how many sessions they started.
type visitorSeen struct{ first, last, sessions int64 }

// visitorBuffer holds a transaction's visitor upserts (PostgreSQL), summed
// per visitor; the transaction writes them before it commits, in key order
// (nodes writing the same visitors lock them in the same order).
type visitorBuffer struct {
	in   *Ingest
	rows map[visitorKey]visitorSeen
}

func (b *visitorBuffer) add(k visitorKey, first, last, sessions int64) {
	if b.rows == nil {
		b.rows = map[visitorKey]visitorSeen{}
	}
	v, ok := b.rows[k]
	if !ok {
		b.rows[k] = visitorSeen{first, last, sessions}
		return
	}
	b.rows[k] = visitorSeen{min(v.first, first), max(v.last, last), v.sessions + sessions}
}

// Flush writes the visitors and empties the buffer.
func (b *visitorBuffer) Flush(ctx context.Context, tx *sqldb.Tx) error {
	if len(b.rows) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(b.rows), func(x, y visitorKey) int {
		return cmp.Or(cmp.Compare(x.project, y.project), strings.Compare(x.id, y.id))
	})
	projects, ids := make([]int64, len(keys)), make([]string, len(keys))
	firsts, lasts, sessions := make([]int64, len(keys)), make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		v := b.rows[k]
		projects[i], ids[i], firsts[i], lasts[i], sessions[i] = k.project, k.id, v.first, v.last, v.sessions
	}
	clear(b.rows)
	if _, err := tx.SQL().StmtContext(ctx, b.in.stmts[stVisitorsMany]).ExecContext(ctx, projects, ids, firsts, lasts, sessions); err != nil {
		return fmt.Errorf("upsert visitors: %w", err)
	}
	return nil
}

// Identify sets the user id of a visitor and, unless traits (a JSON
// object) is empty, its traits.
func (t *IngestTx) Identify(ctx context.Context, projectID int64, visitorID, userID, traits string) error {
	// The visitor's row may be waiting in the buffer: it goes first.
	if vb := t.shared.Lookup(visitorsKey{}); vb != nil {
		if err := vb.Flush(ctx, t.shared); err != nil {
			return err
		}
	}
	var tr any
	if traits != "" {
		tr = traits
	}
	if _, err := t.stmt(ctx, stIdentify).ExecContext(ctx, userID, tr, projectID, visitorID); err != nil {
		return fmt.Errorf("identify visitor: %w", err)
	}
	return nil
}

// MarkObservedMany marks batches observed ahead, in one round trip on
// PostgreSQL (a no-op on SQLite, where a statement is no round trip), for
// MarkObserved to answer for them in the order the caller gives them to
// the observers: a session's batches in keys in seq order. Every batch it
// marks must then go through MarkObserved in this transaction.
func (t *IngestTx) MarkObservedMany(ctx context.Context, keys []BatchKey) error {
	if t.in.db.db.Dialect() != sqldb.Postgres || len(keys) == 0 {
		return nil
	}
	sids, seqs := make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		sids[i], seqs[i] = k.SessionID, k.Seq
	}
	rows, err := t.stmt(ctx, stMarkObservedMany).QueryContext(ctx, sids, seqs)
	if err != nil {
		return fmt.Errorf("mark observed: %w", err)
	}
	byKey := map[BatchKey]SessionState{}
	for rows.Next() {
		var k BatchKey
		var st SessionState
		if err := rows.Scan(&k.SessionID, &k.Seq, &st.ProjectID, &st.Device, &st.Observed); err != nil {
			rows.Close()
			return fmt.Errorf("mark observed: %w", err)
		}
		byKey[k] = st
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("mark observed: %w", err)
	}
	// Each batch's count includes the session's marked batches before it
	// in keys, and itself.
	if t.marked == nil {
		t.marked = map[BatchKey]premark{}
	}
	rank := map[int64]int64{}
	for _, k := range keys {
		st, ok := byKey[k]
		if ok {
			rank[k.SessionID]++
			st.Observed += rank[k.SessionID]
		}
		t.marked[k] = premark{fresh: ok, state: st} // not ok: observed before
	}
	return nil
}

// MarkObserved marks batch seq of a session observed (which counts it in
// the session's session_observed row); false when it was observed before.
func (t *IngestTx) MarkObserved(ctx context.Context, sessionID, seq int64) (bool, error) {
	if m, ok := t.marked[BatchKey{sessionID, seq}]; ok {
		if m.fresh {
			t.remember(sessionID, m.state)
		}
		return m.fresh, nil
	}
	var st SessionState
	err := t.stmt(ctx, stMarkObserved).QueryRowContext(ctx, sessionID, seq).Scan(&st.ProjectID, &st.Device, &st.Observed)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mark observed: %w", err)
	}
	t.remember(sessionID, st)
	return true, nil
}

// remember keeps a session's state as its mark read it, for SessionState.
func (t *IngestTx) remember(sessionID int64, st SessionState) {
	t.Shared().Buffer(observedKey{}, func() sqldb.Buffer { return observedStates{} }).(observedStates)[sessionID] = st
}

// observedStates are the session states MarkObserved read,
// kept with the shared transaction (a sqldb.Buffer that writes nothing)
// for SessionState: the observers' read of each batch's session is then
// no statement of its own.
type observedStates map[int64]SessionState

type observedKey struct{}

func (observedStates) Flush(context.Context, *sqldb.Tx) error { return nil }

// KeepRule is what a session must have shown by the time it closes to be
// kept: a duration (last event time minus first) of at least
// MinDurationMS, and with RequireInteraction at least one interaction. The
// zero rule keeps every session.
type KeepRule struct {
	MinDurationMS      int64
	RequireInteraction bool
}

// CloseSession closes a session that is open and received nothing since
// before (Unix milliseconds), marking it discarded when it does not meet
// keep. closed is false when it is not such a session (any more).
func (t *IngestTx) CloseSession(ctx context.Context, id, before int64, keep KeepRule) (closed, discarded bool, err error) {
	var d int
	err = t.stmt(ctx, stCloseSession).QueryRowContext(ctx, keep.MinDurationMS, keep.RequireInteraction, id, before).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("close session: %w", err)
	}
	return true, d == 1, nil
}

// IdleSession is an open session that has been quiet.
type IdleSession struct {
	ID, ProjectID int64
	publicID      string
}

// IdleSessions lists up to limit open sessions that received nothing
// since before (Unix milliseconds), from the read pool, in the order in
// which writers lock sessions rows (see sessionWrites).
func (db *DB) IdleSessions(ctx context.Context, before int64, limit int) ([]IdleSession, error) {
	rows, err := db.db.Read().QueryContext(ctx,
		`SELECT id, project_id, public_id FROM sessions WHERE closed = 0 AND last_received < ? LIMIT ?`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("find idle sessions: %w", err)
	}
	defer rows.Close()
	var out []IdleSession
	for rows.Next() {
		var s IdleSession
		if err := rows.Scan(&s.ID, &s.ProjectID, &s.publicID); err != nil {
			return nil, fmt.Errorf("scan idle session: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find idle sessions: %w", err)
	}
	slices.SortFunc(out, func(a, b IdleSession) int {
		return cmp.Or(cmp.Compare(a.ProjectID, b.ProjectID), strings.Compare(a.publicID, b.publicID))
	})
	return out, nil
}

// BatchSeq is a recorded batch of a session: its seq and whether its
// facts are derived (observed).
type BatchSeq struct {
	Seq      int64
	Observed bool
}

// SessionSeqs lists the recorded batches of a session, by its public id;
// none when the session is unknown.
func (db *DB) SessionSeqs(ctx context.Context, projectID int64, publicID string) ([]BatchSeq, error) {
	rows, err := db.db.Read().QueryContext(ctx, `
		SELECT b.seq, b.observed FROM batches b JOIN sessions s ON s.id = b.session_id
		WHERE s.project_id = ? AND s.public_id = ?`, projectID, publicID)
	if err != nil {
		return nil, fmt.Errorf("load session seqs: %w", err)
	}
	defer rows.Close()
	var out []BatchSeq
	for rows.Next() {
		var b BatchSeq
		if err := rows.Scan(&b.Seq, &b.Observed); err != nil {
			return nil, fmt.Errorf("scan seq: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// BatchObserved tells whether a session's batch seq has its facts derived
// (false when it is not recorded).
func (db *DB) BatchObserved(ctx context.Context, sessionID, seq int64) (bool, error) {
	var observed bool
	err := db.db.Read().QueryRowContext(ctx, `SELECT observed FROM batches WHERE session_id = ? AND seq = ?`, sessionID, seq).Scan(&observed)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read batch: %w", err)
	}
	return observed, nil
}
