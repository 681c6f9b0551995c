package heatmap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/trailmap/trailmap/internal/unixms"
	"github.com/trailmap/trailmap/storage/index"
)

// PageStat is a page with its counts in a range, for the viewer's picker.
type PageStat struct {
	Page        string           `json:"page"`
	Pageviews   int64            `json:"pageviews"`
	Clicks      int64            `json:"clicks"`
	RageClicks  int64            `json:"rage_clicks"`
	DeadClicks  int64            `json:"dead_clicks"`
	ErrorClicks int64            `json:"error_clicks"`
	Devices     map[string]int64 `json:"devices"` // page views per device class
}

// Pages lists a project's pages by page views (q.URL, Width, Height and
// Mode are ignored).
func (s *Service) Pages(ctx context.Context, q Query) ([]PageStat, error) {
	n, err := s.check(ctx, q, false)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*PageStat{}
	add := func(key, dev string, t PageStat) {
		p := byKey[key]
		if p == nil {
			p = &PageStat{Page: key, Devices: map[string]int64{}}
			byKey[key] = p
		}
		p.Pageviews += t.Pageviews
		p.Clicks += t.Clicks
		p.RageClicks += t.RageClicks
		p.DeadClicks += t.DeadClicks
		p.ErrorClicks += t.ErrorClicks
		if dev == "" {
			dev = "unknown"
		}
		p.Devices[dev] += t.Pageviews
	}
	if n.segmented() {
		err = s.segmentPages(ctx, n, add)
	} else {
		err = s.aggregatePages(ctx, n, add)
	}
	if err != nil {
		return nil, err
	}
	out := make([]PageStat, 0, len(byKey))
	for _, p := range byKey {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b PageStat) int {
		if a.Pageviews != b.Pageviews {
			return int(b.Pageviews - a.Pageviews)
		}
		if a.Clicks != b.Clicks {
			return int(b.Clicks - a.Clicks)
		}
		if a.Page < b.Page {
			return -1
		}
		return 1
	})
	if len(out) > n.Limit {
		out = out[:n.Limit]
	}
	return out, nil
}

func (s *Service) aggregatePages(ctx context.Context, n *nq, add func(key, dev string, t PageStat)) error {
	devSQL, devArgs := n.devIn("d.device")
	rows, err := s.db.Read().QueryContext(ctx, `
		SELECT p.key, d.device, SUM(d.pageviews), SUM(d.clicks), SUM(d.rage_clicks), SUM(d.dead_clicks), SUM(d.error_clicks)
		FROM heat_page_day d JOIN heat_pages p ON p.id = d.page_id
		WHERE p.project_id = ?`+devSQL+` AND d.day BETWEEN ? AND ?
		GROUP BY p.id, d.device`,
		append(append([]any{n.ProjectID}, devArgs...), n.d0, n.d1)...)
	if err != nil {
		return fmt.Errorf("list pages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, dev string
		var t PageStat
		if err := rows.Scan(&key, &dev, &t.Pageviews, &t.Clicks, &t.RageClicks, &t.DeadClicks, &t.ErrorClicks); err != nil {
			return fmt.Errorf("list pages: %w", err)
		}
		add(key, dev, t)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list pages: %w", err)
	}
	return nil
}

// segmentPages counts the pages from the raw rows of the segment's sessions.
func (s *Service) segmentPages(ctx context.Context, n *nq, add func(key, dev string, t PageStat)) error {
	raw, err := s.rawTotals(ctx, n)
	if err != nil {
		return err
	}
	rows, err := s.db.Read().QueryContext(ctx, `SELECT id, key FROM heat_pages WHERE project_id = ?`, n.ProjectID)
	if err != nil {
		return fmt.Errorf("list pages: %w", err)
	}
	defer rows.Close()
	keys := map[int64]string{}
	for rows.Next() {
		var id int64
		var key string
		if err := rows.Scan(&id, &key); err != nil {
			return fmt.Errorf("list pages: %w", err)
		}
		keys[id] = key
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list pages: %w", err)
	}
	for k, t := range raw {
		if key, ok := keys[k.pageID]; ok && t.pageviews+t.clicks > 0 {
			add(key, k.device, PageStat{Pageviews: t.pageviews, Clicks: t.clicks, RageClicks: t.rage, DeadClicks: t.dead, ErrorClicks: t.errs})
		}
	}
	return nil
}

// Snapshot is a recorded view of a page to draw maps over: replay the
// session's events from FromMS (the stream starts at the full snapshot)
// and pause on the first frame, or play to ToMS to let late content in.
type Snapshot struct {
	SessionID string    `json:"session_id"`
	URL       string    `json:"url"`
	Time      time.Time `json:"time"`
	FromMS    int64     `json:"from_ms"` // offset of the full snapshot from the session start
	ToMS      int64     `json:"to_ms"`   // a few seconds later
	ViewportW int       `json:"viewport_width"`
	ViewportH int       `json:"viewport_height"`
	DocW      int       `json:"doc_width"`
	DocH      int       `json:"doc_height"`
	Device    string    `json:"device"`
}

// Snapshot finds the most recent recorded view of the page, on the device
// class, in the range, with a full snapshot; among the latest 500 it
// prefers one whose viewport width is within 10% of q.Width when one was
// given.
func (s *Service) Snapshot(ctx context.Context, q Query) (*Snapshot, error) {
	want := q.Width
	n, err := s.check(ctx, q, true)
	if err != nil {
		return nil, err
	}
	if n.pageID == 0 {
		return nil, fmt.Errorf("%w: no page views of %s", ErrNoData, n.key)
	}
	devSQL, devArgs := n.devIn("v.device")
	args := append(append([]any{n.pageID}, devArgs...), dayStart(n.d0), dayStart(n.d1+1), want, want, want)
	var sn Snapshot
	var sessionID, ts, snapTS int64
	err = s.db.Read().QueryRowContext(ctx, `
		SELECT session_id, url, ts, snapshot_ts, vw, vh, doc_w, doc_h, device FROM (
			SELECT v.session_id, v.url, v.ts, v.snapshot_ts, v.vw, v.vh, v.doc_w, v.doc_h, v.device
			FROM heat_pageviews v
			WHERE v.page_id = ?`+devSQL+` AND v.ts >= ? AND v.ts < ? AND v.snapshot_ts > 0
			ORDER BY v.ts DESC LIMIT 500) AS recent
		ORDER BY (? > 0 AND ABS(vw - ?) * 10 > ?), ts DESC LIMIT 1`, args...).
		Scan(&sessionID, &sn.URL, &ts, &snapTS, &sn.ViewportW, &sn.ViewportH, &sn.DocW, &sn.DocH, &sn.Device)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no recorded view of %s with a full snapshot", ErrNoData, n.key)
	}
	if err != nil {
		return nil, fmt.Errorf("find snapshot: %w", err)
	}
	// Page views go with their session (ON DELETE CASCADE): it is only
	// missing if it was deleted since.
	sess, err := s.idx.SessionByRowID(ctx, sessionID)
	if errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("%w: no recorded view of %s with a full snapshot", ErrNoData, n.key)
	}
	if err != nil {
		return nil, fmt.Errorf("find snapshot: %w", err)
	}
	sn.SessionID = sess.ID
	sn.Time = unixms.Time(snapTS)
	sn.FromMS = max(snapTS-sess.StartedAt.UnixMilli(), 0)
	sn.ToMS = sn.FromMS + 3000
	return &sn, nil
}

