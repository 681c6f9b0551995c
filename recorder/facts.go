package recorder

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Facts is what the index learns from a batch's events.
type Facts struct {
	FirstTS, LastTS int64 // smallest and largest event timestamp, unix ms
	Events          int
	Bytes           int64 // sum of event sizes
	Pages           []Page
	// ViewportW and ViewportH are the last viewport size in event order,
	// from Meta events and viewport resizes; 0 when the batch has none.
	ViewportW, ViewportH int
	Clicks               int // rrweb mouse-interaction clicks
	FullSnapshots        int
	// Custom holds the custom events (rrweb type 5) the page sent; Internal
	// those of Trailmap's own recorder, tagged "trailmap/..." (doc, click,
	// error, dropped, page).
	Custom   []Custom
	Internal []Custom
	Errors   int   // "trailmap/error" events
	Dropped  int64 // sum of the counts of "trailmap/dropped" events
}

// Page is a page view: a Meta event.
type Page struct {
	TS            int64
	URL           string // as recorded, already redacted by ParseBatch
	Path          string // the URL's path, escaped as in the URL; "/" if none
	Width, Height int    // viewport
}

// Custom is a custom event. Payload aliases the event.
type Custom struct {
	TS      int64
	Tag     string
	Payload json.RawMessage
}

// rrweb incremental snapshot sources and mouse interactions used here.
const (
	sourceMouseInteraction = 2
	sourceViewportResize   = 4
	mouseClick             = 2
	internalTagPrefix      = "trailmap/"
)

// ExtractFacts summarises events, which should come from ParseBatch. It
// only looks at the fields it needs, skipping the rest without decoding,
// and tolerates odd events by ignoring what it cannot read.
func ExtractFacts(events []json.RawMessage) Facts {
	f := Facts{Events: len(events)}
	haveTS := false
	for _, ev := range events {
		f.Bytes += int64(len(ev))
		var typ int64 = -1
		var ts int64
		var tsOK bool
		var data []byte
		eachField(ev, func(key, val []byte) bool {
			switch string(key) {
			case "type":
				if v, ok := looseInt(val); ok {
					typ = v
				}
			case "timestamp":
				ts, tsOK = looseInt(val)
			case "data":
				data = val
			}
			return true
		})
		if tsOK {
			if !haveTS || ts < f.FirstTS {
				f.FirstTS = ts
			}
			if !haveTS || ts > f.LastTS {
				f.LastTS = ts
			}
			haveTS = true
		}
		switch typ {
		case eventFullSnapshot:
			f.FullSnapshots++
		case eventIncrementalSnapshot:
			f.incremental(data)
		case eventMeta:
			f.meta(ts, data)
		case eventCustom:
			f.custom(ts, data)
		}
	}
	return f
}

func (f *Facts) incremental(data []byte) {
	var source, typ, w, h int64 = -1, -1, 0, 0
	eachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "source":
			source, _ = looseInt(val)
			// Most incremental events are mutations and moves, often large:
			// stop reading them as soon as the source says so.
			return source == sourceMouseInteraction || source == sourceViewportResize
		case "type":
			typ, _ = looseInt(val)
		case "width":
			w, _ = looseInt(val)
		case "height":
			h, _ = looseInt(val)
		}
		return true
	})
	switch source {
	case sourceMouseInteraction:
		if typ == mouseClick {
			f.Clicks++
		}
	case sourceViewportResize:
		if w > 0 && h > 0 {
			f.ViewportW, f.ViewportH = clampInt(w), clampInt(h)
		}
	}
}

func (f *Facts) meta(ts int64, data []byte) {
	p := Page{TS: ts}
	eachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "href":
			p.URL = jsonStringValue(val)
		case "width":
			w, _ := looseInt(val)
			p.Width = clampInt(w)
		case "height":
			h, _ := looseInt(val)
			p.Height = clampInt(h)
		}
		return true
	})
	p.Path = urlPath(p.URL)
	f.Pages = append(f.Pages, p)
	if p.Width > 0 && p.Height > 0 {
		f.ViewportW, f.ViewportH = p.Width, p.Height
	}
}

