package journey

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/trailmap/trailmap/storage/index"
)

// IntentQuery selects the sessions of an intent report.
type IntentQuery struct {
	ProjectID int64
	From, To  time.Time
	Segment   Segment
	Limit     int // search terms, default 50, at most 500
	// ConversionEvent or ConversionPage (patterns) replace the project's
	// conversion definition in ConversionStats.
	ConversionEvent, ConversionPage string
}

func (s *Service) checkIntent(ctx context.Context, q *IntentQuery) (index.Match, error) {
	if !q.To.After(q.From) {
		return index.Match{}, invalidf("to must be after from")
	}
	return s.match(ctx, q.ProjectID, q.Segment)
}

// SearchTerm is one site-search term's numbers.
type SearchTerm struct {
	Term     string `json:"term"`
	Searches int    `json:"searches"`
	Sessions int    `json:"sessions"`
	People   int    `json:"people"`
	// ConvertedSessions searched the term and converted later in the same
	// session.
	ConvertedSessions     int     `json:"converted_sessions"`
	SessionConversionRate float64 `json:"session_conversion_rate"`
	// ConvertedPeople searched the term and converted afterwards, in any
	// session that started before To.
	ConvertedPeople      int     `json:"converted_people"`
	PeopleConversionRate float64 `json:"people_conversion_rate"`
}

// SearchTermsResult lists site-search terms by use.
type SearchTermsResult struct {
	From     time.Time    `json:"from"`
	To       time.Time    `json:"to"`
	Params   []string     `json:"search_params"`
	Searches int          `json:"searches"`
	Sessions int          `json:"sessions"`
	People   int          `json:"people"`
	Terms    []SearchTerm `json:"terms"`
}

