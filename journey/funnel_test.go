package journey

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"testing"
	"time"
)

var shopSteps = []Step{
	{Type: "page", Match: "/"},
	{Type: "page", Match: "/product/*"},
	{Type: "page", Match: "/cart"},
	{Type: "event", Match: "purchase"},
}

// shopSessions writes sessions with known funnel progress through
// shopSteps and returns them by name.
func shopSessions(f *fixture) map[string]*fsess {
	s := map[string]*fsess{}
	s["S1"] = f.session("a1-visitor", "desktop", at(0, "10:00"),
		pg(0, "/"), pg(mins(1), "/product/1"), pg(mins(3), "/cart"), ev(mins(5), "purchase"))
	s["S2"] = f.session("a2-visitor", "mobile", at(0, "11:00"),
		pg(0, "/"), pg(mins(2), "/product/2"))
	// Product before home: the product view cannot count as step 2.
	s["S3"] = f.session("a3-visitor", "desktop", at(0, "12:00"),
		pg(0, "/product/3"), pg(mins(1), "/"), pg(mins(2), "/cart"))
	// Skips the product step.
	s["S4"] = f.session("a4-visitor", "mobile", at(0, "13:00"),
		pg(0, "/"), pg(mins(1), "/cart"), ev(mins(2), "purchase"))
	// Written out of order.
	s["S5"] = f.session("a5-visitor", "desktop", at(0, "14:00"),
		pg(mins(6), "/cart"), pg(mins(4), "/product/9"), pg(0, "/"))
	// Crosses midnight: counted on the day it started.
	s["S6"] = f.session("a6-visitor", "desktop", at(0, "23:55"),
		pg(0, "/"), pg(mins(3), "/product/1"), pg(mins(8), "/cart"), ev(mins(9), "purchase"))
	// Starts the next day: outside the range.
	s["S7"] = f.session("a7-visitor", "desktop", at(1, "00:10"),
		pg(0, "/"), pg(mins(1), "/product/1"))
	// Repeated Meta events (full snapshot checkpoints) of the same page.
	s["S8"] = f.session("a8-visitor", "tablet", at(0, "15:00"),
		pg(0, "/"), pg(mins(0.5), "/"), pg(mins(1), "/product/4"), pg(mins(1.5), "/product/4"), pg(mins(2), "/product/5"), pg(mins(3), "/cart"))
	s["S9"] = f.session("a9-visitor", "desktop", at(0, "16:00"), pg(0, "/about"))
	f.sync()
	return s
}

type stepWant struct {
	count, dropped int
	median         time.Duration // -1: none
}

func checkSteps(t *testing.T, got []StepResult, want []stepWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("steps: got %d, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Count != w.count || g.Dropped != w.dropped {
			t.Errorf("step %d: count %d dropped %d, want %d and %d", i+1, g.Count, g.Dropped, w.count, w.dropped)
		}
		if w.median < 0 {
			if g.MedianMSToNext != nil {
				t.Errorf("step %d: median %d, want none", i+1, *g.MedianMSToNext)
			}
		} else if g.MedianMSToNext == nil || *g.MedianMSToNext != w.median.Milliseconds() {
			t.Errorf("step %d: median %v, want %v", i+1, g.MedianMSToNext, w.median.Milliseconds())
		}
		if i > 0 {
			if wantConv := ratio(g.Count, got[i-1].Count); g.ConversionFromPrevious != wantConv {
				t.Errorf("step %d: conversion from previous %v, want %v", i+1, g.ConversionFromPrevious, wantConv)
			}
			if wantConv := ratio(g.Count, got[0].Count); g.ConversionFromFirst != wantConv {
				t.Errorf("step %d: conversion from first %v, want %v", i+1, g.ConversionFromFirst, wantConv)
			}
		}
	}
}

