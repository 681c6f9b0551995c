package journey

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage/index"
)

func TestService_SessionMatch(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		named := map[int64]string{}
		add := func(name, visitor, device, referrer string, items ...item) {
			s := f.session(visitor, device, at(0, "10:00").Add(mins(float64(len(named)))), items...)
			rage := 0
			if name[0] == 'i' {
				rage = 2
			}
			f.exec(`UPDATE sessions SET referrer = ?, rage_clicks = ?, browser = 'Firefox' WHERE id = ?`, referrer, rage, s.row)
			named[s.row] = name
		}
		add("g1", "g-visitor", "mobile", "https://www.google.com/search",
			pg(0, "/?utm_source=Newsletter&utm_medium=email&utm_campaign=spring%20sale"), pg(mins(1), "/product/1"))
		add("g2", "g-visitor", "desktop", "", pg(0, "/search?q=boots"), ev(mins(1), "purchase"))
		add("h1", "h-visitor", "tablet", "https://news.ycombinator.com/item", pg(0, "/blog/post?utm_source=hn"))
		add("i1", "i1-visitor", "desktop", "https://google.com/", pg(0, "/pricing"), ev(mins(1), "signup"))
		add("i2", "i2-visitor", "mobile", "", pg(0, "/pricing"))
		add("i3", "i2-visitor", "mobile", "", pg(0, "/app/home"))
		f.sync()
		f.visitor("i1-visitor", "u-i")
		f.visitor("i2-visitor", "u-i")
		f.exec(`UPDATE sessions SET conversions = 1 WHERE id IN (SELECT session_id FROM custom_events WHERE name = 'purchase')`)

		for _, tc := range []struct {
			name string
			seg  string
			want string // matching sessions, space-separated, sorted
		}{
			{"empty", `{}`, "g1 g2 h1 i1 i2 i3"},
			{"device", `{"field":"device","value":"mobile"}`, "g1 i2 i3"},
			{"device in", `{"field":"device","op":"in","value":["tablet","desktop"]}`, "g2 h1 i1"},
			{"device neq", `{"field":"device","op":"neq","value":"mobile"}`, "g2 h1 i1"},
			{"new", `{"field":"visitor_type","value":"new"}`, "g1 h1 i1"},
			{"returning (across devices once identified)", `{"field":"visitor_type","value":"returning"}`, "g2 i2 i3"},
			{"visits >= 2", `{"field":"visits","op":"gte","value":2}`, "g1 g2 i1 i2 i3"},
			{"visits = 3", `{"field":"visits","op":"eq","value":3}`, "i1 i2 i3"},
			{"identified", `{"field":"identified","value":true}`, "i1 i2 i3"},
			{"anonymous", `{"field":"identified","value":false}`, "g1 g2 h1"},
			{"user id", `{"field":"user_id","value":"u-i"}`, "i1 i2 i3"},
			{"referrer host and subdomains", `{"field":"referrer_host","value":"google.com"}`, "g1 i1"},
			{"referrer contains", `{"field":"referrer_host","op":"contains","value":"ycombinator"}`, "h1"},
			{"direct", `{"field":"referrer_host","op":"exists","value":false}`, "g2 i2 i3"},
			{"utm source, any case", `{"field":"utm_source","value":"newsletter"}`, "g1"},
			{"utm source exists", `{"field":"utm_source","op":"exists","value":true}`, "g1 h1"},
			{"utm medium neq", `{"field":"utm_medium","op":"neq","value":"email"}`, "g2 h1 i1 i2 i3"},
			{"utm campaign with a space", `{"field":"utm_campaign","value":"spring sale"}`, "g1"},
			{"utm campaign contains", `{"field":"utm_campaign","op":"contains","value":"sale"}`, "g1"},
			{"entry page", `{"field":"entry_page","op":"matches","value":"/blog/*"}`, "h1"},
			{"page visited", `{"field":"page","op":"matches","value":"/product/*"}`, "g1"},
			{"page visited by the person", `{"field":"page","op":"matches","value":"/product/*","scope":"person"}`, "g1 g2"},
			{"page exact", `{"field":"page","op":"eq","value":"/pricing"}`, "i1 i2"},
			{"event", `{"field":"event","value":"signup"}`, "i1"},
			{"event by the person", `{"field":"event","value":"signup","scope":"person"}`, "i1 i2 i3"},
			{"searched", `{"field":"search","op":"exists","value":true}`, "g2"},
			{"searched term", `{"field":"search","op":"contains","value":"BOO"}`, "g2"},
			{"converted", `{"field":"converted","value":true}`, "g2"},
			{"converted person", `{"field":"converted","value":true,"scope":"person"}`, "g1 g2"},
			{"rage clicks", `{"field":"rage_clicks","op":"gt","value":0}`, "i1 i2 i3"},
			{"browser", `{"field":"browser","op":"contains","value":"fire"}`, "g1 g2 h1 i1 i2 i3"},
			{"and/or/not", `{"and":[{"or":[{"field":"device","value":"mobile"},{"field":"device","value":"tablet"}]},{"not":{"field":"identified","value":true}}]}`, "g1 h1"},
			{"injection stays a value", `{"field":"page","op":"eq","value":"/' OR 1=1 --"}`, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				seg, err := ParseSegment([]byte(tc.seg))
				if err != nil {
					t.Fatal(err)
				}
				m, err := f.svc.SessionMatch(ctx, []int64{f.project}, seg)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				err = f.db.ScanSessions(ctx, index.SessionScan{ProjectID: f.project, Match: m}, func(id int64, _ []string) error {
					got = append(got, named[id])
					return nil
				})
				if err != nil {
					t.Fatalf("%+v: %v", m, err)
				}
				sort.Strings(got)
				if strings.Join(got, " ") != tc.want {
					t.Errorf("got %q, want %q\nmatch: %+v", strings.Join(got, " "), tc.want, m)
				}
			})
		}
	})
}