// Signal is a frustration signal of a session, for the player's timeline.
type Signal struct {
	// Type is rage_click, dead_click or error (an error click), the
	// words of the sessions filter has=.
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	OffsetMS int64     `json:"offset_ms"` // from the session start
	// X and Y are the click's viewport coordinates (as in the rrweb event),
	// PageX and PageY its page coordinates.
	X        int    `json:"x"`
	Y        int    `json:"y"`
	PageX    int    `json:"page_x"`
	PageY    int    `json:"page_y"`
	Selector string `json:"selector"`
	Page     string `json:"page"`
	Count    int    `json:"count"`             // clicks in a rage click
	Message  string `json:"message,omitempty"` // the error of an error click
}

// signalNames are the API's names of the signal types.
var signalNames = map[string]string{SignalRage: "rage_click", SignalDead: "dead_click", SignalError: "error"}

// Signals lists a session's frustration signals in time order; sessionID
// is the sessions row id.
func (s *Service) Signals(ctx context.Context, sessionID int64) ([]Signal, error) {
	rows, err := s.db.Read().QueryContext(ctx, `
		SELECT g.type, g.ts, g.vx, g.vy, g.x, g.y, COALESCE(sel.selector, ''), p.key, g.count, g.message
		FROM heat_signals g
		JOIN heat_pages p ON p.id = g.page_id
		LEFT JOIN heat_selectors sel ON sel.id = g.selector_id
		WHERE g.session_id = ? ORDER BY g.ts, g.id`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("list signals: %w", err)
	}
	defer rows.Close()
	out := []Signal{}
	for rows.Next() {
		var g Signal
		var ts int64
		if err := rows.Scan(&g.Type, &ts, &g.X, &g.Y, &g.PageX, &g.PageY, &g.Selector, &g.Page, &g.Count, &g.Message); err != nil {
			return nil, fmt.Errorf("list signals: %w", err)
		}
		g.Time = unixms.Time(ts)
		g.Type = signalNames[g.Type]
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signals: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	// Signals go with their session (ON DELETE CASCADE): it is only
	// missing if it was deleted since.
	sess, err := s.idx.SessionByRowID(ctx, sessionID)
	if errors.Is(err, index.ErrNotFound) {
		return []Signal{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list signals: %w", err)
	}
	for i := range out {
		out[i].OffsetMS = max(out[i].Time.UnixMilli()-sess.StartedAt.UnixMilli(), 0)
	}
	return out, nil
}
