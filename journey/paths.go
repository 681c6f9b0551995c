package journey

import (
	"context"
	"sort"
	"time"
)

// PathQuery asks for the pages before or after a chosen page.
type PathQuery struct {
	ProjectID int64
	// Page is a path pattern ("/pricing", "/product/*"). Each session
	// counts once, from its first view of a matching page.
	Page string
	// Direction is "next" (default) or "previous".
	Direction string
	// Depth is how many pages away to follow, 1 to 5 (default 3).
	Depth int
	// Top is how many pages each level shows before grouping the rest as
	// "(other)", 1 to 20 (default 6).
	Top      int
	From, To time.Time
	Segment  Segment
}

// PathNode is a Sankey node: a page at some distance from the chosen page.
type PathNode struct {
	ID int `json:"id"`
	// Level is the distance from the chosen page: 0 is the page itself,
	// 1, 2, ... the pages after it, -1, -2, ... the pages before it.
	Level int    `json:"level"`
	Name  string `json:"name"`
	// Kind is "page", "other" (pages outside the top ones), "exit" (the
	// session ended: drop-off) or "entrance" (the session began).
	Kind     string `json:"kind"`
	Sessions int    `json:"sessions"`
	// Exits is how many sessions ended right after this node (next
	// direction only).
	Exits int `json:"exits,omitempty"`
}

// PathLink is a Sankey link, in time order: source came before target.
type PathLink struct {
	Source int `json:"source"`
	Target int `json:"target"`
	Value  int `json:"value"`
}

// PathResult is a flow of sessions through pages, ready for d3-sankey
// (nodes and links with source/target indices and value).
type PathResult struct {
	Page      string     `json:"page"`
	Direction string     `json:"direction"`
	Depth     int        `json:"depth"`
	Sessions  int        `json:"sessions"`
	Nodes     []PathNode `json:"nodes"`
	Links     []PathLink `json:"links"`
	TookMS    int64      `json:"took_ms"`
}

// maxPathDepth bounds how far a path report follows sessions.
const maxPathDepth = 5

// kindRank orders nodes within a level: pages, then "(other)", then the
// end node.
var kindRank = map[string]int{"page": 0, "other": 1, "exit": 2, "entrance": 2}

// Route codes: a page is its dictionary position + 1; 0 is the end of the
// session (exit, or entrance when looking back).
const codeEnd = 0

