package index

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trailmap/trailmap/internal/unixms"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Session is a recorded visit as the dashboard shows it.
type Session struct {
	ID             string    `json:"id"`
	RowID          int64     `json:"-"`
	ProjectID      int64     `json:"project_id"`
	VisitorID      string    `json:"visitor_id"`
	UserID         string    `json:"user_id,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	EndedAt        time.Time `json:"ended_at"`
	DurationMS     int64     `json:"duration_ms"`
	Live           bool      `json:"live"`
	Device         string    `json:"device"`
	ViewportW      int       `json:"viewport_width"`
	ViewportH      int       `json:"viewport_height"`
	Browser        string    `json:"browser"`
	BrowserVersion string    `json:"browser_version"`
	OS             string    `json:"os"`
	EntryURL       string    `json:"entry_url"`
	Referrer       string    `json:"referrer,omitempty"`
	Pages          int       `json:"page_count"`
	Events         int       `json:"event_count"`
	Clicks         int       `json:"click_count"`
	RageClicks     int       `json:"rage_clicks"`
	DeadClicks     int       `json:"dead_clicks"`
	Errors         int       `json:"errors"`
	ErrorClicks    int       `json:"error_clicks"`
	Conversions    int       `json:"conversions"`
	DroppedEvents  int       `json:"dropped_events,omitempty"`
	RawBytes       int64     `json:"raw_bytes"`
	// Playable says the stored events hold a full snapshot: without one a
	// replay has no page to draw. PlayableFromMS is the offset of the
	// first one from the start: what comes before it cannot be shown.
	Playable       bool  `json:"playable"`
	PlayableFromMS int64 `json:"playable_from_ms"`
}

// Page is one page view inside a session.
type Page struct {
	TS       time.Time `json:"time"`
	OffsetMS int64     `json:"offset_ms"`
	URL      string    `json:"url"`
	Path     string    `json:"path"`
	Width    int       `json:"width"`
	Height   int       `json:"height"`
}

// CustomEvent is a track() call or other custom rrweb event.
type CustomEvent struct {
	TS       time.Time       `json:"time"`
	OffsetMS int64           `json:"offset_ms"`
	Name     string          `json:"name"`
	Props    json.RawMessage `json:"props"`
}

// SessionFilter narrows ListSessions. Zero values do not filter.
type SessionFilter struct {
	ProjectIDs  []int64 // nil: all projects
	From, To    time.Time
	URL         string // a visited page: path prefix, or substring of the URL when it has a "*" or no leading "/"
	Device      string
	Visitor     string // visitor id or identified user id
	MinDuration time.Duration
	Playable    bool     // only sessions with a full snapshot (see Session.Playable)
	Has         []string // rage_click, dead_click, error, error_click, conversion
	Cursor      string
	Limit       int
	// Match keeps the sessions it matches (e.g. a journey segment, which
	// journey turns into a Match).
	Match Match
}

// ErrBadFilter is returned (wrapped) for a filter that cannot be applied.
var ErrBadFilter = errors.New("bad filter")

const sessionCols = `s.id, s.public_id, s.project_id, s.visitor_id, COALESCE(v.user_id, ''), s.started_at, s.ended_at,
	s.closed, s.device, s.viewport_w, s.viewport_h, s.browser, s.browser_version, s.os, s.entry_url, s.referrer,
	s.page_count, s.event_count, s.click_count, s.rage_clicks, s.dead_clicks, s.errors, s.error_clicks, s.conversions, s.dropped_events, s.raw_bytes,
	s.full_snapshots, s.first_snapshot_at`

func scanSession(sc interface{ Scan(...any) error }) (*Session, error) {
	var s Session
	var start, end, snapshots, firstSnapshot int64
	var closed bool
	err := sc.Scan(&s.RowID, &s.ID, &s.ProjectID, &s.VisitorID, &s.UserID, &start, &end,
		&closed, &s.Device, &s.ViewportW, &s.ViewportH, &s.Browser, &s.BrowserVersion, &s.OS, &s.EntryURL, &s.Referrer,
		&s.Pages, &s.Events, &s.Clicks, &s.RageClicks, &s.DeadClicks, &s.Errors, &s.ErrorClicks, &s.Conversions, &s.DroppedEvents, &s.RawBytes,
		&snapshots, &firstSnapshot)
	if err != nil {
		return nil, err
	}
	s.Playable = snapshots > 0
	if s.Playable && firstSnapshot > start {
		s.PlayableFromMS = firstSnapshot - start
	}
	s.StartedAt = unixms.Time(start) // clamped: every row must encode as JSON
	s.EndedAt = unixms.Time(end)
	s.DurationMS = end - start
	s.Live = !closed
	return &s, nil
}

// rarePages is how many page views a path prefix may match for the
// sessions list to start from them.
const rarePages = 5000

// fewPages tells whether at most rarePages page views have a path in
// [lo, hi), counting no further.
func (db *DB) fewPages(ctx context.Context, lo, hi string) (bool, error) {
	var n int
	err := db.db.Read().QueryRowContext(ctx, db.pick(
		`SELECT COUNT(*) FROM (SELECT 1 FROM pages WHERE path >= ? AND path < ? LIMIT ?)`,
		`SELECT COUNT(*) FROM (SELECT 1 FROM pages WHERE path COLLATE "C" >= ? AND path COLLATE "C" < ? LIMIT ?) x`),
		lo, hi, rarePages+1).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("list sessions: count pages: %w", err)
	}
	return n <= rarePages, nil
}

// pageURLs are the distinct page URLs a pattern matches (page_urls, index
// 0082), up to maxPageURLs of them.
type pageURLs struct {
	urls, paths []string
	views       int  // page views with one of urls (SQLite's counts)
	more        bool // more than maxPageURLs match
}

const maxPageURLs = 200

// likeURLs reads the page URLs of projects (nil: all) that match the
// LIKE pattern pat, ASCII case ignored (ILIKE on PostgreSQL, through
// page_urls' trigram index).
func (db *DB) likeURLs(ctx context.Context, projects []int64, pat string) (pageURLs, error) {
	q := db.pick(`SELECT url, path, views FROM page_urls WHERE url LIKE ? ESCAPE '\'`,
		`SELECT url, path, 0 FROM page_urls WHERE url ILIKE ? ESCAPE '\'`)
	args := []any{pat}
	if projects != nil {
		q += " AND project_id IN " + List(len(projects))
		args = append(args, anys(projects)...)
	}
	rows, err := db.db.Read().QueryContext(ctx, q+" LIMIT ?", append(args, maxPageURLs+1)...)
	if err != nil {
		return pageURLs{}, fmt.Errorf("list sessions: match page URLs: %w", err)
	}
	defer rows.Close()
	var m pageURLs
	paths := map[string]bool{}
	for rows.Next() {
		var u, p string
		var n int
		if err := rows.Scan(&u, &p, &n); err != nil {
			return pageURLs{}, fmt.Errorf("list sessions: match page URLs: %w", err)
		}
		if len(m.urls) == maxPageURLs {
			m.more = true
			break
		}
		m.urls = append(m.urls, u)
		m.views += n
		if !paths[p] {
			paths[p] = true
			m.paths = append(m.paths, p)
		}
	}
	if err := rows.Err(); err != nil {
		return pageURLs{}, fmt.Errorf("list sessions: match page URLs: %w", err)
	}
	return m, nil
}

