package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Reads of sessions, visitors, pages and custom events for the packages that
// follow visitors across visits (journey): sessions matching a Match,
// people (visitors joined by identified user id) and their visits.

// idList binds ids as one JSON array, for SQLite's "x IN (SELECT value
// FROM json_each(?))": one argument however many ids (see inIDs).
func idList(ids []int64) string {
	if len(ids) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

// textList is idList for strings.
func textList(vs []string) string {
	if len(vs) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(vs)
	return string(b)
}

// SessionScan selects sessions for ScanSessions.
type SessionScan struct {
	ProjectID int64
	// From and To bound the session start (To exclusive); zero: unbounded.
	From, To time.Time
	// IDs, when not nil, keeps only these sessions.
	IDs []int64
	// Match keeps the sessions it matches.
	Match Match
	// Attrs are the attributes to hand over with each session, in order.
	Attrs []SessionAttr
}

// ScanSessions calls fn with the row id and the requested attributes of
// every session of q, in no particular order. attrs is reused between
// calls.
func (db *DB) ScanSessions(ctx context.Context, q SessionScan, fn func(id int64, attrs []string) error) error {
	query := `SELECT s.id`
	for _, a := range q.Attrs {
		col, err := attrSQL(a, "s")
		if err != nil {
			return err
		}
		query += ", " + col
	}
	query += ` FROM sessions s WHERE s.project_id = ?`
	args := []any{q.ProjectID}
	if q.IDs != nil {
		query += ` AND ` + inIDs(db.dialect(), "s.id", false, q.IDs, &args)
	}
	if !q.From.IsZero() {
		query += ` AND s.started_at >= ?`
		args = append(args, q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		query += ` AND s.started_at < ?`
		args = append(args, q.To.UnixMilli())
	}
	if !q.Match.IsZero() {
		cond, err := matchSQL(db.dialect(), &q.Match, "s", &args)
		if err != nil {
			return err
		}
		query += ` AND (` + cond + `)`
	}
	rows, err := db.db.Read().QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("scan sessions: %w", err)
	}
	defer rows.Close()
	var id int64
	vals := make([]sql.NullString, len(q.Attrs))
	strs := make([]string, len(q.Attrs))
	dst := []any{&id}
	for i := range vals {
		dst = append(dst, &vals[i])
	}
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("scan sessions: %w", err)
		}
		for i := range vals {
			strs[i] = vals[i].String
		}
		if err := fn(id, strs); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan sessions: %w", err)
	}
	return nil
}

