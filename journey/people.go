package journey

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trailmap/trailmap/internal/unixms"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
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
	f := index.PeopleFilter{ProjectID: q.ProjectID, Q: q.Q, From: q.From, To: q.To, Limit: q.Limit + 1}
	if q.Cursor != "" {
		ls, id, err := decodePeopleCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		f.After = &index.PeopleCursor{LastSeen: ls, ID: id}
	}
	if !q.Segment.IsEmpty() {
		m, err := s.match(ctx, q.ProjectID, q.Segment)
		if err != nil {
			return nil, err
		}
		f.Match = m
	}
	vs, err := s.core.ListPeople(ctx, f)
	if err != nil {
		return nil, err
	}
	page := &PeoplePage{People: []PersonSummary{}}
	if len(vs) > q.Limit {
		vs = vs[:q.Limit]
		last := vs[len(vs)-1]
		page.NextCursor = encodePeopleCursor(last.LastSeen, last.ID)
	}
	var users []string
	for _, r := range vs {
		if r.Identified {
			users = append(users, r.UserID)
		}
	}
	// The other visitors of identified people on this page.
	members := map[string][]index.VisitorRow{}
	if len(users) > 0 {
		ms, err := s.core.VisitorsOfUsers(ctx, q.ProjectID, users)
		if err != nil {
			return nil, err
		}
		for _, r := range ms {
			members[r.UserID] = append(members[r.UserID], r)
		}
	}
	var allVisitors []string
	for _, r := range vs {
		p := PersonSummary{FirstSeen: unixms.Time(r.FirstSeen), LastSeen: unixms.Time(r.LastSeen)}
		if r.Identified {
			p.ID, p.UserID, p.Identified = "u:"+r.UserID, r.UserID, true
			for _, m := range members[r.UserID] {
				p.Visitors = append(p.Visitors, m.ID)
				if m.FirstSeen < p.FirstSeen.UnixMilli() {
					p.FirstSeen = unixms.Time(m.FirstSeen)
				}
			}
			// Traits from the most recently seen visitor that has some.
			ms := members[r.UserID]
			for i := len(ms) - 1; i >= 0 && p.Traits == nil; i-- {
				if ms[i].Traits != "" {
					p.Traits = json.RawMessage(ms[i].Traits)
				}
			}
		} else {
			p.ID, p.Visitors = "v:"+r.ID, []string{r.ID}
		}
		allVisitors = append(allVisitors, p.Visitors...)
		p.Link = personLink(q.ProjectID, p.ID)
		page.People = append(page.People, p)
	}
	counts, err := s.core.VisitCounts(ctx, q.ProjectID, allVisitors)
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
	var vs []index.VisitorRow
	var err error
	if kind == "u" {
		vs, err = s.core.VisitorsOfUsers(ctx, q.ProjectID, []string{val})
	} else {
		vs, err = s.core.VisitorsByID(ctx, q.ProjectID, []string{val})
	}
	if err != nil {
		return nil, fmt.Errorf("get person: %w", err)
	}
	p := &Person{}
	p.ID = q.ID
	var first, last int64 = -1, 0
	for _, v := range vs {
		if kind == "v" && v.Identified {
			// This visitor has been identified since: it is part of a
			// user's person now.
			return nil, fmt.Errorf("person %s is identified now, see u:%s: %w", q.ID, v.UserID, ErrNotFound)
		}
		p.Visitors = append(p.Visitors, v.ID)
		p.UserID, p.Identified = v.UserID, v.Identified
		if v.Traits != "" {
			p.Traits = json.RawMessage(v.Traits)
		}
		if first < 0 || v.FirstSeen < first {
			first = v.FirstSeen
		}
		last = max(last, v.LastSeen)
	}
	if len(p.Visitors) == 0 {
		return nil, fmt.Errorf("person %s: %w", q.ID, ErrNotFound)
	}
	p.FirstSeen, p.LastSeen = unixms.Time(first), unixms.Time(last)
	p.Link = personLink(q.ProjectID, p.ID)

	if p.Visits, p.Conversions, err = s.core.VisitTotals(ctx, q.ProjectID, p.Visitors); err != nil {
		return nil, err
	}
	var after *index.VisitCursor
	if q.Cursor != "" {
		start, id, err := decodePeopleCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		sid, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, invalidf("cursor is not valid")
		}
		after = &index.VisitCursor{StartedAt: start, ID: sid}
	}
	sessions, err := s.core.VisitorSessions(ctx, q.ProjectID, p.Visitors, after, q.Limit+1)
	if err != nil {
		return nil, err
	}
	var ids []int64
	byID := map[int64]int{}
	for _, ss := range sessions {
		v := Visit{ID: ss.ID, VisitorID: ss.VisitorID, StartedAt: ss.StartedAt, EndedAt: ss.EndedAt, DurationMS: ss.DurationMS,
			Live: ss.Live, Device: ss.Device, Browser: ss.Browser, OS: ss.OS, EntryURL: ss.EntryURL, Referrer: ss.Referrer,
			Conversions: ss.Conversions, RageClicks: ss.RageClicks, DeadClicks: ss.DeadClicks, Errors: ss.Errors}
		v.Recording = "/api/v1/sessions/" + v.ID + "/events"
		v.Pages, v.Events, v.Searches = []PageView{}, []EventView{}, []string{}
		byID[ss.RowID] = len(p.VisitList)
		ids = append(ids, ss.RowID)
		p.VisitList = append(p.VisitList, v)
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
	pages, err := s.core.PageViews(ctx, ids)
	if err != nil {
		return err
	}
	for _, pg := range pages {
		v := &visits[byID[pg.SessionID]]
		// The Meta event repeats at every full snapshot: one view.
		if n := len(v.Pages); n > 0 && v.Pages[n-1].URL == pg.URL {
			continue
		}
		v.Pages = append(v.Pages, PageView{Time: unixms.Time(pg.TS), Path: pg.Path, URL: pg.URL})
	}
	events, err := s.core.CustomEventsOf(ctx, ids)
	if err != nil {
		return err
	}
	for _, e := range events {
		ev := EventView{Time: unixms.Time(e.TS), Name: e.Name, Props: json.RawMessage(e.Props)}
		if !json.Valid(ev.Props) {
			ev.Props = json.RawMessage("{}")
		}
		v := &visits[byID[e.SessionID]]
		if len(v.Events) < 1000 {
			v.Events = append(v.Events, ev)
		}
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	in := sqldb.List(len(ids))
	rows, err := s.db.Read().QueryContext(ctx, `SELECT session_id, term FROM journey_searches WHERE session_id IN `+in+` ORDER BY session_id, ts`, args...)
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