func TestFunnel_Sessions(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		ss := shopSessions(f)
		ctx := context.Background()
		q := FunnelQuery{ProjectID: f.project, Def: FunnelDef{Steps: shopSteps}, From: day, To: day.AddDate(0, 0, 1)}
		res, err := f.svc.RunFunnel(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		// Gaps: step 1→2: S1 1m, S2 2m, S5 4m, S6 3m, S8 1m; 2→3: S1 2m, S5
		// 2m, S6 5m, S8 2m; 3→4: S1 2m, S6 1m. Lower medians.
		checkSteps(t, res.Steps, []stepWant{
			{7, 2, 2 * time.Minute},
			{5, 1, 2 * time.Minute},
			{4, 2, time.Minute},
			{2, 0, -1},
		})
		if res.Sessions == nil || *res.Sessions != 8 {
			t.Errorf("sessions looked at: %v, want 8", res.Sessions)
		}

		t.Run("split by device", func(t *testing.T) {
			q := q
			q.Split = "device"
			res, err := f.svc.RunFunnel(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]int{}
			for _, sp := range res.Splits {
				for _, st := range sp.Steps {
					got[sp.Value] = append(got[sp.Value], st.Count)
				}
			}
			want := map[string][]int{"desktop": {4, 3, 3, 2}, "mobile": {2, 1, 0, 0}, "tablet": {1, 1, 1, 0}}
			for k, w := range want {
				if !slices.Equal(got[k], w) {
					t.Errorf("%s: %v, want %v", k, got[k], w)
				}
			}
			if len(got) != len(want) || res.Splits[0].Value != "desktop" {
				t.Errorf("splits %v", got)
			}
		})

		for _, tc := range []struct {
			name   string
			step   int
			status string
			split  *string
			want   []string
		}{
			{"dropped at step 1", 1, "dropped", nil, []string{"S3", "S4"}},
			{"dropped at step 2", 2, "dropped", nil, []string{"S2"}},
			{"dropped at step 3", 3, "dropped", nil, []string{"S5", "S8"}},
			{"reached step 4", 4, "reached", nil, []string{"S1", "S6"}},
			{"reached step 2", 2, "", nil, []string{"S1", "S2", "S5", "S6", "S8"}},
			{"dropped at step 3 on desktop", 3, "dropped", ptr("desktop"), []string{"S5"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sq := FunnelSessionsQuery{FunnelQuery: q, Step: tc.step, Status: tc.status, SplitValue: tc.split}
				if tc.split != nil {
					sq.Split = "device"
				}
				page, err := f.svc.FunnelSessions(ctx, sq)
				if err != nil {
					t.Fatal(err)
				}
				checkSessionList(t, page, ss, tc.want)
			})
		}

		t.Run("paging", func(t *testing.T) {
			var got []string
			cursor := ""
			for range 10 {
				page, err := f.svc.FunnelSessions(ctx, FunnelSessionsQuery{FunnelQuery: q, Step: 1, Limit: 2, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				if page.Total != 7 {
					t.Fatalf("total %d, want 7", page.Total)
				}
				for _, s := range page.Sessions {
					got = append(got, s.ID)
				}
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
			// Newest first.
			want := []string{ss["S6"].public, ss["S8"].public, ss["S5"].public, ss["S4"].public, ss["S3"].public, ss["S2"].public, ss["S1"].public}
			if !slices.Equal(got, want) {
				t.Errorf("pages: %v, want %v", got, want)
			}
		})
	})
}

func ptr[T any](v T) *T { return &v }

func checkSessionList(t *testing.T, page *SessionPage, ss map[string]*fsess, want []string) {
	t.Helper()
	var got, exp []string
	for _, s := range page.Sessions {
		got = append(got, s.ID)
		if s.Recording != "/api/v1/sessions/"+s.ID+"/events" {
			t.Errorf("recording link %q", s.Recording)
		}
	}
	for _, w := range want {
		exp = append(exp, ss[w].public)
	}
	sort.Strings(got)
	sort.Strings(exp)
	if !slices.Equal(got, exp) || page.Total != len(want) {
		t.Errorf("sessions %v (total %d), want %v", got, page.Total, exp)
	}
}

// personSessions writes people whose sessions only make sense together.
func personSessions(f *fixture) map[string]*fsess {
	s := map[string]*fsess{}
	// P1: two devices, identified late as u-1: home and product on the
	// desktop, cart and purchase two days later on the phone.
	s["P1a"] = f.session("b1-visitor", "desktop", at(0, "10:30"), pg(0, "/"), pg(mins(1), "/product/7"))
	s["P1b"] = f.session("b2-visitor", "mobile", at(2, "09:00"), pg(0, "/cart"), ev(mins(1), "purchase"))
	// P2: the product view comes 12 days later, outside the 7-day window.
	s["P2a"] = f.session("c1-visitor", "desktop", at(0, "09:00"), pg(0, "/"))
	s["P2b"] = f.session("c1-visitor", "desktop", at(12, "09:00"), pg(0, "/product/1"))
	// P3: entered the funnel before the range only.
	s["P3a"] = f.session("d1-visitor", "desktop", at(-1, "09:00"), pg(0, "/"), pg(mins(1), "/product/1"))
	s["P3b"] = f.session("d1-visitor", "desktop", at(0, "08:00"), pg(0, "/cart"))
	// P4: product before home on one device, home on another, then
	// product and cart on the first again; both identified (late) as u-4.
	s["P4a"] = f.session("e1-visitor", "desktop", at(0, "07:00"), pg(0, "/product/1"))
	s["P4b"] = f.session("e2-visitor", "mobile", at(0, "07:30"), pg(0, "/"))
	s["P4c"] = f.session("e1-visitor", "desktop", at(0, "20:00"), pg(0, "/product/2"), pg(mins(1), "/cart"))
	f.sync()
	// Identify arrives after everything was derived: people are joined
	// at query time.
	f.visitor("b1-visitor", "u-1")
	f.visitor("b2-visitor", "u-1")
	f.visitor("e1-visitor", "u-4")
	f.visitor("e2-visitor", "u-4")
	return s
}

func TestFunnel_People(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		ss := personSessions(f)
		ctx := context.Background()
		q := FunnelQuery{ProjectID: f.project, Def: FunnelDef{Steps: shopSteps, CountBy: "person", Window: Duration(7 * 24 * time.Hour)},
			From: day, To: day.AddDate(0, 0, 1)}
		res, err := f.svc.RunFunnel(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		// P1 gaps: 1m, 46h29m, 1m; P4: home 07:30 → product 20:00 (12h30m) →
		// cart 1m.
		checkSteps(t, res.Steps, []stepWant{
			{3, 1, time.Minute},
			{2, 0, time.Minute},
			{2, 1, time.Minute},
			{1, 0, -1},
		})
		if res.Sessions != nil {
			t.Errorf("sessions count in person mode: %d", *res.Sessions)
		}
		for _, tc := range []struct {
			name   string
			step   int
			status string
			want   []string
		}{
			{"reached step 1", 1, "reached", []string{"P1a", "P2a", "P4b"}},
			{"dropped at step 1", 1, "dropped", []string{"P2a"}},
			{"reached step 3", 3, "reached", []string{"P1b", "P4c"}},
			{"dropped at step 3", 3, "dropped", []string{"P4c"}},
			{"reached step 4", 4, "reached", []string{"P1b"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				page, err := f.svc.FunnelSessions(ctx, FunnelSessionsQuery{FunnelQuery: q, Step: tc.step, Status: tc.status})
				if err != nil {
					t.Fatal(err)
				}
				checkSessionList(t, page, ss, tc.want)
			})
		}

		t.Run("sessions mode counts the same data per session", func(t *testing.T) {
			q := q
			q.Def.CountBy = "session"
			q.Def.Window = 0
			res, err := f.svc.RunFunnel(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			// P1a (2 steps), P2a (1), P4b (1).
			checkSteps(t, res.Steps, []stepWant{{3, 2, time.Minute}, {1, 1, -1}, {0, 0, -1}, {0, 0, -1}})
		})

		t.Run("split by the entering session", func(t *testing.T) {
			q := q
			q.Split = "device"
			res, err := f.svc.RunFunnel(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]int{}
			for _, sp := range res.Splits {
				for _, st := range sp.Steps {
					got[sp.Value] = append(got[sp.Value], st.Count)
				}
			}
			if !slices.Equal(got["desktop"], []int{2, 1, 1, 1}) || !slices.Equal(got["mobile"], []int{1, 1, 1, 0}) {
				t.Errorf("splits %v", got)
			}
		})
	})
}

func TestFunnel_RepeatedStep(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		f.session("f1-visitor", "desktop", at(0, "12:00"), pg(0, "/product/1"), pg(mins(1), "/product/1"), pg(mins(2), "/product/2"))
		f.session("f2-visitor", "desktop", at(0, "12:00"), pg(0, "/product/1"))
		f.session("f2-visitor", "desktop", at(0, "13:00"), pg(0, "/product/3"))
		f.sync()
		steps := []Step{{Type: "page", Match: "/product/*"}, {Type: "page", Match: "/product/*"}}
		for _, tc := range []struct {
			countBy string
			want    []int
		}{
			{"session", []int{3, 1}},
			{"person", []int{2, 2}},
		} {
			t.Run(tc.countBy, func(t *testing.T) {
				res, err := f.svc.RunFunnel(context.Background(), FunnelQuery{ProjectID: f.project,
					Def: FunnelDef{Steps: steps, CountBy: tc.countBy}, From: day, To: day.AddDate(0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				var got []int
				for _, s := range res.Steps {
					got = append(got, s.Count)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("counts %v, want %v", got, tc.want)
				}
			})
		}
	})
}

func TestFunnelDef_Normalize(t *testing.T) {
	for _, tc := range []struct {
		name string
		def  string
		ok   bool
	}{
		{"ok", `{"steps":[{"type":"page","match":"/"},{"type":"event","match":"purchase"}]}`, true},
		{"person default window", `{"steps":[{"type":"page","match":"/"}],"count_by":"person"}`, true},
		{"no steps", `{"steps":[]}`, false},
		{"bad type", `{"steps":[{"type":"click","match":"/"}]}`, false},
		{"page without slash", `{"steps":[{"type":"page","match":"product"}]}`, false},
		{"empty match", `{"steps":[{"type":"event","match":""}]}`, false},
		{"bad count_by", `{"steps":[{"type":"page","match":"/"}],"count_by":"visit"}`, false},
		{"window too long", `{"steps":[{"type":"page","match":"/"}],"window":"120d"}`, false},
		{"too many steps", `{"steps":[` + repeatStep(13) + `]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d FunnelDef
			err := json.Unmarshal([]byte(tc.def), &d)
			if err == nil {
				err = d.Normalize()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.name == "person default window" && time.Duration(d.Window) != 30*24*time.Hour {
				t.Errorf("window %v", d.Window)
			}
		})
	}
}

func repeatStep(n int) string {
	s := ""
	for i := range n {
		if i > 0 {
			s += ","
		}
		s += `{"type":"page","match":"/"}`
	}
	return s
}
