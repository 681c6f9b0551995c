package heatmap

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/trailmap/trailmap/internal/textcut"
)

// Settings are a project's heatmap and frustration settings, read from the
// project's settings JSON:
//
//	{"heatmap": {"query_params": ["lang"], "groups": ["/product/*"], "include_hash": false},
//	 "frustration": {"rage_clicks": 3, "rage_radius_px": 30, "rage_window_ms": 1000,
//	                 "dead_window_ms": 2500, "error_window_ms": 1000}}
//
// Missing fields keep their defaults (DefaultSettings).
type Settings struct {
	Heatmap     PageRules   `json:"heatmap"`
	Frustration Frustration `json:"frustration"`
}

// PageRules turn a URL into a page key.
type PageRules struct {
	// QueryParams are the query parameters that make different pages
	// (e.g. "lang"); all others are dropped from the key.
	QueryParams []string `json:"query_params"`
	// Groups are path patterns; a path that matches one has the pattern as
	// its key. "*" matches one path segment, a trailing "**" the rest of the
	// path: "/product/*", "/docs/**". The first match wins.
	Groups []string `json:"groups"`
	// IncludeHash keeps the fragment (for hash-routed single page apps).
	IncludeHash bool `json:"include_hash"`
}

// Frustration holds the thresholds of the frustration signals.
type Frustration struct {
	// RageClicks clicks or more, each within RageRadiusPx (page pixels) and
	// RageWindowMS of the previous one, are a rage click.
	RageClicks   int     `json:"rage_clicks"`
	RageRadiusPx float64 `json:"rage_radius_px"`
	RageWindowMS int64   `json:"rage_window_ms"`
	// DeadWindowMS: a click followed by no DOM mutation, navigation, scroll
	// or input for this long is a dead click.
	DeadWindowMS int64 `json:"dead_window_ms"`
	// ErrorWindowMS: a JS error this soon after a click makes it an error
	// click.
	ErrorWindowMS int64 `json:"error_window_ms"`
}

// DefaultSettings returns the documented defaults: no query parameters, no
// groups, rage = 3 clicks within 30 px and 1 s of each other, dead = nothing
// within 2.5 s, error = an error within 1 s.
func DefaultSettings() Settings {
	return Settings{Frustration: Frustration{
		RageClicks: 3, RageRadiusPx: 30, RageWindowMS: 1000, DeadWindowMS: 2500, ErrorWindowMS: 1000,
	}}
}

// ParseSettings reads a project's settings JSON over the defaults.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	s := DefaultSettings()
	if len(raw) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return DefaultSettings(), fmt.Errorf("parse heatmap settings: %w", err)
	}
	d := DefaultSettings().Frustration
	f := &s.Frustration
	if f.RageClicks < 2 {
		f.RageClicks = d.RageClicks
	}
	if f.RageRadiusPx <= 0 {
		f.RageRadiusPx = d.RageRadiusPx
	}
	if f.RageWindowMS <= 0 {
		f.RageWindowMS = d.RageWindowMS
	}
	if f.DeadWindowMS <= 0 {
		f.DeadWindowMS = d.DeadWindowMS
	}
	if f.ErrorWindowMS <= 0 {
		f.ErrorWindowMS = d.ErrorWindowMS
	}
	f.DeadWindowMS = min(f.DeadWindowMS, int64(time.Minute/time.Millisecond))
	return s, nil
}

// maxKeyLen bounds page keys and selectors stored in the index.
const maxKeyLen = 512

// PageKey returns the page key of a URL (or of a bare path such as
// "/product/12?lang=de"): its path, the allowed query parameters sorted by
// name, and the fragment when IncludeHash is set; or the first matching
// group pattern. Paths lose a trailing slash ("/a/" → "/a").
func (r PageRules) PageKey(raw string) string {
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 && i < 16 {
		rest = rest[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[j:]
		} else {
			rest = "/"
		}
	}
	path, frag, _ := strings.Cut(rest, "#")
	path, query, _ := strings.Cut(path, "?")
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	if len(path) > 1 {
		path = strings.TrimRight(path, "/")
		if path == "" {
			path = "/"
		}
	}
	var b strings.Builder
	if g := r.group(path); g != "" {
		b.WriteString(g)
	} else {
		b.WriteString(path)
	}
	if len(r.QueryParams) > 0 && query != "" {
		vals, err := url.ParseQuery(query)
		if err == nil {
			keep := url.Values{}
			for _, p := range r.QueryParams {
				if v, ok := vals[p]; ok {
					keep[p] = v
				}
			}
			if len(keep) > 0 {
				b.WriteByte('?')
				b.WriteString(keep.Encode()) // sorted by key
			}
		}
	}
	if r.IncludeHash && frag != "" {
		b.WriteByte('#')
		b.WriteString(frag)
	}
	k := b.String()
	return textcut.Head(k, maxKeyLen)
}

// group returns the first group pattern path matches, or "".
func (r PageRules) group(path string) string {
	if len(r.Groups) == 0 {
		return ""
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, g := range r.Groups {
		if matchGroup(strings.Split(strings.Trim(g, "/"), "/"), segs) {
			return g
		}
	}
	return ""
}

func matchGroup(pat, segs []string) bool {
	for i, p := range pat {
		if p == "**" && i == len(pat)-1 {
			return len(segs) >= i
		}
		if i >= len(segs) {
			return false
		}
		if p != "*" && p != segs[i] {
			if !strings.Contains(p, "*") || !matchStar(p, segs[i]) {
				return false
			}
		}
	}
	return len(pat) == len(segs)
}

// matchStar matches one segment against a pattern with "*" wildcards
// ("item-*", "*.html").
func matchStar(p, s string) bool {
	parts := strings.Split(p, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, part := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, part)
		}
		j := strings.Index(s, part)
		if j < 0 {
			return false
		}
		s = s[j+len(part):]
	}
	return true
}

// Devices are the device classes the recorder assigns (sessions.device).
var Devices = []string{"desktop", "tablet", "mobile"}

// validDevice reports whether d is a device class or "" (all devices).
func validDevice(d string) bool { return d == "" || slices.Contains(Devices, d) }