// urlPattern is the sessions list's condition that a session has a page
// view whose URL matches the LIKE pattern pat (ASCII case ignored), with
// its arguments added to args; "" when no page view matches. The distinct
// URLs tell whether any page view matches; when few do, their sessions
// come from the page views of those URLs (pages_path on SQLite, pages_url
// on PostgreSQL); when many do, the list's sessions are tested newest
// first, which soon finds a page of them.
//
// On PostgreSQL, when few page views match, it returns their sessions' ids
// instead of a condition (cond ""; see listOf).
func (db *DB) urlPattern(ctx context.Context, projects []int64, pat string, args *[]any) (cond string, ids []int64, err error) {
	m, err := db.likeURLs(ctx, projects, pat)
	if err != nil {
		return "", nil, err
	}
	if !m.more && len(m.urls) == 0 {
		return "", nil, nil
	}
	if !m.more && db.dialect() == sqldb.Postgres {
		// No counts there (and URLs no page view has any more may linger
		// until the retention sweep): read the sessions of those URLs'
		// page views, no further than rarePages, and when they are few
		// hand their ids to the list (looked up by key: PostgreSQL's plan
		// for a subquery here scans the list newest first).
		ids, err := db.urlSessions(ctx, m.urls)
		switch {
		case err != nil:
			return "", nil, err
		case ids == nil: // many: test the list's sessions
		case len(ids) == 0:
			return "", nil, nil
		default:
			return "", ids, nil
		}
	} else if !m.more && m.views <= rarePages {
		*args = append(*args, anys(m.paths)...)
		*args = append(*args, anys(m.urls)...)
		return "s.id IN (SELECT p.session_id FROM pages p WHERE p.path IN " + List(len(m.paths)) +
			" AND p.url IN " + List(len(m.urls)) + ")", nil, nil
	}
	*args = append(*args, pat)
	return db.pick(`EXISTS (SELECT 1 FROM pages p WHERE p.session_id = s.id AND p.url LIKE ? ESCAPE '\')`,
		`EXISTS (SELECT 1 FROM pages p WHERE p.session_id = s.id AND p.url ILIKE ? ESCAPE '\')`), nil, nil
}

