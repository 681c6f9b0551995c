package journey

import (
	"context"
	"sort"
	"time"
)

// maxStages bounds a project's stages (they are bits of a mask).
const maxStages = 30

// StageFlowQuery asks how people move between a project's stages.
type StageFlowQuery struct {
	ProjectID int64
	From, To  time.Time
	Segment   Segment
}

// StageCount is one stage's numbers.
type StageCount struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// People reached the stage; Sessions had an event of it.
	People   int `json:"people"`
	Sessions int `json:"sessions"`
	// Entered is how many people's journeys (in the range) began here;
	// Current how many are here now (their latest stage).
	Entered int `json:"entered"`
	Current int `json:"current"`
}

// StageTransition counts people who moved from one stage straight to
// another (at least once). From "(start)" is the first stage.
type StageTransition struct {
	From   string `json:"from"`
	To     string `json:"to"`
	People int    `json:"people"`
	// Forward is true when To comes after From in stage order.
	Forward bool `json:"forward"`
}

// StageFlow is the result of a stage flow query.
type StageFlow struct {
	From        time.Time         `json:"from"`
	To          time.Time         `json:"to"`
	People      int               `json:"people"` // with at least one stage
	Stages      []StageCount      `json:"stages"`
	Transitions []StageTransition `json:"transitions"`
	TookMS      int64             `json:"took_ms"`
}

type stageEnt struct {
	ts    int64
	stage int8
}

type stageSess struct {
	person, start int64
	w, off, n     int32
}

// StageFlowReport maps every page view and event of the range's sessions
// to the first stage (by position) with a matching rule, joins each
// person's sessions in time order, and counts stages reached, first and
// latest stages, and moves between consecutive stages.
func (s *Service) StageFlowReport(ctx context.Context, q StageFlowQuery) (*StageFlow, error) {
	started := time.Now()
	if !q.To.After(q.From) {
		return nil, invalidf("to must be after from")
	}
	seg, err := s.match(ctx, q.ProjectID, q.Segment)
	if err != nil {
		return nil, err
	}
	stages, err := s.Stages(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	if len(stages) > maxStages {
		stages = stages[:maxStages]
	}
	res := &StageFlow{From: q.From.UTC(), To: q.To.UTC(), Stages: []StageCount{}, Transitions: []StageTransition{}}
	for _, st := range stages {
		res.Stages = append(res.Stages, StageCount{ID: st.ID, Name: st.Name})
	}
	if len(stages) == 0 {
		return res, nil
	}
	rules := make([][]matcher, len(stages))
	for i, st := range stages {
		for _, r := range st.Rules {
			if m, err := compileStep(r); err == nil {
				rules[i] = append(rules[i], m)
			}
		}
	}
	dv, err := s.dictionary(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	// The table holds stage index + 1 of the first matching stage.
	tbl := newKeyTable(dv, func(i int) uint32 {
		for si, ms := range rules {
			for _, m := range ms {
				if m.match(dv.kinds[i], dv.names[i]) {
					return uint32(si + 1)
				}
			}
		}
		return 0
	})
	pm, err := s.people(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	workers := scanSlots()
	sess := make([][]stageSess, workers)
	ents := make([][]stageEnt, workers)
	sessCounts := make([][]int, workers)
	for w := range sessCounts {
		sessCounts[w] = make([]int, len(stages))
	}
	err = s.scan(ctx, scanQuery{project: q.ProjectID, from: q.From.UnixMilli(), to: q.To.UnixMilli(), segment: seg},
		func(w int, r *scanRow) error {
			off := len(ents[w])
			var seen uint32
			last := int8(-1)
			for _, e := range r.entries {
				v := tbl.get(e.key)
				if v == 0 {
					continue
				}
				st := int8(v - 1)
				seen |= 1 << st
				if st == last {
					continue
				}
				last = st
				ents[w] = append(ents[w], stageEnt{ts: e.ts, stage: st})
			}
			if len(ents[w]) == off {
				return nil
			}
			for i := range stages {
				if seen&(1<<i) != 0 {
					sessCounts[w][i]++
				}
			}
			sess[w] = append(sess[w], stageSess{person: pm.person(r.visitor), start: r.start, w: int32(w), off: int32(off), n: int32(len(ents[w]) - off)})
			return nil
		})
	if err != nil {
		return nil, err
	}
	var all []stageSess
	for w := range sess {
		all = append(all, sess[w]...)
		for i := range stages {
			res.Stages[i].Sessions += sessCounts[w][i]
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].person != all[j].person {
			return all[i].person < all[j].person
		}
		return all[i].start < all[j].start
	})
	type pair struct{ from, to int8 }
	trans := map[pair]int{}
	var merged []stageEnt
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].person == all[i].person {
			j++
		}
		merged = merged[:0]
		for _, ps := range all[i:j] {
			merged = append(merged, ents[ps.w][ps.off:ps.off+ps.n]...)
		}
		if j-i > 1 {
			sort.SliceStable(merged, func(a, b int) bool { return merged[a].ts < merged[b].ts })
		}
		i = j
		res.People++
		var reached uint32
		seenPairs := map[pair]bool{}
		prev := int8(-1)
		for _, e := range merged {
			if e.stage == prev {
				continue
			}
			reached |= 1 << e.stage
			p := pair{prev, e.stage}
			if !seenPairs[p] {
				seenPairs[p] = true
				trans[p]++
			}
			prev = e.stage
		}
		res.Stages[merged[0].stage].Entered++
		res.Stages[prev].Current++
		for si := range stages {
			if reached&(1<<si) != 0 {
				res.Stages[si].People++
			}
		}
	}
	for p, n := range trans {
		t := StageTransition{From: "(start)", To: stages[p.to].Name, People: n, Forward: true}
		if p.from >= 0 {
			t.From, t.Forward = stages[p.from].Name, p.to > p.from
		}
		res.Transitions = append(res.Transitions, t)
	}
	pos := map[string]int{"(start)": -1}
	for i, st := range stages {
		pos[st.Name] = i
	}
	sort.Slice(res.Transitions, func(i, j int) bool {
		a, b := res.Transitions[i], res.Transitions[j]
		if pos[a.From] != pos[b.From] {
			return pos[a.From] < pos[b.From]
		}
		return pos[a.To] < pos[b.To]
	})
	res.TookMS = time.Since(started).Milliseconds()
	return res, nil
}
