package recorder

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/internal/textcut"
)

// Batch is one validated ingest request.
type Batch struct {
	ProjectID int64 // set by the caller
	SessionID string
	VisitorID string
	Seq       int64
	// Events are the rrweb events in the order sent, each compact JSON (one
	// NDJSON line) with unknown fields kept and the URLs in their data
	// redacted (see ParseBatch). They may alias the body given to ParseBatch.
	Events     []json.RawMessage
	User       *User  // optional identify
	ReceivedAt int64  // unix ms, set by the caller
	UserAgent  string // set by the caller
	IP         string // anonymised, set by the caller

	// minTS and maxTS are the smallest and largest event timestamps, for
	// checkTimes; unset in batches read back from the log.
	minTS, maxTS int64
	// split is Events with their envelopes read, as ParseBatch read them
	// while it validated them (see envelopes); unset in batches read back
	// from the log.
	split []rrweb.Event
}

// envelopes returns b's events with their envelopes read: those ParseBatch
// read, where they are still b's events (the recording rules may have left
// some out since), else read again.
func (b *Batch) envelopes() []rrweb.Event {
	if len(b.split) == len(b.Events) {
		same := true
		for i, ev := range b.Events {
			if raw := b.split[i].Raw; len(raw) != len(ev) || len(ev) > 0 && &raw[0] != &ev[0] {
				same = false
				break
			}
		}
		if same {
			return b.split
		}
	}
	return rrweb.SplitAll(b.Events)
}

// User is the optional identify part of a batch.
type User struct {
	ID string
	// Traits is a compact JSON object, or nil.
	Traits json.RawMessage
	// Signature is the claim's signature (see IdentitySignature), checked
	// at ingest and not kept.
	Signature string
}

const (
	maxSeq        = 1<<53 - 1 // seq must survive a JavaScript number
	maxUserIDLen  = 256       // in characters
	maxJSONDepth  = 10000     // as encoding/json; deeper input is hostile
	minIDLen      = 8
	maxIDLen      = 64
	idPatternText = "[A-Za-z0-9_-]{8,64}"
)

// ParseBatch validates a decompressed ingest body and returns the batch it
// holds. Errors wrap ErrMalformed (not JSON, or a field of the wrong type,
// with the field named), ErrInvalidID (session_id or visitor_id missing or
// not matching [A-Za-z0-9_-]{8,64}; user.id empty or over 256 characters),
// ErrTooManyEvents or ErrEventTooLarge.
//
// The body is checked for UTF-8 and then validated in one pass of a JSON
// scanner; events are not decoded, only their type and timestamp are read.
// Events with whitespace outside strings are compacted. An event that is
// already compact is returned as a slice of body, so the caller must not
// modify body afterwards. The URLs in every event's data are redacted by r
// (see urlScrub); a nil r redacts nothing.
func ParseBatch(body []byte, lim Limits, r *Redactor) (*Batch, error) {
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: body is not valid UTF-8", ErrMalformed)
	}
	p := batchParser{s: jsonScan{b: body}, lim: lim, red: r, minTS: math.MaxInt64, maxTS: -1}
	return p.parse()
}

