package journey

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAudience_Members(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.svc.now = func() time.Time { return at(20, "00:00") }
		// "3 or more visits and searched in the last 14 days" (since day 6).
		f.session("r1-visitor", "desktop", at(1, "10:00"), pg(0, "/"))
		f.session("r1-visitor", "desktop", at(10, "10:00"), pg(0, "/search?q=Red+Shoes"), pg(mins(1), "/search?q=red%20shoes"))
		f.session("r1-visitor", "desktop", at(18, "10:00"), pg(0, "/"))
		// R2: three visits over two devices, the search on the phone.
		f.session("r2a-visitor", "desktop", at(2, "10:00"), pg(0, "/"))
		f.session("r2a-visitor", "desktop", at(3, "10:00"), pg(0, "/search?q=sandals"))
		f.session("r2b-visitor", "mobile", at(15, "10:00"), pg(0, "/search?q=boots"))
		// R3: searched, but before the window.
		f.session("r3-visitor", "desktop", at(2, "10:00"), pg(0, "/search?q=hats"))
		f.session("r3-visitor", "desktop", at(8, "10:00"), pg(0, "/"))
		f.session("r3-visitor", "desktop", at(9, "10:00"), pg(0, "/"))
		// R4: two visits only.
		f.session("r4-visitor", "desktop", at(11, "10:00"), pg(0, "/search?q=socks"))
		f.session("r4-visitor", "desktop", at(12, "10:00"), pg(0, "/"))
		// R5: four visits, never searched.
		for d := 7; d < 11; d++ {
			f.session("r5-visitor", "desktop", at(d, "10:00"), pg(0, "/"))
		}
		// R6: a term a spreadsheet would run.
		f.session("r6-visitor", "desktop", at(7, "10:00"), pg(0, "/"))
		f.session("r6-visitor", "desktop", at(8, "10:00"), pg(0, "/"))
		f.session("r6-visitor", "desktop", at(9, "10:00"), pg(0, "/search?q=%3D1%2B1"))
		f.sync()
		f.visitor("r2a-visitor", "u-r2")
		f.visitor("r2b-visitor", "u-r2")

		seg := must(ParseSegment([]byte(`{"and":[{"field":"visits","op":"gte","value":3},{"field":"search","op":"exists","value":true}]}`)))
		a, err := f.svc.CreateAudience(ctx, Audience{ProjectID: f.project, Name: "ready to buy", Segment: seg, WindowDays: 14})
		if err != nil {
			t.Fatal(err)
		}
		m, err := f.svc.Members(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if m.People != 3 {
			t.Errorf("people %d, want 3", m.People)
		}
		var buf bytes.Buffer
		if err := WriteMembersCSV(&buf, m.Members); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{
			{"visitor_id", "user_id", "last_visit", "visits", "search_terms"},
			{"r1-visitor", "", "2026-03-28T10:00:00Z", "3", "red shoes"},
			{"r2a-visitor", "u-r2", "2026-03-25T10:00:00Z", "3", "boots"},
			{"r2b-visitor", "u-r2", "2026-03-25T10:00:00Z", "3", "boots"},
			{"r6-visitor", "", "2026-03-19T10:00:00Z", "3", "'=1+1"},
		}
		if len(recs) != len(want) {
			t.Fatalf("csv\n got %q\nwant %q", recs, want)
		}
		for i := range want {
			if !slices.Equal(recs[i], want[i]) {
				t.Errorf("row %d: %q, want %q", i, recs[i], want[i])
			}
		}

		t.Run("no window", func(t *testing.T) {
			a := *a
			a.WindowDays = 0
			m, err := f.svc.Members(ctx, &a)
			if err != nil {
				t.Fatal(err)
			}
			// R3 joins; R2's terms now include sandals.
			var got []string
			for _, mb := range m.Members {
				got = append(got, mb.VisitorID+"="+strings.Join(mb.SearchTerms, ","))
			}
			// R3 and R6 last came at the same time: by person id.
			wantRows := []string{"r1-visitor=red shoes", "r2a-visitor=boots,sandals", "r2b-visitor=boots,sandals", "r3-visitor=hats", "r6-visitor==1+1"}
			if !slices.Equal(got, wantRows) {
				t.Errorf("members %q, want %q", got, wantRows)
			}
		})

		t.Run("crud", func(t *testing.T) {
			list, err := f.svc.Audiences(ctx, f.project)
			if err != nil || len(list) != 1 {
				t.Fatalf("audiences %v %v", list, err)
			}
			raw, _ := json.Marshal(list[0].Segment)
			if !strings.Contains(string(raw), `"visits"`) {
				t.Errorf("segment round trip: %s", raw)
			}
			bad := Audience{ProjectID: f.project, Name: "x", Segment: Segment{Field: "nope", Value: json.RawMessage(`1`)}}
			if _, err := f.svc.CreateAudience(ctx, bad); err == nil {
				t.Error("bad segment accepted")
			}
			if err := f.svc.DeleteAudience(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if err := f.svc.DeleteAudience(ctx, a.ID); err == nil {
				t.Error("second delete succeeded")
			}
		})
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
