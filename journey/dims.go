package journey

import (
	"sort"
	"strings"

	"github.com/trailmap/trailmap/storage/index"
)

// dimension is a split of sessions by one attribute: the session
// attributes the index hands over, and how their text becomes the split
// value.
type dimension struct {
	attrs []index.SessionAttr
	value func(attrs []string) string
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
	"device": {value: func(c []string) string { return orUnknown(c[0]) },
		fromHead: func(h *sessHead) string { return deviceNames[h.device] }},
	"browser":      {attrs: []index.SessionAttr{index.AttrBrowser}, value: func(c []string) string { return orUnknown(c[0]) }},
	"os":           {attrs: []index.SessionAttr{index.AttrOS}, value: func(c []string) string { return orUnknown(c[0]) }},
	"identified":   {attrs: []index.SessionAttr{index.AttrIdentified}, value: func(c []string) string { return c[0] }},
	"visitor_type": {attrs: []index.SessionAttr{index.AttrVisitorType}, value: func(c []string) string { return c[0] }},
	"referrer_host": {attrs: []index.SessionAttr{index.AttrReferrer}, value: func(c []string) string {
		if h := hostOf(c[0]); h != "" {
			return h
		}
		return "(direct)"
	}},
	"utm_source":   {attrs: []index.SessionAttr{index.AttrEntryURL}, value: func(c []string) string { return orNone(entrySource(c[0], "").UTMSource) }},
	"utm_medium":   {attrs: []index.SessionAttr{index.AttrEntryURL}, value: func(c []string) string { return orNone(entrySource(c[0], "").UTMMedium) }},
	"utm_campaign": {attrs: []index.SessionAttr{index.AttrEntryURL}, value: func(c []string) string { return orNone(entrySource(c[0], "").UTMCampaign) }},
	"source":       {attrs: []index.SessionAttr{index.AttrEntryURL, index.AttrReferrer}, value: func(c []string) string { return entrySource(c[0], c[1]).Label }},
	"entry_page":   {attrs: []index.SessionAttr{index.AttrEntryURL}, value: func(c []string) string { return pathOf(c[0]) }},
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
