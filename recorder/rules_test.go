package recorder

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		err      string // substring; "" for valid
	}{
		{name: "none", settings: ``},
		{name: "other keys", settings: `{"retention_days": 3}`},
		{name: "all", settings: `{"recording": {"sample_rate": 0.25, "min_duration_ms": 5000, "require_interaction": true,
			"allow_urls": ["/shop*"], "deny_urls": ["/shop/account*", "https://*.example.com/admin"],
			"start_after": {"event": "checkout", "buffer_ms": 30000}, "drop_bots": true}}`},
		{name: "rate 0", settings: `{"recording": {"sample_rate": 0}}`},
		{name: "rate over 1", settings: `{"recording": {"sample_rate": 1.5}}`, err: "sample_rate"},
		{name: "negative rate", settings: `{"recording": {"sample_rate": -0.1}}`, err: "sample_rate"},
		{name: "typo", settings: `{"recording": {"sample": 0.5}}`, err: `unknown rule "sample"`},
		{name: "not an object", settings: `{"recording": 3}`, err: "recording"},
		{name: "long min duration", settings: `{"recording": {"min_duration_ms": 7200000}}`, err: "min_duration_ms"},
		{name: "empty pattern", settings: `{"recording": {"deny_urls": [" "]}}`, err: "deny_urls"},
		{name: "trigger without event or url", settings: `{"recording": {"start_after": {"buffer_ms": 1000}}}`, err: "start_after"},
		{name: "internal trigger", settings: `{"recording": {"start_after": {"event": "trailmap/page"}}}`, err: "start_after.event"},
		{name: "long buffer", settings: `{"recording": {"start_after": {"event": "x", "buffer_ms": 600000}}}`, err: "buffer_ms"},
		{name: "too many patterns", settings: `{"recording": {"allow_urls": [` + strings.Repeat(`"/a",`, 100) + `"/b"]}}`, err: "at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules(json.RawMessage(tt.settings))
			if tt.err == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want one saying %q", err, tt.err)
			}
			if err := CheckProjectSettings(json.RawMessage(tt.settings)); (err == nil) != (tt.err == "") {
				t.Fatalf("CheckProjectSettings: %v", err)
			}
		})
	}
	r, _ := ParseRules(json.RawMessage(`{"recording": {"start_after": {"url": "/checkout"}}}`))
	if r.StartAfter.BufferMS != defaultTriggerBufferMS {
		t.Errorf("default buffer %d, want %d", r.StartAfter.BufferMS, defaultTriggerBufferMS)
	}
}

func mustRules(t *testing.T, recording string) *ruleSet {
	t.Helper()
	r, err := ParseRules(json.RawMessage(`{"recording": ` + recording + `}`))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := compileRules(r)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestRuleSet_URLAllowed(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		href  string
		want  bool
	}{
		{"no rules", `{}`, "https://shop.test/anything", true},
		{"deny prefix", `{"deny_urls": ["/admin"]}`, "https://shop.test/admin/users?x=1", false},
		{"deny prefix, other path", `{"deny_urls": ["/admin"]}`, "https://shop.test/administrator", false},
		{"deny prefix, no match", `{"deny_urls": ["/admin"]}`, "https://shop.test/shop/admin", true},
		{"deny glob", `{"deny_urls": ["/*/account"]}`, "https://shop.test/en/account/orders", false},
		{"deny anchored end", `{"deny_urls": ["/checkout$"]}`, "https://shop.test/checkout", false},
		{"deny anchored end, longer", `{"deny_urls": ["/checkout$"]}`, "https://shop.test/checkout/done", true},
		{"path pattern sees the query", `{"deny_urls": ["/search?q=*secret"]}`, "https://shop.test/search?q=top-secret", false},
		{"path pattern sees hash routes", `{"deny_urls": ["/#/admin"]}`, "https://shop.test/#/admin/x", false},
		{"root path of a bare origin", `{"deny_urls": ["/$"]}`, "https://shop.test", false},
		{"full URL pattern", `{"deny_urls": ["https://admin.shop.test"]}`, "https://admin.shop.test/x", false},
		{"full URL glob", `{"deny_urls": ["*://*.internal.test/*"]}`, "http://a.internal.test/b", false},
		{"full URL, other host", `{"deny_urls": ["https://admin.shop.test"]}`, "https://shop.test/admin.shop.test", true},
		{"regexp characters are literal", `{"deny_urls": ["/a.b(c)"]}`, "https://shop.test/aXb(c)", true},
		{"allow list", `{"allow_urls": ["/shop", "/cart"]}`, "https://shop.test/cart/2", true},
		{"allow list, outside", `{"allow_urls": ["/shop", "/cart"]}`, "https://shop.test/blog", false},
		{"deny wins over allow", `{"allow_urls": ["/shop"], "deny_urls": ["/shop/account"]}`, "https://shop.test/shop/account", false},
		{"case matters", `{"deny_urls": ["/Admin"]}`, "https://shop.test/admin", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustRules(t, tt.rules).URLAllowed(tt.href); got != tt.want {
				t.Errorf("URLAllowed(%q) = %v, want %v", tt.href, got, tt.want)
			}
		})
	}
}