// EventInfo returns the type and timestamp (unix ms, fractions dropped) of
// one rrweb event, or an error wrapping ErrMalformed when ev is not an
// object with an integer type and a numeric timestamp.
func EventInfo(ev json.RawMessage) (typ int, ts int64, err error) {
	s := jsonScan{b: ev}
	s.skipWS()
	if s.peek() != '{' {
		return 0, 0, fmt.Errorf("%w: event must be an object, got %s", ErrMalformed, kindName(s.peek()))
	}
	h, err := s.eventHead(nil)
	if err == nil {
		s.skipWS()
		if s.i < len(s.b) {
			err = s.syntax("unexpected data after the event")
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%w: event: %w", ErrMalformed, err)
	}
	return h.typ, h.ts, nil
}

type batchParser struct {
	s     jsonScan
	lim   Limits
	red   *Redactor
	scrub urlScrub
	// minTS and maxTS are the smallest and largest event timestamps.
	minTS, maxTS int64
}

func (p *batchParser) parse() (*Batch, error) {
	s := &p.s
	s.skipWS()
	if s.peek() != '{' {
		return nil, fmt.Errorf("%w: body must be a JSON object, got %s", ErrMalformed, kindName(s.peek()))
	}
	b := &Batch{}
	var haveSession, haveVisitor, haveSeq, haveEvents bool
	err := s.fields(func(key []byte) error {
		var err error
		switch string(key) {
		case "session_id":
			b.SessionID, err = p.id("session_id")
			haveSession = true
		case "visitor_id":
			b.VisitorID, err = p.id("visitor_id")
			haveVisitor = true
		case "seq":
			b.Seq, err = p.seq()
			haveSeq = true
		case "events":
			b.Events, b.split, err = p.events()
			haveEvents = true
		case "user":
			b.User, err = p.user()
		default:
			err = s.value()
		}
		return err
	})
	if err == nil {
		s.skipWS()
		if s.i < len(s.b) {
			err = s.syntax("unexpected data after the batch object")
		}
	}
	if err != nil {
		return nil, malformed(err)
	}
	switch {
	case !haveSession:
		return nil, fmt.Errorf("%w: session_id is required and must match %s", ErrInvalidID, idPatternText)
	case !haveVisitor:
		return nil, fmt.Errorf("%w: visitor_id is required and must match %s", ErrInvalidID, idPatternText)
	case !haveSeq:
		return nil, fmt.Errorf("%w: seq is required", ErrMalformed)
	case !haveEvents:
		return nil, fmt.Errorf("%w: events is required and must be a non-empty array", ErrMalformed)
	}
	b.minTS, b.maxTS = p.minTS, p.maxTS
	return b, nil
}

// malformed wraps scanner errors in ErrMalformed; errors that already carry
// a sentinel pass through.
func malformed(err error) error {
	if _, _, ok := Code(err); ok {
		return err
	}
	return fmt.Errorf("%w: %w", ErrMalformed, err)
}

func (p *batchParser) id(field string) (string, error) {
	v, err := p.stringValue(field)
	if err != nil {
		return "", err
	}
	if !validID(v) {
		return "", fmt.Errorf("%w: %s %q must match %s", ErrInvalidID, field, clipForError(v), idPatternText)
	}
	return v, nil
}

func validID(v string) bool {
	if len(v) < minIDLen || len(v) > maxIDLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// stringValue reads a JSON string for the named field. An escaped NUL
// ("\u0000") becomes U+FFFD: the value goes to the index, and
// PostgreSQL's text holds no NUL.
func (p *batchParser) stringValue(field string) (string, error) {
	s := &p.s
	if s.peek() != '"' {
		return "", fmt.Errorf("%w: %s must be a string, got %s", ErrMalformed, field, kindName(s.peek()))
	}
	start := s.i
	esc, err := s.str()
	if err != nil {
		return "", err
	}
	v := decodeString(s.b[start:s.i], esc)
	if esc && strings.IndexByte(v, 0) >= 0 {
		v = strings.ReplaceAll(v, "\x00", "\uFFFD")
	}
	return v, nil
}

func (p *batchParser) seq() (int64, error) {
	s := &p.s
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, fmt.Errorf("%w: seq must be an integer, got %s", ErrMalformed, kindName(c))
	}
	start := s.i
	isInt, err := s.number()
	if err != nil {
		return 0, err
	}
	v, ok := numberToInt(s.b[start:s.i], isInt, false)
	if !ok || v < 0 || v > maxSeq {
		return 0, fmt.Errorf("%w: seq must be an integer from 0 to 2^53-1, got %s", ErrMalformed, clipForError(string(s.b[start:s.i])))
	}
	return v, nil
}

func (p *batchParser) user() (*User, error) {
	s := &p.s
	switch s.peek() {
	case 'n':
		return nil, s.literal("null")
	case '{':
	default:
		return nil, fmt.Errorf("%w: user must be an object, got %s", ErrMalformed, kindName(s.peek()))
	}
	u := &User{}
	haveID := false
	err := s.fields(func(key []byte) error {
		switch string(key) {
		case "id":
			id, err := p.stringValue("user.id")
			if err != nil {
				return err
			}
			if n := utf8.RuneCountInString(id); n < 1 || n > maxUserIDLen {
				return fmt.Errorf("%w: user.id must be 1 to %d characters, got %d", ErrInvalidID, maxUserIDLen, n)
			}
			u.ID, haveID = id, true
			return nil
		case "signature":
			sig, err := p.stringValue("user.signature")
			u.Signature = textcut.Head(sig, 128) // no valid one is longer
			return err
		case "traits":
			switch s.peek() {
			case 'n':
				u.Traits = nil
				return s.literal("null")
			case '{':
			default:
				return fmt.Errorf("%w: user.traits must be an object, got %s", ErrMalformed, kindName(s.peek()))
			}
			start := s.i
			s.ws = false
			if err := s.value(); err != nil {
				return err
			}
			u.Traits = json.RawMessage(s.b[start:s.i])
			if s.ws {
				u.Traits = compactAppend(make([]byte, 0, s.i-start), s.b[start:s.i])
			}
			return checkTraits(u.Traits)
		}
		return s.value()
	})
	if err != nil {
		return nil, err
	}
	if !haveID {
		return nil, fmt.Errorf("%w: user.id is required when user is sent", ErrInvalidID)
	}
	return u, nil
}

// events scans the events array: the events, compact and redacted, and
// the same with their envelopes read.
func (p *batchParser) events() ([]json.RawMessage, []rrweb.Event, error) {
	s := &p.s
	if s.peek() != '[' {
		return nil, nil, fmt.Errorf("%w: events must be a non-empty array, got %s", ErrMalformed, kindName(s.peek()))
	}
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	s.skipWS()
	if s.peek() == ']' {
		return nil, nil, fmt.Errorf("%w: events must be a non-empty array, got an empty one", ErrMalformed)
	}
	events := make([]json.RawMessage, 0, 64)
	split := make([]rrweb.Event, 0, 64)
	for idx := 0; ; idx++ {
		if idx >= p.lim.MaxEvents {
			return nil, nil, fmt.Errorf("%w: a batch holds at most %d events", ErrTooManyEvents, p.lim.MaxEvents)
		}
		ev, e, err := p.event(idx)
		if err != nil {
			return nil, nil, err
		}
		events = append(events, ev)
		split = append(split, e)
		s.skipWS()
		switch s.peek() {
		case ',':
			s.i++
			s.skipWS()
		case ']':
			s.i++
			s.depth--
			return events, split, nil
		default:
			return nil, nil, s.syntax("expected , or ] after events[%d]", idx)
		}
	}
}

// event scans events[idx] and returns it compact and redacted, and with its
// envelope read: from the scan itself when the event is a slice of the body
// as sent, else (redacted or compacted, which moves its data) read again.
func (p *batchParser) event(idx int) (json.RawMessage, rrweb.Event, error) {
	s := &p.s
	if s.peek() != '{' {
		return nil, rrweb.Event{}, fmt.Errorf("%w: events[%d] must be an object, got %s", ErrMalformed, idx, kindName(s.peek()))
	}
	start := s.i
	s.ws = false
	var sc *urlScrub
	if p.red != nil {
		sc = &p.scrub
		sc.reset(p.red)
	}
	h, err := s.eventHead(sc)
	if err != nil {
		return nil, rrweb.Event{}, fmt.Errorf("events[%d]: %w", idx, err)
	}
	sent := s.b[start:s.i:s.i]
	ev := sent
	if sc != nil {
		ev = sc.apply(ev, start, h.typ)
	}
	if s.ws {
		ev = compactAppend(make([]byte, 0, len(ev)), ev)
	}
	if len(ev) > p.lim.MaxEventBytes {
		return nil, rrweb.Event{}, fmt.Errorf("%w: events[%d] is %d bytes, over the limit of %d", ErrEventTooLarge, idx, len(ev), p.lim.MaxEventBytes)
	}
	var e rrweb.Event
	if len(ev) == len(sent) && &ev[0] == &sent[0] {
		e = rrweb.Event{Type: int64(h.typ), Timestamp: h.ts, HasTimestamp: true, Raw: ev}
		if h.dataEnd > 0 {
			e.Data = s.b[h.dataStart:h.dataEnd:h.dataEnd]
		}
	} else {
		e = rrweb.Split(ev)
	}
	if h.ts < p.minTS {
		p.minTS = h.ts
	}
	if h.ts > p.maxTS {
		p.maxTS = h.ts
	}
	return ev, e, nil
}

// eventHead is what an event's top level says about it.
type eventHead struct {
	typ int
	ts  int64
	// dataStart and dataEnd are the offsets of the last "data" value in
	// the scanned buffer; dataEnd is 0 without one.
	dataStart, dataEnd int
}

// eventHead scans the event object at s.i and checks its type and
// timestamp; a non-nil sc sees the strings of its data.
func (s *jsonScan) eventHead(sc *urlScrub) (eventHead, error) {
	var h eventHead
	haveType, haveTS := false, false
	err := s.fields(func(key []byte) error {
		switch string(key) {
		case "type":
			start := s.i
			c := s.peek()
			if c != '-' && (c < '0' || c > '9') {
				return fmt.Errorf("type must be an integer, got %s", kindName(c))
			}
			isInt, err := s.number()
			if err != nil {
				return err
			}
			v, ok := numberToInt(s.b[start:s.i], isInt, false)
			if !ok || v < math.MinInt32 || v > math.MaxInt32 {
				return fmt.Errorf("type must be an integer, got %s", clipForError(string(s.b[start:s.i])))
			}
			h.typ, haveType = int(v), true
		case "timestamp":
			start := s.i
			c := s.peek()
			if c != '-' && (c < '0' || c > '9') {
				return fmt.Errorf("timestamp must be a number (unix ms), got %s", kindName(c))
			}
			isInt, err := s.number()
			if err != nil {
				return err
			}
			v, ok := numberToInt(s.b[start:s.i], isInt, true)
			if !ok || v < 0 || v > maxSeq {
				return fmt.Errorf("timestamp must be a non-negative number of unix ms, got %s", clipForError(string(s.b[start:s.i])))
			}
			h.ts, haveTS = v, true
		case "data":
			h.dataStart = s.i
			if err := s.valueScrub(sc); err != nil {
				return err
			}
			h.dataEnd = s.i
		default:
			return s.value()
		}
		return nil
	})
	switch {
	case err != nil:
		return h, err
	case !haveType:
		return h, fmt.Errorf("type is required")
	case !haveTS:
		return h, fmt.Errorf("timestamp is required")
	}
	return h, nil
}

// numberToInt converts a valid JSON number. Integers must fit int64;
// others must be finite and integral unless truncate is set, in which case
// the fraction is dropped.
func numberToInt(num []byte, isInt, truncate bool) (int64, bool) {
	if isInt && len(num) <= 18 {
		neg := num[0] == '-'
		if neg {
			num = num[1:]
		}
		var v int64
		for _, c := range num {
			v = v*10 + int64(c-'0')
		}
		if neg {
			v = -v
		}
		return v, true
	}
	if isInt {
		v, err := strconv.ParseInt(string(num), 10, 64)
		return v, err == nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	if truncate {
		f = math.Trunc(f)
	}
	if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// decodeString returns the value of the JSON string literal q (with
// quotes), which the scanner has validated, as encoding/json would: a lone
// surrogate escape becomes U+FFFD.
func decodeString(q []byte, esc bool) string {
	q = q[1 : len(q)-1]
	if !esc {
		return string(q)
	}
	out := make([]byte, 0, len(q))
	for i := 0; i < len(q); {
		c := q[i]
		if c != '\\' {
			j := i + 1
			for j < len(q) && q[j] != '\\' {
				j++
			}
			out = append(out, q[i:j]...)
			i = j
			continue
		}
		switch e := q[i+1]; e {
		case 'u':
			r := rune(hex4(q[i+2:]))
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := unicode.ReplacementChar
				if i+6 <= len(q) && q[i] == '\\' && q[i+1] == 'u' {
					if d := utf16.DecodeRune(r, rune(hex4(q[i+2:]))); d != unicode.ReplacementChar {
						r2 = d
						i += 6
					}
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, unescapeByte[e])
			i += 2
		}
	}
	return string(out)
}

// unescapeByte maps the byte after a backslash to what it stands for.
var unescapeByte = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 reads four validated hex digits.
func hex4(h []byte) uint16 {
	var v uint16
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		v = v<<4 | uint16(c)
	}
	return v
}

// appendJSONString appends v as a JSON string literal. Unlike
// encoding/json it keeps <, > and & as they are.
func appendJSONString(dst []byte, v string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, v[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, v[start:]...)
	return append(dst, '"')
}

// compactAppend appends the valid JSON src to dst without whitespace
// outside strings. dst may share src's array from its start: writing never
// overtakes reading.
func compactAppend(dst, src []byte) []byte {
	run := 0
	inStr := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[run:i]...)
			run = i + 1
		}
	}
	return append(dst, src[run:]...)
}

