package recorder

import (
	"encoding/json"
	"math"
	"strings"

	"github.com/trailmap/trailmap/internal/jsonscan"
	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/internal/textcut"
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
	// Interactions counts what makes a visit more than a glance, as the
	// browser script's require_interaction does: mouse and touch
	// interactions other than focus and blur, scrolls, inputs, touch moves,
	// media interactions and drags.
	Interactions    int
	FullSnapshots   int
	FirstSnapshotTS int64 // timestamp of the earliest full snapshot; 0: none
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
	sourceScroll           = 3
	sourceViewportResize   = 4
	sourceInput            = 5
	sourceTouchMove        = 6
	sourceMedia            = 7
	sourceDrag             = 12
	mouseClick             = 2
	mouseFocus             = 5
	mouseBlur              = 6
	touchMoveDeparted      = 8
	internalTagPrefix      = "trailmap/"
)

// ExtractFacts summarises events, which should come from ParseBatch. It
// only looks at the fields it needs, skipping the rest without decoding,
// and tolerates odd events by ignoring what it cannot read.
func ExtractFacts(events []json.RawMessage) Facts {
	return factsOf(rrweb.SplitAll(events))
}

// factsOf is ExtractFacts on events whose envelopes are read.
func factsOf(events []rrweb.Event) Facts {
	f := Facts{Events: len(events)}
	haveTS := false
	afterCheckout := false
	for _, ev := range events {
		f.Bytes += int64(len(ev.Raw))
		typ, ts, tsOK, data := ev.Type, ev.Timestamp, ev.HasTimestamp, ev.Data
		if tsOK {
			if !haveTS || ts < f.FirstTS {
				f.FirstTS = ts
			}
			if !haveTS || ts > f.LastTS {
				f.LastTS = ts
			}
			haveTS = true
		}
		checkout := false
		switch typ {
		case rrweb.FullSnapshot:
			f.FullSnapshots++
			if tsOK && ts > 0 && (f.FirstSnapshotTS == 0 || ts < f.FirstSnapshotTS) {
				f.FirstSnapshotTS = ts
			}
		case rrweb.Incremental:
			f.incremental(data)
		case rrweb.Meta:
			f.meta(ts, data, afterCheckout)
		case rrweb.Custom:
			checkout = f.custom(ts, data) == checkoutTag
		}
		afterCheckout = checkout
	}
	return f
}

// checkoutTag marks a periodic full snapshot of Trailmap's recorder: the
// Meta event right after it is a replay point, not a page view.
const checkoutTag = internalTagPrefix + "checkout"

func (f *Facts) incremental(data []byte) {
	var source, typ, w, h int64 = -1, -1, 0, 0
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "source":
			source, _ = jsonscan.Int(val)
			// Most incremental events are mutations and moves, often large:
			// stop reading them as soon as the source says so.
			return source == sourceMouseInteraction || source == sourceViewportResize
		case "type":
			typ, _ = jsonscan.Int(val)
		case "width":
			w, _ = jsonscan.Int(val)
		case "height":
			h, _ = jsonscan.Int(val)
		}
		return true
	})
	switch source {
	case sourceMouseInteraction:
		if typ == mouseClick {
			f.Clicks++
		}
		if typ >= 0 && typ != mouseFocus && typ != mouseBlur && typ != touchMoveDeparted {
			f.Interactions++
		}
	case sourceScroll, sourceInput, sourceTouchMove, sourceMedia, sourceDrag:
		f.Interactions++
	case sourceViewportResize:
		if w > 0 && h > 0 {
			f.ViewportW, f.ViewportH = clampInt(w), clampInt(h)
		}
	}
}

// maxIndexedURL is how much of a page URL the index keeps.
const maxIndexedURL = 2048

// meta reads a Meta event: a page view, unless checkout says it starts a
// periodic full snapshot (its viewport still counts).
func (f *Facts) meta(ts int64, data []byte, checkout bool) {
	p := Page{TS: ts}
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "href":
			p.URL = jsonscan.Str(val)
		case "width":
			w, _ := jsonscan.Int(val)
			p.Width = clampInt(w)
		case "height":
			h, _ := jsonscan.Int(val)
			p.Height = clampInt(h)
		}
		return true
	})
	// The index keeps at most maxIndexedURL bytes of a URL (the events
	// keep it whole): a key of PostgreSQL's b-trees holds at most ~2.7 KB.
	p.URL = textcut.Head(p.URL, maxIndexedURL)
	p.Path = urlPath(p.URL)
	if !checkout {
		f.Pages = append(f.Pages, p)
	}
	if p.Width > 0 && p.Height > 0 {
		f.ViewportW, f.ViewportH = p.Width, p.Height
	}
}

// custom reads a custom event and returns its tag.
func (f *Facts) custom(ts int64, data []byte) string {
	c := Custom{TS: ts}
	jsonscan.EachField(data, func(key, val []byte) bool {
		switch string(key) {
		case "tag":
			c.Tag = jsonscan.Str(val)
		case "payload":
			c.Payload = val
		}
		return true
	})
	if !strings.HasPrefix(c.Tag, internalTagPrefix) {
		f.Custom = append(f.Custom, c)
		return c.Tag
	}
	f.Internal = append(f.Internal, c)
	switch c.Tag {
	case "trailmap/error":
		f.Errors++
	case "trailmap/dropped":
		jsonscan.EachField(c.Payload, func(key, val []byte) bool {
			if string(key) == "count" {
				if n, ok := jsonscan.Int(val); ok && n > 0 {
					f.Dropped += n
				}
				return false
			}
			return true
		})
	}
	return c.Tag
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
