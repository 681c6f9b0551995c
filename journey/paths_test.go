package journey

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
)

func pathSessions(f *fixture) {
	ps := func(name string, h int, items ...item) {
		f.session(name+"-visitor", "desktop", at(0, fmt.Sprintf("%02d:00", h)), items...)
	}
	ps("A", 1, pg(0, "/"), pg(mins(1), "/pricing"), pg(mins(2), "/signup"), pg(mins(3), "/welcome"))
	// Written out of order.
	ps("G", 2, pg(mins(2), "/welcome"), pg(mins(1), "/signup"), pg(0, "/pricing"))
	ps("K", 3, pg(0, "/pricing"), pg(mins(1), "/signup"), pg(mins(2), "/welcome"))
	ps("B", 4, pg(0, "/pricing"), pg(mins(1), "/signup"))
	ps("C", 5, pg(0, "/pricing"), pg(mins(1), "/features"), pg(mins(2), "/signup"))
	ps("I", 6, pg(0, "/pricing"), pg(mins(1), "/features"), pg(mins(2), "/signup"))
	ps("E", 7, pg(0, "/pricing"), pg(mins(1), "/docs"), pg(mins(2), "/pricing"), pg(mins(3), "/contact"))
	// A reload with an event between is still one view.
	ps("F", 8, pg(0, "/pricing"), ev(mins(0.5), "scroll"), pg(mins(1), "/pricing"), pg(mins(2), "/about"))
	ps("D", 9, pg(0, "/blog"), pg(mins(1), "/pricing"))
	ps("H", 10, pg(0, "/blog"))
	f.sync()
}

// flow renders a path result as "level:name" node counts and
// "a -> b" link values.
func flow(res *PathResult) (nodes, links []string) {
	for _, n := range res.Nodes {
		nodes = append(nodes, fmt.Sprintf("%d:%s=%d/%d", n.Level, n.Name, n.Sessions, n.Exits))
	}
	for _, l := range res.Links {
		a, b := res.Nodes[l.Source], res.Nodes[l.Target]
		links = append(links, fmt.Sprintf("%d:%s -> %d:%s = %d", a.Level, a.Name, b.Level, b.Name, l.Value))
	}
	sort.Strings(links)
	return nodes, links
}

func TestPaths(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		pathSessions(f)
		for _, tc := range []struct {
			name  string
			q     PathQuery
			nodes []string // level:name=sessions/exits, in output order
			links []string
		}{
			{
				name: "next",
				q:    PathQuery{Page: "/pricing", Direction: "next", Depth: 2, Top: 2},
				nodes: []string{
					"0:/pricing=9/1",
					"1:/signup=4/1", "1:/features=2/0", "1:(other)=2/1", "1:(exit)=1/0",
					"2:/welcome=3/0", "2:/signup=2/0", "2:(other)=1/0", "2:(exit)=2/0",
				},
				links: []string{
					"0:/pricing -> 1:(exit) = 1",
					"0:/pricing -> 1:(other) = 2",
					"0:/pricing -> 1:/features = 2",
					"0:/pricing -> 1:/signup = 4",
					"1:(other) -> 2:(exit) = 1",
					"1:(other) -> 2:(other) = 1",
					"1:/features -> 2:/signup = 2",
					"1:/signup -> 2:(exit) = 1",
					"1:/signup -> 2:/welcome = 3",
				},
			},
			{
				name: "previous",
				q:    PathQuery{Page: "/signup", Direction: "previous", Depth: 2, Top: 5},
				nodes: []string{
					"0:/signup=6/0",
					"-1:/pricing=4/0", "-1:/features=2/0",
					"-2:/pricing=2/0", "-2:/=1/0", "-2:(entrance)=3/0",
				},
				links: []string{
					"-1:/features -> 0:/signup = 2",
					"-1:/pricing -> 0:/signup = 4",
					"-2:(entrance) -> -1:/pricing = 3",
					"-2:/ -> -1:/pricing = 1",
					"-2:/pricing -> -1:/features = 2",
				},
			},
			{
				name:  "glob page, depth 1",
				q:     PathQuery{Page: "/sign*", Depth: 1},
				nodes: []string{"0:/sign*=6/3", "1:/welcome=3/0", "1:(exit)=3/0"},
				links: []string{"0:/sign* -> 1:(exit) = 3", "0:/sign* -> 1:/welcome = 3"},
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				q := tc.q
				q.ProjectID, q.From, q.To = f.project, day, day.AddDate(0, 0, 1)
				res, err := f.svc.Paths(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				nodes, links := flow(res)
				if !slices.Equal(nodes, tc.nodes) {
					t.Errorf("nodes\n got %q\nwant %q", nodes, tc.nodes)
				}
				if !slices.Equal(links, tc.links) {
					t.Errorf("links\n got %q\nwant %q", links, tc.links)
				}
			})
		}
		t.Run("bad input", func(t *testing.T) {
			for _, q := range []PathQuery{
				{Page: "pricing"}, {Page: "/x", Direction: "up"}, {Page: "/x", Depth: 9}, {Page: "/x", Top: 50}, {Page: ""},
			} {
				q.ProjectID, q.From, q.To = f.project, day, day.AddDate(0, 0, 1)
				if _, err := f.svc.Paths(context.Background(), q); err == nil {
					t.Errorf("%+v: no error", q)
				}
			}
		})
	})
}
