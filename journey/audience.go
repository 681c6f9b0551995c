package journey

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trailmap/trailmap/internal/unixms"
)

// Member is one visitor of a person in an audience. A person seen on two
// devices is two members with the same user id.
type Member struct {
	VisitorID string `json:"visitor_id"`
	UserID    string `json:"user_id,omitempty"`
	PersonID  string `json:"person_id"`
	// LastVisit is the start of the person's latest visit; Visits counts
	// the person's visits (all devices).
	LastVisit time.Time `json:"last_visit"`
	Visits    int       `json:"visits"`
	// SearchTerms are the person's distinct site-search terms in the
	// audience window, most recent first (at most 20).
	SearchTerms []string `json:"search_terms"`
}

// AudienceMembers is an audience's membership.
type AudienceMembers struct {
	People  int      `json:"people"`
	Members []Member `json:"members"`
}

// Members computes an audience's members now: the people with at least one
// session in the window that matches the segment, each with all their
// visitors. Members are ordered by person (latest visit first), then
// visitor.
func (s *Service) Members(ctx context.Context, a *Audience) (*AudienceMembers, error) {
	seg, err := s.match(ctx, a.ProjectID, a.Segment)
	if err != nil {
		return nil, err
	}
	var since int64
	if a.WindowDays > 0 {
		since = s.now().Add(-time.Duration(a.WindowDays) * 24 * time.Hour).UnixMilli()
	}
	// Matching visitors, and every visitor of the same identified users.
	vs, err := s.core.MatchingPeopleVisitors(ctx, a.ProjectID, time.UnixMilli(since), seg)
	if err != nil {
		return nil, err
	}
	type person struct {
		id       string
		user     string
		visitors []string
		visits   int
		last     int64
	}
	people := map[string]*person{}
	visitorPerson := map[string]*person{}
	for _, v := range vs {
		pid := "v:" + v.ID
		if v.UserID != "" {
			pid = "u:" + v.UserID
		}
		p := people[pid]
		if p == nil {
			p = &person{id: pid, user: v.UserID}
			people[pid] = p
		}
		p.visitors = append(p.visitors, v.ID)
		p.visits += v.Sessions
		p.last = max(p.last, v.LastStart)
		visitorPerson[v.ID] = p
	}
	terms, err := s.visitorTerms(ctx, a.ProjectID, since)
	if err != nil {
		return nil, err
	}
	type tt struct {
		term string
		at   int64
	}
	personTerms := map[*person][]tt{}
	for vid, list := range terms {
		if p := visitorPerson[vid]; p != nil {
			for term, at := range list {
				personTerms[p] = append(personTerms[p], tt{term, at})
			}
		}
	}
	ps := make([]*person, 0, len(people))
	for _, p := range people {
		sort.Strings(p.visitors)
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].last != ps[j].last {
			return ps[i].last > ps[j].last
		}
		return ps[i].id < ps[j].id
	})
	out := &AudienceMembers{People: len(ps), Members: []Member{}}
	for _, p := range ps {
		ts := personTerms[p]
		sort.Slice(ts, func(i, j int) bool {
			if ts[i].at != ts[j].at {
				return ts[i].at > ts[j].at
			}
			return ts[i].term < ts[j].term
		})
		var list []string
		for _, t := range ts {
			if !containsString(list, t.term) && len(list) < 20 {
				list = append(list, t.term)
			}
		}
		if list == nil {
			list = []string{}
		}
		for _, v := range p.visitors {
			out.Members = append(out.Members, Member{VisitorID: v, UserID: p.user, PersonID: p.id,
				LastVisit: unixms.Time(p.last), Visits: p.visits, SearchTerms: list})
		}
	}
	return out, nil
}

// visitorTerms returns, per visitor, each search term and when it was last
// searched, since a time.
func (s *Service) visitorTerms(ctx context.Context, projectID, since int64) (map[string]map[string]int64, error) {
	rows, err := s.db.Read().QueryContext(ctx, `
		SELECT jv.visitor_id, js.term, MAX(js.ts) FROM journey_searches js
		JOIN journey_sessions j ON j.session_id = js.session_id
		JOIN journey_visitors jv ON jv.id = j.visitor
		WHERE js.project_id = ? AND js.ts >= ? GROUP BY jv.visitor_id, js.term`, projectID, since)
	if err != nil {
		return nil, fmt.Errorf("audience search terms: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int64{}
	for rows.Next() {
		var vid, term string
		var at int64
		if err := rows.Scan(&vid, &term, &at); err != nil {
			return nil, fmt.Errorf("scan audience search term: %w", err)
		}
		if out[vid] == nil {
			out[vid] = map[string]int64{}
		}
		out[vid][term] = at
	}
	return out, rows.Err()
}

// WriteMembersCSV writes members as CSV with a header row: visitor_id,
// user_id, last_visit (RFC 3339), visits, search_terms ("; "-separated).
// Cells that a spreadsheet would run as a formula are prefixed with "'".
func WriteMembersCSV(w io.Writer, ms []Member) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"visitor_id", "user_id", "last_visit", "visits", "search_terms"}); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	for _, m := range ms {
		rec := []string{m.VisitorID, m.UserID, m.LastVisit.Format(time.RFC3339), strconv.Itoa(m.Visits), strings.Join(m.SearchTerms, "; ")}
		for i := range rec {
			rec[i] = csvSafe(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// csvSafe defuses formula injection: search terms and user ids come from
// visitors.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