// SessionsByID loads sessions by row id, in no particular order; ids that
// do not exist are left out.
func (db *DB) SessionsByID(ctx context.Context, ids []int64) ([]Session, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var args []any
	rows, err := db.db.Read().QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions s
		LEFT JOIN visitors v ON v.project_id = s.project_id AND v.id = s.visitor_id
		WHERE `+inIDs(db.dialect(), "s.id", false, ids, &args), args...)
	if err != nil {
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	defer rows.Close()
	return scanSessions(rows)
}

func scanSessions(rows *sql.Rows) ([]Session, error) {
	var out []Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		out = append(out, *s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	return out, nil
}

// VisitorRow is a visitor as the people list shows it. A person is every
// visitor with the same identified UserID, or one anonymous visitor.
type VisitorRow struct {
	ID         string
	UserID     string // "" when anonymous
	Identified bool   // user_id is set
	Traits     string // JSON from identify, "" when none
	FirstSeen  int64  // unix ms
	LastSeen   int64  // unix ms
}

const visitorCols = `v.id, v.user_id, v.traits, v.first_seen, v.last_seen`

func scanVisitors(rows *sql.Rows) ([]VisitorRow, error) {
	defer rows.Close()
	var out []VisitorRow
	for rows.Next() {
		var r VisitorRow
		var user, traits sql.NullString
		if err := rows.Scan(&r.ID, &user, &traits, &r.FirstSeen, &r.LastSeen); err != nil {
			return nil, fmt.Errorf("scan visitor: %w", err)
		}
		r.UserID, r.Identified, r.Traits = user.String, user.Valid, traits.String
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list visitors: %w", err)
	}
	return out, nil
}

// PeopleFilter selects people for ListPeople.
type PeopleFilter struct {
	ProjectID int64
	// Q matches a visitor id exactly, or a user id or the identify traits
	// (e.g. an email) by substring, of any of the person's visitors.
	Q string
	// From, To and Match keep people with at least one session started in
	// [From, To) that matches; all zero: every person.
	From, To time.Time
	Match    Match
	// After continues the list after this visitor (last seen, id).
	After *PeopleCursor
	Limit int
}

// PeopleCursor is a position in the people list.
type PeopleCursor struct {
	LastSeen int64
	ID       string
}

// ListPeople lists people, most recently seen first, each as their most
// recently seen visitor, up to f.Limit of them.
func (db *DB) ListPeople(ctx context.Context, f PeopleFilter) ([]VisitorRow, error) {
	where := []string{"v.project_id = ?"}
	args := []any{f.ProjectID}
	if f.After != nil {
		where = append(where, "(v.last_seen < ? OR (v.last_seen = ? AND v.id < ?))")
		args = append(args, f.After.LastSeen, f.After.LastSeen, f.After.ID)
	}
	// Identified people appear at their latest visitor only.
	where = append(where, `(v.user_id IS NULL OR NOT EXISTS (SELECT 1 FROM visitors v2 WHERE v2.project_id = v.project_id
		AND v2.user_id = v.user_id AND (v2.last_seen > v.last_seen OR (v2.last_seen = v.last_seen AND v2.id > v.id))))`)
	if f.Q != "" {
		like := "%" + matchLikeEscape(f.Q) + "%"
		// SQLite's LIKE ignores (ASCII) case; PostgreSQL's ILIKE does.
		op := db.pick("LIKE", "ILIKE")
		where = append(where, `(CASE WHEN v.user_id IS NULL THEN v.id = ? OR v.traits `+op+` ? ESCAPE '\'
			ELSE EXISTS (SELECT 1 FROM visitors v3 WHERE v3.project_id = v.project_id AND v3.user_id = v.user_id
				AND (v3.id = ? OR v3.user_id `+op+` ? ESCAPE '\' OR v3.traits `+op+` ? ESCAPE '\')) END)`)
		args = append(args, f.Q, like, f.Q, like, like)
	}
	if !f.Match.IsZero() || !f.From.IsZero() || !f.To.IsZero() {
		cond := `EXISTS (SELECT 1 FROM sessions s WHERE s.project_id = v.project_id AND s.visitor_id IN
			(SELECT v4.id FROM visitors v4 WHERE v4.project_id = v.project_id AND v4.user_id = v.user_id UNION ALL SELECT v.id)`
		if !f.From.IsZero() {
			cond += " AND s.started_at >= ?"
			args = append(args, f.From.UnixMilli())
		}
		if !f.To.IsZero() {
			cond += " AND s.started_at < ?"
			args = append(args, f.To.UnixMilli())
		}
		if !f.Match.IsZero() {
			m, err := matchSQL(db.dialect(), &f.Match, "s", &args)
			if err != nil {
				return nil, err
			}
			cond += " AND (" + m + ")"
		}
		where = append(where, cond+")")
	}
	args = append(args, f.Limit)
	rows, err := db.db.Read().QueryContext(ctx, `SELECT `+visitorCols+` FROM visitors v
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY v.last_seen DESC, v.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list people: %w", err)
	}
	return scanVisitors(rows)
}

// VisitorsOfUsers lists the visitors identified as any of users, by last
// seen then id.
func (db *DB) VisitorsOfUsers(ctx context.Context, projectID int64, users []string) ([]VisitorRow, error) {
	args := []any{projectID}
	rows, err := db.db.Read().QueryContext(ctx, `SELECT `+visitorCols+` FROM visitors v
		WHERE v.project_id = ? AND `+inTexts(db.dialect(), "v.user_id", users, &args)+` ORDER BY v.last_seen, v.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list visitors of users: %w", err)
	}
	return scanVisitors(rows)
}

// VisitorsByID lists visitors by id, by last seen then id.
func (db *DB) VisitorsByID(ctx context.Context, projectID int64, ids []string) ([]VisitorRow, error) {
	args := []any{projectID}
	rows, err := db.db.Read().QueryContext(ctx, `SELECT `+visitorCols+` FROM visitors v
		WHERE v.project_id = ? AND `+inTexts(db.dialect(), "v.id", ids, &args)+` ORDER BY v.last_seen, v.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list visitors: %w", err)
	}
	return scanVisitors(rows)
}

// IdentifiedVisitors calls fn for every visitor of a project that has an
// identified user id.
func (db *DB) IdentifiedVisitors(ctx context.Context, projectID int64, fn func(visitorID, userID string) error) error {
	rows, err := db.db.Read().QueryContext(ctx,
		`SELECT id, user_id FROM visitors WHERE project_id = ? AND user_id IS NOT NULL`, projectID)
	if err != nil {
		return fmt.Errorf("read identified visitors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var vid, uid string
		if err := rows.Scan(&vid, &uid); err != nil {
			return fmt.Errorf("scan identified visitor: %w", err)
		}
		if err := fn(vid, uid); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read identified visitors: %w", err)
	}
	return nil
}

// VisitCounts counts the sessions of each of visitors (absent: none).
func (db *DB) VisitCounts(ctx context.Context, projectID int64, visitors []string) (map[string]int, error) {
	out := map[string]int{}
	if len(visitors) == 0 {
		return out, nil
	}
	args := []any{projectID}
	rows, err := db.db.Read().QueryContext(ctx, `SELECT visitor_id, COUNT(*) FROM sessions
		WHERE project_id = ? AND `+inTexts(db.dialect(), "visitor_id", visitors, &args)+` GROUP BY visitor_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("count visits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		var c int
		if err := rows.Scan(&v, &c); err != nil {
			return nil, fmt.Errorf("scan visit count: %w", err)
		}
		out[v] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count visits: %w", err)
	}
	return out, nil
}

// VisitTotals counts the sessions of visitors and sums their conversions.
func (db *DB) VisitTotals(ctx context.Context, projectID int64, visitors []string) (sessions, conversions int, err error) {
	args := []any{projectID}
	err = db.db.Read().QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(conversions), 0) FROM sessions
		WHERE project_id = ? AND `+inTexts(db.dialect(), "visitor_id", visitors, &args), args...).Scan(&sessions, &conversions)
	if err != nil {
		return 0, 0, fmt.Errorf("count person visits: %w", err)
	}
	return sessions, conversions, nil
}

// VisitCursor is a position in VisitorSessions: the last session's start
// (unix ms) and row id.
type VisitCursor struct {
	StartedAt int64
	ID        int64
}

// VisitorSessions lists the sessions of visitors oldest first (start, then
// row id), after a position when after is not nil, up to limit.
func (db *DB) VisitorSessions(ctx context.Context, projectID int64, visitors []string, after *VisitCursor, limit int) ([]Session, error) {
	q := `SELECT ` + sessionCols + ` FROM sessions s
		LEFT JOIN visitors v ON v.project_id = s.project_id AND v.id = s.visitor_id
		WHERE s.project_id = ? AND `
	args := []any{projectID}
	q += inTexts(db.dialect(), "s.visitor_id", visitors, &args)
	if after != nil {
		q += " AND (s.started_at > ? OR (s.started_at = ? AND s.id > ?))"
		args = append(args, after.StartedAt, after.StartedAt, after.ID)
	}
	q += " ORDER BY s.started_at, s.id LIMIT ?"
	args = append(args, limit)
	rows, err := db.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list person visits: %w", err)
	}
	defer rows.Close()
	return scanSessions(rows)
}

// PageView is a page view of a session.
type PageView struct {
	SessionID, ID int64
	TS            int64 // unix ms
	Path, URL     string
}

// PageViews lists the page views of sessions, by session, time and id.
func (db *DB) PageViews(ctx context.Context, sessionIDs []int64) ([]PageView, error) {
	var args []any
	rows, err := db.db.Read().QueryContext(ctx, `SELECT session_id, id, ts, path, url FROM pages
		WHERE `+inIDs(db.dialect(), "session_id", false, sessionIDs, &args)+` ORDER BY session_id, ts, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list page views: %w", err)
	}
	defer rows.Close()
	var out []PageView
	for rows.Next() {
		var p PageView
		if err := rows.Scan(&p.SessionID, &p.ID, &p.TS, &p.Path, &p.URL); err != nil {
			return nil, fmt.Errorf("scan page view: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list page views: %w", err)
	}
	return out, nil
}

// EventRow is a custom event of a session.
type EventRow struct {
	SessionID, ID int64
	TS            int64 // unix ms
	Name          string
	Props         string // JSON (not checked)
}

// CustomEventsOf lists the custom events of sessions, by session, time and
// id.
func (db *DB) CustomEventsOf(ctx context.Context, sessionIDs []int64) ([]EventRow, error) {
	var args []any
	rows, err := db.db.Read().QueryContext(ctx, `SELECT session_id, id, ts, name, props FROM custom_events
		WHERE `+inIDs(db.dialect(), "session_id", false, sessionIDs, &args)+` ORDER BY session_id, ts, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list custom events: %w", err)
	}
	defer rows.Close()
	var out []EventRow
	for rows.Next() {
		var e EventRow
		if err := rows.Scan(&e.SessionID, &e.ID, &e.TS, &e.Name, &e.Props); err != nil {
			return nil, fmt.Errorf("scan custom event: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list custom events: %w", err)
	}
	return out, nil
}

// VisitorVisits is a visitor with its session count and latest start.
type VisitorVisits struct {
	ID, UserID string // UserID "" when anonymous
	Sessions   int
	LastStart  int64 // unix ms, 0 without sessions
}

// MatchingPeopleVisitors lists the visitors with a session started since
// (unix ms) that matches m, and every other visitor of the same identified
// users: the people of an audience, with all their devices.
func (db *DB) MatchingPeopleVisitors(ctx context.Context, projectID int64, since time.Time, m Match) ([]VisitorVisits, error) {
	args := []any{projectID, since.UnixMilli()}
	where := ""
	if !m.IsZero() {
		cond, err := matchSQL(db.dialect(), &m, "s", &args)
		if err != nil {
			return nil, err
		}
		where = " AND (" + cond + ")"
	}
	args = append(args, projectID, projectID)
	rows, err := db.db.Read().QueryContext(ctx, `
		WITH m AS (SELECT DISTINCT s.visitor_id AS vid FROM sessions s WHERE s.project_id = ? AND s.started_at >= ?`+where+`),
		mu AS (SELECT DISTINCT v.user_id FROM m JOIN visitors v ON v.project_id = ? AND v.id = m.vid WHERE v.user_id IS NOT NULL)
		SELECT v.id, COALESCE(v.user_id, ''),
			(SELECT COUNT(*) FROM sessions x WHERE x.project_id = v.project_id AND x.visitor_id = v.id),
			(SELECT COALESCE(MAX(x.started_at), 0) FROM sessions x WHERE x.project_id = v.project_id AND x.visitor_id = v.id)
		FROM visitors v
		WHERE v.project_id = ? AND (v.id IN (SELECT vid FROM m) OR v.user_id IN (SELECT user_id FROM mu))`, args...)
	if err != nil {
		return nil, fmt.Errorf("audience visitors: %w", err)
	}
	defer rows.Close()
	var out []VisitorVisits
	for rows.Next() {
		var v VisitorVisits
		if err := rows.Scan(&v.ID, &v.UserID, &v.Sessions, &v.LastStart); err != nil {
			return nil, fmt.Errorf("scan audience visitor: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audience visitors: %w", err)
	}
	return out, nil
}

// SessionIDsAfter lists up to limit session row ids above after, in id
// order, of one project (projectID 0: of every project).
func (db *DB) SessionIDsAfter(ctx context.Context, projectID, after int64, limit int) ([]int64, error) {
	q, args := `SELECT id FROM sessions WHERE id > ? ORDER BY id LIMIT ?`, []any{after, limit}
	if projectID != 0 {
		q, args = `SELECT id FROM sessions WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?`, []any{projectID, after, limit}
	}
	rows, err := db.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list session ids: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan session id: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list session ids: %w", err)
	}
	return ids, nil
}

// SettledSessions returns which of ids are closed sessions whose last batch
// arrived before receivedBefore (unix ms, server clock), read in tx.
func (db *DB) SettledSessions(ctx context.Context, tx *sqldb.Tx, ids []int64, receivedBefore int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	var args []any
	in := inIDs(db.dialect(), "id", false, ids, &args)
	rows, err := tx.SQL().QueryContext(ctx, `SELECT id FROM sessions
		WHERE `+in+` AND closed = 1 AND last_received < ?`, append(args, receivedBefore)...)
	if err != nil {
		return nil, fmt.Errorf("settled sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan settled session: %w", err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("settled sessions: %w", err)
	}
	return out, nil
}

// SessionContent is what an observer derives from a session: its head, page
// views and custom events (the events without props).
type SessionContent struct {
	ID, ProjectID int64
	VisitorID     string
	StartedAt     int64 // unix ms
	Device        string
	Pages         []PageView
	Events        []EventRow
}

// ContentReader reads sessions' content inside the ingest's write
// transaction. Its one-session statements are prepared once on the writer:
// an observer runs inside the recorder's transaction, which holds the only
// writer connection, so they could not be prepared then.
type ContentReader struct {
	dialect                            sqldb.Dialect
	session1, pages1, events1, convSet *sql.Stmt
}

// PrepareContentReader prepares a ContentReader. Close it after the last
// transaction that uses it.
func (db *DB) PrepareContentReader(ctx context.Context) (*ContentReader, error) {
	r := &ContentReader{dialect: db.dialect()}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&r.session1, `SELECT id, project_id, visitor_id, started_at, device FROM sessions WHERE id = ?`},
		{&r.pages1, `SELECT session_id, id, ts, path, url FROM pages WHERE session_id = ?`},
		{&r.events1, `SELECT session_id, id, ts, name FROM custom_events WHERE session_id = ?`},
		{&r.convSet, `UPDATE sessions SET conversions = ? WHERE id = ? AND conversions != ?`},
	} {
		st, err := db.db.Write().PrepareContext(ctx, p.q)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("prepare content reader: %w", err)
		}
		*p.dst = st
	}
	return r, nil
}

// Close releases the prepared statements.
func (r *ContentReader) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{r.session1, r.pages1, r.events1, r.convSet} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// Read returns the content of the sessions ids that exist, read in tx; the
// pages and events of each in no particular order.
func (r *ContentReader) Read(ctx context.Context, stx *sqldb.Tx, ids []int64) ([]SessionContent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	tx := stx.SQL()
	// One session (the observer's case) uses the prepared forms.
	query := func(one *sql.Stmt, many, col string) (*sql.Rows, error) {
		if len(ids) == 1 {
			return tx.StmtContext(ctx, one).QueryContext(ctx, ids[0])
		}
		var args []any
		return tx.QueryContext(ctx, many+inIDs(r.dialect, col, false, ids, &args), args...)
	}
	rows, err := query(r.session1, `SELECT id, project_id, visitor_id, started_at, device FROM sessions WHERE `, "id")
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	var out []SessionContent
	byID := map[int64]int{}
	for rows.Next() {
		var c SessionContent
		if err := rows.Scan(&c.ID, &c.ProjectID, &c.VisitorID, &c.StartedAt, &c.Device); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan session: %w", err)
		}
		byID[c.ID] = len(out)
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	rows, err = query(r.pages1, `SELECT session_id, id, ts, path, url FROM pages WHERE `, "session_id")
	if err != nil {
		return nil, fmt.Errorf("read page views: %w", err)
	}
	for rows.Next() {
		var p PageView
		if err := rows.Scan(&p.SessionID, &p.ID, &p.TS, &p.Path, &p.URL); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan page view: %w", err)
		}
		if i, ok := byID[p.SessionID]; ok {
			out[i].Pages = append(out[i].Pages, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read page views: %w", err)
	}
	rows, err = query(r.events1, `SELECT session_id, id, ts, name FROM custom_events WHERE `, "session_id")
	if err != nil {
		return nil, fmt.Errorf("read custom events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e EventRow
		if err := rows.Scan(&e.SessionID, &e.ID, &e.TS, &e.Name); err != nil {
			return nil, fmt.Errorf("scan custom event: %w", err)
		}
		if i, ok := byID[e.SessionID]; ok {
			out[i].Events = append(out[i].Events, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read custom events: %w", err)
	}
	return out, nil
}

// SetConversions records a session's conversion count (derived by an
// observer from its own settings), in tx. On PostgreSQL the row is written
// when tx is flushed (see sessionWrites).
func (r *ContentReader) SetConversions(ctx context.Context, stx *sqldb.Tx, sessionID int64, n int) error {
	if r.dialect == sqldb.Postgres {
		sessionWritesOf(stx).row(sessionID).conversions = int64(n)
		return nil
	}
	if _, err := stx.SQL().StmtContext(ctx, r.convSet).ExecContext(ctx, n, sessionID, n); err != nil {
		return fmt.Errorf("set conversions: %w", err)
	}
	return nil
}
