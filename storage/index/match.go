package index

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Match is a typed condition on a session, which the index compiles to SQL
// with bound arguments (journey segments arrive here after journey has
// parsed and checked them). It is exactly one of: And, Or, Not, a Field
// test, or nothing (every session).
type Match struct {
	And []Match
	Or  []Match
	Not *Match

	// Field is what the condition tests; Op, and Text, Number or Bool
	// (as the field takes), how.
	Field  MatchField
	Op     MatchOp
	Text   []string // one value, or the list of OpIn
	Number float64
	Bool   bool
	// IDs are the sessions of FieldSessionIn: a set another owner
	// resolved (e.g. the sessions with a site search).
	IDs []int64
	// Person asks whether any session of the same person (all visitors
	// with the session's identified user id, or the lone anonymous
	// visitor) passes the test, instead of this session. Fields about the
	// person ignore it.
	Person bool
}

// MatchField is a session attribute a Match tests.
type MatchField string

// The fields of a Match and the operators each takes.
const (
	FieldDevice       MatchField = "device"        // OpEq, OpNeq, OpIn on Text ("" unknown)
	FieldBrowser      MatchField = "browser"       // OpEq, OpNeq, OpIn, OpContains on Text, case-insensitive
	FieldOS           MatchField = "os"            // as FieldBrowser
	FieldReferrerHost MatchField = "referrer_host" // OpEq (host or a subdomain), OpNeq, OpContains on Text; OpExists on Bool
	FieldUTMSource    MatchField = "utm_source"    // of the entry URL: OpEq, OpNeq, OpContains on Text; OpExists on Bool
	FieldUTMMedium    MatchField = "utm_medium"    // as FieldUTMSource
	FieldUTMCampaign  MatchField = "utm_campaign"  // as FieldUTMSource
	FieldEntryPage    MatchField = "entry_page"    // path of the earliest page: OpEq, OpGlob on Text
	FieldPage         MatchField = "page"          // a page visited: OpEq, OpGlob on Text
	FieldEvent        MatchField = "event"         // a custom event done: OpEq, OpGlob on Text
	FieldConverted    MatchField = "converted"     // OpEq on Bool
	FieldRageClicks   MatchField = "rage_clicks"   // numeric ops on Number
	FieldDeadClicks   MatchField = "dead_clicks"   // numeric ops on Number
	FieldErrors       MatchField = "errors"        // numeric ops on Number
	FieldDuration     MatchField = "duration"      // seconds; numeric ops on Number
	FieldSessionIn    MatchField = "session_in"    // OpEq (or no op): the session is one of IDs; OpNeq: it is not
	FieldVisits       MatchField = "visits"        // the person's sessions; numeric ops on Number
	FieldVisitorType  MatchField = "visitor_type"  // OpEq on Text: "new" (the person's first session) or "returning"
	FieldIdentified   MatchField = "identified"    // OpEq on Bool
	FieldUserID       MatchField = "user_id"       // OpEq, OpIn on Text
)

// MatchOp is how a Match tests its field.
type MatchOp string

// Operators of a Match.
const (
	OpEq       MatchOp = "eq"
	OpNeq      MatchOp = "neq"
	OpIn       MatchOp = "in"
	OpContains MatchOp = "contains"
	OpExists   MatchOp = "exists"
	OpGlob     MatchOp = "glob" // Text[0] is a GLOB pattern (SQLite's rules, on PostgreSQL too)
	OpGt       MatchOp = "gt"
	OpGte      MatchOp = "gte"
	OpLt       MatchOp = "lt"
	OpLte      MatchOp = "lte"
)

// IsZero reports whether m matches every session.
func (m *Match) IsZero() bool {
	return m == nil || (m.And == nil && m.Or == nil && m.Not == nil && m.Field == "")
}

// personLevel fields describe the person, so Person changes nothing.
var personLevel = map[MatchField]bool{FieldVisits: true, FieldVisitorType: true, FieldIdentified: true, FieldUserID: true}

