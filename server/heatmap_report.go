package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/headless"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/ui"
)

// reportHandlers draw heatmap images for slides: the page as it looked,
// rendered by headless Chromium from a stored full snapshot (with the
// stored copies of its images, fonts and style sheets), the heat overlay,
// a caption and a legend.
type reportHandlers struct {
	s   *Server
	web *ui.Web

	mu    sync.Mutex
	cache map[string]cachedReport
}

type cachedReport struct {
	png []byte
	at  time.Time
}

// reportCacheTTL is how long a report image is kept for the same query.
const reportCacheTTL = 5 * time.Minute

// errRendererUnavailable is answered 503 renderer_unavailable.
var errRendererUnavailable = errors.New("renderer unavailable")

// reportPNG is GET /api/v1/heatmaps/report.png with the heatmap API's
// filters: the click map of a page over the page itself.
func (h *reportHandlers) reportPNG(c echo.Context) error {
	q, err := h.s.heatmapQuery(c)
	if err != nil {
		return err
	}
	if _, err := headless.Binary(); err != nil {
		return fmt.Errorf("%w: %v", errRendererUnavailable, err)
	}
	key := c.Request().URL.RawQuery
	h.mu.Lock()
	if r, ok := h.cache[key]; ok && time.Since(r.at) < reportCacheTTL {
		h.mu.Unlock()
		c.Response().Header().Set("Cache-Control", "private, max-age=60")
		return c.Blob(http.StatusOK, "image/png", r.png)
	}
	h.mu.Unlock()
	// One browser for the whole image (a comparison draws three pages).
	b, err := headless.Start(context.WithoutCancel(c.Request().Context()))
	if err != nil {
		if errors.Is(err, headless.ErrUnavailable) {
			return fmt.Errorf("%w: %v", errRendererUnavailable, err)
		}
		return err
	}
	defer b.Close()
	var png []byte
	if c.QueryParam("from2") != "" || c.QueryParam("to2") != "" {
		png, err = h.compare(c, b, q)
	} else {
		png, err = h.render(c, b, q, "")
	}
	if err != nil {
		return err
	}
	h.mu.Lock()
	if len(h.cache) > 32 {
		clear(h.cache)
	}
	h.cache[key] = cachedReport{png: png, at: time.Now()}
	h.mu.Unlock()
	c.Response().Header().Set("Cache-Control", "private, max-age=60")
	c.Response().Header().Set(echo.HeaderContentDisposition, `inline; filename="trailmap-heatmap.png"`)
	return c.Blob(http.StatusOK, "image/png", png)
}

// compare draws two ranges of the same page side by side (from, to and
// from2, to2), each with its own caption: range and totals.
func (h *reportHandlers) compare(c echo.Context, br *headless.Browser, q heatmap.Query) ([]byte, error) {
	q2 := q
	var err error
	if q2.From, err = parseTime("from2", c.QueryParam("from2")); err != nil {
		return nil, err
	}
	if q2.To, err = parseTime("to2", c.QueryParam("to2")); err != nil {
		return nil, err
	}
	a, err := h.render(c, br, q, "A · ")
	if err != nil {
		return nil, err
	}
	b, err := h.render(c, br, q2, "B · ")
	if err != nil {
		return nil, err
	}
	ca, err := png.DecodeConfig(bytes.NewReader(a))
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	cb, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	width := ca.Width + cb.Width + 16
	doc := fmt.Sprintf(`<!doctype html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<style>body{margin:0;background:#e5e7eb;display:flex;gap:16px;align-items:flex-start;width:%dpx}img{display:block}</style></head>
<body><img id="a" src="%s" alt="A" width="%d"><img id="b" src="%s" alt="B" width="%d"></body></html>`,
		width, headless.DataURL("image/png", a), ca.Width, headless.DataURL("image/png", b), cb.Width)
	return br.Screenshot(doc, width, time.Minute)
}