func (f *Facts) custom(ts int64, data []byte) {
	c := Custom{TS: ts}
	eachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "tag":
			c.Tag = jsonStringValue(val)
		case "payload":
			c.Payload = val
		}
		return true
	})
	if !strings.HasPrefix(c.Tag, internalTagPrefix) {
		f.Custom = append(f.Custom, c)
		return
	}
	f.Internal = append(f.Internal, c)
	switch c.Tag {
	case "trailmap/error":
		f.Errors++
	case "trailmap/dropped":
		eachField(c.Payload, func(key, val []byte) bool {
			if string(key) == "count" {
				if n, ok := looseInt(val); ok && n > 0 {
					f.Dropped += n
				}
				return false
			}
			return true
		})
	}
}

// urlPath returns the path of a URL as written in it, "/" when it has none.
func urlPath(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	_, path := splitAuthority(u)
	if !strings.HasPrefix(path, "/") {
		return "/"
	}
	return path
}

// DeviceThresholds split viewport widths into device classes.
type DeviceThresholds struct {
	TabletMin  int // narrower viewports are mobile
	DesktopMin int // narrower viewports (from TabletMin) are tablets
}

// DefaultDeviceThresholds returns the usual CSS breakpoints, 768 and 1024.
func DefaultDeviceThresholds() DeviceThresholds {
	return DeviceThresholds{TabletMin: 768, DesktopMin: 1024}
}

// DeviceClass returns "mobile", "tablet" or "desktop" for a viewport
// width, or "" when the width is unknown (0 or less).
func DeviceClass(width int, th DeviceThresholds) string {
	switch {
	case width <= 0:
		return ""
	case width < th.TabletMin:
		return "mobile"
	case width < th.DesktopMin:
		return "tablet"
	}
	return "desktop"
}

func clampInt(v int64) int {
	return int(max(min(v, math.MaxInt32), math.MinInt32))
}

// looseInt reads a JSON number as an integer, dropping any fraction.
func looseInt(val []byte) (int64, bool) {
	if v, ok := smallInt(val); ok {
		return v, true
	}
	f, err := strconv.ParseFloat(string(val), 64)
	if err != nil || math.IsNaN(f) || f <= math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// smallInt parses an optionally negative run of at most 18 digits.
func smallInt(val []byte) (int64, bool) {
	digits := val
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if val[0] == '-' {
		v = -v
	}
	return v, true
}

// jsonStringValue decodes a raw JSON string value; anything else gives "".
func jsonStringValue(val []byte) string {
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return ""
	}
	return decodeString(val, bytes.IndexByte(val, '\\') >= 0)
}

// eachField calls fn with each top-level key (decoded) and raw value of the
// JSON object obj, until fn returns false. It trusts obj to be valid JSON,
// as events from ParseBatch are, and stops quietly where it is not. Strings
// are skipped with bytes.IndexByte, so large values cost little.
func eachField(obj []byte, fn func(key, val []byte) bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		end := skipStringFast(obj, i)
		if end < 0 {
			return
		}
		key := obj[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			key = []byte(decodeString(obj[i:end], true))
		}
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipSpace(obj, i+1)
		end = skipValueFast(obj, i)
		if end < 0 || !fn(key, obj[i:end]) {
			return
		}
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipStringFast returns the index after the string starting at b[i], or -1.
func skipStringFast(b []byte, i int) int {
	j := i + 1
	for {
		// Eight bytes at a time to the first quote or backslash.
		for j+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[j:])
			q := x ^ (swarOnes * '"')
			e := x ^ (swarOnes * '\\')
			if m := ((q-swarOnes)&^q | (e-swarOnes)&^e) & swarHigh; m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		switch {
		case j >= len(b):
			return -1
		case b[j] == '"':
			return j + 1
		}
		j += 2 // an escape
	}
}

// skipValueFast returns the index after the value starting at b[i], or -1.
func skipValueFast(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipStringFast(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := skipStringFast(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	case ',', '}', ']', ':':
		return -1
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			return j
		}
		j++
	}
	return j
}