// matchSQL compiles m to an SQL boolean expression of dialect d over the
// sessions row aliased s, appending its arguments to args. Aliases it
// introduces start with "m_".
func matchSQL(d sqldb.Dialect, m *Match, s string, args *[]any) (string, error) {
	if m.IsZero() {
		return "TRUE", nil
	}
	switch {
	case m.And != nil, m.Or != nil:
		list, join := m.And, " AND "
		if m.Or != nil {
			list, join = m.Or, " OR "
		}
		if len(list) == 0 {
			return "", fmt.Errorf("%w: empty and/or", ErrBadFilter)
		}
		parts := make([]string, 0, len(list))
		for i := range list {
			p, err := matchSQL(d, &list[i], s, args)
			if err != nil {
				return "", err
			}
			parts = append(parts, "("+p+")")
		}
		return strings.Join(parts, join), nil
	case m.Not != nil:
		p, err := matchSQL(d, m.Not, s, args)
		if err != nil {
			return "", err
		}
		return "NOT (" + p + ")", nil
	}
	if !m.Person || personLevel[m.Field] {
		return fieldSQL(d, m, s, args)
	}
	inner, err := fieldSQL(d, m, "m_ps", args)
	if err != nil {
		return "", err
	}
	return "EXISTS (SELECT 1 FROM sessions m_ps WHERE m_ps.project_id = " + s + ".project_id AND m_ps.visitor_id IN (" +
		personVisitors(s) + ") AND (" + inner + "))", nil
}

// userIDExpr is the identified user id of a session's visitor (NULL if
// anonymous).
func userIDExpr(s string) string {
	return "(SELECT m_u.user_id FROM visitors m_u WHERE m_u.project_id = " + s + ".project_id AND m_u.id = " + s + ".visitor_id)"
}

// personVisitors selects the visitor ids of a session's person.
func personVisitors(s string) string {
	return "SELECT m_pv.id FROM visitors m_pv WHERE m_pv.project_id = " + s + ".project_id AND m_pv.user_id = " +
		userIDExpr(s) + " UNION ALL SELECT " + s + ".visitor_id"
}

// firstOfPerson holds when a session is its person's first.
func firstOfPerson(s string) string {
	return "NOT EXISTS (SELECT 1 FROM sessions m_f WHERE m_f.project_id = " + s + ".project_id AND m_f.visitor_id IN (" +
		personVisitors(s) + ") AND (m_f.started_at < " + s + ".started_at OR (m_f.started_at = " + s + ".started_at AND m_f.id < " + s + ".id)))"
}

// entryURLExpr is the URL of a session's earliest page view. The sessions
// row's entry_url is the first page of the first batch applied, which is
// not the entry page when batches arrive out of order.
func entryURLExpr(s string) string {
	return "COALESCE((SELECT m_eu.url FROM pages m_eu WHERE m_eu.session_id = " + s + ".id ORDER BY m_eu.ts, m_eu.id LIMIT 1), " + s + ".entry_url)"
}

// instr is the 1-based position of needle in haystack, 0 if absent: SQLite's
// instr, PostgreSQL's strpos.
func instr(d sqldb.Dialect, haystack, needle string) string {
	if d == sqldb.Postgres {
		return "strpos(" + haystack + ", " + needle + ")"
	}
	return "instr(" + haystack + ", " + needle + ")"
}

// referrerHostExpr is the lower-case host of a session's referrer
// ("scheme://host/path" as the recorder stores it).
func referrerHostExpr(d sqldb.Dialect, s string) string {
	r := s + ".referrer"
	rest := "(CASE WHEN " + instr(d, r, "'://'") + " > 0 THEN substr(" + r + ", " + instr(d, r, "'://'") + " + 3) ELSE " + r + " END)"
	return "lower(CASE WHEN " + instr(d, rest, "'/'") + " > 0 THEN substr(" + rest + ", 1, " + instr(d, rest, "'/'") + " - 1) ELSE " + rest + " END)"
}

// queryParamExpr is the raw (still URL-encoded) value of a query parameter
// of a session's entry URL, or NULL. name is one of our constants.
func queryParamExpr(d sqldb.Dialect, s, name string) string {
	u := entryURLExpr(s)
	q := "(CASE WHEN " + instr(d, u, "'?'") + " > 0 THEN '&' || replace(substr(" + u + ", " + instr(d, u, "'?'") + " + 1), '#', '&') || '&' ELSE '' END)"
	key := "'&" + name + "='"
	after := "substr(" + q + ", " + instr(d, q, key) + " + " + strconv.Itoa(len(name)+2) + ")"
	return "(CASE WHEN " + instr(d, q, key) + " > 0 THEN substr(" + after + ", 1, " + instr(d, after, "'&'") + " - 1) END)"
}

func matchLikeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func matchBind(args *[]any, vs ...any) string {
	*args = append(*args, vs...)
	return strings.TrimSuffix(strings.Repeat("?, ", len(vs)), ", ")
}

var matchNumOps = map[MatchOp]string{OpEq: "=", OpNeq: "!=", OpGt: ">", OpGte: ">=", OpLt: "<", OpLte: "<="}

func fieldSQL(d sqldb.Dialect, m *Match, s string, args *[]any) (string, error) {
	bad := func() (string, error) {
		return "", fmt.Errorf("%w: field %q does not take op %q", ErrBadFilter, m.Field, m.Op)
	}
	text := func() (string, error) {
		if len(m.Text) == 0 || (m.Op != OpIn && len(m.Text) != 1) {
			return "", fmt.Errorf("%w: field %q op %q needs one value (a list for in)", ErrBadFilter, m.Field, m.Op)
		}
		return m.Text[0], nil
	}
	number := func(expr string) (string, error) {
		op, ok := matchNumOps[m.Op]
		if !ok {
			return bad()
		}
		if d == sqldb.Postgres {
			// A float against an integer column compares as numbers,
			// as on SQLite (pgx would refuse 1.5 as a bigint).
			return expr + " " + op + " CAST(" + matchBind(args, m.Number) + " AS DOUBLE PRECISION)", nil
		}
		return expr + " " + op + " " + matchBind(args, m.Number), nil
	}
	boolean := func(expr string) (string, error) {
		if m.Op != OpEq {
			return bad()
		}
		if m.Bool {
			return expr, nil
		}
		return "NOT (" + expr + ")", nil
	}
	list := func() string {
		vs := make([]any, len(m.Text))
		for i, x := range m.Text {
			vs[i] = x
		}
		return matchBind(args, vs...)
	}
	switch m.Field {
	case FieldDevice:
		if _, err := text(); err != nil {
			return "", err
		}
		switch m.Op {
		case OpEq, OpIn:
			return s + ".device IN (" + list() + ")", nil
		case OpNeq:
			return s + ".device NOT IN (" + list() + ")", nil
		}
		return bad()
	case FieldBrowser, FieldOS:
		v, err := text()
		if err != nil {
			return "", err
		}
		expr := "lower(" + s + "." + string(m.Field) + ")"
		switch m.Op {
		case OpContains:
			return expr + " LIKE " + matchBind(args, "%"+matchLikeEscape(strings.ToLower(v))+"%") + ` ESCAPE '\'`, nil
		case OpNeq:
			return expr + " != lower(" + matchBind(args, v) + ")", nil
		case OpEq, OpIn:
			vs := make([]any, len(m.Text))
			for i, x := range m.Text {
				vs[i] = strings.ToLower(x)
			}
			return expr + " IN (" + matchBind(args, vs...) + ")", nil
		}
		return bad()
	case FieldReferrerHost:
		h := referrerHostExpr(d, s)
		if m.Op == OpExists {
			if m.Bool {
				return h + " != ''", nil
			}
			return h + " = ''", nil
		}
		v, err := text()
		if err != nil {
			return "", err
		}
		v = strings.ToLower(strings.TrimSpace(v))
		switch m.Op {
		case OpContains:
			return h + " LIKE " + matchBind(args, "%"+matchLikeEscape(v)+"%") + ` ESCAPE '\'`, nil
		case OpNeq:
			return "NOT (" + h + " = " + matchBind(args, v) + " OR " + h + " LIKE " + matchBind(args, "%."+matchLikeEscape(v)) + ` ESCAPE '\')`, nil
		case OpEq:
			// A host matches itself and its subdomains: google.com
			// matches www.google.com.
			return "(" + h + " = " + matchBind(args, v) + " OR " + h + " LIKE " + matchBind(args, "%."+matchLikeEscape(v)) + ` ESCAPE '\')`, nil
		}
		return bad()
	case FieldUTMSource, FieldUTMMedium, FieldUTMCampaign:
		e := "lower(" + queryParamExpr(d, s, string(m.Field)) + ")"
		if m.Op == OpExists {
			if m.Bool {
				return "COALESCE(" + e + ", '') != ''", nil
			}
			return "COALESCE(" + e + ", '') = ''", nil
		}
		v, err := text()
		if err != nil {
			return "", err
		}
		v = strings.ToLower(v)
		// The URL holds the value encoded, as a form (+ for space) or a
		// path (%20) would encode it.
		enc1, enc2 := strings.ToLower(url.QueryEscape(v)), strings.ToLower(url.PathEscape(v))
		switch m.Op {
		case OpContains:
			return "(" + e + " LIKE " + matchBind(args, "%"+matchLikeEscape(enc1)+"%") + ` ESCAPE '\' OR ` + e + " LIKE " + matchBind(args, "%"+matchLikeEscape(enc2)+"%") + ` ESCAPE '\')`, nil
		case OpNeq:
			return "COALESCE(" + e + ", '') NOT IN (" + matchBind(args, enc1, enc2) + ")", nil
		case OpEq:
			return e + " IN (" + matchBind(args, enc1, enc2) + ")", nil
		}
		return bad()
	case FieldEntryPage, FieldPage, FieldEvent:
		v, err := text()
		if err != nil {
			return "", err
		}
		var cmp string
		switch {
		case m.Op == OpEq:
			cmp = " = "
		case m.Op == OpGlob && d == sqldb.Postgres:
			cmp, v = " ~ ", globRegexp(v)
		case m.Op == OpGlob:
			cmp = " GLOB "
		default:
			return bad()
		}
		switch m.Field {
		case FieldEntryPage:
			return "(SELECT m_e.path FROM pages m_e WHERE m_e.session_id = " + s + ".id ORDER BY m_e.ts, m_e.id LIMIT 1)" + cmp + matchBind(args, v), nil
		case FieldPage:
			return "EXISTS (SELECT 1 FROM pages m_p WHERE m_p.session_id = " + s + ".id AND m_p.path" + cmp + matchBind(args, v) + ")", nil
		}
		return "EXISTS (SELECT 1 FROM custom_events m_ev WHERE m_ev.session_id = " + s + ".id AND m_ev.name" + cmp + matchBind(args, v) + ")", nil
	case FieldConverted:
		return boolean(s + ".conversions > 0")
	case FieldRageClicks, FieldDeadClicks, FieldErrors:
		return number(s + "." + string(m.Field))
	case FieldDuration:
		return number("((" + s + ".ended_at - " + s + ".started_at) / 1000.0)")
	case FieldSessionIn:
		switch m.Op {
		case "", OpEq:
			return inIDs(d, s+".id", false, m.IDs, args), nil
		case OpNeq:
			return inIDs(d, s+".id", true, m.IDs, args), nil
		}
		return bad()
	case FieldVisits:
		return number("(SELECT COUNT(*) FROM sessions m_vc WHERE m_vc.project_id = " + s + ".project_id AND m_vc.visitor_id IN (" + personVisitors(s) + "))")
	case FieldVisitorType:
		v, err := text()
		if err != nil {
			return "", err
		}
		switch v {
		case "new":
			return firstOfPerson(s), nil
		case "returning":
			return "NOT " + firstOfPerson(s), nil
		}
		return "", fmt.Errorf("%w: visitor_type is new or returning, not %q", ErrBadFilter, v)
	case FieldIdentified:
		return boolean(userIDExpr(s) + " IS NOT NULL")
	case FieldUserID:
		if _, err := text(); err != nil {
			return "", err
		}
		if m.Op != OpEq && m.Op != OpIn {
			return bad()
		}
		return userIDExpr(s) + " IN (" + list() + ")", nil
	}
	return "", fmt.Errorf("%w: unknown match field %q", ErrBadFilter, m.Field)
}

