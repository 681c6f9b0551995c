package recorder

import (
	"bytes"
	"strings"

	"github.com/trailmap/trailmap/internal/rrweb"
)

// urlScrub finds the URLs in one event's data while ParseBatch scans it,
// and redacts them. It sees every string value with its object key (none
// in arrays):
//
//   - the value of a key that holds a URL in HTML or in our own events
//     (href, src, action, poster, xlink:href, referrer, url, ... see
//     keyKind) is redacted as a URL; a srcset as its list of candidates;
//   - a URL with a scheme ("https://...") inside any other string is
//     redacted where it stands, so text nodes, style sheets, inline styles
//     (url(...)), meta contents and console messages keep no secrets;
//   - in a custom event (type 5, whose payload is free-form), a string that
//     starts with "/" or "?" is redacted as a relative URL.
//
// Strings are only decoded when a byte-level filter says a redaction is
// possible, so the cost for events without URLs is a key lookup and a
// search for "://" per string. Everything else in the event is kept byte
// for byte.
type urlScrub struct {
	red   *Redactor
	spans []scrubSpan // in order of position
}

// scrubSpan replaces the bytes at [start, end) of the scanned buffer: a
// whole JSON string literal with the string val (literal), or a URL inside
// a literal's raw bytes with val as it is (which URL made of those bytes
// and "[redacted]", so it needs no escaping).
type scrubSpan struct {
	start, end int
	val        string
	literal    bool
	// relative marks a literal holding a relative URL; it is redacted (into
	// val) only if the event is a custom event.
	relative bool
	esc      bool
}

func (u *urlScrub) reset(r *Redactor) {
	u.red = r
	u.spans = u.spans[:0]
}

// urlKey says what a key's string value holds.
type urlKey uint8

const (
	keyText urlKey = iota
	keyURL
	keySrcset
)

// keyKind says what the value of a raw key holds: the attributes (and
// custom payload fields) whose value is a URL or a srcset. Other strings
// may hold URLs too (content, style, data-*, text): the text rule finds
// those that have a scheme. Escaped keys count as text.
func keyKind(key []byte) urlKey {
	if len(key) < 3 || len(key) > 11 {
		return keyText
	}
	switch string(key) {
	case "href", "src", "action", "formaction", "poster", "cite", "background",
		"longdesc", "xlink:href", "ping", "manifest", "codebase", "data", "usemap",
		"icon", "classid", "archive", "lowsrc", "dynsrc", "profile",
		"referrer", "referer", "url":
		return keyURL
	case "srcset", "imagesrcset":
		return keySrcset
	}
	return keyText
}

// str sees the string literal b[start:end] (quotes included), the value of
// the key at b[ks:ke] (quotes included; ks < 0 when in an array).
func (u *urlScrub) str(b []byte, ks, ke, start, end int, esc bool) {
	raw := b[start+1 : end-1]
	if len(raw) < 3 {
		return
	}
	kind := keyText
	if ks >= 0 {
		kind = keyKind(b[ks+1 : ke-1])
	}
	if kind != keyText {
		if !urlMayChange(raw) || hasPrefixFold(raw, "data:") {
			return
		}
		v := decodeString(b[start:end], esc)
		var red string
		if kind == keyURL {
			red = u.red.URL(v)
		} else {
			red = u.red.srcset(v)
		}
		if red != v {
			u.spans = append(u.spans, scrubSpan{start: start, end: end, val: red, literal: true})
		}
		return
	}
	n := len(u.spans)
	switch {
	case len(raw) < minTextURL:
	case esc && mayHoldTextURL(raw):
		// Decode first: an escape may sit inside a URL (encoding/json
		// writes & as \u0026, PHP / as \/).
		v := decodeString(b[start:end], esc)
		if red := u.red.urlsInText(v); red != v {
			u.spans = append(u.spans, scrubSpan{start: start, end: end, val: red, literal: true})
		}
	case !esc:
		// Redact each URL where it stands in the raw bytes.
		eachTextURL(raw, func(us, ue int) {
			url := string(raw[us:ue])
			if red := u.red.URL(url); red != url {
				u.spans = append(u.spans, scrubSpan{start: start + 1 + us, end: start + 1 + ue, val: red})
			}
		})
	}
	if len(u.spans) == n && (raw[0] == '/' || raw[0] == '?' || esc && raw[0] == '\\' && raw[1] == '/') && urlMayChange(raw) {
		u.spans = append(u.spans, scrubSpan{start: start, end: end, literal: true, relative: true, esc: esc})
	}
}

var schemeSepEscaped = []byte(`:\/\/`)

// minTextURL is the length of the shortest URL with a scheme that URL may
// change, "a://b?c=d".
const minTextURL = 9

