package journey

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trailmap/trailmap/storage/index"
)

// A person id is "u:" + the identified user id, or "v:" + the visitor id
// of an anonymous visitor. In URLs it is path-escaped.

// PersonSummary is a person in the people list.
type PersonSummary struct {
	ID         string          `json:"id"`
	UserID     string          `json:"user_id,omitempty"`
	Identified bool            `json:"identified"`
	Traits     json.RawMessage `json:"traits,omitempty"`
	Visitors   []string        `json:"visitors"`
	FirstSeen  time.Time       `json:"first_seen"`
	LastSeen   time.Time       `json:"last_seen"`
	Visits     int             `json:"visits"`
	// Link is the API path of the person's timeline.
	Link string `json:"link"`
}

// PeopleQuery lists people, most recently seen first.
type PeopleQuery struct {
	ProjectID int64
	// Q matches a visitor id exactly, or a user id or the identify traits
	// (e.g. an email) by substring.
	Q string
	// Segment, with From and To, keeps people with at least one session
	// in the range that matches it.
	Segment  Segment
	From, To time.Time
	Limit    int
	Cursor   string
}

// PeoplePage is a page of the people list.
type PeoplePage struct {
	People     []PersonSummary `json:"people"`
	NextCursor string          `json:"next_cursor"`
}

func personLink(projectID int64, id string) string {
	return "/api/v1/people/" + url.PathEscape(id) + "?project=" + strconv.FormatInt(projectID, 10)
}