// jsonScan is a validating JSON scanner over a byte slice. It checks the
// grammar of RFC 8259 (UTF-8 is checked once by the caller) without
// building values, so callers pick out the few fields they need.
type jsonScan struct {
	b     []byte
	i     int
	ws    bool // whitespace was skipped since the caller last cleared it
	depth int
}

// jsonSyntaxError locates invalid JSON.
type jsonSyntaxError struct {
	off int
	msg string
}

func (e *jsonSyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg)
}

func (s *jsonScan) syntax(format string, args ...any) error {
	return &jsonSyntaxError{off: s.i, msg: fmt.Sprintf(format, args...)}
}

// peek returns the byte at the cursor, or 0 at the end.
func (s *jsonScan) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScan) skipWS() {
	for s.i < len(s.b) && isJSONSpace[s.b[s.i]] {
		s.i++
		s.ws = true
	}
}

// enter steps into an object or array.
func (s *jsonScan) enter() error {
	s.depth++
	if s.depth > maxJSONDepth {
		return s.syntax("nested deeper than %d", maxJSONDepth)
	}
	s.i++
	return nil
}

// value skips one value at the cursor.
func (s *jsonScan) value() error {
	return s.valueScrub(nil)
}

// valueScrub skips one value at the cursor, showing its strings to sc.
func (s *jsonScan) valueScrub(sc *urlScrub) error {
	end, ws, err := scanValue(s.b, s.i, s.depth, sc)
	s.i = end
	s.ws = s.ws || ws
	return err
}