// mayHoldTextURL is a cheap filter over a raw literal with escapes: it
// reports whether a URL with a scheme in it may need redaction, taking
// every escape for part of the URL.
func mayHoldTextURL(raw []byte) bool {
	for i := 0; ; {
		k := bytes.IndexByte(raw[i:], ':')
		if k < 0 {
			return false
		}
		k += i
		end := k + 1
		switch {
		case bytes.HasPrefix(raw[end:], schemeSep[1:]):
			end += 2
		case bytes.HasPrefix(raw[end:], schemeSepEscaped[1:]):
			end += 4
		default:
			i = end
			continue
		}
		for end < len(raw) && (raw[end] == '\\' || !urlStop[raw[end]]) {
			end++
		}
		start := k
		for start > 0 && isSchemeByte(raw[start-1]) {
			start--
		}
		if start < k && urlMayChange(raw[start:end]) {
			return true
		}
		i = end
	}
}

// apply returns ev, the event of type typ at offset off of the scanned
// buffer, with the spans replaced. It returns ev itself when none applies.
func (u *urlScrub) apply(ev []byte, off, typ int) []byte {
	var out []byte
	pos := 0
	for i := range u.spans {
		sp := &u.spans[i]
		if sp.relative {
			if typ != rrweb.Custom {
				continue
			}
			v := decodeString(ev[sp.start-off:sp.end-off], sp.esc)
			if sp.val = u.red.URL(v); sp.val == v {
				continue
			}
		}
		if out == nil {
			out = make([]byte, 0, len(ev)+16*len(u.spans))
		}
		out = append(out, ev[pos:sp.start-off]...)
		if sp.literal {
			out = appendJSONString(out, sp.val)
		} else {
			out = append(out, sp.val...)
		}
		pos = sp.end - off
	}
	if out == nil {
		return ev
	}
	return append(out, ev[pos:]...)
}

// urlMayChange is a cheap filter for Redactor.URL over a raw URL: without
// a query, a fragment or what mayHoldValue looks for, URL changes nothing.
func urlMayChange[T ~string | ~[]byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '?' || c == '#' {
			return true
		}
	}
	return mayHoldValue(s)
}

// urlsInText redacts each URL with a scheme ("https://...", up to a space,
// a quote, a bracket or a parenthesis) inside free text.
func (r *Redactor) urlsInText(s string) string {
	var sb strings.Builder
	done := 0 // s[:done] is in sb
	eachTextURL([]byte(s), func(start, end int) {
		if red := r.URL(s[start:end]); red != s[start:end] {
			sb.WriteString(s[done:start])
			sb.WriteString(red)
			done = end
		}
	})
	if done == 0 {
		return s
	}
	sb.WriteString(s[done:])
	return sb.String()
}

// eachTextURL calls fn with the bounds of each URL with a scheme in text
// that Redactor.URL may change (see urlMayChange), in order.
func eachTextURL(text []byte, fn func(start, end int)) {
	prev := 0 // the end of the last URL
	for i := 0; ; {
		k := bytes.Index(text[i:], schemeSep)
		if k < 0 {
			return
		}
		k += i
		start := k
		for start > prev && isSchemeByte(text[start-1]) {
			start--
		}
		for start < k && !isAlpha(text[start]) {
			start++
		}
		end := k + 3
		for end < len(text) && !urlStop[text[end]] {
			end++
		}
		if start < k && urlMayChange(text[start:end]) {
			fn(start, end)
		}
		prev, i = end, end
	}
}

var schemeSep = []byte("://")

func isSchemeByte(c byte) bool {
	return isAlpha(c) || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// urlStop marks the bytes that end a URL in text.
var urlStop = func() (t [256]bool) {
	for c := 0; c <= ' '; c++ {
		t[c] = true
	}
	for _, c := range "\"'`<>()[]{}|\\^\x7f" {
		t[c] = true
	}
	return t
}()

// srcset redacts the URLs of a srcset attribute: candidates "url [size]"
// separated by commas, where a URL (a data: URL too) runs up to a space.
func (r *Redactor) srcset(s string) string {
	var sb strings.Builder
	done := 0
	i := 0
	for i < len(s) {
		for i < len(s) && (isHTMLSpace(s[i]) || s[i] == ',') {
			i++
		}
		start := i
		for i < len(s) && !isHTMLSpace(s[i]) {
			i++
		}
		end := i
		for end > start && s[end-1] == ',' {
			end--
		}
		if end == i { // descriptors follow, up to the next comma
			for i < len(s) && s[i] != ',' {
				i++
			}
		}
		if u := s[start:end]; u != "" {
			if red := r.URL(u); red != u {
				sb.WriteString(s[done:start])
				sb.WriteString(red)
				done = end
			}
		}
	}
	if done == 0 {
		return s
	}
	sb.WriteString(s[done:])
	return sb.String()
}

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// hasPrefixFold reports whether b starts with the lowercase ASCII prefix,
// ignoring case.
func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
