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

// Special keys in raw path links.
const (
	pathRoot     = -3
	pathEnd      = -1 // exit (next) or entrance (previous)
	pathIsPage   = 1
	pathMatches  = 2
	maxPathDepth = 5
)

// kindRank orders nodes within a level: pages, then "(other)", then the
// end node.
var kindRank = map[string]int{"page": 0, "other": 1, "exit": 2, "entrance": 2}

type linkKey struct {
	level    int8
	from, to int64
}

// Paths computes the most common pages after (or before) a page.
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
	seg, err := q.Segment.Compile("s")
	if err != nil {
		return nil, err
	}
	dv, err := s.dictionary(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	tbl := newKeyTable(dv, func(i int) uint32 {
		if dv.kinds[i] != kindPage {
			return 0
		}
		if pm.pat.Match(dv.names[i]) {
			return pathIsPage | pathMatches
		}
		return pathIsPage
	})
	workers := scanWorkers()
	links := make([]map[linkKey]int, workers)
	counts := make([]int, workers)
	pages := make([][]int64, workers)
	for i := range links {
		links[i] = map[linkKey]int{}
	}
	next := q.Direction == "next"
	err = s.scan(ctx, scanQuery{project: q.ProjectID, from: q.From.UnixMilli(), to: q.To.UnixMilli(), segment: seg},
		func(w int, r *scanRow) error {
			ps := pages[w][:0]
			at := -1
			for _, e := range r.entries {
				m := tbl.get(e.key)
				if m&pathIsPage == 0 || (len(ps) > 0 && ps[len(ps)-1] == e.key) {
					continue
				}
				if at < 0 && m&pathMatches != 0 {
					at = len(ps)
					if !next {
						ps = append(ps, e.key)
						break
					}
				}
				ps = append(ps, e.key)
				if at >= 0 && len(ps) > at+q.Depth {
					break
				}
			}
			pages[w] = ps
			if at < 0 {
				return nil
			}
			counts[w]++
			prev := int64(pathRoot)
			for l := 1; l <= q.Depth; l++ {
				i := at + l
				if !next {
					i = at - l
				}
				cur := int64(pathEnd)
				if i >= 0 && i < len(ps) {
					cur = ps[i]
				}
				links[w][linkKey{int8(l - 1), prev, cur}]++
				if cur == pathEnd {
					break
				}
				prev = cur
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	for w := 1; w < workers; w++ {
		counts[0] += counts[w]
		for k, v := range links[w] {
			links[0][k] += v
		}
	}
	res := buildPaths(links[0], counts[0], q, dv)
	res.TookMS = time.Since(started).Milliseconds()
	return res, nil
}

// buildPaths groups raw links by level into the top pages, "(other)" and
// the end node, and lays them out as Sankey nodes and links.
func buildPaths(raw map[linkKey]int, sessions int, q PathQuery, dv dictView) *PathResult {
	res := &PathResult{Page: q.Page, Direction: q.Direction, Depth: q.Depth, Sessions: sessions, Nodes: []PathNode{}, Links: []PathLink{}}
	sign := 1
	endName, endKind := "(exit)", "exit"
	if q.Direction == "previous" {
		sign = -1
		endName, endKind = "(entrance)", "entrance"
	}
	// Sessions per key at each level (level l+1 of a link at level l).
	perLevel := make([]map[int64]int, q.Depth+1)
	for i := range perLevel {
		perLevel[i] = map[int64]int{}
	}
	for k, v := range raw {
		perLevel[k.level+1][k.to] += v
	}
	top := make([]map[int64]bool, q.Depth+1)
	for l := 1; l <= q.Depth; l++ {
		keys := make([]int64, 0, len(perLevel[l]))
		for k := range perLevel[l] {
			if k != pathEnd {
				keys = append(keys, k)
			}
		}
		sort.Slice(keys, func(i, j int) bool {
			a, b := perLevel[l][keys[i]], perLevel[l][keys[j]]
			if a != b {
				return a > b
			}
			return keys[i] < keys[j]
		})
		top[l] = map[int64]bool{}
		for _, k := range keys[:min(q.Top, len(keys))] {
			top[l][k] = true
		}
	}
	type nodeKey struct {
		level int
		name  string
	}
	ids := map[nodeKey]int{}
	node := func(level int, key int64) int {
		nk := nodeKey{level: level}
		kind := "page"
		switch {
		case level == 0:
			nk.name = q.Page
		case key == pathEnd:
			nk.name, kind = endName, endKind
		case top[level][key]:
			if i := dv.index(key); i >= 0 {
				nk.name = dv.names[i]
			}
		default:
			nk.name, kind = otherValue, "other"
		}
		if id, ok := ids[nk]; ok {
			return id
		}
		id := len(res.Nodes)
		ids[nk] = id
		res.Nodes = append(res.Nodes, PathNode{ID: id, Level: sign * level, Name: nk.name, Kind: kind})
		return id
	}
	root := node(0, pathRoot)
	res.Nodes[root].Sessions = sessions
	type lk struct{ a, b int }
	agg := map[lk]int{}
	for k, v := range raw {
		a, b := node(int(k.level), k.from), node(int(k.level)+1, k.to)
		if k.level == 0 {
			a = root
		}
		agg[lk{a, b}] += v
		res.Nodes[b].Sessions += v
		if k.to == pathEnd && q.Direction == "next" {
			res.Nodes[a].Exits += v
		}
	}
	for k, v := range agg {
		l := PathLink{Source: k.a, Target: k.b, Value: v}
		if sign < 0 {
			l.Source, l.Target = l.Target, l.Source
		}
		res.Links = append(res.Links, l)
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
