package journey

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Segment is a condition on sessions, written as JSON and compiled to an SQL
// expression with bound parameters (user input never becomes SQL text).
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

// Compiled is a segment as an SQL boolean expression over a sessions row,
// with its arguments in order. Use it as
//
//	SELECT ... FROM sessions s ... WHERE ... AND (<SQL>)
//
// appending Args to the query's arguments at the matching position. The
// expression refers only to the sessions alias given to Compile and to
// tables it names itself (aliases starting with "j_").
type Compiled struct {
	SQL  string
	Args []any
}

// Empty reports whether the segment matches everything.
func (c Compiled) Empty() bool { return c.SQL == "" || c.SQL == "1" }

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
	if _, err := seg.Compile("s"); err != nil {
		return seg, err
	}
	return seg, nil
}

// IsEmpty reports whether seg is {} (matches every session).
func (seg Segment) IsEmpty() bool {
	return seg.And == nil && seg.Or == nil && seg.Not == nil && seg.Field == ""
}

var aliasRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,20}$`)

// Limits on segments from the API.
const (
	maxSegmentDepth = 6
	maxSegmentNodes = 64
)

// Compile turns the segment into SQL over the sessions table aliased as
// sessions (e.g. "s").
func (seg Segment) Compile(sessions string) (Compiled, error) {
	if !aliasRE.MatchString(sessions) {
		return Compiled{}, fmt.Errorf("segment: bad sessions alias %q", sessions)
	}
	c := &compiler{}
	sql, err := c.node(seg, sessions, 0)
	if err != nil {
		return Compiled{}, err
	}
	return Compiled{SQL: sql, Args: c.args}, nil
}

type compiler struct {
	args  []any
	nodes int
}

func (c *compiler) node(seg Segment, s string, depth int) (string, error) {
	if c.nodes++; c.nodes > maxSegmentNodes {
		return "", invalidf("segment: more than %d conditions", maxSegmentNodes)
	}
	if depth > maxSegmentDepth {
		return "", invalidf("segment: nested deeper than %d", maxSegmentDepth)
	}
	kinds := 0
	for _, b := range []bool{seg.And != nil, seg.Or != nil, seg.Not != nil, seg.Field != ""} {
		if b {
			kinds++
		}
	}
	if kinds > 1 {
		return "", invalidf(`segment: a condition is exactly one of "and", "or", "not" or "field"`)
	}
	switch {
	case seg.And != nil, seg.Or != nil:
		list, join := seg.And, " AND "
		if seg.Or != nil {
			list, join = seg.Or, " OR "
		}
		if len(list) == 0 {
			return "", invalidf(`segment: "and"/"or" needs at least one condition`)
		}
		parts := make([]string, 0, len(list))
		for _, sub := range list {
			p, err := c.node(sub, s, depth+1)
			if err != nil {
				return "", err
			}
			parts = append(parts, "("+p+")")
		}
		return strings.Join(parts, join), nil
	case seg.Not != nil:
		p, err := c.node(*seg.Not, s, depth+1)
		if err != nil {
			return "", err
		}
		return "NOT (" + p + ")", nil
	case seg.Field != "":
		return c.leaf(seg, s)
	}
	if seg.Op != "" || seg.Value != nil || seg.Scope != "" {
		return "", invalidf(`segment: "op", "value" and "scope" need a "field"`)
	}
	return "1", nil
}

// field describes one segment field: which operators it takes and how it
// becomes SQL. personLevel fields describe the person, not the session.
type field struct {
	ops         []string
	personLevel bool
	build       func(c *compiler, s, op string, v json.RawMessage) (string, error)
}

var fields = map[string]field{
	"device":        {ops: []string{"eq", "neq", "in"}, build: enumField("device", []string{"desktop", "tablet", "mobile", ""})},
	"browser":       {ops: []string{"eq", "neq", "in", "contains"}, build: textColumn("browser")},
	"os":            {ops: []string{"eq", "neq", "in", "contains"}, build: textColumn("os")},
	"referrer_host": {ops: []string{"eq", "neq", "contains", "exists"}, build: referrerField},
	"utm_source":    {ops: []string{"eq", "neq", "contains", "exists"}, build: utmField("utm_source")},
	"utm_medium":    {ops: []string{"eq", "neq", "contains", "exists"}, build: utmField("utm_medium")},
	"utm_campaign":  {ops: []string{"eq", "neq", "contains", "exists"}, build: utmField("utm_campaign")},
	"entry_page":    {ops: []string{"eq", "matches"}, build: entryPageField},
	"page":          {ops: []string{"eq", "matches"}, build: pageField},
	"event":         {ops: []string{"eq", "matches"}, build: eventField},
	"search":        {ops: []string{"exists", "contains", "eq"}, build: searchField},
	"converted":     {ops: []string{"eq"}, build: boolExpr(func(s string) string { return s + ".conversions > 0" })},
	"rage_clicks":   {ops: numOps, build: numberExpr(func(s string) string { return s + ".rage_clicks" })},
	"dead_clicks":   {ops: numOps, build: numberExpr(func(s string) string { return s + ".dead_clicks" })},
	"errors":        {ops: numOps, build: numberExpr(func(s string) string { return s + ".errors" })},
	"duration":      {ops: numOps, build: numberExpr(func(s string) string { return "((" + s + ".ended_at - " + s + ".started_at) / 1000.0)" })},
	"visits":        {ops: numOps, personLevel: true, build: numberExpr(visitsExpr)},
	"visitor_type":  {ops: []string{"eq"}, personLevel: true, build: visitorTypeField},
	"identified":    {ops: []string{"eq"}, personLevel: true, build: boolExpr(func(s string) string { return userIDExpr(s) + " IS NOT NULL" })},
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

func (c *compiler) leaf(seg Segment, s string) (string, error) {
	if seg.And != nil || seg.Or != nil || seg.Not != nil {
		return "", invalidf("segment: a field condition cannot also have and/or/not")
	}
	f, ok := fields[seg.Field]
	if !ok {
		return "", invalidf("segment: unknown field %q", seg.Field)
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
		return "", invalidf("segment: field %q takes op %s, not %q", seg.Field, strings.Join(f.ops, ", "), op)
	}
	if len(seg.Value) == 0 {
		return "", invalidf("segment: field %q needs a value", seg.Field)
	}
	switch seg.Scope {
	case "", "session":
		sql, err := f.build(c, s, op, seg.Value)
		if err != nil {
			return "", fmt.Errorf("segment field %q: %w", seg.Field, err)
		}
		return sql, nil
	case "person":
		if f.personLevel {
			return f.build(c, s, op, seg.Value)
		}
		// Any session of the same person matches.
		inner, err := f.build(c, "j_ps", op, seg.Value)
		if err != nil {
			return "", fmt.Errorf("segment field %q: %w", seg.Field, err)
		}
		return "EXISTS (SELECT 1 FROM sessions j_ps WHERE j_ps.project_id = " + s + ".project_id AND j_ps.visitor_id IN (" +
			personVisitors(s) + ") AND (" + inner + "))", nil
	}
	return "", invalidf(`segment: scope must be "session" or "person", not %q`, seg.Scope)
}

// userIDExpr is the identified user id of a session's visitor (NULL if
// anonymous).
func userIDExpr(s string) string {
	return "(SELECT j_u.user_id FROM visitors j_u WHERE j_u.project_id = " + s + ".project_id AND j_u.id = " + s + ".visitor_id)"
}

// personVisitors selects the visitor ids of a session's person.
func personVisitors(s string) string {
	return "SELECT j_pv.id FROM visitors j_pv WHERE j_pv.project_id = " + s + ".project_id AND j_pv.user_id = " +
		userIDExpr(s) + " UNION ALL SELECT " + s + ".visitor_id"
}

func visitsExpr(s string) string {
	return "(SELECT COUNT(*) FROM sessions j_vc WHERE j_vc.project_id = " + s + ".project_id AND j_vc.visitor_id IN (" + personVisitors(s) + "))"
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

func (c *compiler) bind(args ...any) string {
	c.args = append(c.args, args...)
	return strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
}

func enumField(col string, allowed []string) func(*compiler, string, string, json.RawMessage) (string, error) {
	return func(c *compiler, s, op string, v json.RawMessage) (string, error) {
		list, err := stringList(op, v)
		if err != nil {
			return "", err
		}
		args := make([]any, len(list))
		for i, x := range list {
			if x == "unknown" {
				x = ""
			}
			ok := false
			for _, a := range allowed {
				ok = ok || a == x
			}
			if !ok {
				return "", invalidf("%q is not one of desktop, tablet, mobile, unknown", x)
			}
			args[i] = x
		}
		not := ""
		if op == "neq" {
			not = "NOT "
		}
		return s + "." + col + " " + not + "IN (" + c.bind(args...) + ")", nil
	}
}

func textColumn(col string) func(*compiler, string, string, json.RawMessage) (string, error) {
	return func(c *compiler, s, op string, v json.RawMessage) (string, error) {
		return c.textOp(s+"."+col, op, v)
	}
}

// textOp compares a text expression case-insensitively.
func (c *compiler) textOp(expr, op string, v json.RawMessage) (string, error) {
	list, err := stringList(op, v)
	if err != nil {
		return "", err
	}
	switch op {
	case "contains":
		return "lower(" + expr + ") LIKE " + c.bind("%"+likeEscape(strings.ToLower(list[0]))+"%") + ` ESCAPE '\'`, nil
	case "neq":
		return "lower(" + expr + ") != lower(" + c.bind(list[0]) + ")", nil
	}
	args := make([]any, len(list))
	for i, x := range list {
		args[i] = strings.ToLower(x)
	}
	return "lower(" + expr + ") IN (" + c.bind(args...) + ")", nil
}

