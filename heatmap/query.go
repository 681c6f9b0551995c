package heatmap

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailmap/trailmap/storage/index"
)

// Map modes: where clicks are drawn.
const (
	// ModeGrid draws clicks where they landed, in page coordinates.
	ModeGrid = "grid"
	// ModeElement draws each element's clicks at the same place inside the
	// element's reference box (its latest box at the nearest width), so
	// visitors whose layouts differ add up on the same element.
	ModeElement = "element"
	// ModeRage, ModeDead and ModeError draw frustration signals (a rage
	// click once per burst, at its first click).
	ModeRage  = "rage"
	ModeDead  = "dead"
	ModeError = "error"
)

// Modes lists the map modes.
var Modes = []string{ModeGrid, ModeElement, ModeRage, ModeDead, ModeError}

// Query selects the data of a map.
type Query struct {
	ProjectID int64
	// URL is the page: a full URL, a path, or a page key ("/product/*").
	// It is turned into a page key with the project's rules.
	URL string
	// Device is desktop, tablet or mobile; "" for all.
	Device string
	// From and To bound the time range [From, To), at day granularity
	// (UTC): a partly covered day counts whole. Zero To is now, zero From
	// 30 days before To.
	From, To time.Time
	// Width is the map's width in pixels: clicks recorded at other document
	// widths have x scaled to it (y stays in page pixels). Zero picks a
	// default per device (desktop 1280, tablet 820, mobile 390).
	Width int
	// Height is the map's height in pixels; zero is the average document
	// height of the page views, or else the extent of the clicks.
	Height int
	// Mode is one of Modes ("" is grid).
	Mode string
	// Limit bounds the elements listed (default 100, at most 1000).
	Limit int
	// Segment, when set, restricts the map to the sessions it matches (a
	// journey segment, which the index evaluates).
	Segment *index.Match
}

// DefaultWidth returns the default map width of a device class.
func DefaultWidth(device string) int {
	switch device {
	case "mobile":
		return 390
	case "tablet":
		return 820
	}
	return 1280
}

// nq is a checked query with its page resolved.
type nq struct {
	Query
	key     string
	pageID  int64 // 0: no data recorded for the page
	d0, d1  int64 // days, inclusive
	devices []string
	// members are the sessions of the segment among those with raw rows
	// in the query's range: "" none, allMembers all of them, else
	// someMembers, the row ids in memberIDs; found once, by the first raw
	// read of a segmented query.
	members      string
	memberIDs    []int64
	membersFound bool
}

func badQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadQuery, fmt.Sprintf(format, args...))
}

// check validates q and resolves its page key.
func (s *Service) check(ctx context.Context, q Query, needPage bool) (*nq, error) {
	n := &nq{Query: q}
	if q.ProjectID <= 0 {
		return nil, badQuery("project is required")
	}
	if !validDevice(q.Device) {
		return nil, badQuery("device must be desktop, tablet or mobile, not %q", q.Device)
	}
	if q.Device == "" {
		n.devices = append([]string{""}, Devices...)
	} else {
		n.devices = []string{q.Device}
	}
	if n.To.IsZero() {
		n.To = s.now()
	}
	if n.From.IsZero() {
		n.From = n.To.AddDate(0, 0, -30)
	}
	if !n.To.After(n.From) {
		return nil, badQuery("to must be after from")
	}
	if n.To.Sub(n.From) > 5*366*24*time.Hour {
		return nil, badQuery("the time range may span at most 5 years")
	}
	n.d0, n.d1 = dayOf(n.From.UnixMilli()), dayOf(n.To.UnixMilli()-1)
	if n.Width == 0 {
		n.Width = DefaultWidth(q.Device)
	}
	if n.Width < MinWidth || n.Width > MaxWidth {
		return nil, badQuery("width must be from %d to %d pixels", MinWidth, MaxWidth)
	}
	if n.Height != 0 && (n.Height < MinWidth || n.Height > MaxHeight) {
		return nil, badQuery("height must be from %d to %d pixels", MinWidth, MaxHeight)
	}
	if n.Mode == "" {
		n.Mode = ModeGrid
	}
	if !slices.Contains(Modes, n.Mode) {
		return nil, badQuery("mode must be one of %s", strings.Join(Modes, ", "))
	}
	if n.Limit == 0 {
		n.Limit = 100
	}
	if n.Limit < 1 || n.Limit > 1000 {
		return nil, badQuery("limit must be from 1 to 1000")
	}
	if !needPage {
		return n, nil
	}
	if strings.TrimSpace(q.URL) == "" {
		return nil, badQuery("url (the page) is required")
	}
	set, err := s.projectSettings(ctx, q.ProjectID)
	if err != nil {
		return nil, err
	}
	n.key = set.Heatmap.PageKey(strings.TrimSpace(q.URL))
	err = s.db.Read().QueryRowContext(ctx, `SELECT id FROM heat_pages WHERE project_id = ? AND key = ?`, q.ProjectID, n.key).Scan(&n.pageID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("find page: %w", err)
	}
	return n, nil
}