// People lists people. A person shows once, at the position of their most
// recently seen visitor.
func (s *Service) People(ctx context.Context, q PeopleQuery) (*PeoplePage, error) {
	if q.Limit <= 0 || q.Limit > 200 {
		q.Limit = 50
	}
	if len(q.Q) > 200 {
		return nil, invalidf("q longer than 200 characters")
	}
	where := []string{"v.project_id = ?"}
	args := []any{q.ProjectID}
	if q.Cursor != "" {
		ls, id, err := decodePeopleCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		where = append(where, "(v.last_seen < ? OR (v.last_seen = ? AND v.id < ?))")
		args = append(args, ls, ls, id)
	}
	// Identified people appear at their latest visitor only.
	where = append(where, `(v.user_id IS NULL OR NOT EXISTS (SELECT 1 FROM visitors v2 WHERE v2.project_id = v.project_id
		AND v2.user_id = v.user_id AND (v2.last_seen > v.last_seen OR (v2.last_seen = v.last_seen AND v2.id > v.id))))`)
	if q.Q != "" {
		like := "%" + likeEscape(q.Q) + "%"
		where = append(where, `(CASE WHEN v.user_id IS NULL THEN v.id = ? OR v.traits LIKE ? ESCAPE '\'
			ELSE EXISTS (SELECT 1 FROM visitors v3 WHERE v3.project_id = v.project_id AND v3.user_id = v.user_id
				AND (v3.id = ? OR v3.user_id LIKE ? ESCAPE '\' OR v3.traits LIKE ? ESCAPE '\')) END)`)
		args = append(args, q.Q, like, q.Q, like, like)
	}
	if !q.Segment.IsEmpty() || !q.From.IsZero() || !q.To.IsZero() {
		seg, err := q.Segment.Compile("s")
		if err != nil {
			return nil, err
		}
		cond := `EXISTS (SELECT 1 FROM sessions s WHERE s.project_id = v.project_id AND s.visitor_id IN
			(SELECT v4.id FROM visitors v4 WHERE v4.project_id = v.project_id AND v4.user_id = v.user_id UNION ALL SELECT v.id)`
		if !q.From.IsZero() {
			cond += " AND s.started_at >= ?"
			args = append(args, q.From.UnixMilli())
		}
		if !q.To.IsZero() {
			cond += " AND s.started_at < ?"
			args = append(args, q.To.UnixMilli())
		}
		if !seg.Empty() {
			cond += " AND (" + seg.SQL + ")"
			args = append(args, seg.Args...)
		}
		where = append(where, cond+")")
	}
	args = append(args, q.Limit+1)
	rows, err := s.db.Read().QueryContext(ctx, `
		SELECT v.id, v.user_id, v.traits, v.first_seen, v.last_seen FROM visitors v
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY v.last_seen DESC, v.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list people: %w", err)
	}
	type vrow struct {
		id          string
		user        sql.NullString
		traits      sql.NullString
		first, last int64
	}
	var vs []vrow
	for rows.Next() {
		var r vrow
		if err := rows.Scan(&r.id, &r.user, &r.traits, &r.first, &r.last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan person: %w", err)
		}
		vs = append(vs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list people: %w", err)
	}
	page := &PeoplePage{People: []PersonSummary{}}
	if len(vs) > q.Limit {
		vs = vs[:q.Limit]
		last := vs[len(vs)-1]
		page.NextCursor = encodePeopleCursor(last.last, last.id)
	}
	var users []string
	for _, r := range vs {
		if r.user.Valid {
			users = append(users, r.user.String)
		}
	}
	// The other visitors of identified people on this page.
	members := map[string][]vrow{}
	if len(users) > 0 {
		a := []any{q.ProjectID}
		for _, u := range users {
			a = append(a, u)
		}
		rows, err := s.db.Read().QueryContext(ctx, `SELECT id, user_id, traits, first_seen, last_seen FROM visitors
			WHERE project_id = ? AND user_id IN `+index.List(len(users))+` ORDER BY last_seen, id`, a...)
		if err != nil {
			return nil, fmt.Errorf("list people visitors: %w", err)
		}
		for rows.Next() {
			var r vrow
			if err := rows.Scan(&r.id, &r.user, &r.traits, &r.first, &r.last); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan person visitor: %w", err)
			}
			members[r.user.String] = append(members[r.user.String], r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("list people visitors: %w", err)
		}
	}
	var allVisitors []string
	for _, r := range vs {
		p := PersonSummary{FirstSeen: time.UnixMilli(r.first).UTC(), LastSeen: time.UnixMilli(r.last).UTC()}
		if r.user.Valid {
			p.ID, p.UserID, p.Identified = "u:"+r.user.String, r.user.String, true
			for _, m := range members[r.user.String] {
				p.Visitors = append(p.Visitors, m.id)
				if m.first < p.FirstSeen.UnixMilli() {
					p.FirstSeen = time.UnixMilli(m.first).UTC()
				}
			}
			// Traits from the most recently seen visitor that has some.
			ms := members[r.user.String]
			for i := len(ms) - 1; i >= 0 && p.Traits == nil; i-- {
				if ms[i].traits.Valid && ms[i].traits.String != "" {
					p.Traits = json.RawMessage(ms[i].traits.String)
				}
			}
		} else {
			p.ID, p.Visitors = "v:"+r.id, []string{r.id}
		}
		allVisitors = append(allVisitors, p.Visitors...)
		p.Link = personLink(q.ProjectID, p.ID)
		page.People = append(page.People, p)
	}
	counts, err := s.visitCounts(ctx, q.ProjectID, allVisitors)
	if err != nil {
		return nil, err
	}
	for i := range page.People {
		for _, v := range page.People[i].Visitors {
			page.People[i].Visits += counts[v]
		}
	}
	return page, nil
}

func (s *Service) visitCounts(ctx context.Context, projectID int64, visitors []string) (map[string]int, error) {
	out := map[string]int{}
	for len(visitors) > 0 {
		n := min(len(visitors), 500)
		a := []any{projectID}
		for _, v := range visitors[:n] {
			a = append(a, v)
		}
		rows, err := s.db.Read().QueryContext(ctx, `SELECT visitor_id, COUNT(*) FROM sessions
			WHERE project_id = ? AND visitor_id IN `+index.List(n)+` GROUP BY visitor_id`, a...)
		if err != nil {
			return nil, fmt.Errorf("count visits: %w", err)
		}
		for rows.Next() {
			var v string
			var c int
			if err := rows.Scan(&v, &c); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan visit count: %w", err)
			}
			out[v] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("count visits: %w", err)
		}
		visitors = visitors[n:]
	}
	return out, nil
}

func encodePeopleCursor(lastSeen int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(lastSeen, 10) + "." + id))
}

func decodePeopleCursor(c string) (int64, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", invalidf("cursor is not valid")
	}
	a, b, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(a, 10, 64)
	if !ok || err != nil {
		return 0, "", invalidf("cursor is not valid")
	}
	return n, b, nil
}

// PageView is a page of a visit.
type PageView struct {
	Time time.Time `json:"time"`
	Path string    `json:"path"`
	URL  string    `json:"url"`
}

// EventView is a custom event of a visit.
type EventView struct {
	Time  time.Time       `json:"time"`
	Name  string          `json:"name"`
	Props json.RawMessage `json:"props"`
}

// Visit is one session on a person's timeline.
type Visit struct {
	ID          string      `json:"id"` // session public id
	VisitorID   string      `json:"visitor_id"`
	StartedAt   time.Time   `json:"started_at"`
	EndedAt     time.Time   `json:"ended_at"`
	DurationMS  int64       `json:"duration_ms"`
	Live        bool        `json:"live"`
	Device      string      `json:"device"`
	Browser     string      `json:"browser"`
	OS          string      `json:"os"`
	EntryURL    string      `json:"entry_url"`
	Referrer    string      `json:"referrer,omitempty"`
	Source      Source      `json:"source"`
	Pages       []PageView  `json:"pages"`
	Events      []EventView `json:"events"`
	Searches    []string    `json:"searches"`
	Conversions int         `json:"conversions"`
	RageClicks  int         `json:"rage_clicks"`
	DeadClicks  int         `json:"dead_clicks"`
	Errors      int         `json:"errors"`
	// Recording is the API path of the session's rrweb events.
	Recording string `json:"recording"`
}

// Person is a person with their visits in time order.
type Person struct {
	PersonSummary
	Conversions int     `json:"conversions"`
	VisitList   []Visit `json:"visit_list"`
	NextCursor  string  `json:"next_cursor"`
}

// PersonQuery selects a person's timeline page.
type PersonQuery struct {
	ProjectID int64
	ID        string // "u:<user id>" or "v:<visitor id>"
	Limit     int    // visits per page, default 100, at most 500
	Cursor    string
}

// Person returns a person and their visits, oldest first.
func (s *Service) Person(ctx context.Context, q PersonQuery) (*Person, error) {
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 100
	}
	kind, val, ok := strings.Cut(q.ID, ":")
	if !ok || val == "" || (kind != "u" && kind != "v") {
		return nil, invalidf(`person id %q: want "u:<user id>" or "v:<visitor id>"`, q.ID)
	}
	where, arg := "id = ?", val
	if kind == "u" {
		where = "user_id = ?"
	}
	rows, err := s.db.Read().QueryContext(ctx, `SELECT id, user_id, traits, first_seen, last_seen FROM visitors
		WHERE project_id = ? AND `+where+` ORDER BY last_seen, id`, q.ProjectID, arg)
	if err != nil {
		return nil, fmt.Errorf("get person: %w", err)
	}
	p := &Person{}
	p.ID = q.ID
	var first, last int64 = -1, 0
	for rows.Next() {
		var id string
		var user, traits sql.NullString
		var f, l int64
		if err := rows.Scan(&id, &user, &traits, &f, &l); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan person: %w", err)
		}
		if kind == "v" && user.Valid {
			// This visitor has been identified since: it is part of a
			// user's person now.
			rows.Close()
			return nil, fmt.Errorf("person %s is identified now, see u:%s: %w", q.ID, user.String, ErrNotFound)
		}
		p.Visitors = append(p.Visitors, id)
		p.UserID, p.Identified = user.String, user.Valid
		if traits.Valid && traits.String != "" {
			p.Traits = json.RawMessage(traits.String)
		}
		if first < 0 || f < first {
			first = f
		}
		last = max(last, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get person: %w", err)
	}
	if len(p.Visitors) == 0 {
		return nil, fmt.Errorf("person %s: %w", q.ID, ErrNotFound)
	}
	p.FirstSeen, p.LastSeen = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
	p.Link = personLink(q.ProjectID, p.ID)

	vargs := []any{q.ProjectID}
	for _, v := range p.Visitors {
		vargs = append(vargs, v)
	}
	inV := index.List(len(p.Visitors))
	if err := s.db.Read().QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(conversions), 0) FROM sessions
		WHERE project_id = ? AND visitor_id IN `+inV, vargs...).Scan(&p.Visits, &p.Conversions); err != nil {
		return nil, fmt.Errorf("count person visits: %w", err)
	}
	sargs := append([]any{}, vargs...)
	after := ""
	if q.Cursor != "" {
		start, id, err := decodePeopleCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		sid, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, invalidf("cursor is not valid")
		}
		after = " AND (started_at > ? OR (started_at = ? AND id > ?))"
		sargs = append(sargs, start, start, sid)
	}
	sargs = append(sargs, q.Limit+1)
	rows, err = s.db.Read().QueryContext(ctx, `
		SELECT id, public_id, visitor_id, started_at, ended_at, closed, device, browser, os, entry_url, referrer,
			conversions, rage_clicks, dead_clicks, errors
		FROM sessions WHERE project_id = ? AND visitor_id IN `+inV+after+`
		ORDER BY started_at, id LIMIT ?`, sargs...)
	if err != nil {
		return nil, fmt.Errorf("list person visits: %w", err)
	}
	var ids []int64
	byID := map[int64]int{}
	for rows.Next() {
		var v Visit
		var id, start, end int64
		var closed bool
		if err := rows.Scan(&id, &v.ID, &v.VisitorID, &start, &end, &closed, &v.Device, &v.Browser, &v.OS, &v.EntryURL, &v.Referrer,
			&v.Conversions, &v.RageClicks, &v.DeadClicks, &v.Errors); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan visit: %w", err)
		}
		v.StartedAt, v.EndedAt, v.DurationMS, v.Live = time.UnixMilli(start).UTC(), time.UnixMilli(end).UTC(), end-start, !closed
		v.Recording = "/api/v1/sessions/" + v.ID + "/events"
		v.Pages, v.Events, v.Searches = []PageView{}, []EventView{}, []string{}
		byID[id] = len(p.VisitList)
		ids = append(ids, id)
		p.VisitList = append(p.VisitList, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list person visits: %w", err)
	}
	if len(p.VisitList) > q.Limit {
		p.VisitList, ids = p.VisitList[:q.Limit], ids[:q.Limit]
		lv := p.VisitList[q.Limit-1]
		p.NextCursor = encodePeopleCursor(lv.StartedAt.UnixMilli(), strconv.FormatInt(ids[q.Limit-1], 10))
	}
	if err := s.visitDetails(ctx, ids, byID, p.VisitList); err != nil {
		return nil, err
	}
	for i := range p.VisitList {
		v := &p.VisitList[i]
		// The earliest page is the entry, whatever order batches came in.
		if len(v.Pages) > 0 {
			v.EntryURL = v.Pages[0].URL
		}
		v.Source = entrySource(v.EntryURL, v.Referrer)
	}
	return p, nil
}