// Paths computes the most common pages after (or before) a page. Each
// matching session contributes its route (the pages at distance 1..Depth);
// routes are counted per level in dense arrays, the top pages of each level
// chosen, and the routes counted again as links between the chosen nodes:
// no maps in the per-session work, which at a million sessions is what
// decides the time.
func (s *Service) Paths(ctx context.Context, q PathQuery) (*PathResult, error) {
	started := time.Now()
	switch q.Direction {
	case "":
		q.Direction = "next"
	case "next", "previous":
	default:
		return nil, invalidf(`direction must be "next" or "previous", not %q`, q.Direction)
	}
	if q.Depth == 0 {
		q.Depth = 3
	}
	if q.Depth < 1 || q.Depth > maxPathDepth {
		return nil, invalidf("depth must be from 1 to %d", maxPathDepth)
	}
	if q.Top == 0 {
		q.Top = 6
	}
	if q.Top < 1 || q.Top > 20 {
		return nil, invalidf("top must be from 1 to 20")
	}
	if !q.To.After(q.From) {
		return nil, invalidf("to must be after from")
	}
	pm, err := compileStep(Step{Type: "page", Match: q.Page})
	if err != nil {
		return nil, err
	}
	seg, err := s.match(ctx, q.ProjectID, q.Segment)
	if err != nil {
		return nil, err
	}
	dv, err := s.dictionary(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	// code << 1 | matches the chosen page; 0 for events.
	tbl := newKeyTable(dv, func(i int) uint32 {
		if dv.kinds[i] != kindPage {
			return 0
		}
		code := uint32(i+1) << 1
		if pm.pat.Match(dv.names[i]) {
			code |= 1
		}
		return code
	})
	workers := scanSlots()
	routes := make([][]uint32, workers) // Depth codes per matching session
	pages := make([][]uint32, workers)
	next := q.Direction == "next"
	depth := q.Depth
	err = s.scan(ctx, scanQuery{project: q.ProjectID, from: q.From.UnixMilli(), to: q.To.UnixMilli(), segment: seg},
		func(w int, r *scanRow) error {
			ps := pages[w][:0]
			at := -1
			for _, e := range r.entries {
				m := tbl.get(e.key)
				code := m >> 1
				if code == 0 || (len(ps) > 0 && ps[len(ps)-1] == code) {
					continue
				}
				if at < 0 && m&1 != 0 {
					at = len(ps)
					if !next {
						ps = append(ps, code)
						break
					}
				}
				ps = append(ps, code)
				if at >= 0 && len(ps) > at+depth {
					break
				}
			}
			pages[w] = ps
			if at < 0 {
				return nil
			}
			for l := 1; l <= depth; l++ {
				i := at + l
				if !next {
					i = at - l
				}
				code := uint32(codeEnd)
				if i >= 0 && i < len(ps) {
					code = ps[i]
				}
				routes[w] = append(routes[w], code)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	res := buildPaths(routes, q, dv)
	res.TookMS = time.Since(started).Milliseconds()
	return res, nil
}

// buildPaths chooses the top pages of each level, groups the rest as
// "(other)", and lays the routes out as Sankey nodes and links.
func buildPaths(routes [][]uint32, q PathQuery, dv dictView) *PathResult {
	depth := q.Depth
	sessions := 0
	for _, r := range routes {
		sessions += len(r) / depth
	}
	res := &PathResult{Page: q.Page, Direction: q.Direction, Depth: depth, Sessions: sessions, Nodes: []PathNode{}, Links: []PathLink{}}
	sign := 1
	endName, endKind := "(exit)", "exit"
	if q.Direction == "previous" {
		sign = -1
		endName, endKind = "(entrance)", "entrance"
	}
	codes := len(dv.ids) + 1
	// hist[l][code]: sessions at level l+1 on that page; a route ends at
	// its first end code.
	hist := make([][]int32, depth)
	for l := range hist {
		hist[l] = make([]int32, codes)
	}
	for _, rs := range routes {
		for i := 0; i < len(rs); i += depth {
			for l, c := range rs[i : i+depth] {
				hist[l][c]++
				if c == codeEnd {
					break
				}
			}
		}
	}
	// label[l][code]: 0 other, 1..Top the rank of a top page, Top+1 end.
	end := int16(q.Top + 1)
	label := make([][]int16, depth)
	tops := make([][]uint32, depth)
	for l := range label {
		label[l] = make([]int16, codes)
		var cs []uint32
		for c := 1; c < codes; c++ {
			if hist[l][c] > 0 {
				cs = append(cs, uint32(c))
			}
		}
		sort.Slice(cs, func(i, j int) bool {
			a, b := hist[l][cs[i]], hist[l][cs[j]]
			if a != b {
				return a > b
			}
			return cs[i] < cs[j]
		})
		cs = cs[:min(q.Top, len(cs))]
		tops[l] = cs
		for rank, c := range cs {
			label[l][c] = int16(rank + 1)
		}
		label[l][codeEnd] = end
	}
	// links[l][from][to], from of level 0 being the chosen page (label 0).
	width := int(end) + 1
	links := make([][]int, depth)
	for l := range links {
		links[l] = make([]int, width*width)
	}
	for _, rs := range routes {
		for i := 0; i < len(rs); i += depth {
			from := int16(0)
			for l, c := range rs[i : i+depth] {
				to := label[l][c]
				links[l][int(from)*width+int(to)]++
				if to == end {
					break
				}
				from = to
			}
		}
	}
	// Nodes: id per (level, label).
	ids := map[[2]int]int{}
	node := func(level int, lab int16) int {
		k := [2]int{level, int(lab)}
		if id, ok := ids[k]; ok {
			return id
		}
		n := PathNode{ID: len(res.Nodes), Level: sign * level, Kind: "page"}
		switch {
		case level == 0:
			n.Name = q.Page
		case lab == end:
			n.Name, n.Kind = endName, endKind
		case lab == 0:
			n.Name, n.Kind = otherValue, "other"
		default:
			n.Name = dv.names[tops[level-1][lab-1]-1]
		}
		ids[k] = n.ID
		res.Nodes = append(res.Nodes, n)
		return n.ID
	}
	root := node(0, 0)
	res.Nodes[root].Sessions = sessions
	for l := range links {
		for from := 0; from < width; from++ {
			for to := 0; to < width; to++ {
				v := links[l][from*width+to]
				if v == 0 {
					continue
				}
				a, b := root, node(l+1, int16(to))
				if l > 0 {
					a = node(l, int16(from))
				}
				res.Nodes[b].Sessions += v
				if int16(to) == end && sign > 0 {
					res.Nodes[a].Exits += v
				}
				lk := PathLink{Source: a, Target: b, Value: v}
				if sign < 0 {
					lk.Source, lk.Target = lk.Target, lk.Source
				}
				res.Links = append(res.Links, lk)
			}
		}
	}
	// Stable output: nodes by level and size, links by their ends.
	sort.SliceStable(res.Nodes, func(i, j int) bool {
		a, b := res.Nodes[i], res.Nodes[j]
		if a.Level*sign != b.Level*sign {
			return a.Level*sign < b.Level*sign
		}
		if ra, rb := kindRank[a.Kind], kindRank[b.Kind]; ra != rb {
			return ra < rb
		}
		if a.Sessions != b.Sessions {
			return a.Sessions > b.Sessions
		}
		return a.Name < b.Name
	})
	renum := make([]int, len(res.Nodes))
	for i := range res.Nodes {
		renum[res.Nodes[i].ID] = i
		res.Nodes[i].ID = i
	}
	for i := range res.Links {
		res.Links[i].Source, res.Links[i].Target = renum[res.Links[i].Source], renum[res.Links[i].Target]
	}
	sort.Slice(res.Links, func(i, j int) bool {
		a, b := res.Links[i], res.Links[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Target < b.Target
	})
	return res
}