// SearchTerms reports the site-search terms searched in the range (by the
// search's time) and how often each search was followed by a conversion.
func (s *Service) SearchTerms(ctx context.Context, q IntentQuery) (*SearchTermsResult, error) {
	seg, err := s.checkIntent(ctx, &q)
	if err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 50
	}
	st, _, err := s.Settings(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	pm, err := s.people(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	convs, err := s.personConversions(ctx, q.ProjectID, q.To.UnixMilli(), pm)
	if err != nil {
		return nil, err
	}
	type search struct {
		term                 string
		sid, ts, vis, convAt int64
	}
	var searches []search
	rows, err := s.db.Read().QueryContext(ctx, `SELECT js.term, js.session_id, js.ts, j.visitor, COALESCE(j.converted_at, 0)
		FROM journey_searches js JOIN journey_sessions j ON j.session_id = js.session_id
		WHERE js.project_id = ? AND js.ts >= ? AND js.ts < ?`, q.ProjectID, q.From.UnixMilli(), q.To.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("search terms: %w", err)
	}
	for rows.Next() {
		var r search
		if err := rows.Scan(&r.term, &r.sid, &r.ts, &r.vis, &r.convAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan search: %w", err)
		}
		searches = append(searches, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search terms: %w", err)
	}
	if !seg.IsZero() && len(searches) > 0 {
		// The segment is the index's to test: ask it which of the
		// sessions with searches in the range match.
		ids := make([]int64, 0, len(searches))
		seen := map[int64]bool{}
		for _, r := range searches {
			if !seen[r.sid] {
				seen[r.sid] = true
				ids = append(ids, r.sid)
			}
		}
		keep := map[int64]bool{}
		err := s.core.ScanSessions(ctx, index.SessionScan{ProjectID: q.ProjectID, IDs: ids, Match: seg}, func(id int64, _ []string) error {
			keep[id] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("search terms: %w", err)
		}
		kept := searches[:0]
		for _, r := range searches {
			if keep[r.sid] {
				kept = append(kept, r)
			}
		}
		searches = kept
	}
	type termAcc struct {
		searches  int
		sessions  map[int64]bool // → converted later in the session
		people    map[int64]int64
		converted map[int64]bool
	}
	terms := map[string]*termAcc{}
	res := &SearchTermsResult{From: q.From.UTC(), To: q.To.UTC(), Params: st.SearchParams, Terms: []SearchTerm{}}
	allSessions, allPeople := map[int64]bool{}, map[int64]bool{}
	for _, r := range searches {
		term, sid, ts, vis, convAt := r.term, r.sid, r.ts, r.vis, r.convAt
		t := terms[term]
		if t == nil {
			t = &termAcc{sessions: map[int64]bool{}, people: map[int64]int64{}}
			terms[term] = t
		}
		res.Searches++
		t.searches++
		t.sessions[sid] = t.sessions[sid] || (convAt > 0 && convAt >= ts)
		person := pm.person(vis)
		if first, ok := t.people[person]; !ok || ts < first {
			t.people[person] = ts
		}
		allSessions[sid], allPeople[person] = true, true
	}
	res.Sessions, res.People = len(allSessions), len(allPeople)
	for term, t := range terms {
		st := SearchTerm{Term: term, Searches: t.searches, Sessions: len(t.sessions), People: len(t.people)}
		for _, conv := range t.sessions {
			if conv {
				st.ConvertedSessions++
			}
		}
		for person, first := range t.people {
			if convertedAfter(convs[person], first) {
				st.ConvertedPeople++
			}
		}
		st.SessionConversionRate = ratio(st.ConvertedSessions, st.Sessions)
		st.PeopleConversionRate = ratio(st.ConvertedPeople, st.People)
		res.Terms = append(res.Terms, st)
	}
	sort.Slice(res.Terms, func(i, j int) bool {
		a, b := res.Terms[i], res.Terms[j]
		if a.Searches != b.Searches {
			return a.Searches > b.Searches
		}
		return a.Term < b.Term
	})
	if len(res.Terms) > q.Limit {
		res.Terms = res.Terms[:q.Limit]
	}
	return res, nil
}

// personConversions returns each person's session conversion times (first
// conversion per session), sorted, for sessions started before to.
func (s *Service) personConversions(ctx context.Context, projectID, to int64, pm *personMap) (map[int64][]int64, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT visitor, converted_at FROM journey_sessions
		WHERE project_id = ? AND started_at < ? AND converted_at IS NOT NULL`, projectID, to)
	if err != nil {
		return nil, fmt.Errorf("read conversions: %w", err)
	}
	defer rows.Close()
	out := map[int64][]int64{}
	for rows.Next() {
		var vis, at int64
		if err := rows.Scan(&vis, &at); err != nil {
			return nil, fmt.Errorf("scan conversion: %w", err)
		}
		p := pm.person(vis)
		out[p] = append(out[p], at)
	}
	for _, ts := range out {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	}
	return out, rows.Err()
}

func convertedAfter(sorted []int64, ts int64) bool {
	i := sort.Search(len(sorted), func(i int) bool { return sorted[i] >= ts })
	return i < len(sorted)
}

// Bucket is one bar of a distribution: [Min, Max) in the unit of the
// distribution, Max 0 meaning no upper bound.
type Bucket struct {
	Label string `json:"label"`
	Min   int64  `json:"min"`
	Max   int64  `json:"max,omitempty"`
	Count int    `json:"count"`
}

// ConversionStats describes conversions and what leads to them.
type ConversionStats struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Conversion string    `json:"conversion"` // what counted as a conversion
	// People had a session in the range; Converted of them converted in
	// such a session.
	People         int     `json:"people"`
	Converted      int     `json:"converted"`
	ConversionRate float64 `json:"conversion_rate"`
	// Searchers searched in a session in the range; SearcherConversionRate
	// is the share of them that converted after their first search there,
	// NonSearcherConversionRate the share of the others that converted.
	Searchers                 int     `json:"searchers"`
	SearcherConversionRate    float64 `json:"searcher_conversion_rate"`
	NonSearcherConversionRate float64 `json:"non_searcher_conversion_rate"`
	// NewConverters converted for the first time (ever) in the range.
	// The distributions below describe them: visits up to and including
	// the converting one, and the time from their first visit.
	NewConverters            int      `json:"new_converters"`
	SearchedBeforeConverting int      `json:"searched_before_converting"`
	SearchBeforeShare        float64  `json:"search_before_share"`
	VisitsToConvert          []Bucket `json:"visits_to_convert"`
	MedianVisitsToConvert    *int64   `json:"median_visits_to_convert"`
	TimeToConvert            []Bucket `json:"time_to_convert"` // ms
	MedianTimeToConvertMS    *int64   `json:"median_time_to_convert_ms"`
	TookMS                   int64    `json:"took_ms"`
}

type convSess struct {
	person, start, session int64
	convAt, searchAt       int64
}

// ConversionStats reports conversion rates of searchers and the others,
// and, for people converting for the first time in the range, how many
// visits and how long it took. The whole history before To is read, so
// first visits and first conversions are really the first.
func (s *Service) ConversionStats(ctx context.Context, q IntentQuery) (*ConversionStats, error) {
	started := time.Now()
	seg, err := s.checkIntent(ctx, &q)
	if err != nil {
		return nil, err
	}
	res := &ConversionStats{From: q.From.UTC(), To: q.To.UTC()}
	sq := scanQuery{project: q.ProjectID, from: 0, to: q.To.UnixMilli(), segment: seg, skipTL: true}
	var tbl *keyTable
	if q.ConversionEvent != "" || q.ConversionPage != "" {
		var ms []matcher
		var desc []string
		if q.ConversionEvent != "" {
			m, err := compileStep(Step{Type: "event", Match: q.ConversionEvent})
			if err != nil {
				return nil, err
			}
			ms, desc = append(ms, m), append(desc, "event "+q.ConversionEvent)
		}
		if q.ConversionPage != "" {
			m, err := compileStep(Step{Type: "page", Match: q.ConversionPage})
			if err != nil {
				return nil, err
			}
			ms, desc = append(ms, m), append(desc, "page "+q.ConversionPage)
		}
		dv, err := s.dictionary(ctx, q.ProjectID)
		if err != nil {
			return nil, err
		}
		tbl = newKeyTable(dv, func(i int) uint32 {
			for _, m := range ms {
				if m.match(dv.kinds[i], dv.names[i]) {
					return 1
				}
			}
			return 0
		})
		sq.skipTL = false
		res.Conversion = strings.Join(desc, " or ")
	} else {
		st, _, err := s.Settings(ctx, q.ProjectID)
		if err != nil {
			return nil, err
		}
		var desc []string
		for _, e := range st.ConversionEvents {
			desc = append(desc, "event "+e)
		}
		for _, p := range st.ConversionPages {
			desc = append(desc, "page "+p)
		}
		res.Conversion = strings.Join(desc, " or ")
	}
	pm, err := s.people(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	workers := scanSlots()
	recs := make([][]convSess, workers)
	err = s.scan(ctx, sq, func(w int, r *scanRow) error {
		c := convSess{person: pm.person(r.visitor), start: r.start, session: r.session, convAt: r.convAt, searchAt: r.searchAt}
		if tbl != nil {
			c.convAt = 0
			for _, e := range r.entries {
				if tbl.get(e.key) != 0 {
					c.convAt = e.ts
					break
				}
			}
		}
		recs[w] = append(recs[w], c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var all []convSess
	for _, r := range recs {
		all = append(all, r...)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := &all[i], &all[j]
		if a.person != b.person {
			return a.person < b.person
		}
		if a.start != b.start {
			return a.start < b.start
		}
		return a.session < b.session
	})
	from := q.From.UnixMilli()
	var visits, times []int64
	searchConv, nonSearchers, nonSearchConv := 0, 0, 0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].person == all[i].person {
			j++
		}
		ps := all[i:j]
		i = j
		active, converted := false, false
		var firstSearchIn, firstSearch, firstConv int64
		convIdx := -1
		for k, c := range ps {
			if c.start >= from {
				active = true
				if c.convAt > 0 {
					converted = true
				}
				if c.searchAt > 0 && (firstSearchIn == 0 || c.searchAt < firstSearchIn) {
					firstSearchIn = c.searchAt
				}
			}
			if c.searchAt > 0 && (firstSearch == 0 || c.searchAt < firstSearch) {
				firstSearch = c.searchAt
			}
			if c.convAt > 0 && (firstConv == 0 || c.convAt < firstConv) {
				firstConv, convIdx = c.convAt, k
			}
		}
		if !active {
			continue
		}
		res.People++
		if converted {
			res.Converted++
		}
		if firstSearchIn > 0 {
			res.Searchers++
			for _, c := range ps {
				if c.convAt > 0 && c.convAt >= firstSearchIn {
					searchConv++
					break
				}
			}
		} else {
			nonSearchers++
			if converted {
				nonSearchConv++
			}
		}
		if convIdx >= 0 && ps[convIdx].start >= from {
			res.NewConverters++
			// Visits up to the converting one, in start order.
			visits = append(visits, int64(convIdx+1))
			times = append(times, max(0, firstConv-ps[0].start))
			if firstSearch > 0 && firstSearch <= firstConv {
				res.SearchedBeforeConverting++
			}
		}
	}
	res.ConversionRate = ratio(res.Converted, res.People)
	res.SearcherConversionRate = ratio(searchConv, res.Searchers)
	res.NonSearcherConversionRate = ratio(nonSearchConv, nonSearchers)
	res.SearchBeforeShare = ratio(res.SearchedBeforeConverting, res.NewConverters)
	res.VisitsToConvert = histogram(visits, visitBuckets())
	res.TimeToConvert = histogram(times, timeBuckets())
	if m, ok := median(visits); ok {
		res.MedianVisitsToConvert = &m
	}
	if m, ok := median(times); ok {
		res.MedianTimeToConvertMS = &m
	}
	res.TookMS = time.Since(started).Milliseconds()
	return res, nil
}

func visitBuckets() []Bucket {
	return []Bucket{{Label: "1", Min: 1, Max: 2}, {Label: "2", Min: 2, Max: 3}, {Label: "3", Min: 3, Max: 4},
		{Label: "4", Min: 4, Max: 5}, {Label: "5", Min: 5, Max: 6}, {Label: "6-10", Min: 6, Max: 11},
		{Label: "11-20", Min: 11, Max: 21}, {Label: "21+", Min: 21}}
}

func timeBuckets() []Bucket {
	h, d := time.Hour.Milliseconds(), 24*time.Hour.Milliseconds()
	return []Bucket{{Label: "< 1 hour", Min: 0, Max: h}, {Label: "1 hour - 1 day", Min: h, Max: d},
		{Label: "1-3 days", Min: d, Max: 3 * d}, {Label: "3-7 days", Min: 3 * d, Max: 7 * d},
		{Label: "7-14 days", Min: 7 * d, Max: 14 * d}, {Label: "14-30 days", Min: 14 * d, Max: 30 * d},
		{Label: "30+ days", Min: 30 * d}}
}

func histogram(xs []int64, bs []Bucket) []Bucket {
	for _, x := range xs {
		for i := range bs {
			if x >= bs[i].Min && (bs[i].Max == 0 || x < bs[i].Max) {
				bs[i].Count++
				break
			}
		}
	}
	return bs
}
