package journey

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/trailmap/trailmap/internal/jsonscan"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Key kinds in journey_keys.
const (
	kindPage  = 0
	kindEvent = 1
)

// entry is one timeline element: a page view or a custom event.
type entry struct {
	key int64 // journey_keys.id
	ts  int64 // unix ms
}

// A timeline blob is a version byte (1) and then, per entry in time order,
// the key id (uvarint) and the time: for the first entry its offset from the
// session start (zigzag varint, as a stale start could be later), for the
// others the delta from the previous entry (uvarint). Consecutive views of
// the same path (rrweb repeats the Meta event at every full snapshot) are
// stored once.
const timelineVersion = 1

func encodeTimeline(start int64, es []entry) []byte {
	b := make([]byte, 1, 1+len(es)*5)
	b[0] = timelineVersion
	prev := start
	for i, e := range es {
		b = binary.AppendUvarint(b, uint64(e.key))
		if i == 0 {
			b = binary.AppendVarint(b, e.ts-start)
		} else {
			b = binary.AppendUvarint(b, uint64(e.ts-prev))
		}
		prev = e.ts
	}
	return b
}

var errBadTimeline = errors.New("corrupt timeline")

// decodeTimeline appends the entries of b to buf.
func decodeTimeline(b []byte, start int64, buf []entry) ([]entry, error) {
	if len(b) == 0 || b[0] != timelineVersion {
		return buf, errBadTimeline
	}
	b = b[1:]
	ts := start
	for first := true; len(b) > 0; first = false {
		k, n := binary.Uvarint(b)
		if n <= 0 {
			return buf, errBadTimeline
		}
		b = b[n:]
		if first {
			d, n := binary.Varint(b)
			if n <= 0 {
				return buf, errBadTimeline
			}
			ts += d
			b = b[n:]
		} else {
			d, n := binary.Uvarint(b)
			if n <= 0 {
				return buf, errBadTimeline
			}
			ts += int64(d)
			b = b[n:]
		}
		buf = append(buf, entry{key: int64(k), ts: ts})
	}
	return buf, nil
}

// writeStmts are the derive statements on journey's tables, prepared once
// on the writer (the observer runs inside the recorder's transaction, which
// holds the only writer connection, so they cannot be prepared later).
type writeStmts struct {
	keyGet, keyPut, visGet, visPut, upsert *sql.Stmt
	// One-session forms of derive's reads, for the observer.
	chunk1, delSearch1, settings1 *sql.Stmt
}