// listOf is the sessions list's condition that a session is one of ids
// (PostgreSQL's sessions of a page pattern matching few page views), with
// its arguments added to args. When nothing else filters the list but its
// projects, time range and cursor (all in sessions_list), the page's ids
// come from an index-only scan of sessions_list, newest first, testing ids
// on the index alone; given the ids as a list PostgreSQL walks the list
// newest first reading every session's row to test them (on the 1M-session
// index ~26,000 rows for 2,001 ids: 65 ms, 300-500 ms on a cold cache). The
// scan takes limit more rows than there are discarded sessions among ids,
// so the page is exact.
// alone tells that no condition but those in sessions_list filters the list.
func (db *DB) listOf(ctx context.Context, ids []int64, f SessionFilter, alone bool, cursor []any, limit int, args *[]any) (string, error) {
	in, arg := db.db.InIDs("id", ids)
	if !alone {
		*args = append(*args, arg)
		return "s." + in, nil
	}
	var discarded int
	if err := db.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE discarded = 1 AND `+in, arg).Scan(&discarded); err != nil {
		return "", fmt.Errorf("list sessions: count discarded: %w", err)
	}
	q := `s.id IN (SELECT id FROM sessions WHERE ` + in
	*args = append(*args, arg)
	if f.ProjectIDs != nil {
		q += " AND project_id IN " + List(len(f.ProjectIDs))
		*args = append(*args, anys(f.ProjectIDs)...)
	}
	if !f.From.IsZero() {
		q += " AND started_at >= ?"
		*args = append(*args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		q += " AND started_at < ?"
		*args = append(*args, f.To.UnixMilli())
	}
	if cursor != nil {
		q += " AND (started_at < ? OR (started_at = ? AND id < ?))"
		*args = append(*args, cursor...)
	}
	*args = append(*args, limit+discarded)
	return q + " ORDER BY started_at DESC, id DESC LIMIT ?)", nil
}

// urlSessions returns the sessions with a page view at one of urls
// (through pages_url), or nil when more than rarePages page views have
// one of them.
func (db *DB) urlSessions(ctx context.Context, urls []string) ([]int64, error) {
	// Count first: many matching page views are counted from pages_url
	// alone, while reading their sessions visits the table for each.
	var n int
	err := db.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM pages WHERE url IN `+List(len(urls))+` LIMIT ?) x`,
		append(anys(urls), rarePages+1)...).Scan(&n)
	if err != nil {
		return nil, fmt.Errorf("list sessions: count page views of URLs: %w", err)
	}
	if n > rarePages {
		return nil, nil
	}
	rows, err := db.db.Read().QueryContext(ctx, `SELECT session_id FROM pages WHERE url IN `+List(len(urls))+` LIMIT ?`,
		append(anys(urls), rarePages+1)...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: page views of URLs: %w", err)
	}
	defer rows.Close()
	seen := map[int64]bool{}
	ids := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list sessions: page views of URLs: %w", err)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: page views of URLs: %w", err)
	}
	return ids, nil
}

