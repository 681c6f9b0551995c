package journey

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"time"
)

// maxSteps bounds a funnel's length.
const maxSteps = 12

// Step is one funnel step: a page path pattern or a custom event name
// (pattern).
type Step struct {
	Type  string `json:"type"`  // "page" or "event"
	Match string `json:"match"` // e.g. "/product/*" or "purchase"
	Label string `json:"label,omitempty"`
}

// FunnelDef is what a funnel counts.
type FunnelDef struct {
	Steps []Step `json:"steps"`
	// CountBy is "session" (each session on its own; the default) or
	// "person" (a person's sessions joined, across devices once
	// identified).
	CountBy string `json:"count_by,omitempty"`
	// Window bounds the time from step 1 to the last step: default none
	// when counting sessions, 30 days when counting people (at most 90).
	Window Duration `json:"window,omitempty"`
}

// matcher is a compiled step (or stage rule).
type matcher struct {
	kind int
	pat  Pattern
}

func (m matcher) match(kind uint8, name string) bool {
	return int(kind) == m.kind && m.pat.Match(name)
}

func compileStep(st Step) (matcher, error) {
	var m matcher
	switch st.Type {
	case "page":
		m.kind = kindPage
		if !strings.HasPrefix(st.Match, "/") && !strings.HasPrefix(st.Match, "*") {
			return m, invalidf("page pattern %q must start with / (a path, * for any run of characters)", st.Match)
		}
	case "event":
		m.kind = kindEvent
	default:
		return m, invalidf(`step type must be "page" or "event", not %q`, st.Type)
	}
	p, err := ParsePattern(st.Match)
	if err != nil {
		return m, err
	}
	m.pat = p
	return m, nil
}

// Normalize checks the definition and fills defaults.
func (d *FunnelDef) Normalize() error {
	if len(d.Steps) < 1 || len(d.Steps) > maxSteps {
		return invalidf("a funnel has 1 to %d steps, not %d", maxSteps, len(d.Steps))
	}
	for i := range d.Steps {
		st := &d.Steps[i]
		st.Match = strings.TrimSpace(st.Match)
		if _, err := compileStep(*st); err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
		if len(st.Label) > 200 {
			return invalidf("step %d: label longer than 200 characters", i+1)
		}
		if st.Label == "" {
			st.Label = st.Match
		}
	}
	switch d.CountBy {
	case "":
		d.CountBy = "session"
	case "session", "person":
	default:
		return invalidf(`count_by must be "session" or "person", not %q`, d.CountBy)
	}
	if d.Window < 0 || time.Duration(d.Window) > 90*24*time.Hour {
		return invalidf("window must be between 0 and 90d")
	}
	if d.CountBy == "person" && d.Window == 0 {
		d.Window = Duration(30 * 24 * time.Hour)
	}
	return nil
}

// FunnelQuery asks for a funnel's numbers.
type FunnelQuery struct {
	ProjectID int64
	Def       FunnelDef
	// From and To select the sessions (by start) that can enter the
	// funnel; in person mode later steps may follow until To + Window.
	From, To time.Time
	// Segment limits the sessions looked at (both entering and later).
	Segment Segment
	// Split names a dimension (see Dimensions) to break the numbers down by.
	Split string
}

// StepResult is one step's numbers.
type StepResult struct {
	Step  int    `json:"step"` // 1-based
	Label string `json:"label"`
	Type  string `json:"type"`
	Match string `json:"match"`
	// Count is how many sessions (or people) reached this step in order.
	Count int `json:"count"`
	// ConversionFromPrevious and ConversionFromFirst are shares (0..1) of
	// the previous and the first step's count.
	ConversionFromPrevious float64 `json:"conversion_from_previous"`
	ConversionFromFirst    float64 `json:"conversion_from_first"`
	// Dropped reached this step but not the next (0 at the last step).
	Dropped     int     `json:"dropped"`
	DropOffRate float64 `json:"drop_off_rate"`
	// MedianMSToNext is the median time from this step to the next among
	// those who reached the next; nil at the last step or when nobody did.
	MedianMSToNext *int64 `json:"median_ms_to_next"`
}