// cacheKey identifies a query's result.
func (n *nq) cacheKey(kind string) string {
	return strings.Join([]string{kind, strconv.FormatInt(n.ProjectID, 10), n.key, n.Device,
		strconv.FormatInt(n.d0, 10), strconv.FormatInt(n.d1, 10), strconv.Itoa(n.Width), strconv.Itoa(n.Height),
		n.Mode, strconv.Itoa(n.Limit), n.segmentKey()}, "\x00")
}

// segmented reports whether the query is restricted to a segment.
func (n *nq) segmented() bool { return n.Segment != nil && !n.Segment.IsZero() }

// segmentKey is the segment's part of a cache key: its JSON, which is the
// same for equal segments (struct fields encode in a fixed order).
func (n *nq) segmentKey() string {
	if !n.segmented() {
		return ""
	}
	b, _ := json.Marshal(n.Segment) // a Match holds only strings, numbers and bools
	return string(b)
}

// rawWhere is the WHERE clause of the query's raw rows in a table aliased
// t: its page (every page of the project when it has none), devices and
// days.
func (n *nq) rawWhere() (string, []any) {
	var q string
	var args []any
	if n.pageID != 0 {
		q = ` WHERE t.page_id = ?`
		args = append(args, n.pageID)
	} else {
		q = ` WHERE t.page_id IN (SELECT id FROM heat_pages WHERE project_id = ?)`
		args = append(args, n.ProjectID)
	}
	devSQL, devArgs := n.devIn("t.device")
	q += devSQL + ` AND t.day BETWEEN ? AND ?`
	return q, append(append(args, devArgs...), n.d0, n.d1)
}

// rawTables are the tables of raw rows, each with session_id, page_id,
// device and day.
var rawTables = []string{"heat_pageviews", "heat_clicks", "heat_signals"}

// allMembers is segmentMembers' answer when every session is a member,
// someMembers when n.memberIDs lists them.
const (
	allMembers  = "*"
	someMembers = "some"
)

