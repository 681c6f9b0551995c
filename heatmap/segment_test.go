package heatmap

import (
	"context"
	"reflect"
	"testing"

	"github.com/trailmap/trailmap/storage/index"
)

// visit is a session of the segment tests: device, layout and clicks on
// the buy button (12) and the card's span (17, three quick clicks: a rage
// click) at page positions.
type visit struct {
	id     string
	device string
	docW   int
	buy    [2]float64
	buyBox box
	buys   int
	rage   bool
}

var segmentVisits = []visit{
	{"segdesk1", "desktop", 1280, [2]float64{150, 1060}, box{X: 100, Y: 1050, W: 200, H: 40}, 5, false},
	{"segmob1", "mobile", 390, [2]float64{100, 200}, box{X: 20, Y: 180, W: 300, H: 40}, 3, true},
	{"segdesk2", "desktop", 1280, [2]float64{725, 305}, box{X: 700, Y: 300, W: 100, H: 20}, 2, true},
}

// segmentFixture records visits in f like the recorder would.
func segmentFixture(f *fixture, visits []visit) *fixture {
	for _, v := range visits {
		sid := f.session(v.id, v.device, t0)
		f.observe(sid, session(t0, "https://shop.test/p/1", v.docW, 800, v.docW, 3000))
		for i := range v.buys {
			ts := t0 + 5000 + int64(i)*3000
			f.observe(sid, cat(evClicks(ts, 12, v.buy[0], v.buy[1]), evClickBox(ts+1, 12, v.buy[0], v.buy[1], v.buyBox)))
		}
		if v.rage {
			f.observe(sid, cat(evClicks(t0+91000, 17, 60, 400), evClicks(t0+91300, 17, 60, 400), evClicks(t0+91600, 17, 60, 400),
				evAttr(t0+91700, 17, `{"class":"x"}`)))
		}
		f.close(sid)
	}
	return f
}

// mapCounts is a map with its times in UTC, to compare maps of two
// fixtures.
func mapCounts(m *ClickMap) ClickMap {
	c := *m
	c.From, c.To = c.From.UTC(), c.To.UTC()
	return c
}

func TestService_SegmentMaps(t *testing.T) {
	eachFixture(t, DefaultConfig(), testSegmentMaps)
}

func testSegmentMaps(t *testing.T, all *fixture) {
	segmentFixture(all, segmentVisits)
	var desktop []visit
	for _, v := range segmentVisits {
		if v.device == "desktop" {
			desktop = append(desktop, v)
		}
	}
	only := segmentFixture(newFixtureLike(t, all, DefaultConfig()), desktop)
	ctx := context.Background()
	tests := []struct {
		name    string
		seg     index.Match
		want    *fixture // the aggregate map of this fixture is the expected one
		clicks  int64
		rage    int64
		views   int64
		topElem int64 // clicks on the top element
	}{
		{"always true equals unsegmented", index.Match{Field: index.FieldDuration, Op: index.OpGte, Number: 0}, all, 16, 2, 3, 10},
		{"desktop only equals its sessions", index.Match{Field: index.FieldDevice, Op: index.OpEq, Text: []string{"desktop"}}, only, 10, 1, 2, 7},
		{"no session", index.Match{Field: index.FieldUserID, Op: index.OpEq, Text: []string{"nobody"}}, nil, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		for _, mode := range []string{ModeGrid, ModeElement, ModeRage} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				q := all.query("/p/1", "", mode, 1280)
				q.Segment = &tt.seg
				got := must(all.svc.ClickMap(ctx, q))
				if got.Clicks != tt.clicks || got.RageClicks != tt.rage || got.Pageviews != tt.views {
					t.Errorf("clicks %d rage %d pageviews %d, want %d %d %d", got.Clicks, got.RageClicks, got.Pageviews, tt.clicks, tt.rage, tt.views)
				}
				if tt.topElem > 0 && (len(got.Elements) == 0 || got.Elements[0].Clicks != tt.topElem) {
					t.Errorf("elements %+v, want the top one with %d clicks", got.Elements, tt.topElem)
				}
				if tt.want == nil {
					if len(got.Grid.Cells) != 0 || len(got.Elements) != 0 {
						t.Errorf("cells %v elements %v, want none", got.Grid.Cells, got.Elements)
					}
					return
				}
				want := must(tt.want.svc.ClickMap(ctx, tt.want.query("/p/1", "", mode, 1280)))
				if g, w := mapCounts(got), mapCounts(want); !reflect.DeepEqual(g, w) {
					t.Errorf("segmented map\n%+v\nwant the aggregate map\n%+v", g, w)
				}
				png := must(all.svc.ClickPNG(ctx, q))
				if wpng := must(tt.want.svc.ClickPNG(ctx, tt.want.query("/p/1", "", mode, 1280))); !reflect.DeepEqual(png, wpng) {
					t.Errorf("segmented PNG differs from the aggregate one")
				}
			})
		}
		t.Run(tt.name+"/scroll and pages", func(t *testing.T) {
			q := all.query("/p/1", "", "", 0)
			q.Segment = &tt.seg
			got := must(all.svc.ScrollMap(ctx, q))
			pages := must(all.svc.Pages(ctx, q))
			if got.AllPageviews != tt.views {
				t.Errorf("scroll page views %d, want %d", got.AllPageviews, tt.views)
			}
			if tt.want == nil {
				if len(pages) != 0 {
					t.Errorf("pages %+v, want none", pages)
				}
				return
			}
			if want := must(tt.want.svc.ScrollMap(ctx, tt.want.query("/p/1", "", "", 0))); !reflect.DeepEqual(got, want) {
				t.Errorf("scroll map\n%+v\nwant\n%+v", got, want)
			}
			if want := must(tt.want.svc.Pages(ctx, tt.want.query("/p/1", "", "", 0))); !reflect.DeepEqual(pages, want) {
				t.Errorf("pages %+v, want %+v", pages, want)
			}
		})
	}
}

func TestService_SegmentCacheKey(t *testing.T) {
	eachFixture(t, DefaultConfig(), func(t *testing.T, f *fixture) {
		segmentFixture(f, segmentVisits)
		ctx := context.Background()
		q := f.query("/p/1", "", ModeGrid, 1280)
		before := must(f.svc.ClickMap(ctx, q))
		q.Segment = &index.Match{Field: index.FieldDevice, Op: index.OpEq, Text: []string{"mobile"}}
		mob := must(f.svc.ClickMap(ctx, q))
		q.Segment = &index.Match{Field: index.FieldDevice, Op: index.OpEq, Text: []string{"desktop"}}
		desk := must(f.svc.ClickMap(ctx, q))
		if before.Clicks != 16 || mob.Clicks != 6 || desk.Clicks != 10 {
			t.Errorf("clicks: all %d mobile %d desktop %d, want 16 6 10 (one cache entry per segment)", before.Clicks, mob.Clicks, desk.Clicks)
		}
	})
}