// fields scans the object at the cursor. For each member it calls fn with
// the decoded key and the cursor on the value, which fn must consume; a
// nil fn skips the values.
func (s *jsonScan) fields(fn func(key []byte) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.skipWS()
	if s.peek() == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if s.peek() != '"' {
			if s.i >= len(s.b) {
				return s.syntax("unexpected end of input in object")
			}
			return s.syntax("expected a string key, got %q", s.peek())
		}
		start := s.i
		esc, err := s.str()
		if err != nil {
			return err
		}
		key := s.b[start+1 : s.i-1]
		s.skipWS()
		if s.peek() != ':' {
			return s.syntax("expected : after object key")
		}
		s.i++
		s.skipWS()
		if fn == nil {
			err = s.value()
		} else {
			if esc {
				key = []byte(decodeString(s.b[start:start+len(key)+2], true))
			}
			err = fn(key)
		}
		if err != nil {
			return err
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.i++
			s.skipWS()
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			if s.i >= len(s.b) {
				return s.syntax("unexpected end of input in object")
			}
			return s.syntax("expected , or } in object, got %q", s.peek())
		}
	}
}

// isJSONSpace marks the four whitespace bytes of JSON.
var isJSONSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// scanValue validates the value starting at b[i] (no whitespace before it)
// nested in depth containers, and returns the index after it and whether
// it holds whitespace outside strings. It is the hot loop of ParseBatch:
// iterative, with its state in locals, one pass over each byte. A non-nil
// sc sees every string value in it, with its key.
func scanValue(b []byte, i, depth int, sc *urlScrub) (end int, ws bool, err error) {
	var stackBuf [256]byte
	stack := stackBuf[:0] // '{' or '[' for each open container
	n := len(b)
	keyStart, keyEnd := -1, -1 // the key (quotes included) of the value at i; -1 in an array
value:
	if i >= n {
		return i, ws, &jsonSyntaxError{i, "unexpected end of input"}
	}
	switch c := b[i]; {
	case c == '"':
		start := i
		var esc bool
		if i, esc, err = scanString(b, i); err != nil {
			return i, ws, err
		}
		if sc != nil {
			sc.str(b, keyStart, keyEnd, start, i, esc)
		}
	case c == '{' || c == '[':
		if depth+len(stack) >= maxJSONDepth {
			return i, ws, &jsonSyntaxError{i, fmt.Sprintf("nested deeper than %d", maxJSONDepth)}
		}
		stack = append(stack, c)
		i++
		for i < n && isJSONSpace[b[i]] {
			i++
			ws = true
		}
		if i < n && b[i] == c+2 { // '}' is '{'+2, ']' is '['+2
			i++
			stack = stack[:len(stack)-1]
			break
		}
		if c == '{' {
			goto key
		}
		keyStart = -1
		goto value
	case c == '-' || '0' <= c && c <= '9':
		if i, _, err = scanNumber(b, i); err != nil {
			return i, ws, err
		}
	case c == 't':
		if i, err = scanLiteral(b, i, "true"); err != nil {
			return i, ws, err
		}
	case c == 'f':
		if i, err = scanLiteral(b, i, "false"); err != nil {
			return i, ws, err
		}
	case c == 'n':
		if i, err = scanLiteral(b, i, "null"); err != nil {
			return i, ws, err
		}
	default:
		return i, ws, &jsonSyntaxError{i, fmt.Sprintf("unexpected character %q", c)}
	}
	// A value ended: what follows depends on the container it is in.
	for {
		if len(stack) == 0 {
			return i, ws, nil
		}
		for i < n && isJSONSpace[b[i]] {
			i++
			ws = true
		}
		if i >= n {
			return i, ws, &jsonSyntaxError{i, "unexpected end of input"}
		}
		open := stack[len(stack)-1]
		switch b[i] {
		case ',':
			i++
			for i < n && isJSONSpace[b[i]] {
				i++
				ws = true
			}
			if open == '{' {
				goto key
			}
			keyStart = -1
			goto value
		case open + 2:
			i++
			stack = stack[:len(stack)-1]
			continue
		}
		if open == '{' {
			return i, ws, &jsonSyntaxError{i, fmt.Sprintf("expected , or } in object, got %q", b[i])}
		}
		return i, ws, &jsonSyntaxError{i, fmt.Sprintf("expected , or ] in array, got %q", b[i])}
	}
key:
	if i >= n || b[i] != '"' {
		if i >= n {
			return i, ws, &jsonSyntaxError{i, "unexpected end of input in object"}
		}
		return i, ws, &jsonSyntaxError{i, fmt.Sprintf("expected a string key, got %q", b[i])}
	}
	keyStart = i
	if i, _, err = scanString(b, i); err != nil {
		return i, ws, err
	}
	keyEnd = i
	for i < n && isJSONSpace[b[i]] {
		i++
		ws = true
	}
	if i >= n || b[i] != ':' {
		return i, ws, &jsonSyntaxError{i, "expected : after object key"}
	}
	i++
	for i < n && isJSONSpace[b[i]] {
		i++
		ws = true
	}
	goto value
}