// segmentMembers finds (once per query) the sessions of the segment among
// those with raw rows in the query's range: the index evaluates the
// segment, on sessions rows it owns, over just these candidates. It
// returns "" when none is a member, allMembers when all are.
func (s *Service) segmentMembers(ctx context.Context, n *nq) (string, error) {
	if n.membersFound {
		return n.members, nil
	}
	where, args := n.rawWhere()
	parts := make([]string, len(rawTables))
	var all []any
	for i, t := range rawTables {
		parts[i] = `SELECT t.session_id FROM ` + t + ` t` + where
		all = append(all, args...)
	}
	rows, err := s.db.Read().QueryContext(ctx, strings.Join(parts, " UNION "), all...)
	if err != nil {
		return "", fmt.Errorf("find sessions of the range: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return "", fmt.Errorf("find sessions of the range: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("find sessions of the range: %w", err)
	}
	members, err := s.idx.MatchSessions(ctx, ids, *n.Segment)
	if err != nil {
		return "", fmt.Errorf("segment: %w", err)
	}
	if len(members) == len(ids) && len(ids) > 0 {
		n.members = allMembers
	} else if len(members) > 0 {
		n.members, n.memberIDs = someMembers, members
	}
	n.membersFound = true
	return n.members, nil
}

// eachRow runs a query over the raw rows of table (heat_clicks,
// heat_pageviews or heat_signals, aliased t) of the query's page (every
// page of the project when it has none), devices and days, restricted to
// the segment's sessions when there is one; tail adds conditions or a
// GROUP BY. scan is called for each row.
func (s *Service) eachRow(ctx context.Context, n *nq, table, cols, tail string, tailArgs []any, scan func(*sql.Rows) error) error {
	where, args := n.rawWhere()
	q := `SELECT ` + cols + ` FROM ` + table + ` t` + where
	if n.segmented() {
		members, err := s.segmentMembers(ctx, n)
		if err != nil {
			return err
		}
		switch members {
		case "":
			return nil // as the query would: every caller groups, or lists rows
		case allMembers:
		default:
			in, arg := s.db.InIDs("t.session_id", n.memberIDs)
			q += ` AND ` + in
			args = append(args, arg)
		}
	}
	rows, err := s.db.Read().QueryContext(ctx, q+" "+tail, append(args, tailArgs...)...)
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	return nil
}

// devIn returns " AND device IN (?, ...)" and its arguments.
func (n *nq) devIn(col string) (string, []any) {
	args := make([]any, len(n.devices))
	for i, d := range n.devices {
		args[i] = d
	}
	return " AND " + col + " IN " + index.List(len(n.devices)), args
}

// span is a range of days or months.
type span struct {
	month  bool
	lo, hi int64
}

// spans covers days d0..d1 with whole months where it can and days
// elsewhere, so maps over long ranges read the monthly roll-ups.
func spans(d0, d1 int64) []span {
	m0, m1 := monthOf(dayStart(d0)), monthOf(dayStart(d1))
	first, last := int64(-1), int64(-2)
	for m := m0; m <= m1; m++ {
		if dayOf(monthStart(m)) >= d0 && dayOf(monthStart(m+1))-1 <= d1 {
			if first < 0 {
				first = m
			}
			last = m
		}
	}
	if first < 0 {
		return []span{{false, d0, d1}}
	}
	var out []span
	if a := dayOf(monthStart(first)); a > d0 {
		out = append(out, span{false, d0, a - 1})
	}
	out = append(out, span{true, first, last})
	if b := dayOf(monthStart(last + 1)); b <= d1 {
		out = append(out, span{false, b, d1})
	}
	return out
}

// eachSpan runs a query per span over the day or month table of a pair,
// e.g. "heat_grid", with cols selected, calling scan for each row.
func (s *Service) eachSpan(ctx context.Context, n *nq, table, cols string, scan func(*sql.Rows) error) error {
	devSQL, devArgs := n.devIn("device")
	for _, sp := range spans(n.d0, n.d1) {
		tbl, col := table+"_day", "day"
		if sp.month {
			tbl, col = table+"_month", "month"
		}
		args := append(append([]any{n.pageID}, devArgs...), sp.lo, sp.hi)
		rows, err := s.db.Read().QueryContext(ctx,
			`SELECT `+cols+` FROM `+tbl+` WHERE page_id = ?`+devSQL+` AND `+col+` BETWEEN ? AND ?`, args...)
		if err != nil {
			return fmt.Errorf("read %s: %w", tbl, err)
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return fmt.Errorf("read %s: %w", tbl, err)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", tbl, err)
		}
	}
	return nil
}

// pageTotals sums a page's day rows.
type pageTotals struct {
	pageviews, clicks, rage, dead, errs int64
	scrollPV, foldPx, foldPm, docH      int64
}

func (s *Service) totals(ctx context.Context, n *nq) (map[string]*pageTotals, *pageTotals, error) {
	byDev := map[string]*pageTotals{}
	all := &pageTotals{}
	if n.pageID == 0 {
		return byDev, all, nil
	}
	if n.segmented() {
		raw, err := s.rawTotals(ctx, n)
		if err != nil {
			return nil, nil, err
		}
		for k, t := range raw {
			byDev[k.device] = t
			all.add(t)
		}
		return byDev, all, nil
	}
	devSQL, devArgs := n.devIn("device")
	rows, err := s.db.Read().QueryContext(ctx, `
		SELECT device, SUM(pageviews), SUM(clicks), SUM(rage_clicks), SUM(dead_clicks), SUM(error_clicks),
			SUM(scroll_pageviews), SUM(fold_px_sum), SUM(fold_pm_sum), SUM(doc_h_sum)
		FROM heat_page_day WHERE page_id = ?`+devSQL+` AND day BETWEEN ? AND ? GROUP BY device`,
		append(append([]any{n.pageID}, devArgs...), n.d0, n.d1)...)
	if err != nil {
		return nil, nil, fmt.Errorf("read page totals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		t := &pageTotals{}
		if err := rows.Scan(&d, &t.pageviews, &t.clicks, &t.rage, &t.dead, &t.errs, &t.scrollPV, &t.foldPx, &t.foldPm, &t.docH); err != nil {
			return nil, nil, fmt.Errorf("read page totals: %w", err)
		}
		byDev[d] = t
		all.add(t)
	}
	return byDev, all, rows.Err()
}

func (a *pageTotals) add(t *pageTotals) {
	a.pageviews += t.pageviews
	a.clicks += t.clicks
	a.rage += t.rage
	a.dead += t.dead
	a.errs += t.errs
	a.scrollPV += t.scrollPV
	a.foldPx += t.foldPx
	a.foldPm += t.foldPm
	a.docH += t.docH
}

// signalCount returns which of rage, dead and errs counts signals of typ
// (nil for another type).
func signalCount(typ string, rage, dead, errs *int64) *int64 {
	switch typ {
	case SignalRage:
		return rage
	case SignalDead:
		return dead
	case SignalError:
		return errs
	}
	return nil
}

// pageDev keys raw totals.
type pageDev struct {
	pageID int64
	device string
}

// rawTotals counts what heat_page_day holds from the raw rows, per page
// and device (for segmented maps and page lists). Page views count on
// their day, clicks and signals on theirs.
func (s *Service) rawTotals(ctx context.Context, n *nq) (map[pageDev]*pageTotals, error) {
	out := map[pageDev]*pageTotals{}
	var k pageDev
	at := func() *pageTotals {
		t := out[k]
		if t == nil {
			t = &pageTotals{}
			out[k] = t
		}
		return t
	}
	err := s.eachRow(ctx, n, "heat_pageviews", `t.page_id, t.device, COUNT(*), SUM(CASE WHEN t.depth_bucket >= 0 THEN 1 ELSE 0 END),
		SUM(t.fold_px), SUM(t.fold_pm), SUM(t.agg_doc_h)`, "GROUP BY t.page_id, t.device", nil, func(r *sql.Rows) error {
		var v pageTotals
		if err := r.Scan(&k.pageID, &k.device, &v.pageviews, &v.scrollPV, &v.foldPx, &v.foldPm, &v.docH); err != nil {
			return err
		}
		t := at()
		t.pageviews, t.scrollPV, t.foldPx, t.foldPm, t.docH = v.pageviews, v.scrollPV, v.foldPx, v.foldPm, v.docH
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.eachRow(ctx, n, "heat_clicks", "t.page_id, t.device, COUNT(*)", "GROUP BY t.page_id, t.device", nil, func(r *sql.Rows) error {
		var c int64
		if err := r.Scan(&k.pageID, &k.device, &c); err != nil {
			return err
		}
		at().clicks = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.eachRow(ctx, n, "heat_signals", "t.page_id, t.device, t.type, COUNT(*)", "GROUP BY t.page_id, t.device, t.type", nil, func(r *sql.Rows) error {
		var typ string
		var c int64
		if err := r.Scan(&k.pageID, &k.device, &typ, &c); err != nil {
			return err
		}
		t := at()
		if p := signalCount(typ, &t.rage, &t.dead, &t.errs); p != nil {
			*p = c
		}
		return nil
	})
	return out, err
}

// Box is an element's box in map pixels.
type Box struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Element is a clicked element of a page.
type Element struct {
	Selector string  `json:"selector"`
	Tag      string  `json:"tag"`
	Class    string  `json:"class,omitempty"`
	Clicks   int64   `json:"clicks"`
	Share    float64 `json:"share"` // of the page's clicks in the range
	// Box is the element's reference box at the map's width (nil when the
	// recorder never reported one): where element maps draw its clicks.
	Box *Box `json:"box"`
	// Offsets are [rx, ry, n]: n clicks in cell (rx, ry) of a 16×16 grid
	// over the element's box, for re-projecting onto the box the element
	// has in the viewer. Unplaced clicks have no offset.
	Offsets  [][3]int64 `json:"offsets"`
	Unplaced int64      `json:"unplaced"`
	Rage     int64      `json:"rage_clicks"`
	Dead     int64      `json:"dead_clicks"`
	Error    int64      `json:"error_clicks"`
}

// WidthCount is how many clicks were recorded at a document width bucket.
type WidthCount struct {
	Width  int   `json:"width"`
	Clicks int64 `json:"clicks"`
}

// MapGrid is a map's binned counts: Cells are [cx, cy, n] with n clicks in
// the CellPx square at (cx·CellPx, cy·CellPx) of the map.
type MapGrid struct {
	CellPx int        `json:"cell_px"`
	Cols   int        `json:"cols"`
	Rows   int        `json:"rows"`
	Cells  [][3]int64 `json:"cells"`
}

// ClickMap is the JSON twin of a click map image.
type ClickMap struct {
	ProjectID int64     `json:"project_id"`
	Page      string    `json:"page"`
	Device    string    `json:"device"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Mode      string    `json:"mode"`
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	// Rendering: kernel σ, the percentile the colour scale is capped at,
	// and the smoothed density at the cap and at the maximum.
	SigmaPx       float64 `json:"sigma_px"`
	CapPercentile float64 `json:"cap_percentile"`
	Cap           float64 `json:"cap"`
	Max           float64 `json:"max"`
	Pageviews     int64   `json:"pageviews"`
	Clicks        int64   `json:"clicks"`
	RageClicks    int64   `json:"rage_clicks"`
	DeadClicks    int64   `json:"dead_clicks"`
	ErrorClicks   int64   `json:"error_clicks"`
	// Drawn is what the map shows: clicks (grid, element) or signals.
	Drawn    int64        `json:"drawn"`
	Grid     MapGrid      `json:"grid"`
	Elements []Element    `json:"elements"`
	Widths   []WidthCount `json:"widths"`
}

// built is a click map before encoding.
type built struct {
	m *ClickMap
	g *grid
	d []float32 // smoothed density
}

// ClickMap returns the JSON twin of a click map.
func (s *Service) ClickMap(ctx context.Context, q Query) (*ClickMap, error) {
	n, err := s.check(ctx, q, true)
	if err != nil {
		return nil, err
	}
	key := n.cacheKey("clicks.json")
	g := s.generation(n.ProjectID)
	if v, ok := s.cacheGet(key, g, s.now()); ok {
		return v.(*ClickMap), nil
	}
	b, err := s.buildClicks(ctx, n)
	if err != nil {
		return nil, err
	}
	s.cache.put(key, b.m, mapSize(b.m), g, s.now())
	return b.m, nil
}

// ClickPNG returns a click map as a transparent PNG overlay.
func (s *Service) ClickPNG(ctx context.Context, q Query) ([]byte, error) {
	n, err := s.check(ctx, q, true)
	if err != nil {
		return nil, err
	}
	key := n.cacheKey("clicks.png")
	g := s.generation(n.ProjectID)
	now := s.now()
	if v, ok := s.cacheGet(key, g, now); ok {
		return v.([]byte), nil
	}
	b, err := s.buildClicks(ctx, n)
	if err != nil {
		return nil, err
	}
	capV, _ := percentile(b.d, CapPercentile)
	img := paint(b.g, b.d, capV)
	data, err := encodePNG(img)
	if err != nil {
		return nil, fmt.Errorf("encode map: %w", err)
	}
	s.cache.put(key, data, int64(len(data)), g, now)
	s.cache.put(n.cacheKey("clicks.json"), b.m, mapSize(b.m), g, now)
	return data, nil
}

func mapSize(m *ClickMap) int64 {
	n := int64(512 + 24*len(m.Grid.Cells) + 16*len(m.Widths))
	for _, e := range m.Elements {
		n += int64(200 + len(e.Selector) + len(e.Class) + 24*len(e.Offsets))
	}
	return n
}

func (s *Service) buildClicks(ctx context.Context, n *nq) (*built, error) {
	_, tot, err := s.totals(ctx, n)
	if err != nil {
		return nil, err
	}
	m := &ClickMap{
		ProjectID: n.ProjectID, Page: n.key, Device: n.Device, From: n.From.UTC(), To: n.To.UTC(), Mode: n.Mode,
		Width: n.Width, SigmaPx: SigmaPx, CapPercentile: CapPercentile,
		Pageviews: tot.pageviews, Clicks: tot.clicks, RageClicks: tot.rage, DeadClicks: tot.dead, ErrorClicks: tot.errs,
		Elements: []Element{}, Widths: []WidthCount{},
	}
	g := &grid{w: n.Width, gw: (n.Width + CellPx - 1) / CellPx}
	var elems []Element
	if n.pageID != 0 {
		widths := map[int]int64{}
		if n.Mode == ModeGrid {
			if err := s.loadGrid(ctx, n, g, widths); err != nil {
				return nil, err
			}
		} else if err := s.loadWidths(ctx, n, widths); err != nil {
			return nil, err
		}
		for w, c := range widths {
			m.Widths = append(m.Widths, WidthCount{w, c})
		}
		slices.SortFunc(m.Widths, func(a, b WidthCount) int { return int(b.Clicks - a.Clicks) })
		if elems, err = s.loadElements(ctx, n, tot.clicks, g, n.Mode == ModeElement); err != nil {
			return nil, err
		}
		switch n.Mode {
		case ModeRage, ModeDead, ModeError:
			if err := s.loadSignals(ctx, n, g); err != nil {
				return nil, err
			}
		}
	}
	h := n.Height
	if h == 0 {
		if tot.scrollPV > 0 && tot.docH > 0 {
			h = int(tot.docH / tot.scrollPV)
		}
		if h == 0 {
			h = g.gh*CellPx + 3*int(SigmaPx)
		}
		h = min(max(h, MinWidth), MaxHeight)
	}
	g.setHeight(h)
	m.Height = h
	d := g.density()
	capV, maxV := percentile(d, CapPercentile)
	m.Cap, m.Max = round3(float64(capV)), round3(float64(maxV))
	m.Drawn = int64(math.Round(g.total))
	m.Grid = MapGrid{CellPx: CellPx, Cols: g.gw, Rows: g.gh, Cells: g.cells()}
	if len(elems) > n.Limit {
		elems = elems[:n.Limit]
	}
	if elems != nil {
		m.Elements = elems
	}
	return &built{m: m, g: g, d: d}, nil
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// setHeight grows or crops the grid to h output pixels.
func (g *grid) setHeight(h int) {
	g.h = h
	gh := (h + CellPx - 1) / CellPx
	if need := gh * g.gw; need > len(g.v) {
		g.v = append(g.v, make([]float32, need-len(g.v))...)
	} else {
		for _, v := range g.v[need:] {
			g.total -= float64(v)
		}
		g.v = g.v[:need]
	}
	g.gh = gh
}

// addGrow adds like add, growing the grid downwards as needed (up to
// MaxHeight).
func (g *grid) addGrow(x, y float64, n float64) {
	if y < 0 || y >= MaxHeight {
		return
	}
	if cy := int(y) / CellPx; cy >= g.gh {
		g.setHeight((cy + 1) * CellPx)
	}
	g.add(x, y, n)
}

// cells lists the non-empty cells.
func (g *grid) cells() [][3]int64 {
	out := [][3]int64{}
	for i, v := range g.v {
		if v > 0 {
			out = append(out, [3]int64{int64(i % g.gw), int64(i / g.gw), int64(math.Round(float64(v)))})
		}
	}
	return out
}

// loadGrid bins the page's grid cells at the map's width: x scaled by
// width / document width bucket, y in page pixels.
// A segmented map bins the raw clicks into the same cells.
func (s *Service) loadGrid(ctx context.Context, n *nq, g *grid, widths map[int]int64) error {
	lastWB, scale := -1, 1.0
	var wb int
	var cy int64
	add := func(cx int, c int64) {
		if wb != lastWB {
			lastWB, scale = wb, float64(n.Width)/float64(wb)
		}
		widths[wb] += c
		g.addGrow((float64(cx)+0.5)*CellPx*scale, (float64(cy)+0.5)*CellPx, float64(c))
	}
	if n.segmented() {
		var x, y float64
		var c int64
		return s.eachRow(ctx, n, "heat_clicks", "t.wb, t.x, t.y, COUNT(*)", "AND t.wb > 0 GROUP BY t.wb, t.x, t.y", nil, func(r *sql.Rows) error {
			if err := r.Scan(&wb, &x, &y, &c); err != nil {
				return err
			}
			var cx int
			var ok bool
			if cx, cy, ok = gridCell(x, y); ok {
				add(cx, c)
			}
			return nil
		})
	}
	var blob []byte
	return s.eachSpan(ctx, n, "heat_grid", "wb, cy, cells", func(r *sql.Rows) error {
		if err := r.Scan(&wb, &cy, &blob); err != nil {
			return err
		}
		if wb <= 0 {
			return nil
		}
		return eachCell(blob, add)
	})
}

func (s *Service) loadWidths(ctx context.Context, n *nq, widths map[int]int64) error {
	return s.eachRow(ctx, n, "heat_clicks", "t.wb, COUNT(*)", "AND t.wb > 0 GROUP BY t.wb", nil, func(r *sql.Rows) error {
		var wb int
		var c int64
		if err := r.Scan(&wb, &c); err != nil {
			return err
		}
		widths[wb] += c
		return nil
	})
}

type elemAgg struct {
	clicks, unplaced int64
	ratios           map[int]int64
	rage, dead, errs int64
}

// loadElements lists the page's elements by clicks; with draw, each
// element's placed clicks are binned at their offset in its reference box.
func (s *Service) loadElements(ctx context.Context, n *nq, total int64, g *grid, draw bool) ([]Element, error) {
	aggs := map[int64]*elemAgg{}
	var sid, c int64
	add := func(ratio int, c int64) {
		a := aggs[sid]
		if a == nil {
			a = &elemAgg{ratios: map[int]int64{}}
			aggs[sid] = a
		}
		a.clicks += c
		if ratio >= unplacedCell {
			a.unplaced += c
		} else {
			a.ratios[ratio] += c
		}
	}
	var err error
	if n.segmented() {
		var ox, oy sql.NullFloat64
		err = s.eachRow(ctx, n, "heat_clicks", "t.selector_id, t.ox, t.oy, COUNT(*)",
			"AND t.selector_id IS NOT NULL GROUP BY t.selector_id, t.ox, t.oy", nil, func(r *sql.Rows) error {
				if err := r.Scan(&sid, &ox, &oy, &c); err != nil {
					return err
				}
				if ox.Valid && oy.Valid {
					add(ratioCell(ox.Float64, oy.Float64), c)
				} else {
					add(unplacedCell, c)
				}
				return nil
			})
	} else {
		var blob []byte
		err = s.eachSpan(ctx, n, "heat_elem", "selector_id, cells", func(r *sql.Rows) error {
			if err := r.Scan(&sid, &blob); err != nil {
				return err
			}
			return eachCell(blob, add)
		})
	}
	if err != nil {
		return nil, err
	}
	if len(aggs) == 0 {
		return nil, nil
	}
	// Frustration per element.
	err = s.eachRow(ctx, n, "heat_signals", "t.selector_id, t.type, COUNT(*)",
		"AND t.selector_id IS NOT NULL GROUP BY t.selector_id, t.type", nil, func(r *sql.Rows) error {
			var typ string
			if err := r.Scan(&sid, &typ, &c); err != nil {
				return err
			}
			if a := aggs[sid]; a != nil {
				if p := signalCount(typ, &a.rage, &a.dead, &a.errs); p != nil {
					*p = c
				}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	boxes, err := s.boxes(ctx, n)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Read().QueryContext(ctx, `SELECT id, selector, tag, class FROM heat_selectors WHERE page_id = ?`, n.pageID)
	if err != nil {
		return nil, fmt.Errorf("read selectors: %w", err)
	}
	defer rows.Close()
	var out []Element
	for rows.Next() {
		var e Element
		if err := rows.Scan(&sid, &e.Selector, &e.Tag, &e.Class); err != nil {
			return nil, fmt.Errorf("read selectors: %w", err)
		}
		a := aggs[sid]
		if a == nil {
			continue
		}
		e.Clicks, e.Unplaced, e.Rage, e.Dead, e.Error = a.clicks, a.unplaced, a.rage, a.dead, a.errs
		if total > 0 {
			e.Share = round3(float64(a.clicks) / float64(total))
		}
		e.Offsets = make([][3]int64, 0, len(a.ratios))
		for r, c := range a.ratios {
			e.Offsets = append(e.Offsets, [3]int64{int64(r % RatioCells), int64(r / RatioCells), c})
		}
		slices.SortFunc(e.Offsets, func(x, y [3]int64) int { return int(x[1]*RatioCells + x[0] - y[1]*RatioCells - y[0]) })
		if b, ok := boxes[sid]; ok {
			e.Box = &b
			if draw {
				for _, o := range e.Offsets {
					x := float64(b.X) + (float64(o[0])+0.5)/RatioCells*float64(b.W)
					y := float64(b.Y) + (float64(o[1])+0.5)/RatioCells*float64(b.H)
					g.addGrow(x, y, float64(o[2]))
				}
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read selectors: %w", err)
	}
	slices.SortFunc(out, func(a, b Element) int {
		if a.Clicks != b.Clicks {
			return int(b.Clicks - a.Clicks)
		}
		return strings.Compare(a.Selector, b.Selector)
	})
	return out, nil
}

// boxes returns each element's reference box at the map's width: the
// latest box recorded at the width bucket nearest to it, with x and w
// scaled to the width.
func (s *Service) boxes(ctx context.Context, n *nq) (map[int64]Box, error) {
	devSQL, devArgs := n.devIn("b.device")
	rows, err := s.db.Read().QueryContext(ctx, `
		SELECT b.selector_id, b.wb, b.x, b.y, b.w, b.h, b.ts FROM heat_elem_box b JOIN heat_selectors s ON s.id = b.selector_id
		WHERE s.page_id = ?`+devSQL, append([]any{n.pageID}, devArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("read element boxes: %w", err)
	}
	defer rows.Close()
	type cand struct {
		wb   int
		b    Box
		ts   int64
		dist int
	}
	best := map[int64]cand{}
	for rows.Next() {
		var sid int64
		var c cand
		if err := rows.Scan(&sid, &c.wb, &c.b.X, &c.b.Y, &c.b.W, &c.b.H, &c.ts); err != nil {
			return nil, fmt.Errorf("read element boxes: %w", err)
		}
		if c.wb <= 0 {
			continue
		}
		c.dist = int(abs(int64(c.wb - n.Width)))
		if o, ok := best[sid]; !ok || c.dist < o.dist || (c.dist == o.dist && c.ts > o.ts) {
			best[sid] = c
		}
	}
	out := make(map[int64]Box, len(best))
	for sid, c := range best {
		k := float64(n.Width) / float64(c.wb)
		out[sid] = Box{X: int(math.Round(float64(c.b.X) * k)), Y: c.b.Y, W: max(1, int(math.Round(float64(c.b.W)*k))), H: c.b.H}
	}
	return out, rows.Err()
}

// loadSignals bins the signals of the map's mode.
func (s *Service) loadSignals(ctx context.Context, n *nq, g *grid) error {
	return s.eachRow(ctx, n, "heat_signals", "t.x, t.y, t.wb", "AND t.type = ?", []any{n.Mode}, func(r *sql.Rows) error {
		var x, y float64
		var wb int
		if err := r.Scan(&x, &y, &wb); err != nil {
			return err
		}
		if wb > 0 {
			x *= float64(n.Width) / float64(wb)
		}
		g.addGrow(x, y, 1)
		return nil
	})
}