func prepareStmts(ctx context.Context, db *sqldb.DB) (*writeStmts, error) {
	w := &writeStmts{}
	// A session's row is replaced whole (its start may have moved, which
	// is in the primary key): SQLite's REPLACE deletes the conflicting row;
	// on PostgreSQL the session_id index is the one conflict target, which
	// every such row also violates.
	upsert := `INSERT OR REPLACE INTO journey_sessions (project_id, started_at, session_id, visitor, timeline, converted_at, searched_at, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	if db.Dialect() == sqldb.Postgres {
		upsert = `INSERT INTO journey_sessions (project_id, started_at, session_id, visitor, timeline, converted_at, searched_at, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (session_id) DO UPDATE SET project_id = excluded.project_id, started_at = excluded.started_at,
				visitor = excluded.visitor, timeline = excluded.timeline, converted_at = excluded.converted_at,
				searched_at = excluded.searched_at, device = excluded.device, chunk = NULL`
	}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&w.keyGet, `SELECT id FROM journey_keys WHERE project_id = ? AND kind = ? AND name = ?`},
		{&w.keyPut, `INSERT INTO journey_keys (project_id, kind, name) VALUES (?, ?, ?)
			ON CONFLICT (project_id, kind, name) DO UPDATE SET name = excluded.name RETURNING id`},
		{&w.visGet, `SELECT id FROM journey_visitors WHERE project_id = ? AND visitor_id = ?`},
		{&w.visPut, `INSERT INTO journey_visitors (project_id, visitor_id) VALUES (?, ?)
			ON CONFLICT (project_id, visitor_id) DO UPDATE SET visitor_id = excluded.visitor_id RETURNING id`},
		{&w.upsert, upsert},
		{&w.chunk1, `SELECT chunk FROM journey_sessions WHERE session_id = ? AND chunk IS NOT NULL`},
		{&w.delSearch1, `DELETE FROM journey_searches WHERE session_id = ?`},
		{&w.settings1, `SELECT settings FROM journey_settings WHERE project_id = ?`},
	} {
		st, err := db.Write().PrepareContext(ctx, p.q)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("prepare journey statement: %w", err)
		}
		*p.dst = st
	}
	return w, nil
}

func (w *writeStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{w.keyGet, w.keyPut, w.visGet, w.visPut, w.upsert,
		w.chunk1, w.delSearch1, w.settings1} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// rawEntry is a page view or custom event read for deriving.
type rawEntry struct {
	kind int
	ts   int64
	id   int64
	name string // path or event name
	url  string // pages only
}

type projectRules struct {
	conv   conversion
	search []string
}

// derive recomputes the derived rows (timeline, searches, conversions) of
// the sessions ids inside stx. Sessions that no longer exist are skipped.
func (s *Service) derive(ctx context.Context, stx *sqldb.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	tx := stx.SQL()
	if err := s.lockTimelines(ctx, tx, lockShared); err != nil {
		return fmt.Errorf("derive: %w", err)
	}
	st := s.ws
	in := sqldb.List(len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// query runs a read of these sessions: prepared for one session (the
	// observer's case), built for several (backfill).
	query := func(one *sql.Stmt, many string) (*sql.Rows, error) {
		if len(ids) == 1 {
			return tx.StmtContext(ctx, one).QueryContext(ctx, ids[0])
		}
		return tx.QueryContext(ctx, many+in, args...)
	}
	if err := unpack(ctx, tx, st.chunk1, query); err != nil {
		return err
	}
	contents, err := s.content.Read(ctx, stx, ids)
	if err != nil {
		return fmt.Errorf("derive: %w", err)
	}

	keys, err := s.resolveKeys(ctx, tx, contents)
	if err != nil {
		return err
	}
	visitors, err := s.resolveVisitors(ctx, tx, contents)
	if err != nil {
		return err
	}

	rules := map[int64]*projectRules{}
	var searchRows [][4]any
	var raw []rawEntry
	for _, x := range contents {
		pr := rules[x.ProjectID]
		if pr == nil {
			stg, err := loadSettingsRow(tx.StmtContext(ctx, st.settings1).QueryRowContext(ctx, x.ProjectID))
			if err != nil {
				return err
			}
			pr = &projectRules{conv: stg.conversion(), search: stg.SearchParams}
			rules[x.ProjectID] = pr
		}
		raw = raw[:0]
		for _, p := range x.Pages {
			raw = append(raw, rawEntry{kind: kindPage, ts: p.TS, id: p.ID, name: p.Path, url: p.URL})
		}
		for _, e := range x.Events {
			raw = append(raw, rawEntry{kind: kindEvent, ts: e.TS, id: e.ID, name: e.Name})
		}
		sort.SliceStable(raw, func(i, j int) bool {
			a, b := raw[i], raw[j]
			if a.ts != b.ts {
				return a.ts < b.ts
			}
			if a.kind != b.kind {
				return a.kind < b.kind
			}
			return a.id < b.id
		})
		var es []entry
		var convs int
		var convAt, searchAt sql.NullInt64
		for i, e := range raw {
			if e.kind == kindPage {
				same := i > 0 && raw[i-1].kind == kindPage
				for _, term := range searchTerms(e.url, pr.search) {
					if same && raw[i-1].url == e.url {
						break
					}
					searchRows = append(searchRows, [4]any{x.ID, x.ProjectID, e.ts, term})
					if !searchAt.Valid {
						searchAt = sql.NullInt64{Int64: e.ts, Valid: true}
					}
				}
				// A repeated Meta event of the same page (full snapshot
				// checkpoints) is not a new view.
				if same && raw[i-1].name == e.name {
					continue
				}
			}
			es = append(es, entry{key: keys[journeyKey{x.ProjectID, e.kind, e.name}], ts: e.ts})
			if pr.conv.match(e.kind, e.name) {
				convs++
				if !convAt.Valid {
					convAt = sql.NullInt64{Int64: e.ts, Valid: true}
				}
			}
		}
		vis := visitors[visitorKey{x.ProjectID, x.VisitorID}]
		if _, err := tx.StmtContext(ctx, st.upsert).ExecContext(ctx,
			x.ProjectID, x.StartedAt, x.ID, vis, encodeTimeline(x.StartedAt, es), convAt, searchAt, deviceCodes[x.Device]); err != nil {
			return fmt.Errorf("derive: store timeline: %w", err)
		}
		if err := s.content.SetConversions(ctx, stx, x.ID, convs); err != nil {
			return fmt.Errorf("derive: %w", err)
		}
	}
	var err2 error
	if len(ids) == 1 {
		_, err2 = tx.StmtContext(ctx, st.delSearch1).ExecContext(ctx, ids[0])
	} else {
		_, err2 = tx.ExecContext(ctx, `DELETE FROM journey_searches WHERE session_id IN `+in, args...)
	}
	if err2 != nil {
		return fmt.Errorf("derive: clear searches: %w", err2)
	}
	for len(searchRows) > 0 {
		n := min(len(searchRows), 200)
		q := `INSERT INTO journey_searches (session_id, project_id, ts, term) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?),", n), ",")
		a := make([]any, 0, 4*n)
		for _, r := range searchRows[:n] {
			a = append(a, r[:]...)
		}
		if _, err := tx.ExecContext(ctx, q, a...); err != nil {
			return fmt.Errorf("derive: store searches: %w", err)
		}
		searchRows = searchRows[n:]
	}
	return nil
}