func (h *reportHandlers) render(c echo.Context, b *headless.Browser, q heatmap.Query, label string) ([]byte, error) {
	ctx := c.Request().Context()
	hm := h.s.deps.Extra.Heatmaps
	scroll := q.Mode == "scroll" // the scroll map; any other mode is a click map's
	if scroll {
		q.Mode = ""
	}
	sn, err := hm.Snapshot(ctx, q)
	if err != nil {
		return nil, err
	}
	sess, err := h.s.deps.Index.SessionByPublicID(ctx, []int64{q.ProjectID}, sn.SessionID)
	if err != nil {
		return nil, err
	}
	width := sn.ViewportW
	if q.Width > 0 {
		width = q.Width
	}
	width = min(max(width, 320), 2560)
	q.Width = width
	q.Height = min(max(sn.DocH, sn.ViewportH, 200), 20000)
	// The overlay and the caption's figures: clicks (grid, element, rage,
	// dead, error), or how far page views scrolled.
	var heat []byte
	fig := map[string]any{"Width": width, "Label": label}
	opacity := ".9"
	if scroll {
		sm, err := hm.ScrollMap(ctx, q)
		if err != nil {
			return nil, err
		}
		if heat, err = hm.ScrollPNG(ctx, q); err != nil {
			return nil, err
		}
		opacity = "1" // the scroll palette is translucent already
		fig["Scroll"] = true
		fig["Page"], fig["Device"], fig["Views"] = sm.Page, orAll(sm.Device), sm.Pageviews
		fig["From"], fig["To"] = sm.From.Format("2 Jan 2006"), sm.To.Format("2 Jan 2006")
		fig["Fold"] = fmt.Sprintf("%.0f%%", sm.FoldPct)
		half := 0
		for i, d := range sm.Depths {
			if d.Reached >= 0.5 {
				half = i
			}
		}
		fig["Half"] = fmt.Sprintf("%d%%", half)
	} else {
		cm, err := hm.ClickMap(ctx, q)
		if err != nil {
			return nil, err
		}
		if heat, err = hm.ClickPNG(ctx, q); err != nil {
			return nil, err
		}
		fig["Page"], fig["Device"], fig["Views"], fig["Clicks"] = cm.Page, orAll(cm.Device), cm.Pageviews, cm.Clicks
		fig["From"], fig["To"] = cm.From.Format("2 Jan 2006"), cm.To.Format("2 Jan 2006")
		fig["Rage"], fig["Dead"] = cm.RageClicks, cm.DeadClicks
	}

	// 1. The snapshot as an offline clip (copies inlined, no network), from
	// which the page as rebuilt is taken whole.
	f, err := os.CreateTemp("", "trailmap-report-*.html")
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriter(f)
	events, _ := h.s.clipEvents(ctx, sess, replay.Range{FromMS: sn.FromMS, ToMS: sn.ToMS, Trim: true})
	err = h.web.WriteExport(bw, ui.Clip{Title: "report", StartTS: sess.StartedAt.UnixMilli() + sn.FromMS, DurationMS: max(sn.ToMS-sn.FromMS, 1)}, events)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	page, err := b.Eval("file://"+f.Name(), width, max(sn.ViewportH, 400), `!!document.querySelector('.tp[data-first-frame="1"]')`,
		`(() => { const d = document.querySelector('.replayer-wrapper iframe').contentDocument;
		  d.querySelectorAll('noscript, script').forEach((n) => n.remove());
		  return '<!doctype html>' + d.documentElement.outerHTML; })()`, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}

	// 2. The page at its width with the heat overlay on it; nothing it
	// references may be fetched (copies are data: URLs already).
	overlay := fmt.Sprintf(`<div style="position:absolute;left:0;top:0;width:%dpx;height:%dpx;background:url(%s) no-repeat 0 0/100%% 100%%;opacity:%s;pointer-events:none;z-index:2147483647"></div>`,
		width, q.Height, headless.DataURL("image/png", heat), opacity)
	page = withPolicy(page)
	if i := strings.LastIndex(page, "</body>"); i >= 0 {
		page = page[:i] + overlay + page[i:]
	} else {
		page += overlay
	}
	shot, err := b.Screenshot(page, width, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}

	// 3. Caption and legend around it.
	var doc bytes.Buffer
	fig["Shot"] = template.URL(headless.DataURL("image/png", shot))
	err = reportFrame.Execute(&doc, fig)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return b.Screenshot(doc.String(), width, time.Minute)
}

func orAll(device string) string {
	if device == "" {
		return "all devices"
	}
	return device
}

// withPolicy gives a rebuilt page a policy that forbids fetching anything
// (its copies are inlined).
func withPolicy(page string) string {
	const meta = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline' data:; font-src data:">`
	if i := strings.Index(page, "<head>"); i >= 0 {
		return page[:i+6] + meta + page[i+6:]
	}
	if i := strings.Index(page, "<head "); i >= 0 {
		j := strings.Index(page[i:], ">")
		return page[:i+j+1] + meta + page[i+j+1:]
	}
	return meta + page
}

var reportFrame = template.Must(template.New("report").Parse(`<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<style>
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #fff; color: #111827; width: {{.Width}}px; }
.cap { background: #111827; color: #f9fafb; padding: 14px 18px; }
.cap b { font-size: 18px; display: block; margin-bottom: 2px; word-break: break-all; }
.cap span { color: #cbd5e1; }
.shot { display: block; width: {{.Width}}px; }
.leg { display: flex; align-items: center; gap: 10px; padding: 10px 18px; border-top: 1px solid #e5e7eb; color: #374151; font-size: 13px; }
.bar { width: 220px; height: 12px; border-radius: 6px; background: linear-gradient(90deg, rgba(0,0,255,.6), rgb(0,255,255), rgb(0,255,0), rgb(255,255,0), rgb(255,0,0)); }
</style></head><body>
{{if .Scroll}}<div class="cap" id="caption"><b>{{.Label}}{{.Page}}</b><span>{{.Device}} · {{.From}} – {{.To}} · {{.Views}} page views · fold at {{.Fold}} of the page on average · half of the views reach {{.Half}}</span></div>
<img class="shot" src="{{.Shot}}" alt="">
<div class="leg"><span>few views reach</span><span class="bar"></span><span>every view reaches</span><span style="margin-left:auto">Trailmap scroll map</span></div>
{{else}}<div class="cap" id="caption"><b>{{.Label}}{{.Page}}</b><span>{{.Device}} · {{.From}} – {{.To}} · {{.Views}} page views · {{.Clicks}} clicks{{if .Rage}} · {{.Rage}} rage{{end}}{{if .Dead}} · {{.Dead}} dead{{end}}</span></div>
<img class="shot" src="{{.Shot}}" alt="">
<div class="leg"><span>fewer clicks</span><span class="bar"></span><span>more clicks</span><span style="margin-left:auto">Trailmap heatmap</span></div>{{end}}
</body></html>`))