// SplitResult is the funnel of one split value.
type SplitResult struct {
	Value string       `json:"value"`
	Steps []StepResult `json:"steps"`
}

// FunnelResult is a funnel's numbers.
type FunnelResult struct {
	CountBy string    `json:"count_by"`
	Window  Duration  `json:"window"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	// Sessions is how many sessions of the range (and segment) were
	// looked at, in session mode.
	Sessions *int          `json:"sessions,omitempty"`
	Steps    []StepResult  `json:"steps"`
	Split    string        `json:"split,omitempty"`
	Splits   []SplitResult `json:"splits,omitempty"`
	TookMS   int64         `json:"took_ms"`
}

// FunnelSessionsQuery asks which sessions are behind one funnel count.
type FunnelSessionsQuery struct {
	FunnelQuery
	Step int // 1-based
	// Status is "reached" (sessions that reached Step) or "dropped"
	// (reached Step but not the next). In person mode the session is the
	// one in which the person reached Step.
	Status string
	// SplitValue, when set, limits to one split value (as in the results,
	// "(other)" included).
	SplitValue *string
	Limit      int
	Cursor     string
}

type funnelWant struct {
	step    int // 0-based
	dropped bool
}

type funnelHit struct {
	session, start int64
	split          string
}

type groupAcc struct {
	reached []int
	gaps    [][]int64
}

type funnelAcc struct {
	n        int
	sessions int
	groups   map[string]*groupAcc
	hits     []funnelHit
	want     *funnelWant
}

func newFunnelAcc(n int, want *funnelWant) *funnelAcc {
	return &funnelAcc{n: n, groups: map[string]*groupAcc{}, want: want}
}

func (a *funnelAcc) group(split string) *groupAcc {
	g := a.groups[split]
	if g == nil {
		g = &groupAcc{reached: make([]int, a.n), gaps: make([][]int64, a.n)}
		a.groups[split] = g
	}
	return g
}

// add records one session or person that reached k steps at times t, in
// sessions sess (with their starts).
func (a *funnelAcc) add(split string, k int, t, sess, starts []int64) {
	g := a.group(split)
	for j := 0; j < k; j++ {
		g.reached[j]++
		if j+1 < k {
			g.gaps[j] = append(g.gaps[j], t[j+1]-t[j])
		}
	}
	if w := a.want; w != nil && k > w.step && (!w.dropped || k == w.step+1) {
		a.hits = append(a.hits, funnelHit{session: sess[w.step], start: starts[w.step], split: split})
	}
}

func (a *funnelAcc) merge(b *funnelAcc) {
	a.sessions += b.sessions
	for k, gb := range b.groups {
		g := a.group(k)
		for j := range gb.reached {
			g.reached[j] += gb.reached[j]
			g.gaps[j] = append(g.gaps[j], gb.gaps[j]...)
		}
	}
	a.hits = append(a.hits, b.hits...)
}

// RunFunnel computes a funnel.
func (s *Service) RunFunnel(ctx context.Context, q FunnelQuery) (*FunnelResult, error) {
	started := time.Now()
	acc, err := s.funnel(ctx, &q, nil)
	if err != nil {
		return nil, err
	}
	res := &FunnelResult{CountBy: q.Def.CountBy, Window: q.Def.Window, From: q.From.UTC(), To: q.To.UTC(), Split: q.Split}
	if q.Def.CountBy == "session" {
		n := acc.sessions
		res.Sessions = &n
	}
	total := &groupAcc{reached: make([]int, acc.n), gaps: make([][]int64, acc.n)}
	for _, g := range acc.groups {
		for j := range g.reached {
			total.reached[j] += g.reached[j]
			total.gaps[j] = append(total.gaps[j], g.gaps[j]...)
		}
	}
	res.Steps = stepResults(q.Def.Steps, total)
	if q.Split != "" {
		top, other := topSplits(acc.groups)
		for _, v := range top {
			res.Splits = append(res.Splits, SplitResult{Value: v, Steps: stepResults(q.Def.Steps, acc.groups[v])})
		}
		if other != nil {
			res.Splits = append(res.Splits, SplitResult{Value: otherValue, Steps: stepResults(q.Def.Steps, other)})
		}
	}
	res.TookMS = time.Since(started).Milliseconds()
	return res, nil
}

// topSplits returns the split values with the most step-1 counts (ties by
// value) and the rest merged.
func topSplits(groups map[string]*groupAcc) ([]string, *groupAcc) {
	vals := make([]string, 0, len(groups))
	for v := range groups {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool {
		a, b := groups[vals[i]].reached[0], groups[vals[j]].reached[0]
		if a != b {
			return a > b
		}
		return vals[i] < vals[j]
	})
	if len(vals) <= maxSplitValues {
		return vals, nil
	}
	var other *groupAcc
	for _, v := range vals[maxSplitValues:] {
		g := groups[v]
		if other == nil {
			other = &groupAcc{reached: make([]int, len(g.reached)), gaps: make([][]int64, len(g.reached))}
		}
		for j := range g.reached {
			other.reached[j] += g.reached[j]
			other.gaps[j] = append(other.gaps[j], g.gaps[j]...)
		}
	}
	return vals[:maxSplitValues], other
}

func stepResults(steps []Step, g *groupAcc) []StepResult {
	out := make([]StepResult, len(steps))
	for j, st := range steps {
		r := StepResult{Step: j + 1, Label: st.Label, Type: st.Type, Match: st.Match, Count: g.reached[j]}
		if j == 0 {
			if r.Count > 0 {
				r.ConversionFromPrevious, r.ConversionFromFirst = 1, 1
			}
		} else {
			r.ConversionFromPrevious = ratio(r.Count, g.reached[j-1])
			r.ConversionFromFirst = ratio(r.Count, g.reached[0])
		}
		if j+1 < len(steps) {
			r.Dropped = r.Count - g.reached[j+1]
			r.DropOffRate = ratio(r.Dropped, r.Count)
			if m, ok := median(g.gaps[j]); ok {
				r.MedianMSToNext = &m
			}
		}
		out[j] = r
	}
	return out
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// median is the lower median of xs (which it sorts).
func median(xs []int64) (int64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	slices.Sort(xs)
	return xs[(len(xs)-1)/2], true
}

// funnel runs the scan and the matching. want, if set, collects the
// sessions behind one count.
func (s *Service) funnel(ctx context.Context, q *FunnelQuery, want *funnelWant) (*funnelAcc, error) {
	if err := q.Def.Normalize(); err != nil {
		return nil, err
	}
	if !q.To.After(q.From) {
		return nil, invalidf("to must be after from")
	}
	dim, err := dimensionFor(q.Split)
	if err != nil {
		return nil, err
	}
	seg, err := s.match(ctx, q.ProjectID, q.Segment)
	if err != nil {
		return nil, err
	}
	n := len(q.Def.Steps)
	ms := make([]matcher, n)
	for i, st := range q.Def.Steps {
		ms[i], _ = compileStep(st)
	}
	dv, err := s.dictionary(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	tbl := newKeyTable(dv, func(i int) uint32 {
		var m uint32
		for j, mt := range ms {
			if mt.match(dv.kinds[i], dv.names[i]) {
				m |= 1 << j
			}
		}
		return m
	})
	sq := scanQuery{project: q.ProjectID, from: q.From.UnixMilli(), to: q.To.UnixMilli(), segment: seg, dim: dim}
	window := time.Duration(q.Def.Window).Milliseconds()
	workers := scanSlots()
	accs := make([]*funnelAcc, workers)
	for i := range accs {
		accs[i] = newFunnelAcc(n, want)
	}

	if q.Def.CountBy == "session" {
		type buf struct{ t, sess, starts []int64 }
		bufs := make([]buf, workers)
		for i := range bufs {
			bufs[i] = buf{make([]int64, n), make([]int64, n), make([]int64, n)}
		}
		err = s.scan(ctx, sq, func(w int, r *scanRow) error {
			a, b := accs[w], &bufs[w]
			a.sessions++
			k := 0
			for _, e := range r.entries {
				m := tbl.get(e.key)
				if m&(1<<k) == 0 {
					continue
				}
				if k > 0 && window > 0 && e.ts-b.t[0] > window {
					break
				}
				b.t[k] = e.ts
				k++
				if k == n {
					break
				}
			}
			if k == 0 {
				return nil
			}
			for j := 0; j < k; j++ {
				b.sess[j], b.starts[j] = r.session, r.start
			}
			a.add(r.split, k, b.t, b.sess, b.starts)
			return nil
		})
		if err != nil {
			return nil, err
		}
	} else {
		if err := s.personFunnel(ctx, sq, tbl, n, window, accs); err != nil {
			return nil, err
		}
	}
	for _, a := range accs[1:] {
		accs[0].merge(a)
	}
	return accs[0], nil
}

// pSess is a session in person mode: its relevant entries are
// ents[w].bs[blk][off:off+n].
type pSess struct {
	person, start, session int64
	off, blk               uint32
	n                      uint16
	w                      uint8
	inRange                bool
	split                  string
}

// blockLen is how many values a block of an arena holds (at least).
const blockLen = 1 << 16

// arena is an append-only list of values kept in blocks that never move:
// growing it copies nothing. (Appending to one large slice copies it at
// every growth, doubling or not, and on a process that has not yet
// used that much memory each copy also faults in fresh pages: on the
// 1M-session index that was a quarter of a person funnel's CPU.)
type arena[T any] struct{ bs [][]T }

// room makes the last block have room for n more values, which then stay
// together in it, and returns its index.
func (a *arena[T]) room(n int) int {
	if k := len(a.bs); k == 0 || cap(a.bs[k-1])-len(a.bs[k-1]) < n {
		a.bs = append(a.bs, make([]T, 0, max(n, blockLen)))
	}
	return len(a.bs) - 1
}

// pEnt is an entry relevant to a funnel: its time from the session start
// and the steps it matches.
type pEnt struct {
	dt   uint32
	mask uint32
}

// personFunnel joins the sessions of each person and matches the steps on
// the joined timeline: the person's first step-1 event in a session that
// started in the range begins the funnel; each later step is the earliest
// matching event after the previous step and within the window.
func (s *Service) personFunnel(ctx context.Context, sq scanQuery, tbl *keyTable, n int, window int64, accs []*funnelAcc) error {
	pm, err := s.people(ctx, sq.project)
	if err != nil {
		return err
	}
	rangeEnd := sq.to
	sq.to += window
	workers := len(accs)
	sess := make([]arena[pSess], workers)
	ents := make([]arena[pEnt], workers)
	maxPerson := make([]int64, workers)
	err = s.scan(ctx, sq, func(w int, r *scanRow) error {
		blk := ents[w].room(len(r.entries))
		es := &ents[w].bs[blk]
		off := len(*es)
		var lastMask uint32
		run := 0
		for _, e := range r.entries {
			m := tbl.get(e.key)
			if m == 0 {
				continue
			}
			// Within a run of events matching the same steps, greedy
			// matching uses at most one event per step of the run.
			if m == lastMask {
				run++
				if run >= bits.OnesCount32(m) {
					continue
				}
			} else {
				lastMask, run = m, 0
			}
			dt := e.ts - r.start
			if dt < 0 || dt > math.MaxUint32 || len(*es)-off >= math.MaxUint16 {
				continue // clock nonsense or a pathological session
			}
			*es = append(*es, pEnt{dt: uint32(dt), mask: m})
		}
		if len(*es) == off {
			return nil
		}
		inRange := r.start < rangeEnd
		split := ""
		if inRange {
			split = r.split
		}
		p := pm.person(r.visitor)
		maxPerson[w] = max(maxPerson[w], p)
		ss := &sess[w].bs[sess[w].room(1)]
		*ss = append(*ss, pSess{person: p, start: r.start, session: r.session,
			w: uint8(w), blk: uint32(blk), off: uint32(off), n: uint16(len(*es) - off), inRange: inRange, split: split})
		return nil
	})
	if err != nil {
		return err
	}
	var blocks [][]pSess
	for _, a := range sess {
		blocks = append(blocks, a.bs...)
	}
	all := groupByPerson(blocks, slices.Max(maxPerson), len(pm.users))
	type pe struct {
		ts   int64
		mask uint32
		si   int32
	}
	var merged []pe
	t, sids, starts := make([]int64, n), make([]int64, n), make([]int64, n)
	a := accs[0]
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].person == all[i].person {
			j++
		}
		merged = merged[:0]
		for si := i; si < j; si++ {
			ps := all[si]
			for _, e := range ents[ps.w].bs[ps.blk][ps.off : ps.off+uint32(ps.n)] {
				merged = append(merged, pe{ps.start + int64(e.dt), e.mask, int32(si)})
			}
		}
		if j-i > 1 {
			slices.SortStableFunc(merged, func(x, y pe) int { return cmp.Compare(x.ts, y.ts) })
		}
		k, enter := 0, int32(-1)
		for _, e := range merged {
			if k == 0 {
				if e.mask&1 == 0 || !all[e.si].inRange {
					continue
				}
			} else {
				if e.ts-t[0] > window {
					break
				}
				if e.mask&(1<<k) == 0 {
					continue
				}
			}
			t[k], sids[k], starts[k] = e.ts, all[e.si].session, all[e.si].start
			if k == 0 {
				enter = e.si
			}
			k++
			if k == n {
				break
			}
		}
		if k > 0 {
			// The split value is the entering session's.
			a.add(all[enter].split, k, t, sids, starts)
		}
		i = j
	}
	return nil
}

// groupByPerson orders sessions by person, then start. Anonymous people
// are visitor ids (small positive integers), identified ones -1..-users,
// so a counting sort over a dense array does it in linear time; only
// people with several sessions need sorting within.
func groupByPerson(sess [][]pSess, maxVisitor int64, users int) []*pSess {
	total := 0
	for _, ss := range sess {
		total += len(ss)
	}
	all := make([]*pSess, 0, total)
	dense := func(p int64) int64 {
		if p < 0 {
			return maxVisitor - p
		}
		return p
	}
	size := maxVisitor + int64(users) + 1
	if size > int64(8*total)+1<<20 {
		for w := range sess {
			for i := range sess[w] {
				all = append(all, &sess[w][i])
			}
		}
		slices.SortFunc(all, comparePSess)
		return all
	}
	pos := make([]int32, size+1)
	for _, ss := range sess {
		for i := range ss {
			pos[dense(ss[i].person)+1]++
		}
	}
	for i := 1; i < len(pos); i++ {
		pos[i] += pos[i-1]
	}
	all = all[:total]
	for w := range sess {
		for i := range sess[w] {
			d := dense(sess[w][i].person)
			all[pos[d]] = &sess[w][i]
			pos[d]++
		}
	}
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].person == all[i].person {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(all[i:j], comparePSess)
		}
		i = j
	}
	return all
}

func comparePSess(a, b *pSess) int {
	if c := cmp.Compare(a.person, b.person); c != 0 {
		return c
	}
	if c := cmp.Compare(a.start, b.start); c != 0 {
		return c
	}
	return cmp.Compare(a.session, b.session)
}
