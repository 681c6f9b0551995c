package journey

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

func intentSessions(f *fixture) {
	// T1 searches twice, then buys in the same visit.
	f.session("t1-visitor", "desktop", at(0, "10:00"), pg(0, "/search?q=boots"), pg(mins(1), "/search?q=Boots&page=2"), ev(mins(5), "purchase"))
	// T2 came three days earlier, searches, and buys on the phone.
	f.session("t2a-visitor", "desktop", at(-3, "10:00"), pg(0, "/"))
	f.session("t2a-visitor", "desktop", at(0, "09:00"), pg(0, "/search?q=boots"))
	f.session("t2b-visitor", "mobile", at(0, "20:00"), pg(0, "/cart"), ev(mins(1), "purchase"))
	// T3 searches and leaves.
	f.session("t3-visitor", "desktop", at(0, "11:00"), pg(0, "/search?q=hats"))
	// T4 buys again without searching (first bought two days ago).
	f.session("t4-visitor", "desktop", at(-2, "10:00"), ev(0, "purchase"))
	f.session("t4-visitor", "desktop", at(0, "12:00"), ev(0, "purchase"))
	// T5 only looks.
	f.session("t5-visitor", "desktop", at(0, "13:00"), pg(0, "/"))
	// T6 searches after buying.
	f.session("t6-visitor", "desktop", at(0, "14:00"), pg(0, "/"), ev(mins(1), "purchase"), pg(mins(2), "/search?q=boots"))
	f.sync()
	f.visitor("t2a-visitor", "u-t2")
	f.visitor("t2b-visitor", "u-t2")
}

func TestSearchTerms(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		intentSessions(f)
		res, err := f.svc.SearchTerms(context.Background(), IntentQuery{ProjectID: f.project, From: day, To: day.AddDate(0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Searches != 5 || res.Sessions != 4 || res.People != 4 {
			t.Errorf("totals %d searches, %d sessions, %d people; want 5, 4, 4", res.Searches, res.Sessions, res.People)
		}
		var got []string
		for _, st := range res.Terms {
			got = append(got, fmt.Sprintf("%s %d/%d/%d conv %d/%d", st.Term, st.Searches, st.Sessions, st.People, st.ConvertedSessions, st.ConvertedPeople))
		}
		want := []string{"boots 4/3/3 conv 1/2", "hats 1/1/1 conv 0/0"}
		if !slices.Equal(got, want) {
			t.Errorf("terms %q, want %q", got, want)
		}
	})
}

func TestConversionStats(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		intentSessions(f)
		ctx := context.Background()
		res, err := f.svc.ConversionStats(ctx, IntentQuery{ProjectID: f.project, From: day, To: day.AddDate(0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("people %d converted %d searchers %d rates %.2f/%.2f new %d searched-before %d",
			res.People, res.Converted, res.Searchers, res.SearcherConversionRate, res.NonSearcherConversionRate, res.NewConverters, res.SearchedBeforeConverting)
		if want := "people 6 converted 4 searchers 4 rates 0.50/0.50 new 3 searched-before 2"; got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		counts := func(bs []Bucket) map[string]int {
			m := map[string]int{}
			for _, b := range bs {
				if b.Count > 0 {
					m[b.Label] = b.Count
				}
			}
			return m
		}
		if v := counts(res.VisitsToConvert); v["1"] != 2 || v["3"] != 1 || len(v) != 2 {
			t.Errorf("visits to convert %v", v)
		}
		if v := counts(res.TimeToConvert); v["< 1 hour"] != 2 || v["3-7 days"] != 1 || len(v) != 2 {
			t.Errorf("time to convert %v", v)
		}
		if res.MedianVisitsToConvert == nil || *res.MedianVisitsToConvert != 1 || res.MedianTimeToConvertMS == nil ||
			*res.MedianTimeToConvertMS != (5*time.Minute).Milliseconds() {
			t.Errorf("medians %v %v", res.MedianVisitsToConvert, res.MedianTimeToConvertMS)
		}

		t.Run("conversion given in the query", func(t *testing.T) {
			res, err := f.svc.ConversionStats(ctx, IntentQuery{ProjectID: f.project, From: day, To: day.AddDate(0, 0, 1), ConversionPage: "/cart"})
			if err != nil {
				t.Fatal(err)
			}
			// Only T2 reached the cart: 82h01m after the first visit, third visit.
			if res.Converted != 1 || res.NewConverters != 1 || *res.MedianVisitsToConvert != 3 ||
				*res.MedianTimeToConvertMS != (82*time.Hour).Milliseconds() || res.Conversion != "page /cart" {
				t.Errorf("%+v", res)
			}
		})

		t.Run("settings change rebuilds conversions", func(t *testing.T) {
			if err := f.svc.SetSettings(ctx, f.project, Settings{SearchParams: []string{"q"}, ConversionPages: []string{"/cart"}}); err != nil {
				t.Fatal(err)
			}
			waitRebuilt(t, f)
			res, err := f.svc.ConversionStats(ctx, IntentQuery{ProjectID: f.project, From: day, To: day.AddDate(0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Converted != 1 || res.Conversion != "page /cart" {
				t.Errorf("%+v", res)
			}
			var n int
			if err := f.db.SQL().Read().QueryRow(`SELECT COUNT(*) FROM sessions WHERE conversions > 0`).Scan(&n); err != nil || n != 1 {
				t.Errorf("sessions with conversions: %d %v", n, err)
			}
		})
	})
}

func waitRebuilt(t *testing.T, f *fixture) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, rebuilding, err := f.svc.Settings(context.Background(), f.project)
		if err != nil {
			t.Fatal(err)
		}
		if !rebuilding {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("rebuild did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
