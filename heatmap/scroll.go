package heatmap

import (
	"context"
	"database/sql"
	"fmt"
	"image"
	"image/color"
	"math"
	"sync"
	"time"
)

// Scroll maps. A page view's depth is its deepest viewport bottom divided by
// the document height (from the recorder's trailmap/doc event), counted in
// whole percent buckets 0–100. Page views without a known document height
// (no trailmap/doc, or a page that scrolls a main container while the
// document stays one screen tall) are left out of scroll maps.

// Depth is the share of page views that reached a depth.
type Depth struct {
	Percent   int     `json:"depth"`     // 0..100
	Reached   float64 `json:"reached"`   // share of page views, 0..1
	Pageviews int64   `json:"pageviews"` // page views that reached it
}

// Fold is the average fold (viewport height) of a device class.
type Fold struct {
	Device    string  `json:"device"`
	Pageviews int64   `json:"pageviews"`
	FoldPx    float64 `json:"avg_fold_px"`
	FoldPct   float64 `json:"avg_fold_pct"` // of the document height
	DocHeight float64 `json:"avg_doc_height"`
}

// ScrollMap is the JSON twin of a scroll map.
type ScrollMap struct {
	ProjectID int64     `json:"project_id"`
	Page      string    `json:"page"`
	Device    string    `json:"device"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	// Pageviews counts page views with a known depth; AllPageviews all.
	Pageviews    int64   `json:"pageviews"`
	AllPageviews int64   `json:"all_pageviews"`
	FoldPx       float64 `json:"avg_fold_px"`
	FoldPct      float64 `json:"avg_fold_pct"`
	DocHeight    float64 `json:"avg_doc_height"`
	Depths       []Depth `json:"depths"`
	Devices      []Fold  `json:"devices"`
}

// ScrollMap returns how far page views of a page scrolled.
func (s *Service) ScrollMap(ctx context.Context, q Query) (*ScrollMap, error) {
	n, err := s.check(ctx, q, true)
	if err != nil {
		return nil, err
	}
	key := n.cacheKey("scroll.json")
	g := s.generation(n.ProjectID)
	now := s.now()
	if v, ok := s.cacheGet(key, g, now); ok {
		return v.(*ScrollMap), nil
	}
	m, err := s.buildScroll(ctx, n)
	if err != nil {
		return nil, err
	}
	s.cache.put(key, m, int64(1024+len(m.Depths)*40), g, now)
	return m, nil
}

func (s *Service) buildScroll(ctx context.Context, n *nq) (*ScrollMap, error) {
	byDev, tot, err := s.totals(ctx, n)
	if err != nil {
		return nil, err
	}
	m := &ScrollMap{
		ProjectID: n.ProjectID, Page: n.key, Device: n.Device, From: n.From.UTC(), To: n.To.UTC(), Width: n.Width,
		Pageviews: tot.scrollPV, AllPageviews: tot.pageviews, Depths: make([]Depth, 101), Devices: []Fold{},
	}
	if tot.scrollPV > 0 {
		pv := float64(tot.scrollPV)
		m.FoldPx = round3(float64(tot.foldPx) / pv)
		m.FoldPct = round3(float64(tot.foldPm) / pv / 10)
		m.DocHeight = round3(float64(tot.docH) / pv)
	}
	for _, d := range append([]string{""}, Devices...) {
		t := byDev[d]
		if t == nil || t.scrollPV == 0 {
			continue
		}
		pv := float64(t.scrollPV)
		m.Devices = append(m.Devices, Fold{Device: d, Pageviews: t.scrollPV, FoldPx: round3(float64(t.foldPx) / pv),
			FoldPct: round3(float64(t.foldPm) / pv / 10), DocHeight: round3(float64(t.docH) / pv)})
	}
	var hist [101]int64
	if n.pageID != 0 && n.segmented() {
		err := s.eachRow(ctx, n, "heat_pageviews", "t.depth_bucket, COUNT(*)",
			"AND t.depth_bucket BETWEEN 0 AND 100 GROUP BY t.depth_bucket", nil, func(r *sql.Rows) error {
				var b int
				var c int64
				if err := r.Scan(&b, &c); err != nil {
					return err
				}
				hist[b] += c
				return nil
			})
		if err != nil {
			return nil, err
		}
	} else if n.pageID != 0 {
		devSQL, devArgs := n.devIn("device")
		rows, err := s.db.Read().QueryContext(ctx, `
			SELECT bucket, SUM(n) FROM heat_scroll_day WHERE page_id = ?`+devSQL+` AND day BETWEEN ? AND ? GROUP BY bucket`,
			append(append([]any{n.pageID}, devArgs...), n.d0, n.d1)...)
		if err != nil {
			return nil, fmt.Errorf("read scroll depths: %w", err)
		}
		err = scanHist(rows, &hist)
		if err != nil {
			return nil, err
		}
	}
	var reached int64
	for b := 100; b >= 0; b-- {
		reached += hist[b]
		m.Depths[b] = Depth{Percent: b, Pageviews: reached}
		if tot.scrollPV > 0 {
			m.Depths[b].Reached = round3(float64(reached) / float64(tot.scrollPV))
		}
	}
	m.Height = n.Height
	if m.Height == 0 {
		m.Height = int(m.DocHeight)
		if m.Height == 0 {
			m.Height = 2000
		}
		m.Height = min(max(m.Height, MinWidth), MaxHeight)
	}
	return m, nil
}

func scanHist(rows *sql.Rows, hist *[101]int64) error {
	defer rows.Close()
	for rows.Next() {
		var b int
		var c int64
		if err := rows.Scan(&b, &c); err != nil {
			return fmt.Errorf("read scroll depths: %w", err)
		}
		if b >= 0 && b <= 100 {
			hist[b] += c
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read scroll depths: %w", err)
	}
	return nil
}

// scrollPalette is the heat gradient at a steady opacity for bands, with
// index 255 a dark line for the average fold.
var scrollPalette = sync.OnceValue(func() color.Palette {
	p := make(color.Palette, 256)
	p[0] = color.NRGBA{}
	stops := [5][3]float64{{0, 0, 255}, {0, 255, 255}, {0, 255, 0}, {255, 255, 0}, {255, 0, 0}}
	for i := 1; i < 255; i++ {
		p[i] = gradient(stops, float64(i-1)/253, 0.45)
	}
	p[255] = color.NRGBA{20, 20, 20, 230}
	return p
})

// ScrollPNG draws a scroll map: each band of 1% of the map's height is
// coloured by the share of page views that reached it (red: all, blue:
// none), with a dark line at the average fold.
func (s *Service) ScrollPNG(ctx context.Context, q Query) ([]byte, error) {
	n, err := s.check(ctx, q, true)
	if err != nil {
		return nil, err
	}
	key := n.cacheKey("scroll.png")
	g := s.generation(n.ProjectID)
	now := s.now()
	if v, ok := s.cacheGet(key, g, now); ok {
		return v.([]byte), nil
	}
	m, err := s.buildScroll(ctx, n)
	if err != nil {
		return nil, err
	}
	img := image.NewPaletted(image.Rect(0, 0, m.Width, m.Height), scrollPalette())
	if m.Pageviews > 0 {
		for y := 0; y < m.Height; y++ {
			b := min(y*100/m.Height, 100)
			idx := uint8(1 + math.Round(m.Depths[b].Reached*253))
			row := img.Pix[y*img.Stride : y*img.Stride+m.Width]
			for x := range row {
				row[x] = idx
			}
		}
		if m.FoldPx > 0 {
			fy := int(math.Round(m.FoldPx))
			for y := max(fy-1, 0); y <= fy && y < m.Height; y++ {
				row := img.Pix[y*img.Stride : y*img.Stride+m.Width]
				for x := range row {
					row[x] = 255
				}
			}
		}
	}
	data, err := encodePNG(img)
	if err != nil {
		return nil, fmt.Errorf("encode scroll map: %w", err)
	}
	s.cache.put(key, data, int64(len(data)), g, now)
	return data, nil
}