// SessionAttr is a session attribute a scan can return besides the id,
// as text (e.g. to split a report by it).
type SessionAttr int

// Attributes a session scan returns.
const (
	AttrBrowser     SessionAttr = iota // browser name
	AttrOS                             // operating system
	AttrReferrer                       // referrer URL
	AttrEntryURL                       // URL of the earliest page view (the row's entry_url when none)
	AttrIdentified                     // "identified" or "anonymous"
	AttrVisitorType                    // "new" (the person's first session) or "returning"
)

func attrSQL(a SessionAttr, s string) (string, error) { // the same in both dialects
	switch a {
	case AttrBrowser:
		return s + ".browser", nil
	case AttrOS:
		return s + ".os", nil
	case AttrReferrer:
		return s + ".referrer", nil
	case AttrEntryURL:
		return entryURLExpr(s), nil
	case AttrIdentified:
		return "CASE WHEN " + userIDExpr(s) + " IS NOT NULL THEN 'identified' ELSE 'anonymous' END", nil
	case AttrVisitorType:
		return "CASE WHEN " + firstOfPerson(s) + " THEN 'new' ELSE 'returning' END", nil
	}
	return "", fmt.Errorf("%w: unknown session attribute %d", ErrBadFilter, a)
}

// inIDs is the condition that expr is (not, when not) one of ids, bound as
// one argument however many they are: a JSON array read by json_each on
// SQLite (which reads it into an ephemeral index once per statement), a
// bigint[] on PostgreSQL.
func inIDs(d sqldb.Dialect, expr string, not bool, ids []int64, args *[]any) string {
	if d == sqldb.Postgres {
		if ids == nil {
			ids = []int64{} // NULL would make "<> ALL" unknown
		}
		if not {
			return expr + " <> ALL(CAST(" + matchBind(args, ids) + " AS BIGINT[]))"
		}
		return expr + " = ANY(CAST(" + matchBind(args, ids) + " AS BIGINT[]))"
	}
	op := " IN "
	if not {
		op = " NOT IN "
	}
	return expr + op + "(SELECT value FROM json_each(" + matchBind(args, idList(ids)) + "))"
}

