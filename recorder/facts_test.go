package recorder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestExtractFacts_fixtures checks facts of the rrweb fixtures against
// figures computed independently (with Python over the same files).
func TestExtractFacts_fixtures(t *testing.T) {
	tests := []struct {
		file              string
		events            int
		first, last       int64
		clicks, fulls     int
		viewportW, viewpH int
	}{
		{"adopted-style-sheet-empty-replace.json", 4, 1795908918271, 1795908918571, 0, 1, 1920, 1080},
		{"adopted-style-sheet-modification.json", 15, 1795908918285, 1795908918885, 0, 1, 1920, 1080},
		{"bad-textarea.json", 4, 1795908918314, 1795908918364, 0, 1, 1000, 800},
		{"canvas-in-iframe.json", 6, 1795908918334, 1795908918834, 0, 1, 1200, 500},
		{"dialog-playback.json", 12, 1900000001, 1900004000, 0, 3, 1600, 900},
		{"hover.json", 5, 0, 155, 1, 1, 1600, 900},
		{"iframe.json", 13, 1795908918422, 1795908920922, 0, 1, 1200, 500},
		{"input.json", 11, 1795908918429, 1795908922429, 0, 1, 1000, 800},
		{"player-demo-recording.json", 272, 1544756766750, 1544756847830, 3, 1, 1166, 705},
		{"scroll.json", 8, 1795908918470, 1795908920470, 0, 1, 1200, 500},
		{"video-playback.json", 43, 1900000001, 19000602896, 0, 1, 1600, 900},
		{"webgl.json", 4, 1636379531385, 1636379532356, 0, 1, 1600, 900},
	}
	red := NewRedactor(DefaultRedactRules())
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "rrweb", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			b, err := ParseBatch(batchBody(string(data)), DefaultLimits(), red)
			if err != nil {
				t.Fatal(err)
			}
			f := ExtractFacts(b.Events)
			var size int64
			for _, ev := range b.Events {
				size += int64(len(ev))
			}
			got := []any{f.Events, f.FirstTS, f.LastTS, f.Clicks, f.FullSnapshots, f.ViewportW, f.ViewportH, f.Bytes, len(f.Pages), len(f.Custom)}
			want := []any{tt.events, tt.first, tt.last, tt.clicks, tt.fulls, tt.viewportW, tt.viewpH, size, 1, 0}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("events, first, last, clicks, full snapshots, viewport w, h, bytes, pages, custom:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestExtractFacts_demoPage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "rrweb", "player-demo-recording.json"))
	if err != nil {
		t.Fatal(err)
	}
	var events []json.RawMessage
	if err := json.Unmarshal(data, &events); err != nil {
		t.Fatal(err)
	}
	f := ExtractFacts(events)
	want := []Page{{TS: 1544756766750, URL: "https://demoit.app/e/react#ReactHooks.js", Path: "/e/react", Width: 1166, Height: 705}}
	if !reflect.DeepEqual(f.Pages, want) {
		t.Errorf("Pages = %+v, want %+v", f.Pages, want)
	}
}

func TestExtractFacts(t *testing.T) {
	events := []string{
		`{"type":4,"data":{"href":"https://shop.test/cart?x=1","width":1280,"height":800},"timestamp":1000}`,
		`{"type":2,"data":{"node":{"type":0,"childNodes":[]}},"timestamp":1001}`,
		`{"type":3,"data":{"source":2,"type":2,"id":5,"x":10,"y":20},"timestamp":1500}`,       // click
		`{"type":3,"data":{"source":2,"type":1,"id":5,"x":10,"y":20},"timestamp":1501}`,       // mousedown
		`{"type":3,"data":{"type":2,"source":2},"timestamp":1502}`,                            // click, fields swapped
		`{"type":3,"data":{"source":2,"type":5,"id":5},"timestamp":1502}`,                     // focus: no interaction
		`{"type":3,"data":{"source":3,"id":1,"x":0,"y":400},"timestamp":1502}`,                // scroll
		`{"type":3,"data":{"source":5,"id":7,"text":"*","isChecked":false},"timestamp":1502}`, // input
		`{"type":3,"data":{"source":1,"positions":[]},"timestamp":1502}`,                      // mouse move: no interaction
		`{"type":3,"data":{"source":0,"adds":[{"node":{"type":2,"tagName":"a"}}],"type":2},"timestamp":1503}`,
		`{"timestamp":900,"type":3,"data":{"source":4,"width":390,"height":844}}`, // resize, earliest
		`{"type":5,"data":{"tag":"signup","payload":{"plan":"pro"}},"timestamp":2000}`,
		`{"type":5,"data":{"tag":"trailmap/doc","payload":{"width":1280,"height":5000}},"timestamp":2001}`,
		`{"type":5,"data":{"tag":"trailmap/click","payload":{"id":5,"x":10,"y":20,"box":{"x":0,"y":0,"w":100,"h":40}}},"timestamp":2002}`,
		`{"type":5,"data":{"tag":"trailmap/error","payload":{"message":"boom","source":"app.js","line":1,"column":2}},"timestamp":2003}`,
		`{"type":5,"data":{"tag":"trailmap/error","payload":{"message":"again"}},"timestamp":2004}`,
		`{"type":5,"data":{"tag":"trailmap/dropped","payload":{"count":3}},"timestamp":2005}`,
		`{"type":5,"data":{"tag":"trailmap/dropped","payload":{"count":4.0}},"timestamp":2006}`,
		`{"type":5,"data":{"tag":"trailmap/dropped","payload":{"count":-9}},"timestamp":2007}`,
		`{"type":4,"data":{"href":"about:blank","width":0,"height":0},"timestamp":2500}`,
		`{"type":6,"data":{"plugin":"rrweb/console@1","payload":{}},"timestamp":3000}`,
	}
	var raws []json.RawMessage
	var size int64
	for _, e := range events {
		raws = append(raws, json.RawMessage(e))
		size += int64(len(e))
	}
	f := ExtractFacts(raws)
	want := Facts{
		FirstTS: 900, LastTS: 3000, Events: len(events), Bytes: size,
		Pages: []Page{
			{TS: 1000, URL: "https://shop.test/cart?x=1", Path: "/cart", Width: 1280, Height: 800},
			{TS: 2500, URL: "about:blank", Path: "/"},
		},
		ViewportW: 390, ViewportH: 844,
		Clicks: 2, Interactions: 5, FullSnapshots: 1, FirstSnapshotTS: 1001,
		Custom: []Custom{{TS: 2000, Tag: "signup", Payload: json.RawMessage(`{"plan":"pro"}`)}},
		Internal: []Custom{
			{TS: 2001, Tag: "trailmap/doc", Payload: json.RawMessage(`{"width":1280,"height":5000}`)},
			{TS: 2002, Tag: "trailmap/click", Payload: json.RawMessage(`{"id":5,"x":10,"y":20,"box":{"x":0,"y":0,"w":100,"h":40}}`)},
			{TS: 2003, Tag: "trailmap/error", Payload: json.RawMessage(`{"message":"boom","source":"app.js","line":1,"column":2}`)},
			{TS: 2004, Tag: "trailmap/error", Payload: json.RawMessage(`{"message":"again"}`)},
			{TS: 2005, Tag: "trailmap/dropped", Payload: json.RawMessage(`{"count":3}`)},
			{TS: 2006, Tag: "trailmap/dropped", Payload: json.RawMessage(`{"count":4.0}`)},
			{TS: 2007, Tag: "trailmap/dropped", Payload: json.RawMessage(`{"count":-9}`)},
		},
		Errors:  2,
		Dropped: 7,
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("ExtractFacts =\n%+v\nwant\n%+v", f, want)
	}
}

func TestExtractFacts_oddEvents(t *testing.T) {
	events := []json.RawMessage{
		json.RawMessage(`not json`),
		json.RawMessage(`[1,2]`),
		json.RawMessage(`{"type":"4","timestamp":"5"}`),
		json.RawMessage(`{"type":4,"data":"x","timestamp":5}`),
		json.RawMessage(`{"type":3,"data":{"source":2,"type":2`),
		json.RawMessage(`{"type":5,"data":{"tag":7,"payload":`),
		json.RawMessage(`{"type":3,"timestamp":1e3,"data":{"source":4,"width":1e400,"height":2}}`),
		json.RawMessage(`{"ty\u0070e":2,"timestamp":7}`),
		json.RawMessage(``),
		nil,
	}
	f := ExtractFacts(events)
	if f.Events != len(events) || f.FirstTS != 5 || f.LastTS != 1000 || f.FullSnapshots != 1 || len(f.Pages) != 1 {
		t.Errorf("ExtractFacts = %+v", f)
	}
	if f.Pages[0] != (Page{TS: 5, Path: "/"}) {
		t.Errorf("page = %+v", f.Pages[0])
	}
	if got := ExtractFacts(nil); !reflect.DeepEqual(got, Facts{}) {
		t.Errorf("ExtractFacts(nil) = %+v", got)
	}
}

func TestURLPath(t *testing.T) {
	tests := []struct{ name, url, want string }{
		{"plain", "https://x.test/a/b?c=d#e", "/a/b"},
		{"no path", "https://x.test", "/"},
		{"no path with query", "https://x.test?q=1", "/"},
		{"root", "http://localhost:8080/", "/"},
		{"escaped kept", "https://x.test/caf%C3%A9/", "/caf%C3%A9/"},
		{"redacted segment", "https://x.test/u/[redacted]/p", "/u/[redacted]/p"},
		{"about:blank", "about:blank", "/"},
		{"relative", "/only/path?x", "/only/path"},
		{"empty", "", "/"},
		{"garbage", "not a url", "/"},
		{"protocol relative", "//cdn.test/x.js", "/x.js"},
		{"fragment route", "https://x.test/#/users/1", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := urlPath(tt.url); got != tt.want {
				t.Errorf("urlPath(%q) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

func TestDeviceClass(t *testing.T) {
	def := DefaultDeviceThresholds()
	custom := DeviceThresholds{TabletMin: 600, DesktopMin: 1200}
	tests := []struct {
		name  string
		width int
		th    DeviceThresholds
		want  string
	}{
		{"unknown", 0, def, ""},
		{"negative", -1, def, ""},
		{"phone", 390, def, "mobile"},
		{"just under tablet", 767, def, "mobile"},
		{"tablet", 768, def, "tablet"},
		{"just under desktop", 1023, def, "tablet"},
		{"desktop", 1024, def, "desktop"},
		{"wide", 2560, def, "desktop"},
		{"custom tablet", 700, custom, "tablet"},
		{"custom tablet wide", 1100, custom, "tablet"},
		{"custom mobile", 599, custom, "mobile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeviceClass(tt.width, tt.th); got != tt.want {
				t.Errorf("DeviceClass(%d) = %q, want %q", tt.width, got, tt.want)
			}
		})
	}
}

func BenchmarkExtractFacts(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "rrweb", "player-demo-recording.json"))
	if err != nil {
		b.Fatal(err)
	}
	var events []json.RawMessage
	if err := json.Unmarshal(data, &events); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		ExtractFacts(events)
	}
}

// A Meta right after the script's trailmap/checkout marker starts a
// periodic full snapshot: its viewport counts, it is no page view; a Meta
// with anything between it and a marker is one.
func TestExtractFacts_checkouts(t *testing.T) {
	f := ExtractFacts([]json.RawMessage{
		json.RawMessage(`{"type":4,"timestamp":1,"data":{"href":"https://x.test/a","width":800,"height":600}}`),
		json.RawMessage(`{"type":2,"timestamp":2,"data":{"node":{}}}`),
		json.RawMessage(`{"type":5,"timestamp":3,"data":{"tag":"trailmap/checkout","payload":{}}}`),
		json.RawMessage(`{"type":4,"timestamp":3,"data":{"href":"https://x.test/a","width":1024,"height":700}}`),
		json.RawMessage(`{"type":2,"timestamp":3,"data":{"node":{}}}`),
		json.RawMessage(`{"type":5,"timestamp":4,"data":{"tag":"trailmap/checkout","payload":{}}}`),
		json.RawMessage(`{"type":3,"timestamp":5,"data":{"source":0,"adds":[]}}`),
		json.RawMessage(`{"type":4,"timestamp":6,"data":{"href":"https://x.test/b","width":1024,"height":700}}`),
	})
	if len(f.Pages) != 2 || f.Pages[0].URL != "https://x.test/a" || f.Pages[1].URL != "https://x.test/b" {
		t.Errorf("pages %+v, want a and b", f.Pages)
	}
	if f.FullSnapshots != 2 || f.ViewportW != 1024 {
		t.Errorf("%d full snapshots, viewport width %d; want 2, 1024", f.FullSnapshots, f.ViewportW)
	}
}

// The index keeps at most maxIndexedURL bytes of a page URL, cut between
// characters (PostgreSQL's b-tree keys hold ~2.7 KB, and its text only
// UTF-8; textcut's own test covers the cutting).
func TestExtractFacts_longURL(t *testing.T) {
	long := "https://shop.test/search?q=" + strings.Repeat("é", 3000)
	ev := json.RawMessage(`{"type":4,"data":{"href":"` + long + `","width":800,"height":600},"timestamp":1}`)
	f := ExtractFacts([]json.RawMessage{ev})
	if len(f.Pages) != 1 {
		t.Fatalf("pages %d", len(f.Pages))
	}
	u := f.Pages[0].URL
	if len(u) > maxIndexedURL || len(u) < maxIndexedURL-3 || !utf8.ValidString(u) || !strings.HasPrefix(long, u) {
		t.Errorf("URL of %d bytes, valid %v", len(u), utf8.ValidString(u))
	}
	if f.Pages[0].Path != "/search" {
		t.Errorf("path %q", f.Pages[0].Path)
	}
}
