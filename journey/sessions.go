package journey

import (
	"context"
	"encoding/base64"
	"sort"
	"strconv"
	"time"
)

// SessionRef is a session behind a number: enough to list it and open its
// recording.
type SessionRef struct {
	ID          string    `json:"id"` // public id: GET /api/v1/sessions/{id}
	StartedAt   time.Time `json:"started_at"`
	DurationMS  int64     `json:"duration_ms"`
	VisitorID   string    `json:"visitor_id"`
	UserID      string    `json:"user_id,omitempty"`
	Device      string    `json:"device"`
	Browser     string    `json:"browser"`
	OS          string    `json:"os"`
	EntryURL    string    `json:"entry_url"`
	Pages       int       `json:"page_count"`
	Conversions int       `json:"conversions"`
	RageClicks  int       `json:"rage_clicks"`
	DeadClicks  int       `json:"dead_clicks"`
	Errors      int       `json:"errors"`
	Live        bool      `json:"live"`
	// Recording is the API path of the session's rrweb events.
	Recording string `json:"recording"`
}

// SessionPage is one page of a session list.
type SessionPage struct {
	Total      int          `json:"total"`
	Sessions   []SessionRef `json:"sessions"`
	NextCursor string       `json:"next_cursor"`
}

// sessionRefs loads sessions by row id, keeping the order of ids.
func (s *Service) sessionRefs(ctx context.Context, ids []int64) ([]SessionRef, error) {
	out := make([]SessionRef, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ss, err := s.core.SessionsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]SessionRef, len(ss))
	for _, x := range ss {
		byID[x.RowID] = SessionRef{ID: x.ID, StartedAt: x.StartedAt, DurationMS: x.DurationMS, VisitorID: x.VisitorID, UserID: x.UserID,
			Device: x.Device, Browser: x.Browser, OS: x.OS, EntryURL: x.EntryURL, Pages: x.Pages, Conversions: x.Conversions,
			RageClicks: x.RageClicks, DeadClicks: x.DeadClicks, Errors: x.Errors, Live: x.Live,
			Recording: "/api/v1/sessions/" + x.ID + "/events"}
	}
	for _, id := range ids {
		if r, ok := byID[id]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// pageOf sorts hits newest first and returns one page of them.
func (s *Service) pageOf(ctx context.Context, hits []funnelHit, limit int, cursor string) (*SessionPage, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	off, err := decodeOffset(cursor)
	if err != nil {
		return nil, err
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].start != hits[j].start {
			return hits[i].start > hits[j].start
		}
		return hits[i].session > hits[j].session
	})
	// Each counted session or person gives one hit; a list never repeats
	// a session all the same.
	uniq := hits[:0]
	seen := map[int64]bool{}
	for _, h := range hits {
		if !seen[h.session] {
			seen[h.session] = true
			uniq = append(uniq, h)
		}
	}
	hits = uniq
	page := &SessionPage{Total: len(hits)}
	end := min(off+limit, len(hits))
	if off > len(hits) {
		off = len(hits)
	}
	ids := make([]int64, 0, end-off)
	for _, h := range hits[off:end] {
		ids = append(ids, h.session)
	}
	if page.Sessions, err = s.sessionRefs(ctx, ids); err != nil {
		return nil, err
	}
	if end < len(hits) {
		page.NextCursor = encodeOffset(end)
	}
	return page, nil
}

func encodeOffset(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(n)))
}

func decodeOffset(c string) (int, error) {
	if c == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) < 2 || raw[0] != 'o' {
		return 0, invalidf("cursor is not valid")
	}
	n, err := strconv.Atoi(string(raw[1:]))
	if err != nil || n < 0 {
		return 0, invalidf("cursor is not valid")
	}
	return n, nil
}

// FunnelSessions lists the sessions behind one count of a funnel, newest
// first.
func (s *Service) FunnelSessions(ctx context.Context, q FunnelSessionsQuery) (*SessionPage, error) {
	if err := q.Def.Normalize(); err != nil {
		return nil, err
	}
	if q.Step < 1 || q.Step > len(q.Def.Steps) {
		return nil, invalidf("step must be from 1 to %d", len(q.Def.Steps))
	}
	want := &funnelWant{step: q.Step - 1}
	switch q.Status {
	case "", "reached":
	case "dropped":
		want.dropped = true
		if q.Step == len(q.Def.Steps) {
			return nil, invalidf("nobody drops at the last step: use status=reached")
		}
	default:
		return nil, invalidf(`status must be "reached" or "dropped", not %q`, q.Status)
	}
	if q.SplitValue != nil && q.Split == "" {
		return nil, invalidf("split_value needs split")
	}
	acc, err := s.funnel(ctx, &q.FunnelQuery, want)
	if err != nil {
		return nil, err
	}
	hits := acc.hits
	if q.SplitValue != nil {
		v := *q.SplitValue
		top, _ := topSplits(acc.groups)
		inTop := map[string]bool{}
		for _, t := range top {
			inTop[t] = true
		}
		kept := hits[:0]
		for _, h := range hits {
			if (v == otherValue && !inTop[h.split]) || (v != otherValue && h.split == v) {
				kept = append(kept, h)
			}
		}
		hits = kept
	}
	return s.pageOf(ctx, hits, q.Limit, q.Cursor)
}
