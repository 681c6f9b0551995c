package journey

import (
	"net/url"
	"strings"
)

// Source is where a visit came from: the referrer's host and the UTM
// parameters of its entry URL.
type Source struct {
	ReferrerHost string `json:"referrer_host,omitempty"`
	UTMSource    string `json:"utm_source,omitempty"`
	UTMMedium    string `json:"utm_medium,omitempty"`
	UTMCampaign  string `json:"utm_campaign,omitempty"`
	// Label is one line for lists: the UTM source/medium, else the
	// referrer host, else "(direct)".
	Label string `json:"label"`
}

// entrySource reads a session's source from its entry URL and referrer.
func entrySource(entryURL, referrer string) Source {
	var src Source
	src.ReferrerHost = hostOf(referrer)
	if _, q, ok := strings.Cut(entryURL, "?"); ok {
		q, _, _ = strings.Cut(q, "#")
		if vals, err := url.ParseQuery(q); err == nil || len(vals) > 0 {
			src.UTMSource = strings.ToLower(strings.TrimSpace(vals.Get("utm_source")))
			src.UTMMedium = strings.ToLower(strings.TrimSpace(vals.Get("utm_medium")))
			src.UTMCampaign = strings.ToLower(strings.TrimSpace(vals.Get("utm_campaign")))
		}
	}
	switch {
	case src.UTMSource != "" && src.UTMMedium != "":
		src.Label = src.UTMSource + " / " + src.UTMMedium
	case src.UTMSource != "":
		src.Label = src.UTMSource
	case src.ReferrerHost != "":
		src.Label = src.ReferrerHost
	default:
		src.Label = "(direct)"
	}
	return src
}

// hostOf is the lower-case host of a URL without a leading "www.", or "".
func hostOf(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
}

// pathOf is the path of a URL, "/" if it has none.
func pathOf(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		raw = raw[i+3:]
		if j := strings.IndexByte(raw, '/'); j >= 0 {
			return raw[j:]
		}
		return "/"
	}
	if strings.HasPrefix(raw, "/") {
		return raw
	}
	return "/"
}
