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
//     urlKeys) is redacted as a URL; a srcset as its list of candidates;
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

// scrubSpan replaces the JSON string literal at [start, end) of the
// scanned buffer with the string val.
type scrubSpan struct {
	start, end int
	val        string
	// relative marks a relative URL in any event; it is redacted (into
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

// urlKeys are the attributes (and custom payload fields) whose value is a
// URL. Others may hold URLs too (content, style, data-*): the text rule
// finds those that have a scheme.
var urlKeys = map[string]urlKey{
	"href": keyURL, "src": keyURL, "action": keyURL, "formaction": keyURL,
	"poster": keyURL, "cite": keyURL, "background": keyURL, "longdesc": keyURL,
	"xlink:href": keyURL, "ping": keyURL, "manifest": keyURL, "codebase": keyURL,
	"data": keyURL, "usemap": keyURL, "icon": keyURL, "classid": keyURL,
	"archive": keyURL, "lowsrc": keyURL, "dynsrc": keyURL, "profile": keyURL,
	"referrer": keyURL, "referer": keyURL, "url": keyURL,
	"srcset": keySrcset, "imagesrcset": keySrcset,
}

// keyKind looks a raw key up without allocating; escaped keys are text.
func keyKind(key []byte) urlKey {
	if len(key) < 3 || len(key) > 11 {
		return keyText
	}
	return urlKeys[string(key)]
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
	switch kind {
	case keyURL, keySrcset:
		if !urlMayChange(raw) {
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
			u.spans = append(u.spans, scrubSpan{start: start, end: end, val: red})
		}
	default:
		// JSON encoders that escape "/" (PHP's) write ":\/\/".
		if bytes.Contains(raw, schemeSep) || esc && bytes.Contains(raw, schemeSepEscaped) {
			v := decodeString(b[start:end], esc)
			if red := u.red.urlsInText(v); red != v {
				u.spans = append(u.spans, scrubSpan{start: start, end: end, val: red})
				return
			}
		}
		if (raw[0] == '/' || raw[0] == '?' || esc && raw[0] == '\\' && raw[1] == '/') && urlMayChange(raw) {
			u.spans = append(u.spans, scrubSpan{start: start, end: end, relative: true, esc: esc})
		}
	}
}

var (
	schemeSep        = []byte("://")
	schemeSepEscaped = []byte(`:\/\/`)
)

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
		out = appendJSONString(out, sp.val)
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
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			break
		}
		k += i
		start := k
		for start > done && isSchemeByte(s[start-1]) {
			start--
		}
		for start < k && !isAlpha(s[start]) {
			start++
		}
		end := k + 3
		for end < len(s) && !urlStop[s[end]] {
			end++
		}
		if start < k {
			if u := s[start:end]; urlMayChange(u) {
				if red := r.URL(u); red != u {
					if sb.Len() == 0 {
						sb.Grow(len(s) + 16)
					}
					sb.WriteString(s[done:start])
					sb.WriteString(red)
					done = end
				}
			}
		}
		i = end
	}
	if done == 0 {
		return s
	}
	sb.WriteString(s[done:])
	return sb.String()
}

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