func TestParseSegment_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, seg, msg string
	}{
		{"unknown field", `{"field":"color","value":"red"}`, `unknown field "color"`},
		{"unknown key", `{"feild":"device"}`, "unknown field"},
		{"bad op", `{"field":"device","op":"gt","value":"mobile"}`, `takes op`},
		{"no value", `{"field":"device"}`, "needs a value"},
		{"bad device", `{"field":"device","value":"watch"}`, "not one of"},
		{"two kinds", `{"field":"device","value":"mobile","and":[{}]}`, "exactly one"},
		{"empty and", `{"and":[]}`, "at least one"},
		{"bad scope", `{"field":"page","op":"matches","value":"/x","scope":"world"}`, "scope"},
		{"visits not a number", `{"field":"visits","op":"gte","value":"three"}`, "number"},
		{"not JSON", `{"and":`, "segment"},
		{"two values", `{"or":[{},{},{}]} {"and":[]}`, "after the segment"},
		{"trailing garbage", `{"field":"device","value":"mobile"} x`, "after the segment"},
		{"op without field", `{"op":"eq"}`, "need"},
		{"too deep", `{"not":{"not":{"not":{"not":{"not":{"not":{"not":{}}}}}}}}`, "deeper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSegment([]byte(tc.seg))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want one containing %q", err, tc.msg)
			}
		})
	}
}

func TestPattern(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"/", "/", true},
		{"/", "/a", false},
		{"/product/*", "/product/1", true},
		{"/product/*", "/product/1/reviews", true},
		{"/product/*", "/product", false},
		{"/product*", "/product", true},
		{"*/edit", "/post/1/edit", true},
		{"/a*b*c", "/aXbYc", true},
		{"/a*b*c", "/acb", false},
		{"/q?x", "/q?x", true},
		{"/[a]", "/[a]", true},
	} {
		p := must(ParsePattern(tc.pat))
		if got := p.Match(tc.s); got != tc.want {
			t.Errorf("%q match %q: %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
	// The SQL form agrees with Match: the index compiles the GLOB operand
	// (SQLite's GLOB, a regular expression on PostgreSQL) for an event filter.
	eachFixture(t, func(t *testing.T, f *fixture) {
		for i, tc := range []struct{ pat, s string }{{"/q?x", "/q?x"}, {"/q?x", "/qax"}, {"/[a]", "/[a]"}, {"/[a]", "/a"}, {"/p/*", "/p/1/2"}} {
			p := must(ParsePattern(tc.pat))
			row := f.session(fmt.Sprintf("pat%d", i), "desktop", at(0, "10:00"), ev(0, tc.s)).row
			ids, err := f.db.MatchSessions(context.Background(), []int64{row}, index.Match{Field: index.FieldEvent, Op: index.OpGlob, Text: []string{p.Glob()}})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(ids) == 1; got != p.Match(tc.s) {
				t.Errorf("%q vs %q: GLOB %v, Match %v", tc.pat, tc.s, got, p.Match(tc.s))
			}
		}
	})
}

func TestEventType(t *testing.T) {
	for _, tc := range []struct {
		ev   string
		want int
	}{
		{`{"type":3,"data":{"source":2,"type":2}}`, 3},
		{`{ "type" : 4 , "data":{}}`, 4},
		{`{"data":{"tag":"x","type":9},"type":5,"timestamp":1}`, 5},
		{`{"data":"a \" \"type\":4","type":2}`, 2},
		{`{"timestamp":1}`, -1},
		{`[1,2]`, -1},
	} {
		if got := rrweb.Split([]byte(tc.ev)).Type; got != int64(tc.want) {
			t.Errorf("%s: %d, want %d", tc.ev, got, tc.want)
		}
	}
	for ev, want := range map[string]bool{
		`{"type":5,"data":{"tag":"trailmap/click","payload":{}},"timestamp":1}`: true,
		`{"type":5,"data":{"tag":"purchase","payload":{}},"timestamp":1}`:       false,
	} {
		if internalEvent(rrweb.Split([]byte(ev)).Data) != want {
			t.Errorf("internalEvent(%s) != %v", ev, want)
		}
	}
	if !slices.Equal(searchTerms("https://x.test/s?q=Red+Shoes&page=2&Q=%20hats%20", []string{"q"}), []string{"red shoes", "hats"}) {
		t.Errorf("search terms: %q", searchTerms("https://x.test/s?q=Red+Shoes&page=2&Q=%20hats%20", []string{"q"}))
	}
	if got := searchTerms("https://x.test/s?q=[redacted]#q=x", []string{"q"}); got != nil {
		t.Errorf("redacted term kept: %q", got)
	}
}