func boolExpr(expr func(s string) string) func(*compiler, string, string, json.RawMessage) (string, error) {
	return func(c *compiler, s, op string, v json.RawMessage) (string, error) {
		b, err := boolValue(v)
		if err != nil {
			return "", err
		}
		if b {
			return expr(s), nil
		}
		return "NOT (" + expr(s) + ")", nil
	}
}

var numSQL = map[string]string{"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

func numberExpr(expr func(s string) string) func(*compiler, string, string, json.RawMessage) (string, error) {
	return func(c *compiler, s, op string, v json.RawMessage) (string, error) {
		var n float64
		if err := json.Unmarshal(v, &n); err != nil || n < 0 || n > 1e12 {
			return "", invalidf("value must be a number from 0")
		}
		return expr(s) + " " + numSQL[op] + " " + c.bind(n), nil
	}
}

// referrerHostExpr is the lower-case host of a session's referrer
// ("scheme://host/path" as the recorder stores it).
func referrerHostExpr(s string) string {
	r := s + ".referrer"
	rest := "(CASE WHEN instr(" + r + ", '://') > 0 THEN substr(" + r + ", instr(" + r + ", '://') + 3) ELSE " + r + " END)"
	return "lower(CASE WHEN instr(" + rest + ", '/') > 0 THEN substr(" + rest + ", 1, instr(" + rest + ", '/') - 1) ELSE " + rest + " END)"
}

func referrerField(c *compiler, s, op string, v json.RawMessage) (string, error) {
	h := referrerHostExpr(s)
	if op == "exists" {
		b, err := boolValue(v)
		if err != nil {
			return "", err
		}
		if b {
			return h + " != ''", nil
		}
		return h + " = ''", nil
	}
	val, err := stringValue(v)
	if err != nil {
		return "", err
	}
	val = strings.ToLower(strings.TrimSpace(val))
	switch op {
	case "contains":
		return h + " LIKE " + c.bind("%"+likeEscape(val)+"%") + ` ESCAPE '\'`, nil
	case "neq":
		return "NOT (" + h + " = " + c.bind(val) + " OR " + h + " LIKE " + c.bind("%."+likeEscape(val)) + ` ESCAPE '\')`, nil
	}
	// A host matches itself and its subdomains: google.com matches
	// www.google.com.
	return "(" + h + " = " + c.bind(val) + " OR " + h + " LIKE " + c.bind("%."+likeEscape(val)) + ` ESCAPE '\')`, nil
}

// entryURLExpr is the URL of a session's earliest page view. The sessions
// row's entry_url is the first page of the first batch applied, which is
// not the entry page when batches arrive out of order.
func entryURLExpr(s string) string {
	return "COALESCE((SELECT j_eu.url FROM pages j_eu WHERE j_eu.session_id = " + s + ".id ORDER BY j_eu.ts, j_eu.id LIMIT 1), " + s + ".entry_url)"
}

// queryParamExpr is the raw (still URL-encoded) value of a query parameter
// of a session's entry URL, or NULL. name is one of our constants.
func queryParamExpr(s, name string) string {
	u := entryURLExpr(s)
	q := "(CASE WHEN instr(" + u + ", '?') > 0 THEN '&' || replace(substr(" + u + ", instr(" + u + ", '?') + 1), '#', '&') || '&' ELSE '' END)"
	key := "'&" + name + "='"
	after := "substr(" + q + ", instr(" + q + ", " + key + ") + " + fmt.Sprint(len(name)+2) + ")"
	return "(CASE WHEN instr(" + q + ", " + key + ") > 0 THEN substr(" + after + ", 1, instr(" + after + ", '&') - 1) END)"
}

func utmField(name string) func(*compiler, string, string, json.RawMessage) (string, error) {
	return func(c *compiler, s, op string, v json.RawMessage) (string, error) {
		e := "lower(" + queryParamExpr(s, name) + ")"
		if op == "exists" {
			b, err := boolValue(v)
			if err != nil {
				return "", err
			}
			if b {
				return "COALESCE(" + e + ", '') != ''", nil
			}
			return "COALESCE(" + e + ", '') = ''", nil
		}
		val, err := stringValue(v)
		if err != nil {
			return "", err
		}
		val = strings.ToLower(val)
		// The URL holds the value encoded, as a form (+ for space) or a
		// path (%20) would encode it.
		enc1, enc2 := strings.ToLower(url.QueryEscape(val)), strings.ToLower(url.PathEscape(val))
		switch op {
		case "contains":
			return "(" + e + " LIKE " + c.bind("%"+likeEscape(enc1)+"%") + ` ESCAPE '\' OR ` + e + " LIKE " + c.bind("%"+likeEscape(enc2)+"%") + ` ESCAPE '\')`, nil
		case "neq":
			return "COALESCE(" + e + ", '') NOT IN (" + c.bind(enc1, enc2) + ")", nil
		}
		return e + " IN (" + c.bind(enc1, enc2) + ")", nil
	}
}

func patternOp(c *compiler, expr, op string, v json.RawMessage) (string, error) {
	val, err := stringValue(v)
	if err != nil {
		return "", err
	}
	if op == "eq" {
		return expr + " = " + c.bind(val), nil
	}
	p, err := ParsePattern(val)
	if err != nil {
		return "", err
	}
	return expr + " GLOB " + c.bind(p.Glob()), nil
}

func entryPageField(c *compiler, s, op string, v json.RawMessage) (string, error) {
	return patternOp(c, "(SELECT j_e.path FROM pages j_e WHERE j_e.session_id = "+s+".id ORDER BY j_e.ts, j_e.id LIMIT 1)", op, v)
}

func pageField(c *compiler, s, op string, v json.RawMessage) (string, error) {
	cond, err := patternOp(c, "j_p.path", op, v)
	if err != nil {
		return "", err
	}
	return "EXISTS (SELECT 1 FROM pages j_p WHERE j_p.session_id = " + s + ".id AND " + cond + ")", nil
}

func eventField(c *compiler, s, op string, v json.RawMessage) (string, error) {
	cond, err := patternOp(c, "j_ev.name", op, v)
	if err != nil {
		return "", err
	}
	return "EXISTS (SELECT 1 FROM custom_events j_ev WHERE j_ev.session_id = " + s + ".id AND " + cond + ")", nil
}

func searchField(c *compiler, s, op string, v json.RawMessage) (string, error) {
	base := "SELECT 1 FROM journey_searches j_se WHERE j_se.session_id = " + s + ".id"
	switch op {
	case "exists":
		b, err := boolValue(v)
		if err != nil {
			return "", err
		}
		if b {
			return "EXISTS (" + base + ")", nil
		}
		return "NOT EXISTS (" + base + ")", nil
	case "contains":
		val, err := stringValue(v)
		if err != nil {
			return "", err
		}
		return "EXISTS (" + base + " AND j_se.term LIKE " + c.bind("%"+likeEscape(strings.ToLower(val))+"%") + ` ESCAPE '\')`, nil
	}
	val, err := stringValue(v)
	if err != nil {
		return "", err
	}
	return "EXISTS (" + base + " AND j_se.term = " + c.bind(strings.ToLower(strings.Join(strings.Fields(val), " "))) + ")", nil
}

func visitorTypeField(c *compiler, s, op string, v json.RawMessage) (string, error) {
	val, err := stringValue(v)
	if err != nil {
		return "", err
	}
	first := "NOT EXISTS (SELECT 1 FROM sessions j_f WHERE j_f.project_id = " + s + ".project_id AND j_f.visitor_id IN (" +
		personVisitors(s) + ") AND (j_f.started_at < " + s + ".started_at OR (j_f.started_at = " + s + ".started_at AND j_f.id < " + s + ".id)))"
	switch val {
	case "new":
		return first, nil
	case "returning":
		return "NOT " + first, nil
	}
	return "", invalidf(`visitor_type is "new" or "returning", not %q`, val)
}

func userIDField(c *compiler, s, op string, v json.RawMessage) (string, error) {
	list, err := stringList(op, v)
	if err != nil {
		return "", err
	}
	args := make([]any, len(list))
	for i, x := range list {
		args[i] = x
	}
	return userIDExpr(s) + " IN (" + c.bind(args...) + ")", nil
}