// journeyKey is an entry of a project's dictionary of page paths and
// event names (journey_keys).
type journeyKey struct {
	project int64
	kind    int
	name    string
}

func (a journeyKey) compare(b journeyKey) int {
	return cmp.Or(cmp.Compare(a.project, b.project), cmp.Compare(a.kind, b.kind), strings.Compare(a.name, b.name))
}

// resolveKeys returns the ids of every page path and event name of
// contents, adding the new ones. Keys already committed come from the
// read side's dictionary, caught up once per project when one is missing;
// the rest are looked up and added in key order, each project's under
// lockKeys (ids read or added in tx are never cached beyond it).
func (s *Service) resolveKeys(ctx context.Context, tx *sql.Tx, contents []index.SessionContent) (map[journeyKey]int64, error) {
	keys := map[journeyKey]int64{}
	var missing []journeyKey
	want := func(k journeyKey) {
		if _, ok := keys[k]; ok {
			return
		}
		id, ok := s.knownKey(k.project, uint8(k.kind), k.name)
		keys[k] = id
		if !ok {
			missing = append(missing, k)
		}
	}
	for _, x := range contents {
		for _, p := range x.Pages {
			want(journeyKey{x.ProjectID, kindPage, p.Path})
		}
		for _, e := range x.Events {
			want(journeyKey{x.ProjectID, kindEvent, e.Name})
		}
	}
	slices.SortFunc(missing, journeyKey.compare)
	refreshed, locked := int64(-1), int64(-1)
	for _, k := range missing {
		if k.project != refreshed {
			refreshed = k.project
			if _, err := s.dictionary(ctx, k.project); err != nil {
				return nil, err
			}
		}
		if id, ok := s.knownKey(k.project, uint8(k.kind), k.name); ok {
			keys[k] = id
			continue
		}
		var id int64
		err := tx.StmtContext(ctx, s.ws.keyGet).QueryRowContext(ctx, k.project, k.kind, k.name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			if k.project != locked {
				locked = k.project
				if err := s.lockKeys(ctx, tx, k.project); err != nil {
					return nil, fmt.Errorf("derive: %w", err)
				}
			}
			if err := tx.StmtContext(ctx, s.ws.keyPut).QueryRowContext(ctx, k.project, k.kind, k.name).Scan(&id); err != nil {
				return nil, fmt.Errorf("derive: add key: %w", err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("derive: look up key: %w", err)
		}
		keys[k] = id
	}
	return keys, nil
}

// visitorKey is a project's visitor.
type visitorKey struct {
	project int64
	id      string
}

// resolveVisitors returns the journey numbers (journey_visitors) of the
// visitors of contents, adding the new ones in key order: two derives
// adding the same new visitors wait for each other in one order.
func (s *Service) resolveVisitors(ctx context.Context, tx *sql.Tx, contents []index.SessionContent) (map[visitorKey]int64, error) {
	vs := make([]visitorKey, 0, len(contents))
	for _, x := range contents {
		vs = append(vs, visitorKey{x.ProjectID, x.VisitorID})
	}
	slices.SortFunc(vs, func(a, b visitorKey) int {
		return cmp.Or(cmp.Compare(a.project, b.project), strings.Compare(a.id, b.id))
	})
	vs = slices.Compact(vs)
	out := make(map[visitorKey]int64, len(vs))
	for _, v := range vs {
		var id int64
		err := tx.StmtContext(ctx, s.ws.visGet).QueryRowContext(ctx, v.project, v.id).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			if err := tx.StmtContext(ctx, s.ws.visPut).QueryRowContext(ctx, v.project, v.id).Scan(&id); err != nil {
				return nil, fmt.Errorf("derive: add visitor: %w", err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("derive: look up visitor: %w", err)
		}
		out[v] = id
	}
	return out, nil
}

// searchTerms returns the normalised values of the search parameters in a
// page URL: lower case, spaces collapsed, at most 200 bytes; redacted and
// empty values are left out.
func searchTerms(rawURL string, params []string) []string {
	if len(params) == 0 {
		return nil
	}
	_, query, ok := strings.Cut(rawURL, "?")
	if !ok {
		return nil
	}
	query, _, _ = strings.Cut(query, "#")
	var out []string
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k, err := url.QueryUnescape(k); err != nil || !containsFold(params, k) {
			continue
		}
		v, err := url.QueryUnescape(v)
		if err != nil {
			continue
		}
		v = strings.ToLower(strings.Join(strings.Fields(v), " "))
		if v == "" || strings.Contains(v, "[redacted]") {
			continue
		}
		if len(v) > 200 {
			v = strings.ToValidUTF8(v[:200], "")
		}
		out = append(out, v)
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// ObserveBatch implements recorder.Observer: a batch with page views or
// custom events re-derives its session's timeline, searches and conversions
// inside the transaction that records it. Other batches cost a look at
// each event's type, which the recorder has read already.
func (s *Service) ObserveBatch(ctx context.Context, stx *sqldb.Tx, sessionID int64, events []rrweb.Event) error {
	for _, ev := range events {
		t := ev.Type
		if t == rrweb.Meta || t < 0 || t >= 1000 || (t == rrweb.Custom && !internalEvent(ev.Data)) {
			s.toDerive(stx).ids[sessionID] = true
			return nil
		}
	}
	return nil
}

// toDerive is a transaction's sessions whose derived rows are recomputed
// before it commits: once per session however many of its batches it
// holds, and after the rows other nodes' observers also write (a page's
// element boxes, its daily counts; sqldb.Ranked), because on PostgreSQL a
// derive takes the cluster's timelines lock (lockTimelines, shared) and
// may take a project's keys lock (lockKeys): a transaction that held one
// while it wrote such rows could wait for one of them while that one
// waits for the lock (a pack's exclusive request queues the shared ones
// behind it).
type toDerive struct {
	s   *Service
	ids map[int64]bool
}

func (s *Service) toDerive(stx *sqldb.Tx) *toDerive {
	return stx.Buffer(s, func() sqldb.Buffer { return &toDerive{s: s, ids: map[int64]bool{}} }).(*toDerive)
}

// FlushRank implements sqldb.Ranked.
func (b *toDerive) FlushRank() int { return sqldb.RankClusterLock }

// Flush implements sqldb.Buffer.
func (b *toDerive) Flush(ctx context.Context, stx *sqldb.Tx) error {
	if len(b.ids) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(b.ids))
	clear(b.ids)
	return b.s.derive(ctx, stx, ids)
}

// internalEvent reports whether a custom event (its data) is one of the
// recorder's own ("trailmap/..." tags: clicks, page info, errors), which are
// not in the custom_events table and do not change a timeline.
func internalEvent(data []byte) bool {
	internal := false
	jsonscan.EachField(data, func(key, val []byte) bool {
		if string(key) == "tag" {
			internal = strings.HasPrefix(jsonscan.Str(val), "trailmap/")
			return false
		}
		return true
	})
	return internal
}

// SessionClosed implements recorder.Observer: the session's derived rows
// are computed once more, so a start time moved by a late batch is right:
// at the end of the transaction, like a batch's (see toDerive).
func (s *Service) SessionClosed(ctx context.Context, stx *sqldb.Tx, sessionID int64) error {
	s.toDerive(stx).ids[sessionID] = true
	return nil
}
