package heatmap

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/trailmap/trailmap/internal/rrweb"
)

func TestTracker_Placement(t *testing.T) {
	scroll := loadFixture(t, "scroll.json")
	parent := loadFixture(t, "scroll-with-parent-styles.json")
	demo := loadFixture(t, "player-demo-recording.json")
	const t0 = 1_700_000_000_000

	type want struct {
		px, py float64
		sel    string
		wb     int
	}
	tests := []struct {
		name   string
		events []json.RawMessage
		want   []want
	}{
		{
			// scroll.json: the container (6) scrolls to 2500 while the
			// document has not scrolled: a click in it is in the container's
			// content; once the document scrolls (250), the document wins.
			name: "fixture scroll.json: container, then document",
			events: cat(scroll[:6], evClicks(1795908919500, 7, 100, 100),
				scroll[6], evClicks(1795908920000, 7, 100, 100)),
			want: []want{
				{100, 2600, "div#block", 1200},
				{100, 350, "div#block", 1200},
			},
		},
		{
			// scroll-with-parent-styles.json: main is a fixed frame, its
			// .container (17) scrolls to 800; the card buttons were added in
			// reverse, so card 18 is the third div.
			name:   "fixture scroll-with-parent-styles.json: main container",
			events: cat(parent[:6], evClicks(1795908919500, 19, 50, 100), evClicks(1795908919600, 11, 30, 20)),
			want: []want{
				{50, 900, "html > body > div > main > div > div:nth-of-type(3) > button", 1200},
				{30, 20, "html > body > div > ul > li:nth-of-type(1) > a", 1200}, // outside the container
			},
		},
		{
			// player-demo-recording.json: the editor pane scrolls, the
			// document never does; the last click is in the status bar.
			// Selectors checked against an independent replay of the
			// mutations (nth-of-type over the live child lists).
			name:   "fixture player-demo-recording.json",
			events: demo,
			want: []want{
				{757, 268, "html > body > div > div:nth-of-type(2) > div:nth-of-type(1) > div > div > div:nth-of-type(6) > div:nth-of-type(1) > div > div > div > div:nth-of-type(5) > pre:nth-of-type(18)", 1168},
				{387, 463, "html > body > div > div:nth-of-type(2) > div:nth-of-type(1) > div > div > div:nth-of-type(6) > div:nth-of-type(1) > div > div > div > div:nth-of-type(5) > pre:nth-of-type(27)", 1168},
				{105, 23, "html > body > div > div:nth-of-type(1) > div > a:nth-of-type(1)", 1168},
			},
		},
		{
			name: "initial offset, document scroll, resize",
			events: cat(
				evLoadE(t0), evMetaE(t0, "https://shop.test/p?x=1", 1280, 800), evFull(t0+1, testDOM, 300, 0), evDoc(t0+2, 1265, 5000),
				evClicks(t0+1000, 12, 200, 100),
				evScroll(t0+2000, 1, 0, 1500),
				evClicks(t0+3000, 12, 200, 100),
				evResize(t0+4000, 800, 600), evDoc(t0+4001, 800, 7000),
				evClicks(t0+5000, 14, 10, 10),
			),
			want: []want{
				{200, 400, "div#app > main > button:nth-of-type(1)", 1264},
				{200, 1600, "div#app > main > button:nth-of-type(1)", 1264},
				{10, 1510, "div#app > main > button:nth-of-type(2)", 800},
			},
		},
		{
			name: "horizontal scroll, main container ignored once the document scrolls",
			events: cat(
				session(t0, "https://shop.test/", 390, 700, 390, 3000),
				evScroll(t0+100, 11, 0, 400), // main scrolls first...
				evClicks(t0+200, 12, 50, 60),
				evScroll(t0+300, 1, 20, 100), // ...then the document: it is a normal page
				evClicks(t0+400, 12, 50, 60),
			),
			want: []want{
				{50, 460, "div#app > main > button:nth-of-type(1)", 384},
				{70, 160, "div#app > main > button:nth-of-type(1)", 384},
			},
		},
		{
			name: "mutations: added node, moved ids, removed subtree",
			events: cat(
				session(t0, "https://shop.test/", 1280, 800, 1280, 2000),
				evAdd(t0+10, 11, 12, `{"type":2,"id":30,"tagName":"button","attributes":{"id":"promo"},"childNodes":[]}`),
				evAdd(t0+11, 30, 0, `{"type":2,"id":31,"tagName":"b","attributes":{},"childNodes":[]}`),
				evClicks(t0+100, 31, 5, 5),
				evClicks(t0+200, 12, 5, 5), // now the second button
				evAttr(t0+300, 5, `{"id":null}`),
				evClicks(t0+400, 12, 5, 5),
				evRemove(t0+500, 4, 5),
				evClicks(t0+600, 12, 5, 5),
			),
			want: []want{
				{5, 5, "button#promo > b", 1280},
				{5, 5, "div#app > main > button:nth-of-type(2)", 1280},
				{5, 5, "html > body > div > main > button:nth-of-type(2)", 1280},
				{5, 5, "", 1280},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m := track(t, tt.events)
			if len(m.clicks) != len(tt.want) {
				t.Fatalf("got %d clicks, want %d", len(m.clicks), len(tt.want))
			}
			for i, w := range tt.want {
				c := m.clicks[i]
				if math.Abs(c.px-w.px) > 0.5 || math.Abs(c.py-w.py) > 0.5 {
					t.Errorf("click %d at page (%g, %g), want (%g, %g)", i, c.px, c.py, w.px, w.py)
				}
				if c.sel != w.sel {
					t.Errorf("click %d selector\n got %q\nwant %q", i, c.sel, w.sel)
				}
				if c.wb != w.wb {
					t.Errorf("click %d width bucket %d, want %d", i, c.wb, w.wb)
				}
			}
		})
	}
}