// anys is v as query arguments.
func anys[T any](v []T) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

// PrunePageURLs removes from PostgreSQL's page_urls the URLs that no page
// view has any more and that no page view came with for two days before
// now (the retention sweep calls it; SQLite's page_urls follows pages
// exactly). It returns how many it removed.
func (db *DB) PrunePageURLs(ctx context.Context, now time.Time) (int, error) {
	if db.dialect() != sqldb.Postgres {
		return 0, nil
	}
	// A page view renews its URL's seen_at when it is over a day old, so
	// a row the prune may take (over two days old) is one an ingest would
	// renew first, under its lock: the prune never deletes a URL that a
	// page view being recorded counts on.
	res, err := db.db.Write().ExecContext(ctx, `DELETE FROM page_urls u WHERE u.seen_at < ?
		AND NOT EXISTS (SELECT 1 FROM pages p WHERE p.url = u.url)`, now.Add(-48*time.Hour).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune page URLs: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ListSessions returns sessions newest first, and the cursor of the next page
// ("" on the last page).
func (db *DB) ListSessions(ctx context.Context, f SessionFilter) ([]Session, string, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	// Sessions that closed short of their project's keep rule wait for
	// retention unseen.
	where := []string{"s.discarded = 0"}
	var args []any
	var patternIDs []int64 // see listOf
	if f.ProjectIDs != nil {
		if len(f.ProjectIDs) == 0 {
			return nil, "", nil
		}
		where = append(where, "s.project_id IN "+List(len(f.ProjectIDs)))
		for _, id := range f.ProjectIDs {
			args = append(args, id)
		}
	}
	if !f.From.IsZero() {
		where = append(where, "s.started_at >= ?")
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		where = append(where, "s.started_at < ?")
		args = append(args, f.To.UnixMilli())
	}
	listed := len(where) // not discarded, projects, time range: see listOf
	switch f.Device {
	case "":
	case "desktop", "tablet", "mobile":
		where = append(where, "s.device = ?")
		args = append(args, f.Device)
	default:
		return nil, "", fmt.Errorf("%w: device must be desktop, tablet or mobile", ErrBadFilter)
	}
	if f.Visitor != "" {
		// The visitors with that id or user id, from their indexes, then
		// their sessions from sessions_visitor: not a scan of the list
		// testing each session's visitor.
		// (The IN narrows by visitor id, as SQLite's planner takes it to
		// sessions_visitor; the OR then keeps the project's own.)
		where = append(where, `s.visitor_id IN (SELECT id FROM visitors WHERE id = ? UNION SELECT id FROM visitors WHERE user_id = ?)
			AND (s.visitor_id = ? OR v.user_id = ?)`)
		args = append(args, f.Visitor, f.Visitor, f.Visitor, f.Visitor)
	}
	if f.MinDuration > 0 {
		where = append(where, "s.ended_at - s.started_at >= ?")
		args = append(args, f.MinDuration.Milliseconds())
	}
	if f.URL != "" {
		if strings.HasPrefix(f.URL, "/") && !strings.Contains(f.URL, "*") {
			// Compared as bytes (code points) on PostgreSQL too, whatever
			// the database's collation.
			hi := f.URL + "\U0010FFFF"
			rare, err := db.fewPages(ctx, f.URL, hi)
			if err != nil {
				return nil, "", err
			}
			if rare {
				// Few page views match: take their sessions from pages_path
				// rather than test every session of the list in turn (a
				// prefix that matches nothing would scan them all).
				where = append(where, db.pick("s.id IN (SELECT p.session_id FROM pages p WHERE p.path >= ? AND p.path < ?)",
					`s.id IN (SELECT p.session_id FROM pages p WHERE p.path COLLATE "C" >= ? AND p.path COLLATE "C" < ?)`))
			} else {
				where = append(where, db.pick("EXISTS (SELECT 1 FROM pages p WHERE p.session_id = s.id AND p.path >= ? AND p.path < ?)",
					`EXISTS (SELECT 1 FROM pages p WHERE p.session_id = s.id AND p.path COLLATE "C" >= ? AND p.path COLLATE "C" < ?)`))
			}
			args = append(args, f.URL, hi)
		} else {
			pat := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(f.URL, `\`, `\\`), "%", `\%`), "_", `\_`)
			pat = "%" + strings.ReplaceAll(pat, "*", "%") + "%"
			cond, ids, err := db.urlPattern(ctx, f.ProjectIDs, pat, &args)
			if err != nil {
				return nil, "", err
			}
			if cond == "" && ids == nil {
				return nil, "", nil // no page view matches
			}
			if cond != "" {
				where = append(where, cond)
			}
			patternIDs = ids
		}
	}
	if f.Playable {
		where = append(where, "s.full_snapshots > 0")
	}
	for _, h := range f.Has {
		col, ok := map[string]string{"rage_click": "rage_clicks", "dead_click": "dead_clicks", "error": "errors", "error_click": "error_clicks", "conversion": "conversions"}[h]
		if !ok {
			return nil, "", fmt.Errorf("%w: has must be rage_click, dead_click, error, error_click or conversion", ErrBadFilter)
		}
		where = append(where, "s."+col+" > 0")
	}
	if !f.Match.IsZero() {
		cond, err := matchSQL(db.dialect(), &f.Match, "s", &args)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "("+cond+")")
	}
	alone := len(where) == listed
	var cursor []any
	if f.Cursor != "" {
		start, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		cursor = []any{start, start, id}
		where = append(where, "(s.started_at < ? OR (s.started_at = ? AND s.id < ?))")
		args = append(args, cursor...)
	}
	if patternIDs != nil {
		cond, err := db.listOf(ctx, patternIDs, f, alone, cursor, f.Limit+1, &args)
		if err != nil {
			return nil, "", err
		}
		where = append(where, cond)
	}
	q := `SELECT ` + sessionCols + ` FROM sessions s
		LEFT JOIN visitors v ON v.project_id = s.project_id AND v.id = s.visitor_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY s.started_at DESC, s.id DESC LIMIT ?"
	args = append(args, f.Limit+1)
	rows, err := db.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, "", fmt.Errorf("scan session: %w", err)
		}
		out = append(out, *s)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list sessions: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = encodeCursor(last.StartedAt.UnixMilli(), last.RowID)
	}
	return out, next, nil
}

func encodeCursor(start, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(start, 10) + "." + strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: cursor is not valid", ErrBadFilter)
	}
	a, b, ok := strings.Cut(string(raw), ".")
	start, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%w: cursor is not valid", ErrBadFilter)
	}
	return start, id, nil
}

// SessionByPublicID finds a session of one of projectIDs (nil: any project).
func (db *DB) SessionByPublicID(ctx context.Context, projectIDs []int64, id string) (*Session, error) {
	q := `SELECT ` + sessionCols + ` FROM sessions s
		LEFT JOIN visitors v ON v.project_id = s.project_id AND v.id = s.visitor_id
		WHERE s.public_id = ?`
	args := []any{id}
	if projectIDs != nil {
		if len(projectIDs) == 0 {
			return nil, fmt.Errorf("session %s: %w", id, ErrNotFound)
		}
		q += " AND s.project_id IN " + List(len(projectIDs))
		for _, p := range projectIDs {
			args = append(args, p)
		}
	}
	q += " ORDER BY s.id LIMIT 1"
	s, err := scanSession(db.db.Read().QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return s, nil
}

// SessionPages lists a session's page views in time order.
func (db *DB) SessionPages(ctx context.Context, s *Session) ([]Page, error) {
	rows, err := db.db.Read().QueryContext(ctx,
		`SELECT ts, url, path, width, height FROM pages WHERE session_id = ? ORDER BY ts, id`, s.RowID)
	if err != nil {
		return nil, fmt.Errorf("list pages: %w", err)
	}
	defer rows.Close()
	out := []Page{}
	for rows.Next() {
		var p Page
		var ts int64
		if err := rows.Scan(&ts, &p.URL, &p.Path, &p.Width, &p.Height); err != nil {
			return nil, fmt.Errorf("scan page: %w", err)
		}
		p.TS = unixms.Time(ts)
		p.OffsetMS = ts - s.StartedAt.UnixMilli()
		out = append(out, p)
	}
	return out, rows.Err()
}

// SessionCustomEvents lists a session's custom events in time order.
func (db *DB) SessionCustomEvents(ctx context.Context, s *Session) ([]CustomEvent, error) {
	rows, err := db.db.Read().QueryContext(ctx,
		`SELECT ts, name, props FROM custom_events WHERE session_id = ? ORDER BY ts, id LIMIT 10000`, s.RowID)
	if err != nil {
		return nil, fmt.Errorf("list custom events: %w", err)
	}
	defer rows.Close()
	out := []CustomEvent{}
	for rows.Next() {
		var c CustomEvent
		var ts int64
		var props string
		if err := rows.Scan(&ts, &c.Name, &props); err != nil {
			return nil, fmt.Errorf("scan custom event: %w", err)
		}
		c.TS = unixms.Time(ts)
		c.OffsetMS = ts - s.StartedAt.UnixMilli()
		c.Props = json.RawMessage(props)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Segment is a stored segment of a session, as replay reads it.
type Segment struct {
	ID        int64
	Key       string
	FirstSeq  int64
	LastSeq   int64
	Seqs      [][2]int64 // [seq, events] in stored order
	Events    int
	FirstTS   int64
	LastTS    int64
	Snapshots [][3]int64 // [timestamp, line, byte offset]
}

// SessionSegments lists a session's stored ('done') segments in seq order.
func (db *DB) SessionSegments(ctx context.Context, sessionRowID int64) ([]Segment, error) {
	rows, err := db.db.Read().QueryContext(ctx, `
		SELECT id, key, first_seq, last_seq, seqs, events, first_ts, last_ts, snapshots
		FROM segments WHERE session_id = ? AND state = 'done' ORDER BY first_seq, id`, sessionRowID)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	defer rows.Close()
	var out []Segment
	for rows.Next() {
		var sg Segment
		var seqs, snaps string
		if err := rows.Scan(&sg.ID, &sg.Key, &sg.FirstSeq, &sg.LastSeq, &seqs, &sg.Events, &sg.FirstTS, &sg.LastTS, &snaps); err != nil {
			return nil, fmt.Errorf("scan segment: %w", err)
		}
		if err := json.Unmarshal([]byte(seqs), &sg.Seqs); err != nil {
			return nil, fmt.Errorf("segment %d seqs: %w", sg.ID, err)
		}
		if err := json.Unmarshal([]byte(snaps), &sg.Snapshots); err != nil {
			return nil, fmt.Errorf("segment %d snapshots: %w", sg.ID, err)
		}
		out = append(out, sg)
	}
	return out, rows.Err()
}