// plainStringByte marks bytes that stand for themselves inside a string.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// str scans the string at the cursor; esc reports escapes in it.
func (s *jsonScan) str() (esc bool, err error) {
	s.i, esc, err = scanString(s.b, s.i)
	return esc, err
}

// scanString validates the string starting at b[i] and returns the index
// after its closing quote; esc reports escapes in it.
func scanString(b []byte, i int) (end int, esc bool, err error) {
	i++
	for {
		// Eight bytes at a time while none is a quote, a backslash or a
		// control character (bit tricks from "Bit Twiddling Hacks").
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ (swarOnes * '"')
			e := x ^ (swarOnes * '\\')
			if m := ((q-swarOnes)&^q | (e-swarOnes)&^e | (x-swarOnes*0x20)&^x) & swarHigh; m != 0 {
				i += bits.TrailingZeros64(m) >> 3 // the lowest flag is exact
				break
			}
			i += 8
		}
		for i < len(b) && plainStringByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, esc, &jsonSyntaxError{i, "unterminated string"}
		}
		switch c := b[i]; c {
		case '"':
			return i + 1, esc, nil
		case '\\':
			esc = true
			if i+1 >= len(b) {
				return i, esc, &jsonSyntaxError{i, "unterminated string"}
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, esc, &jsonSyntaxError{i, `invalid \u escape`}
				}
				i += 6
			default:
				return i, esc, &jsonSyntaxError{i, fmt.Sprintf("invalid escape %q", b[i:i+2])}
			}
		default:
			return i, esc, &jsonSyntaxError{i, fmt.Sprintf("control character %#02x in string", c)}
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// number scans a number; isInt reports that it has no fraction or exponent.
func (s *jsonScan) number() (isInt bool, err error) {
	s.i, isInt, err = scanNumber(s.b, s.i)
	return isInt, err
}

// scanNumber validates the number starting at b[i] and returns the index
// after it; isInt reports that it has no fraction or exponent.
func scanNumber(b []byte, i int) (end int, isInt bool, err error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	default:
		return i, false, &jsonSyntaxError{i, "invalid number"}
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, false, &jsonSyntaxError{i, "invalid number: digits expected after ."}
		}
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, false, &jsonSyntaxError{i, "invalid number: digits expected in exponent"}
		}
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	}
	return i, isInt, nil
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, &jsonSyntaxError{i, "invalid literal, want " + lit}
	}
	return i + len(lit), nil
}

func (s *jsonScan) literal(lit string) (err error) {
	s.i, err = scanLiteral(s.b, s.i, lit)
	return err
}

// kindName names the JSON type a value starting with c has, for errors.
func kindName(c byte) string {
	switch {
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || '0' <= c && c <= '9':
		return "number"
	case c == 0:
		return "nothing"
	}
	return "invalid JSON"
}
