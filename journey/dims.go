package journey

import (
	"sort"
	"strings"
)

// dimension is a split of sessions by one attribute: SQL columns over the
// sessions alias s, and how their text becomes the split value.
type dimension struct {
	cols  []string
	value func(cols []string) string
	// fromHead, when set, reads the value from the stored session instead
	// (no SQL).
	fromHead func(h *sessHead) string
}

// Dimensions lists the split dimensions, for the API.
func Dimensions() []string {
	out := make([]string, 0, len(dimensions))
	for k := range dimensions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orUnknown(v string) string {
	if v == "" {
		return "(unknown)"
	}
	return v
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

var dimensions = map[string]dimension{
	"device": {cols: []string{"s.device"}, value: func(c []string) string { return orUnknown(c[0]) },
		fromHead: func(h *sessHead) string { return deviceNames[h.device] }},
	"browser": {cols: []string{"s.browser"}, value: func(c []string) string { return orUnknown(c[0]) }},
	"os":      {cols: []string{"s.os"}, value: func(c []string) string { return orUnknown(c[0]) }},
	"identified": {cols: []string{"CASE WHEN " + userIDExpr("s") + " IS NOT NULL THEN 'identified' ELSE 'anonymous' END"},
		value: func(c []string) string { return c[0] }},
	"visitor_type": {cols: []string{"CASE WHEN NOT EXISTS (SELECT 1 FROM sessions j_f WHERE j_f.project_id = s.project_id AND j_f.visitor_id IN (" +
		personVisitors("s") + ") AND (j_f.started_at < s.started_at OR (j_f.started_at = s.started_at AND j_f.id < s.id))) THEN 'new' ELSE 'returning' END"},
		value: func(c []string) string { return c[0] }},
	"referrer_host": {cols: []string{"s.referrer"}, value: func(c []string) string {
		if h := hostOf(c[0]); h != "" {
			return h
		}
		return "(direct)"
	}},
	"utm_source":   {cols: []string{entryURLExpr("s")}, value: func(c []string) string { return orNone(entrySource(c[0], "").UTMSource) }},
	"utm_medium":   {cols: []string{entryURLExpr("s")}, value: func(c []string) string { return orNone(entrySource(c[0], "").UTMMedium) }},
	"utm_campaign": {cols: []string{entryURLExpr("s")}, value: func(c []string) string { return orNone(entrySource(c[0], "").UTMCampaign) }},
	"source":       {cols: []string{entryURLExpr("s"), "s.referrer"}, value: func(c []string) string { return entrySource(c[0], c[1]).Label }},
	"entry_page":   {cols: []string{entryURLExpr("s")}, value: func(c []string) string { return pathOf(c[0]) }},
}

func dimensionFor(name string) (*dimension, error) {
	if name == "" {
		return nil, nil
	}
	d, ok := dimensions[name]
	if !ok {
		return nil, invalidf("split %q: one of %s", name, strings.Join(Dimensions(), ", "))
	}
	return &d, nil
}

// otherValue groups split values beyond the top ones.
const otherValue = "(other)"

// maxSplitValues is how many split values a report shows before "(other)".
const maxSplitValues = 10
