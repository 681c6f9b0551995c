package render

import (
	"encoding/json"
	"math"
	"sort"
)

// Inactivity: a gap of more than inactiveGap between user interactions is
// fast-forwarded, keeping inactiveKeep of it on each side at normal speed,
// and showing the rest in inactiveShown of recording time.
const (
	inactiveGap   = 5000
	inactiveKeep  = 1000
	inactiveShown = 500
)

// piece is a stretch of the timeline played at rate× the render's speed.
type piece struct {
	from, to int64 // ms on the clip's timeline
	rate     float64
}

// FrameTimes returns the clip-timeline time (ms from the clip start) of
// every frame of a render of a clip durationMS long: the video lasts
// duration ÷ speed, less what skipping inactivity leaves out. activity holds
// the times of user interactions (used only with skip).
func FrameTimes(durationMS int64, activity []int64, o Options) []int64 {
	pieces := []piece{{0, durationMS, 1}}
	if o.SkipInactivity {
		pieces = skipPieces(durationMS, activity)
	}
	var effective float64 // timeline ms at rate 1 the clip takes
	for _, p := range pieces {
		effective += float64(p.to-p.from) / p.rate
	}
	step := 1000 * float64(o.Speed) / float64(o.FPS) // effective ms per frame
	n := max(1, int(math.Round(effective/step)))
	out := make([]int64, n)
	pi, base := 0, 0.0 // current piece, effective time at its start
	for i := range out {
		e := float64(i) * step
		for pi < len(pieces)-1 && e >= base+float64(pieces[pi].to-pieces[pi].from)/pieces[pi].rate {
			base += float64(pieces[pi].to-pieces[pi].from) / pieces[pi].rate
			pi++
		}
		p := pieces[pi]
		t := p.from + int64(math.Round((e-base)*p.rate))
		out[i] = min(t, durationMS)
	}
	return out
}

func skipPieces(durationMS int64, activity []int64) []piece {
	pts := []int64{0}
	for _, a := range activity {
		if a > 0 && a < durationMS {
			pts = append(pts, a)
		}
	}
	pts = append(pts, durationMS)
	sort.Slice(pts, func(i, j int) bool { return pts[i] < pts[j] })
	var out []piece
	at := int64(0)
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		if b-a <= inactiveGap {
			continue
		}
		from, to := a+inactiveKeep, b-inactiveKeep
		if from > at {
			out = append(out, piece{at, from, 1})
		}
		out = append(out, piece{from, to, float64(to-from) / inactiveShown})
		at = to
	}
	if at < durationMS || len(out) == 0 {
		out = append(out, piece{at, durationMS, 1})
	}
	return out
}

// eventHead is what the renderer reads of each event.
type eventHead struct {
	Type      int   `json:"type"`
	Timestamp int64 `json:"timestamp"`
	Data      struct {
		Source *int `json:"source"`
	} `json:"data"`
}

// isInteraction reports whether an rrweb event is a user interaction (an
// incremental snapshot from mouse move to input, as rrweb counts them).
func isInteraction(ev []byte) (int64, bool) {
	var h eventHead
	if json.Unmarshal(ev, &h) != nil || h.Type != 3 || h.Data.Source == nil {
		return 0, false
	}
	s := *h.Data.Source
	return h.Timestamp, s > 0 && s <= 5
}