// inTexts is inIDs for strings: a JSON array on SQLite, a text[] on
// PostgreSQL.
func inTexts(d sqldb.Dialect, expr string, vs []string, args *[]any) string {
	if d == sqldb.Postgres {
		if vs == nil {
			vs = []string{}
		}
		return expr + " = ANY(CAST(" + matchBind(args, vs) + " AS TEXT[]))"
	}
	return expr + " IN (SELECT value FROM json_each(" + matchBind(args, textList(vs)) + "))"
}

// globRegexp turns a GLOB pattern into the anchored PostgreSQL regular
// expression that matches what SQLite's GLOB matches: * any text, ? one
// character, [...] a set (ranges, ^ to invert, ] first for itself), case
// sensitive; everything else, backslash included, stands for itself. A set
// that is never closed matches nothing, as in SQLite.
func globRegexp(glob string) string {
	var b strings.Builder
	b.WriteByte('^')
	for i := 0; i < len(glob); {
		r, n := utf8.DecodeRuneInString(glob[i:])
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteByte('.')
		case '[':
			j := i + 1
			if j < len(glob) && glob[j] == '^' {
				j++
			}
			if j < len(glob) && glob[j] == ']' {
				j++
			}
			end := strings.IndexByte(glob[j:], ']')
			if end < 0 {
				return `[^\s\S]` // matches no text
			}
			set := glob[i+1 : j+end]
			b.WriteByte('[')
			if strings.HasPrefix(set, "^") {
				b.WriteByte('^')
				set = set[1:]
			}
			// Inside a set only \ and [ are special to PostgreSQL
			// beyond what GLOB shares (^ first, ] first, - ranges).
			for k := 0; k < len(set); k++ {
				if set[k] == '\\' || set[k] == '[' {
					b.WriteByte('\\')
				}
				b.WriteByte(set[k])
			}
			b.WriteByte(']')
			n = j + end + 1 - i
		default:
			if r < utf8.RuneSelf && !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
				b.WriteByte('\\') // a backslash before punctuation means the character itself
			}
			b.WriteString(glob[i : i+n])
		}
		i += n
	}
	b.WriteByte('$')
	return b.String()
}
