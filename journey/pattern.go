package journey

import (
	"fmt"
	"strings"
)

// Pattern matches page paths or custom event names. "*" matches any run of
// characters, "/" included ("/product/*" matches "/product/7/reviews");
// every other character is literal, and a pattern without "*" matches
// exactly. The same rule is used in Go (funnels, paths, stages) and in SQL
// (segments), where it becomes a GLOB with the other GLOB metacharacters
// escaped.
type Pattern struct {
	raw   string
	parts []string // the literal runs between stars
}

// maxPatternLen bounds patterns from API input.
const maxPatternLen = 500

// ParsePattern checks and compiles a pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, invalidf("a pattern must not be empty")
	}
	if len(s) > maxPatternLen {
		return Pattern{}, invalidf("pattern %.40q…: longer than %d characters", s, maxPatternLen)
	}
	if strings.ContainsAny(s, "\x00\n\r") {
		return Pattern{}, invalidf("pattern %q: control characters are not allowed", s)
	}
	return Pattern{raw: s, parts: strings.Split(s, "*")}, nil
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.raw }

// Match reports whether s matches the whole pattern.
func (p Pattern) Match(s string) bool {
	if len(p.parts) == 1 {
		return s == p.parts[0]
	}
	first, last := p.parts[0], p.parts[len(p.parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	mid := s[len(first) : len(s)-len(last)]
	for _, part := range p.parts[1 : len(p.parts)-1] {
		i := strings.Index(mid, part)
		if i < 0 {
			return false
		}
		mid = mid[i+len(part):]
	}
	return true
}

// Glob returns the pattern as an SQLite GLOB operand.
func (p Pattern) Glob() string {
	var b strings.Builder
	for i, part := range p.parts {
		if i > 0 {
			b.WriteByte('*')
		}
		for _, r := range part {
			switch r {
			case '?':
				b.WriteString("[?]")
			case '[':
				b.WriteString("[[]")
			default:
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// likeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// invalidError is bad input; its message is meant for the API client.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{fmt.Sprintf(format, args...)}
}
