package journey

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestPeople(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.session("p1-visitor", "desktop", at(0, "10:00"), pg(0, "/"))
		x1 := f.session("x1-visitor", "desktop", at(0, "09:00"),
			pg(0, "/?utm_source=newsletter&utm_medium=email"), pg(mins(0.5), "/?utm_source=newsletter&utm_medium=email"),
			pg(mins(1), "/search?q=Boots"), ev(mins(2), "add_to_cart"))
		f.exec(`UPDATE sessions SET referrer = 'https://mail.example.net/inbox', rage_clicks = 2 WHERE id = ?`, x1.row)
		f.session("p3-visitor", "desktop", at(0, "11:00"), pg(0, "/"))
		x2 := f.session("x2-visitor", "mobile", at(0, "12:00"), pg(0, "/cart"), ev(mins(1), "purchase"))
		f.sync()
		// Identify arrives later, from the phone and then the desktop.
		f.visitor("x2-visitor", "u-x")
		f.exec(`UPDATE visitors SET traits = '{"email":"x@example.com"}' WHERE id = 'x2-visitor'`)
		f.visitor("x1-visitor", "u-x")

		ids := func(p *PeoplePage) []string {
			var out []string
			for _, s := range p.People {
				out = append(out, s.ID)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			q    PeopleQuery
			want []string
		}{
			{"all, latest first", PeopleQuery{}, []string{"u:u-x", "v:p3-visitor", "v:p1-visitor"}},
			{"by trait", PeopleQuery{Q: "example.com"}, []string{"u:u-x"}},
			{"by another visitor of the person", PeopleQuery{Q: "x1-visitor"}, []string{"u:u-x"}},
			{"by visitor", PeopleQuery{Q: "p1-visitor"}, []string{"v:p1-visitor"}},
			{"by segment", PeopleQuery{Segment: Segment{Field: "device", Value: []byte(`"mobile"`)}}, []string{"u:u-x"}},
			{"by segment in range", PeopleQuery{From: at(0, "10:30"), To: at(0, "11:30")}, []string{"v:p3-visitor"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				q := tc.q
				q.ProjectID = f.project
				p, err := f.svc.People(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(p); !slices.Equal(got, tc.want) {
					t.Errorf("people %q, want %q", got, tc.want)
				}
			})
		}
		t.Run("paging", func(t *testing.T) {
			var got []string
			cursor := ""
			for range 5 {
				p, err := f.svc.People(ctx, PeopleQuery{ProjectID: f.project, Limit: 1, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(p)...)
				if cursor = p.NextCursor; cursor == "" {
					break
				}
			}
			if want := []string{"u:u-x", "v:p3-visitor", "v:p1-visitor"}; !slices.Equal(got, want) {
				t.Errorf("pages %q, want %q", got, want)
			}
		})
		t.Run("summary", func(t *testing.T) {
			p, err := f.svc.People(ctx, PeopleQuery{ProjectID: f.project, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			s := p.People[0]
			if s.Visits != 2 || !slices.Equal(s.Visitors, []string{"x1-visitor", "x2-visitor"}) || string(s.Traits) != `{"email":"x@example.com"}` ||
				!s.FirstSeen.Equal(at(0, "09:00")) || !s.LastSeen.Equal(at(0, "12:00")) || s.Link != "/api/v1/people/u:u-x?project=1" {
				t.Errorf("summary %+v", s)
			}
		})

		t.Run("person timeline", func(t *testing.T) {
			p, err := f.svc.Person(ctx, PersonQuery{ProjectID: f.project, ID: "u:u-x"})
			if err != nil {
				t.Fatal(err)
			}
			if p.Visits != 2 || p.Conversions != 1 || len(p.VisitList) != 2 {
				t.Fatalf("person %+v", p)
			}
			a, b := p.VisitList[0], p.VisitList[1]
			if a.ID != x1.public || b.ID != x2.public || a.Recording != "/api/v1/sessions/"+x1.public+"/events" {
				t.Errorf("visits %s %s, want %s %s in time order", a.ID, b.ID, x1.public, x2.public)
			}
			wantSrc := Source{ReferrerHost: "mail.example.net", UTMSource: "newsletter", UTMMedium: "email", Label: "newsletter / email"}
			if a.Source != wantSrc || a.Device != "desktop" || b.Device != "mobile" || a.RageClicks != 2 {
				t.Errorf("first visit %+v", a)
			}
			var paths []string
			for _, pv := range a.Pages {
				paths = append(paths, pv.Path)
			}
			if !slices.Equal(paths, []string{"/", "/search"}) || !slices.Equal(a.Searches, []string{"boots"}) ||
				len(a.Events) != 1 || a.Events[0].Name != "add_to_cart" {
				t.Errorf("first visit pages %q searches %q events %+v", paths, a.Searches, a.Events)
			}
			if b.Conversions != 1 || len(b.Events) != 1 || b.Events[0].Name != "purchase" {
				t.Errorf("second visit %+v", b)
			}
			// Paging through visits.
			p1, err := f.svc.Person(ctx, PersonQuery{ProjectID: f.project, ID: "u:u-x", Limit: 1})
			if err != nil || len(p1.VisitList) != 1 || p1.NextCursor == "" {
				t.Fatalf("page 1: %+v %v", p1, err)
			}
			p2, err := f.svc.Person(ctx, PersonQuery{ProjectID: f.project, ID: "u:u-x", Limit: 1, Cursor: p1.NextCursor})
			if err != nil || len(p2.VisitList) != 1 || p2.VisitList[0].ID != x2.public || p2.NextCursor != "" {
				t.Fatalf("page 2: %+v %v", p2, err)
			}
		})
		t.Run("not found", func(t *testing.T) {
			for _, id := range []string{"v:x1-visitor", "u:nobody", "v:nobody"} {
				if _, err := f.svc.Person(ctx, PersonQuery{ProjectID: f.project, ID: id}); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: %v, want not found", id, err)
				}
			}
			if _, err := f.svc.Person(ctx, PersonQuery{ProjectID: f.project, ID: "x1-visitor"}); !errors.Is(err, ErrInvalid) {
				t.Errorf("bad id: %v", err)
			}
		})
	})
}