// visitDetails fills the pages, events and searches of visits.
func (s *Service) visitDetails(ctx context.Context, ids []int64, byID map[int64]int, visits []Visit) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	in := index.List(len(ids))
	rows, err := s.db.Read().QueryContext(ctx, `SELECT session_id, ts, path, url FROM pages WHERE session_id IN `+in+` ORDER BY session_id, ts, id`, args...)
	if err != nil {
		return fmt.Errorf("list visit pages: %w", err)
	}
	for rows.Next() {
		var sid, ts int64
		var pv PageView
		if err := rows.Scan(&sid, &ts, &pv.Path, &pv.URL); err != nil {
			rows.Close()
			return fmt.Errorf("scan visit page: %w", err)
		}
		pv.Time = time.UnixMilli(ts).UTC()
		v := &visits[byID[sid]]
		// The Meta event repeats at every full snapshot: one view.
		if n := len(v.Pages); n > 0 && v.Pages[n-1].URL == pv.URL {
			continue
		}
		v.Pages = append(v.Pages, pv)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list visit pages: %w", err)
	}
	rows, err = s.db.Read().QueryContext(ctx, `SELECT session_id, ts, name, props FROM custom_events WHERE session_id IN `+in+` ORDER BY session_id, ts, id`, args...)
	if err != nil {
		return fmt.Errorf("list visit events: %w", err)
	}
	for rows.Next() {
		var sid, ts int64
		var ev EventView
		var props string
		if err := rows.Scan(&sid, &ts, &ev.Name, &props); err != nil {
			rows.Close()
			return fmt.Errorf("scan visit event: %w", err)
		}
		ev.Time, ev.Props = time.UnixMilli(ts).UTC(), json.RawMessage(props)
		if !json.Valid(ev.Props) {
			ev.Props = json.RawMessage("{}")
		}
		v := &visits[byID[sid]]
		if len(v.Events) < 1000 {
			v.Events = append(v.Events, ev)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list visit events: %w", err)
	}
	rows, err = s.db.Read().QueryContext(ctx, `SELECT session_id, term FROM journey_searches WHERE session_id IN `+in+` ORDER BY session_id, ts`, args...)
	if err != nil {
		return fmt.Errorf("list visit searches: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sid int64
		var term string
		if err := rows.Scan(&sid, &term); err != nil {
			return fmt.Errorf("scan visit search: %w", err)
		}
		v := &visits[byID[sid]]
		if !containsString(v.Searches, term) {
			v.Searches = append(v.Searches, term)
		}
	}
	return rows.Err()
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