func TestTracker_ClickBox(t *testing.T) {
	const t0 = 1_700_000_000_000
	b := box{X: 100, Y: 50, W: 200, H: 40}
	tests := []struct {
		name   string
		events []json.RawMessage
		ox, oy float64
		boxY   float64
	}{
		{"box after click", cat(session(t0, "https://a.test/", 1280, 800, 1280, 3000), evScroll(t0+10, 1, 0, 1000),
			evClicks(t0+100, 12, 150, 60), evClickBox(t0+101, 12, 150, 60, b)), 0.25, 0.25, 1050},
		{"box before click", cat(session(t0, "https://a.test/", 1280, 800, 1280, 3000),
			evClickBox(t0+99, 12, 250, 80, b), evClicks(t0+100, 12, 250, 80)), 0.75, 0.75, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m := track(t, tt.events)
			if len(m.clicks) != 1 {
				t.Fatalf("got %d clicks", len(m.clicks))
			}
			c := m.clicks[0]
			if !c.hasBox || math.Abs(c.ox-tt.ox) > 1e-9 || math.Abs(c.oy-tt.oy) > 1e-9 || c.box.Y != tt.boxY {
				t.Errorf("box %v offset (%g, %g) page box %+v, want offset (%g, %g) box y %g", c.hasBox, c.ox, c.oy, c.box, tt.ox, tt.oy, tt.boxY)
			}
		})
	}
	t.Run("box in the next batch", func(t *testing.T) {
		_, m := track(t, cat(session(t0, "https://a.test/", 1280, 800, 1280, 3000), evClicks(t0+100, 12, 150, 60)),
			cat(evClickBox(t0+101, 12, 150, 60, b)))
		if m.boxes != 1 || !m.clicks[0].hasBox {
			t.Errorf("late box not applied: boxes %d", m.boxes)
		}
	})
}