func TestRuleSet_Sampled(t *testing.T) {
	tests := []struct {
		name     string
		rate     string
		min, max int // of 10,000 sessions
	}{
		{"unset", `{}`, 10000, 10000},
		{"all", `{"sample_rate": 1}`, 10000, 10000},
		{"none", `{"sample_rate": 0}`, 0, 0},
		{"a tenth", `{"sample_rate": 0.1}`, 900, 1100},
		{"half", `{"sample_rate": 0.5}`, 4800, 5200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustRules(t, tt.rate)
			n := 0
			for i := 0; i < 10000; i++ {
				id := fmt.Sprintf("sess-%08d-x", i)
				a, b := rs.Sampled(id), rs.Sampled(id)
				if a != b {
					t.Fatalf("%s: decided %v, then %v", id, a, b)
				}
				if a {
					n++
				}
			}
			if n < tt.min || n > tt.max {
				t.Errorf("%d of 10000 sampled, want %d–%d", n, tt.min, tt.max)
			}
		})
	}
	// The script computes the same hash (recorder/js: sampled); these
	// values are FNV-1a 32 as published.
	for id, want := range map[string]uint32{"": 0x811c9dc5, "a": 0xe40c292c, "foobar": 0xbf9cf968} {
		if got := sessionHash(id); got != want {
			t.Errorf("sessionHash(%q) = %#x, want %#x", id, got, want)
		}
	}
}

func events(evs ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(evs))
	for i, e := range evs {
		out[i] = json.RawMessage(e)
	}
	return out
}

const (
	evMeta      = `{"type":4,"timestamp":1,"data":{"href":"https://shop.test%s","width":800,"height":600}}`
	evSnapshot  = `{"type":2,"timestamp":2,"data":{"node":{}}}`
	evMove      = `{"type":3,"timestamp":3,"data":{"source":1,"positions":[]}}`
	evCustom    = `{"type":5,"timestamp":4,"data":{"tag":"%s","payload":{}}}`
	evMalformed = `{"type":"x"}`
)

func TestRuleSet_FilterPages(t *testing.T) {
	rs := mustRules(t, `{"deny_urls": ["/admin"]}`)
	meta := func(path string) string { return fmt.Sprintf(evMeta, path) }
	tests := []struct {
		name       string
		in         []json.RawMessage
		denied     bool // the batch starts on a denied page
		keep       int
		endsDenied bool
	}{
		{"allowed page", events(meta("/"), evSnapshot, evMove), false, 3, false},
		{"denied page", events(meta("/admin"), evSnapshot, evMove), false, 0, true},
		{"leaves a denied page", events(meta("/admin"), evSnapshot, meta("/shop"), evSnapshot, evMove), false, 3, false},
		{"enters a denied page", events(meta("/shop"), evSnapshot, meta("/admin/x"), evMove), false, 2, true},
		{"continues a denied page", events(evMove, evMove), true, 0, true},
		{"continues an allowed page", events(evMove, evMalformed), false, 2, false},
		{"continues a denied page, then leaves it", events(evMove, meta("/"), evSnapshot), true, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, denied := rs.filterPages(tt.in, tt.denied)
			if len(kept) != tt.keep || denied != tt.endsDenied {
				t.Errorf("kept %d (ends denied %v), want %d (%v)", len(kept), denied, tt.keep, tt.endsDenied)
			}
		})
	}
}

func TestRuleSet_Triggered(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		in    []json.RawMessage
		want  bool
	}{
		{"event", `{"start_after": {"event": "signup"}}`, events(evMove, fmt.Sprintf(evCustom, "signup")), true},
		{"other event", `{"start_after": {"event": "signup"}}`, events(fmt.Sprintf(evCustom, "signup2")), false},
		{"script's marker", `{"start_after": {"event": "signup"}}`, events(fmt.Sprintf(evCustom, "trailmap/trigger"), evSnapshot), true},
		{"url", `{"start_after": {"url": "/checkout"}}`, events(fmt.Sprintf(evMeta, "/checkout/1"), evSnapshot), true},
		{"other url", `{"start_after": {"url": "/checkout"}}`, events(fmt.Sprintf(evMeta, "/cart"), evSnapshot), false},
		{"nothing", `{"start_after": {"url": "/checkout"}}`, events(evMove, evMalformed), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustRules(t, tt.rules).triggered(tt.in); got != tt.want {
				t.Errorf("triggered = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBotList(t *testing.T) {
	bots, err := LoadBots()
	if err != nil {
		t.Fatalf("the embedded crawler list (run make js): %v", err)
	}
	if bots.Len() < 500 {
		t.Fatalf("crawler list holds %d patterns", bots.Len())
	}
	tests := []struct {
		ua   string
		want bool
	}{
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", true},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", true},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", true},
		{"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", true},
		{"curl/8.4.0", true},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", false},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", false},
	}
	for _, tt := range tests {
		for range 2 { // the second answer comes from the cache
			if got := bots.IsBot(tt.ua); got != tt.want {
				t.Errorf("IsBot(%q) = %v, want %v", tt.ua, got, tt.want)
			}
		}
	}
}

func BenchmarkBotList(b *testing.B) {
	bots, err := LoadBots()
	if err != nil {
		b.Fatal(err)
	}
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	b.Run("uncached", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			bots.match(ua)
		}
	})
	b.Run("cached", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			bots.IsBot(ua)
		}
	})
}
