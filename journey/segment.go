package journey

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// Segment is a condition on sessions, written as JSON. Journey checks it and
// turns it into the index's typed condition (index.Match), which the index
// compiles to SQL with bound parameters: user input never becomes SQL text,
// and no SQL leaves the package that owns the tables it names.
//
// A segment is exactly one of:
//
//	{"and": [seg, ...]}   all hold
//	{"or":  [seg, ...]}   at least one holds
//	{"not": seg}          does not hold
//	{"field": F, "op": OP, "value": V, "scope": "session"|"person"}
//	{}                    every session
//
// Fields about the session (scope "session", the default, tests the session
// itself; scope "person" tests whether any session of the same person
// matches): device, browser, os, referrer_host, utm_source, utm_medium,
// utm_campaign, entry_page, page, event, search, converted, rage_clicks,
// dead_clicks, errors, duration. Fields about the person (scope is
// ignored): visits, visitor_type, identified, user_id. See fields below for
// each field's operators and values.
//
// People are joined by identify: a person is all visitors with the same
// identified user id (at query time, so a late identify joins earlier
// sessions too), or a lone anonymous visitor.
type Segment struct {
	And   []Segment       `json:"and,omitempty"`
	Or    []Segment       `json:"or,omitempty"`
	Not   *Segment        `json:"not,omitempty"`
	Field string          `json:"field,omitempty"`
	Op    string          `json:"op,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
	Scope string          `json:"scope,omitempty"`
}

// ParseSegment decodes and checks a segment; empty input is the empty
// segment.
func ParseSegment(raw []byte) (Segment, error) {
	var seg Segment
	if len(bytes.TrimSpace(raw)) == 0 {
		return seg, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&seg); err != nil {
		return seg, invalidf("segment: %v", err)
	}
	// Decode stops after the first value: more would be silently ignored.
	if _, err := dec.Token(); err != io.EOF {
		return Segment{}, invalidf("segment: unexpected data after the segment")
	}
	if _, err := seg.toMatch(nil); err != nil {
		return seg, err
	}
	return seg, nil
}

// IsEmpty reports whether seg is {} (matches every session).
func (seg Segment) IsEmpty() bool {
	return seg.And == nil && seg.Or == nil && seg.Not == nil && seg.Field == ""
}

// Limits on segments from the API.
const (
	maxSegmentDepth = 6
	maxSegmentNodes = 64
)

// searchSet resolves a site-search condition (op exists, contains or eq
// with its normalised term) to the sessions that have such a search.
type searchSet func(op, term string) ([]int64, error)

// toMatch checks seg and turns it into an index.Match. Site searches are
// journey's own data: searches resolves them to session id sets (nil: only
// check the segment).
func (seg Segment) toMatch(searches searchSet) (index.Match, error) {
	c := &converter{searches: searches}
	return c.node(seg, 0)
}

type converter struct {
	searches searchSet
	nodes    int
}

func (c *converter) node(seg Segment, depth int) (index.Match, error) {
	if c.nodes++; c.nodes > maxSegmentNodes {
		return index.Match{}, invalidf("segment: more than %d conditions", maxSegmentNodes)
	}
	if depth > maxSegmentDepth {
		return index.Match{}, invalidf("segment: nested deeper than %d", maxSegmentDepth)
	}
	kinds := 0
	for _, b := range []bool{seg.And != nil, seg.Or != nil, seg.Not != nil, seg.Field != ""} {
		if b {
			kinds++
		}
	}
	if kinds > 1 {
		return index.Match{}, invalidf(`segment: a condition is exactly one of "and", "or", "not" or "field"`)
	}
	switch {
	case seg.And != nil, seg.Or != nil:
		list := seg.And
		if seg.Or != nil {
			list = seg.Or
		}
		if len(list) == 0 {
			return index.Match{}, invalidf(`segment: "and"/"or" needs at least one condition`)
		}
		ms := make([]index.Match, 0, len(list))
		for _, sub := range list {
			m, err := c.node(sub, depth+1)
			if err != nil {
				return index.Match{}, err
			}
			ms = append(ms, m)
		}
		if seg.Or != nil {
			return index.Match{Or: ms}, nil
		}
		return index.Match{And: ms}, nil
	case seg.Not != nil:
		m, err := c.node(*seg.Not, depth+1)
		if err != nil {
			return index.Match{}, err
		}
		return index.Match{Not: &m}, nil
	case seg.Field != "":
		return c.leaf(seg)
	}
	if seg.Op != "" || seg.Value != nil || seg.Scope != "" {
		return index.Match{}, invalidf(`segment: "op", "value" and "scope" need a "field"`)
	}
	return index.Match{}, nil
}

// field describes one segment field: which operators it takes and how a
// condition on it becomes an index.Match. personLevel fields describe the
// person, not the session.
type field struct {
	ops         []string
	personLevel bool
	build       func(c *converter, op string, v json.RawMessage) (index.Match, error)
}

var fields = map[string]field{
	"device":        {ops: []string{"eq", "neq", "in"}, build: deviceField},
	"browser":       {ops: []string{"eq", "neq", "in", "contains"}, build: textField(index.FieldBrowser)},
	"os":            {ops: []string{"eq", "neq", "in", "contains"}, build: textField(index.FieldOS)},
	"referrer_host": {ops: []string{"eq", "neq", "contains", "exists"}, build: existsOrText(index.FieldReferrerHost)},
	"utm_source":    {ops: []string{"eq", "neq", "contains", "exists"}, build: existsOrText(index.FieldUTMSource)},
	"utm_medium":    {ops: []string{"eq", "neq", "contains", "exists"}, build: existsOrText(index.FieldUTMMedium)},
	"utm_campaign":  {ops: []string{"eq", "neq", "contains", "exists"}, build: existsOrText(index.FieldUTMCampaign)},
	"entry_page":    {ops: []string{"eq", "matches"}, build: patternField(index.FieldEntryPage)},
	"page":          {ops: []string{"eq", "matches"}, build: patternField(index.FieldPage)},
	"event":         {ops: []string{"eq", "matches"}, build: patternField(index.FieldEvent)},
	"search":        {ops: []string{"exists", "contains", "eq"}, build: searchField},
	"converted":     {ops: []string{"eq"}, build: boolField(index.FieldConverted)},
	"rage_clicks":   {ops: numOps, build: numberField(index.FieldRageClicks)},
	"dead_clicks":   {ops: numOps, build: numberField(index.FieldDeadClicks)},
	"errors":        {ops: numOps, build: numberField(index.FieldErrors)},
	"duration":      {ops: numOps, build: numberField(index.FieldDuration)},
	"visits":        {ops: numOps, personLevel: true, build: numberField(index.FieldVisits)},
	"visitor_type":  {ops: []string{"eq"}, personLevel: true, build: visitorTypeField},
	"identified":    {ops: []string{"eq"}, personLevel: true, build: boolField(index.FieldIdentified)},
	"user_id":       {ops: []string{"eq", "in"}, personLevel: true, build: userIDField},
}

var numOps = []string{"eq", "neq", "gt", "gte", "lt", "lte"}

// SegmentFields lists the segment fields and their operators, for the API.
func SegmentFields() map[string][]string {
	out := map[string][]string{}
	for name, f := range fields {
		out[name] = f.ops
	}
	return out
}

func (c *converter) leaf(seg Segment) (index.Match, error) {
	if seg.And != nil || seg.Or != nil || seg.Not != nil {
		return index.Match{}, invalidf("segment: a field condition cannot also have and/or/not")
	}
	f, ok := fields[seg.Field]
	if !ok {
		return index.Match{}, invalidf("segment: unknown field %q", seg.Field)
	}
	op := seg.Op
	if op == "" {
		op = f.ops[0]
	}
	okOp := false
	for _, o := range f.ops {
		okOp = okOp || o == op
	}
	if !okOp {
		return index.Match{}, invalidf("segment: field %q takes op %s, not %q", seg.Field, strings.Join(f.ops, ", "), op)
	}
	if len(seg.Value) == 0 {
		return index.Match{}, invalidf("segment: field %q needs a value", seg.Field)
	}
	switch seg.Scope {
	case "", "session", "person":
	default:
		return index.Match{}, invalidf(`segment: scope must be "session" or "person", not %q`, seg.Scope)
	}
	m, err := f.build(c, op, seg.Value)
	if err != nil {
		if seg.Scope == "person" && f.personLevel {
			return index.Match{}, err
		}
		return index.Match{}, fmt.Errorf("segment field %q: %w", seg.Field, err)
	}
	// Scope "person": any session of the same person matches.
	m.Person = seg.Scope == "person" && !f.personLevel
	return m, nil
}

func stringValue(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", invalidf("value must be a string")
	}
	if len(s) > 500 {
		return "", invalidf("value longer than 500 characters")
	}
	return s, nil
}

func stringList(op string, v json.RawMessage) ([]string, error) {
	if op != "in" {
		s, err := stringValue(v)
		return []string{s}, err
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil || len(list) == 0 || len(list) > 100 {
		return nil, invalidf(`op "in" takes a list of 1 to 100 strings`)
	}
	return list, nil
}

func boolValue(v json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		return false, invalidf("value must be true or false")
	}
	return b, nil
}

func deviceField(c *converter, op string, v json.RawMessage) (index.Match, error) {
	list, err := stringList(op, v)
	if err != nil {
		return index.Match{}, err
	}
	out := make([]string, len(list))
	for i, x := range list {
		if x == "unknown" {
			x = ""
		}
		switch x {
		case "desktop", "tablet", "mobile", "":
		default:
			return index.Match{}, invalidf("%q is not one of desktop, tablet, mobile, unknown", x)
		}
		out[i] = x
	}
	return index.Match{Field: index.FieldDevice, Op: index.MatchOp(op), Text: out}, nil
}

func textField(f index.MatchField) func(*converter, string, json.RawMessage) (index.Match, error) {
	return func(c *converter, op string, v json.RawMessage) (index.Match, error) {
		list, err := stringList(op, v)
		if err != nil {
			return index.Match{}, err
		}
		return index.Match{Field: f, Op: index.MatchOp(op), Text: list}, nil
	}
}

func existsOrText(f index.MatchField) func(*converter, string, json.RawMessage) (index.Match, error) {
	return func(c *converter, op string, v json.RawMessage) (index.Match, error) {
		if op == "exists" {
			b, err := boolValue(v)
			return index.Match{Field: f, Op: index.OpExists, Bool: b}, err
		}
		val, err := stringValue(v)
		return index.Match{Field: f, Op: index.MatchOp(op), Text: []string{val}}, err
	}
}

func patternField(f index.MatchField) func(*converter, string, json.RawMessage) (index.Match, error) {
	return func(c *converter, op string, v json.RawMessage) (index.Match, error) {
		val, err := stringValue(v)
		if err != nil {
			return index.Match{}, err
		}
		if op == "eq" {
			return index.Match{Field: f, Op: index.OpEq, Text: []string{val}}, nil
		}
		p, err := ParsePattern(val)
		if err != nil {
			return index.Match{}, err
		}
		return index.Match{Field: f, Op: index.OpGlob, Text: []string{p.Glob()}}, nil
	}
}

func boolField(f index.MatchField) func(*converter, string, json.RawMessage) (index.Match, error) {
	return func(c *converter, op string, v json.RawMessage) (index.Match, error) {
		b, err := boolValue(v)
		return index.Match{Field: f, Op: index.OpEq, Bool: b}, err
	}
}

func numberField(f index.MatchField) func(*converter, string, json.RawMessage) (index.Match, error) {
	return func(c *converter, op string, v json.RawMessage) (index.Match, error) {
		var n float64
		if err := json.Unmarshal(v, &n); err != nil || n < 0 || n > 1e12 {
			return index.Match{}, invalidf("value must be a number from 0")
		}
		return index.Match{Field: f, Op: index.MatchOp(op), Number: n}, nil
	}
}

// searchField resolves a site-search condition to the sessions with such a
// search (journey_searches is journey's table, so the index gets ids).
func searchField(c *converter, op string, v json.RawMessage) (index.Match, error) {
	m := index.Match{Field: index.FieldSessionIn, Op: index.OpEq}
	var term string
	switch op {
	case "exists":
		b, err := boolValue(v)
		if err != nil {
			return index.Match{}, err
		}
		if !b {
			m.Op = index.OpNeq
		}
	case "contains":
		val, err := stringValue(v)
		if err != nil {
			return index.Match{}, err
		}
		term = strings.ToLower(val)
	default:
		val, err := stringValue(v)
		if err != nil {
			return index.Match{}, err
		}
		term = strings.ToLower(strings.Join(strings.Fields(val), " "))
	}
	if c.searches != nil {
		ids, err := c.searches(op, term)
		if err != nil {
			return index.Match{}, err
		}
		m.IDs = ids
	}
	return m, nil
}

func visitorTypeField(c *converter, op string, v json.RawMessage) (index.Match, error) {
	val, err := stringValue(v)
	if err != nil {
		return index.Match{}, err
	}
	if val != "new" && val != "returning" {
		return index.Match{}, invalidf(`visitor_type is "new" or "returning", not %q`, val)
	}
	return index.Match{Field: index.FieldVisitorType, Op: index.OpEq, Text: []string{val}}, nil
}

func userIDField(c *converter, op string, v json.RawMessage) (index.Match, error) {
	list, err := stringList(op, v)
	if err != nil {
		return index.Match{}, err
	}
	return index.Match{Field: index.FieldUserID, Op: index.MatchOp(op), Text: list}, nil
}

// SessionMatch turns a segment into the index's typed session condition,
// e.g. for the sessions list of projectIDs (nil: every project). Site-search
// conditions become the sets of those projects' sessions with such a
// search.
func (s *Service) SessionMatch(ctx context.Context, projectIDs []int64, seg Segment) (index.Match, error) {
	return seg.toMatch(func(op, term string) ([]int64, error) {
		return s.searchSessions(ctx, projectIDs, op, term)
	})
}

// Match turns a segment into the index's typed session condition without
// journey's data: a site-search condition is an error (ErrInvalid). For
// callers without a Service; SessionMatch handles every field.
func (seg Segment) Match() (index.Match, error) {
	return seg.toMatch(func(op, term string) ([]int64, error) {
		return nil, invalidf("segment: search conditions need the journey service")
	})
}

// match is SessionMatch for one project's report.
func (s *Service) match(ctx context.Context, projectID int64, seg Segment) (index.Match, error) {
	return s.SessionMatch(ctx, []int64{projectID}, seg)
}

// searchSessions lists the sessions of projects (nil: all) with a site
// search: any (op exists), whose term contains term, or equal to it.
func (s *Service) searchSessions(ctx context.Context, projectIDs []int64, op, term string) ([]int64, error) {
	q := `SELECT DISTINCT session_id FROM journey_searches WHERE TRUE`
	var args []any
	if projectIDs != nil {
		in, list := s.db.InIDs("project_id", projectIDs)
		q += ` AND ` + in
		args = append(args, list)
	}
	switch op {
	case "contains":
		// Terms are stored in lower case (searchTerms); SQLite's LIKE
		// ignores ASCII case, PostgreSQL's ILIKE any case.
		like := "LIKE"
		if s.db.Dialect() == sqldb.Postgres {
			like = "ILIKE"
		}
		q += ` AND term ` + like + ` ? ESCAPE '\'`
		args = append(args, "%"+likeEscape(term)+"%")
	case "eq":
		q += ` AND term = ?`
		args = append(args, term)
	}
	rows, err := s.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("segment: sessions with searches: %w", err)
	}
	defer rows.Close()
	ids := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("segment: scan search session: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("segment: sessions with searches: %w", err)
	}
	return ids, nil
}