func TestTracker_Pageviews(t *testing.T) {
	const t0 = 1_700_000_000_000
	tr, m := track(t,
		session(t0, "https://a.test/p/1?utm=x", 1280, 800, 1280, 4000),
		// rrweb checkout: Meta + FullSnapshot again, same page view
		cat(evMetaE(t0+60000, "https://a.test/p/1?utm=x", 1280, 800), evFull(t0+60001, testDOM, 0, 0)),
		// reload of the same URL: a new page view
		session(t0+70000, "https://a.test/p/1?utm=x", 1280, 800, 1280, 4000),
		// a repair snapshot (no trailmap/page): the same page view
		cat(evMetaE(t0+72000, "https://a.test/p/1?utm=x", 1280, 800), evFull(t0+72001, testDOM, 0, 0)),
		// a reload the recorder marks with trailmap/page, without Load events
		cat(evMetaE(t0+75000, "https://a.test/p/1?utm=x", 1280, 800), evFull(t0+75001, testDOM, 200, 0),
			evCustomE(t0+75002, "trailmap/page", `{"referrer":"","title":"P1"}`)),
		// navigation
		session(t0+80000, "https://a.test/p/2", 1280, 800, 1280, 1600),
		// SPA route change as the recorder reports it: a Meta without a
		// full snapshot, then trailmap/page
		cat(evMetaE(t0+90000, "https://a.test/cart", 1280, 800), evCustomE(t0+90001, "trailmap/page", `{"referrer":"https://a.test/p/2","title":"Cart"}`)),
	)
	var got []string
	for _, pv := range m.pageviews {
		got = append(got, pv.key)
	}
	want := []string{"/p/1", "/p/1", "/p/1", "/p/2", "/cart"}
	if len(got) != len(want) {
		t.Fatalf("page views %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("page view %d key %q, want %q", i, got[i], want[i])
		}
	}
	if m.pageviews[0].snapshotTS != t0+1 {
		t.Errorf("snapshot ts %d, want the first full snapshot", m.pageviews[0].snapshotTS)
	}
	if pv := m.pageviews[2]; pv.start != t0+75000 || pv.snapshotTS != t0+75001 || pv.maxBottom != 1000 {
		t.Errorf("marked reload: start %d snapshot %d bottom %g, want the Meta, its snapshot and its 200 px offset", pv.start-t0, pv.snapshotTS-t0, pv.maxBottom)
	}
	if m.pageviews[4].snapshotTS != t0+90000 {
		t.Errorf("single page app view: snapshot ts %d, want its Meta", m.pageviews[3].snapshotTS)
	}
	if tr.pv.key != "/cart" {
		t.Errorf("current page %q", tr.pv.key)
	}
}

func TestTracker_ScrollDepth(t *testing.T) {
	const t0 = 1_700_000_000_000
	tests := []struct {
		name       string
		events     []json.RawMessage
		bucket     int
		foldPx     int
		foldPm     int
		maxBottom  float64
		wantUnknow bool
	}{
		{"no scroll", session(t0, "https://a.test/", 1280, 800, 1280, 4000), 20, 800, 200, 800, false},
		{"scrolled halfway then back", cat(session(t0, "https://a.test/", 1280, 800, 1280, 4000),
			evScroll(t0+10, 1, 0, 1200), evScroll(t0+20, 1, 0, 0)), 50, 800, 200, 2000, false},
		{"to the bottom", cat(session(t0, "https://a.test/", 1280, 800, 1280, 4000), evScroll(t0+10, 1, 0, 3200)), 100, 800, 200, 4000, false},
		{"document grows", cat(session(t0, "https://a.test/", 1280, 800, 1280, 2000), evScroll(t0+10, 1, 0, 1200),
			evDoc(t0+20, 1280, 8000)), 25, 800, 100, 2000, false},
		{"unknown document height", cat(evMetaE(t0, "https://a.test/", 1280, 800), evFull(t0+1, testDOM, 0, 0)), -1, 0, 0, 800, true},
		{"main container without document height", cat(session(t0, "https://a.test/", 1280, 800, 1280, 800),
			evScroll(t0+10, 11, 0, 3000)), -1, 0, 0, 3800, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, _ := track(t, tt.events)
			pv := tr.pv
			if pv.bucket != tt.bucket || pv.foldPx != tt.foldPx || pv.foldPm != tt.foldPm || pv.maxBottom != tt.maxBottom {
				t.Errorf("bucket %d fold %d px %d‰ bottom %g, want %d %d %d %g", pv.bucket, pv.foldPx, pv.foldPm, pv.maxBottom,
					tt.bucket, tt.foldPx, tt.foldPm, tt.maxBottom)
			}
		})
	}
}

func TestTracker_Frustration(t *testing.T) {
	const t0 = 1_700_000_000_000
	page := session(t0, "https://a.test/", 1280, 800, 1280, 3000)
	tests := []struct {
		name              string
		events            []json.RawMessage
		rage, dead, error int
		rageCount         int
	}{
		{"rage: 3 clicks within 30 px and 1 s", cat(page, evClicks(t0+1000, 12, 100, 100), evClicks(t0+1400, 12, 110, 105),
			evClicks(t0+1800, 12, 120, 110), evAttr(t0+1900, 12, `{"class":"busy"}`)), 1, 0, 0, 3},
		{"rage: burst of 5 is one rage click", cat(page, evClicks(t0+1000, 12, 100, 100), evClicks(t0+1200, 12, 100, 100),
			evClicks(t0+1400, 12, 100, 100), evClicks(t0+1600, 12, 100, 100), evClicks(t0+1800, 12, 100, 100), evInput(t0+1900, 13, "x")), 1, 0, 0, 5},
		{"no rage: 2 clicks", cat(page, evClicks(t0+1000, 12, 100, 100), evClicks(t0+1400, 12, 100, 100), evAttr(t0+1500, 12, `{"class":"x"}`)), 0, 0, 0, 0},
		{"no rage: too far apart in space", cat(page, evClicks(t0+1000, 12, 100, 100), evClicks(t0+1400, 12, 140, 100),
			evClicks(t0+1800, 12, 180, 100), evAttr(t0+1900, 12, `{"class":"x"}`)), 0, 0, 0, 0},
		{"no rage: too far apart in time", cat(page, evClicks(t0+1000, 12, 100, 100), evClicks(t0+2100, 12, 100, 100),
			evClicks(t0+3200, 12, 100, 100), evAttr(t0+3300, 12, `{"class":"x"}`)), 0, 0, 0, 0},
		{"no rage: a scroll between clicks moves them apart", cat(page, evClicks(t0+1000, 12, 100, 100), evScroll(t0+1100, 1, 0, 100),
			evClicks(t0+1400, 12, 100, 100), evClicks(t0+1800, 12, 100, 100)), 0, 0, 0, 0},

		{"dead: nothing happens", cat(page, evClicks(t0+1000, 17, 300, 300), evMove(t0+4000, 10, 10)), 0, 1, 0, 0},
		{"dead: only mouse moves and clicks elsewhere", cat(page, evClicks(t0+1000, 17, 300, 300), evMove(t0+1500, 10, 10),
			evClicks(t0+2000, 18, 600, 600), evMove(t0+6000, 10, 10)), 0, 2, 0, 0},
		{"not dead: a menu opens (attribute mutation)", cat(page, evClicks(t0+1000, 14, 300, 300), evAttr(t0+1100, 15, `{"hidden":null}`),
			evMove(t0+5000, 1, 1)), 0, 0, 0, 0},
		{"not dead: a node is added", cat(page, evClicks(t0+1000, 14, 300, 300),
			evAdd(t0+2400, 15, 0, `{"type":2,"id":40,"tagName":"li","attributes":{},"childNodes":[]}`), evMove(t0+5000, 1, 1)), 0, 0, 0, 0},
		{"not dead: navigation", cat(page, evClicks(t0+1000, 8, 10, 10), session(t0+1500, "https://a.test/a", 1280, 800, 1280, 3000),
			evMove(t0+9000, 1, 1)), 0, 0, 0, 0},
		{"not dead: scroll", cat(page, evClicks(t0+1000, 9, 10, 10), evScroll(t0+1300, 1, 0, 700), evMove(t0+9000, 1, 1)), 0, 0, 0, 0},
		{"not dead: input field", cat(page, evClicks(t0+1000, 13, 10, 10), evMove(t0+9000, 1, 1)), 0, 0, 0, 0},
		{"not dead: link to a new tab", cat(page, evClicks(t0+1000, 19, 10, 10), evMove(t0+9000, 1, 1)), 0, 0, 0, 0},
		{"not dead: response on mousedown", cat(page,
			ev(rrweb.Incremental, t0+900, `{"source":2,"type":1,"id":14,"x":5,"y":5}`), evAttr(t0+950, 15, `{"hidden":null}`),
			ev(rrweb.Incremental, t0+1000, `{"source":2,"type":2,"id":14,"x":5,"y":5}`), evMove(t0+9000, 1, 1)), 0, 0, 0, 0},
		{"undecided at the end of the events: not dead", cat(page, evClicks(t0+1000, 17, 300, 300), evMove(t0+2000, 1, 1)), 0, 0, 0, 0},
		{"rage clicks are not also dead", cat(page, evClicks(t0+1000, 17, 100, 100), evClicks(t0+1300, 17, 100, 100),
			evClicks(t0+1600, 17, 100, 100), evMove(t0+9000, 1, 1)), 1, 0, 0, 3},

		{"error click", cat(page, evClicks(t0+1000, 12, 10, 10), evError(t0+1500, "TypeError: x is undefined"),
			evAttr(t0+1600, 12, `{"class":"x"}`)), 0, 0, 1, 0},
		{"error click and dead click", cat(page, evClicks(t0+1000, 17, 10, 10), evError(t0+1900, "boom"), evMove(t0+9000, 1, 1)), 0, 1, 1, 0},
		{"no error click: error too late", cat(page, evClicks(t0+1000, 12, 10, 10), evAttr(t0+1100, 12, `{"class":"x"}`),
			evError(t0+2100, "late")), 0, 0, 0, 0},
		{"no error click: error before the click", cat(page, evError(t0+900, "early"), evClicks(t0+1000, 12, 10, 10),
			evAttr(t0+1100, 12, `{"class":"x"}`)), 0, 0, 0, 0},
		{"two errors after one click: one error click", cat(page, evClicks(t0+1000, 12, 10, 10), evError(t0+1100, "a"),
			evError(t0+1200, "b"), evAttr(t0+1300, 12, `{"class":"x"}`)), 0, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m := track(t, tt.events)
			rage, dead, errs := m.signalsOf(SignalRage), m.signalsOf(SignalDead), m.signalsOf(SignalError)
			if len(rage) != tt.rage || len(dead) != tt.dead || len(errs) != tt.error {
				t.Fatalf("rage %d dead %d error %d, want %d %d %d", len(rage), len(dead), len(errs), tt.rage, tt.dead, tt.error)
			}
			if tt.rage > 0 && rage[0].count != tt.rageCount {
				t.Errorf("rage count %d, want %d", rage[0].count, tt.rageCount)
			}
		})
	}
	t.Run("thresholds from settings", func(t *testing.T) {
		set, err := ParseSettings(json.RawMessage(`{"frustration":{"rage_clicks":4,"dead_window_ms":5000}}`))
		if err != nil {
			t.Fatal(err)
		}
		tr := newTracker(&set, 1000)
		m := &memSink{}
		err = tr.observe(rrweb.SplitAll(cat(page, evClicks(t0+1000, 12, 100, 100), evClicks(t0+1400, 12, 100, 100),
			evClicks(t0+1800, 12, 100, 100), evMove(t0+4500, 1, 1), evClicks(t0+7000, 17, 5, 5), evMove(t0+13000, 1, 1))), m)
		if err != nil {
			t.Fatal(err)
		}
		if r, d := len(m.signalsOf(SignalRage)), len(m.signalsOf(SignalDead)); r != 0 || d != 4 {
			t.Errorf("rage %d dead %d, want 0 and 4 (3 clicks not rage at 4; each dead after 5 s)", r, d)
		}
	})
	t.Run("session closed within the window", func(t *testing.T) {
		tr, m := track(t, cat(page, evClicks(t0+1000, 17, 10, 10)))
		if err := tr.closed(m); err != nil {
			t.Fatal(err)
		}
		if len(m.signals) != 0 {
			t.Errorf("signals %d after close", len(m.signals))
		}
	})
}
