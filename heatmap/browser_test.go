package heatmap_test

// End-to-end tests of heatmaps: the real trailmap binary, the real browser
// recorder in headless Chromium, test pages with elements at known
// positions served from another origin, and the heatmap API.

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
	"github.com/trailmap/trailmap/internal/servertest"
)

// Test pages. Elements sit at fixed page positions (body margin 0,
// absolute positioning); a media query moves them on narrow screens, and
// ?variant=b moves #buy on /layout, as an A/B test would.
var pages = map[string]string{
	"grid": `<style>
  body { margin: 0; height: 3000px; position: relative; font: 16px sans-serif }
  button, div.box { position: absolute; margin: 0; padding: 0; border: 0; box-sizing: border-box }
  #buy { left: 100px; top: 200px; width: 200px; height: 50px }
  #far { left: 900px; top: 1500px; width: 200px; height: 50px }
  @media (max-width: 600px) {
    #buy { left: 20px; top: 400px; width: 300px; height: 60px }
    #far { left: 40px; top: 1800px; width: 200px; height: 50px }
  }
</style>
<button id="buy" onclick="document.getElementById('n').textContent = ++window.n">Buy</button>
<div class="box" id="far" onclick="document.getElementById('n').textContent = ++window.n">Far</div>
<p id="n" style="position:absolute;top:0;left:0;margin:0">0</p>
<script>window.n = 0</script>`,
	"layout": `<style>
  body { margin: 0; height: 2000px; position: relative }
  #buy { position: absolute; left: 100px; top: 200px; width: 200px; height: 50px; margin: 0; padding: 0; border: 0 }
  body.b #buy { left: 700px; top: 600px; width: 100px; height: 40px }
</style>
<script>if (location.search.indexOf('variant=b') >= 0) document.documentElement.className = 'b'</script>
<button id="buy" onclick="this.textContent = 'Bought ' + (++window.n)">Buy</button>
<script>window.n = 0; if (document.documentElement.className) document.body.className = 'b'</script>`,
	"frustration": `<style>
  body { margin: 0; height: 1500px; position: relative; font: 16px sans-serif }
  .a { position: absolute; margin: 0; padding: 0; border: 0; width: 120px; height: 40px }
  #dead { left: 50px; top: 100px } #menu { left: 250px; top: 100px } #ok { left: 450px; top: 100px }
  #rage { left: 650px; top: 100px } #err { left: 850px; top: 100px }
  #list { position: absolute; left: 250px; top: 150px; margin: 0 }
</style>
<span class="a" id="dead">Looks like a link</span>
<button class="a" id="menu" onclick="document.getElementById('list').hidden = !document.getElementById('list').hidden">Menu</button>
<ul id="list" hidden><li>One</li><li>Two</li></ul>
<button class="a" id="ok" onclick="this.textContent = 'Saved'">Save</button>
<button class="a" id="rage">Broken</button>
<button class="a" id="err" onclick="document.getElementById('out').textContent = 'sending'; window.missing.call()">Send</button>
<p id="out" style="position:absolute;top:300px;margin:0"></p>`,
}

type site struct {
	*httptest.Server
	srv *servertest.Server
}

func newSite(t testing.TB, srv *servertest.Server) *site {
	s := &site{srv: srv}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".html")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><meta charset=utf-8><meta name="viewport" content="width=device-width, initial-scale=1">
<script src="%s/recorder.js" data-key="%s" async></script></head><body>%s</body></html>`, srv.URL, srv.WriteKey, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// visit opens a page in a fresh browser context (a new visitor) at the
// given viewport and waits for the recorder.
func visit(t *testing.T, b *browsertest.Browser, url string, w, h int64, mobile bool) context.Context {
	t.Helper()
	ctx := b.NewContext(t)
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	do(t, ctx, chromedp.EmulateViewport(w, h, opts...), chromedp.Navigate(url))
	deadline := time.Now().Add(10 * time.Second)
	for !eval[bool](t, ctx, `!!(window.trailmap && window.trailmap.version)`) {
		if time.Now().After(deadline) {
			t.Fatal("the recorder did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	do(t, ctx, chromedp.Sleep(300*time.Millisecond)) // let the full snapshot and trailmap/doc go out
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// clickAt clicks at viewport coordinates, as a user would.
func clickAt(t *testing.T, ctx context.Context, x, y float64) {
	t.Helper()
	do(t, ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y), chromedp.MouseClickXY(x, y))
}

func scrollTo(t *testing.T, ctx context.Context, y int) {
	t.Helper()
	do(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.scrollTo(0, %d)`, y)), chromedp.Sleep(300*time.Millisecond))
}

func flush(t *testing.T, ctx context.Context) {
	t.Helper()
	if !eval[bool](t, ctx, `trailmap.flush()`) {
		t.Fatal("trailmap.flush() resolved false")
	}
}

// waitJS polls a JS condition in the page.
func waitJS(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 1500) : ''`))
			t.Fatalf("waiting for %s (%s): %v\n%s", what, js, err, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last state: %s", what, d, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type clickMap struct {
	Width    int   `json:"width"`
	Height   int   `json:"height"`
	Clicks   int64 `json:"clicks"`
	Drawn    int64 `json:"drawn"`
	Elements []struct {
		Selector string     `json:"selector"`
		Clicks   int64      `json:"clicks"`
		Unplaced int64      `json:"unplaced"`
		Rage     int64      `json:"rage_clicks"`
		Dead     int64      `json:"dead_clicks"`
		Error    int64      `json:"error_clicks"`
		Offsets  [][3]int64 `json:"offsets"`
		Box      *struct{ X, Y, W, H int }
	} `json:"elements"`
	Widths []struct {
		Width  int   `json:"width"`
		Clicks int64 `json:"clicks"`
	} `json:"widths"`
}

func getPNG(t *testing.T, srv *servertest.Server, path string) image.Image {
	t.Helper()
	resp := srv.Request(t, http.MethodGet, path, nil)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return img
}

// hot reports whether the map is clearly coloured at (x, y).
func hot(img image.Image, x, y int) bool {
	_, _, _, a := img.At(x, y).RGBA()
	return a>>8 >= 120
}

func cold(img image.Image, x, y int) bool {
	_, _, _, a := img.At(x, y).RGBA()
	return a == 0
}

var bundleOnce sync.Once

// ensureBundle builds the UI bundle (as `make js` does) before the binary is
// built, unless the binary comes from `make test`, which built it already.
func ensureBundle(t testing.TB) {
	t.Helper()
	if os.Getenv("TRAILMAP_BIN") != "" {
		return
	}
	var out []byte
	var err error
	bundleOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("make", "-s", "js")
		cmd.Dir = filepath.Dir(filepath.Dir(file))
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("make js: %v\n%s", err, out)
	}
}

func TestHeatmap_Browser(t *testing.T) {
	ensureBundle(t)
	servertest.EachIndex(t, func(t *testing.T, indexURL string) {
		srv := servertest.StartOn(t, indexURL)
		st := newSite(t, srv)
		b := browsertest.Start(t, browsertest.LoopbackOnly())

		t.Run("click maps at desktop and mobile widths", func(t *testing.T) {
			// Desktop: five clicks across #buy (40 px apart: not a rage click),
			// then scrolled down, three on #far.
			ctx := visit(t, b, st.URL+"/grid.html", 1280, 800, false)
			for _, x := range []float64{110, 150, 190, 230, 270} {
				clickAt(t, ctx, x, 225)
			}
			scrollTo(t, ctx, 1200)
			for _, x := range []float64{950, 1000, 1050} {
				clickAt(t, ctx, x, 325) // page y 1525
			}
			flush(t, ctx)
			// Mobile: #buy is at (20, 400) 300×60 there.
			mctx := visit(t, b, st.URL+"/grid.html", 390, 800, true)
			for _, x := range []float64{60, 170, 280} {
				clickAt(t, mctx, x, 430)
			}
			flush(t, mctx)

			var desk clickMap
			eventually(t, 60*time.Second, "8 desktop clicks on /grid", func() (bool, string) {
				srv.GetJSON(t, "/api/v1/heatmaps/clicks?project=test&url=/grid.html&device=desktop", &desk)
				return desk.Clicks == 8, fmt.Sprintf("%d clicks", desk.Clicks)
			})
			// Draw at the document width the clicks were recorded at (1280
			// less a scrollbar, if the browser shows one).
			w := desk.Widths[0].Width
			img := getPNG(t, srv, fmt.Sprintf("/api/v1/heatmaps/clicks.png?project=test&url=/grid.html&device=desktop&width=%d&height=3000", w))
			if b := img.Bounds(); b.Dx() != w || b.Dy() != 3000 {
				t.Fatalf("map size %v", b)
			}
			for _, p := range [][2]int{{190, 225}, {1000, 1525}} {
				if !hot(img, p[0], p[1]) {
					t.Errorf("desktop map not hot at %v: %v", p, img.At(p[0], p[1]))
				}
			}
			for _, p := range [][2]int{{640, 800}, {200, 1525}, {1000, 225}, {600, 2800}, {190, 400}} {
				if !cold(img, p[0], p[1]) {
					t.Errorf("desktop map not cold at %v: %v", p, img.At(p[0], p[1]))
				}
			}
			// Elements: every click on the element it hit, none elsewhere.
			got := map[string]int64{}
			for _, e := range desk.Elements {
				got[e.Selector] = e.Clicks
			}
			if len(got) != 2 || got["button#buy"] != 5 || got["div#far"] != 3 {
				t.Errorf("desktop elements %v, want button#buy 5 and div#far 3", got)
			}

			// The mobile session's batches are observed on their own
			// schedule, not necessarily before the desktop one's.
			var mob clickMap
			eventually(t, 60*time.Second, "3 mobile clicks on /grid", func() (bool, string) {
				srv.GetJSON(t, "/api/v1/heatmaps/clicks?project=test&url=/grid.html&device=mobile", &mob)
				return mob.Clicks == 3, fmt.Sprintf("%d clicks", mob.Clicks)
			})
			if mob.Clicks != 3 || len(mob.Elements) != 1 || mob.Elements[0].Selector != "button#buy" || mob.Elements[0].Clicks != 3 {
				t.Errorf("mobile map: %d clicks, elements %+v", mob.Clicks, mob.Elements)
			}
			mimg := getPNG(t, srv, "/api/v1/heatmaps/clicks.png?project=test&url=/grid.html&device=mobile&width=390&height=3000")
			for _, p := range [][2]int{{60, 430}, {170, 430}, {280, 430}} {
				if !hot(mimg, p[0], p[1]) {
					t.Errorf("mobile map not hot at %v", p)
				}
			}
			for _, p := range [][2]int{{170, 225}, {200, 1000}, {370, 2500}} {
				if !cold(mimg, p[0], p[1]) {
					t.Errorf("mobile map not cold at %v", p)
				}
			}
			// The desktop clicks are not on the mobile map and vice versa.
			if !cold(img, 170, 430) {
				t.Errorf("desktop map hot where only mobile visitors clicked")
			}
		})

		t.Run("element mode joins visitors with different layouts", func(t *testing.T) {
			// Both click #buy a quarter in from its left edge, half way down.
			a := visit(t, b, st.URL+"/layout.html", 1280, 800, false)
			for range 3 {
				clickAt(t, a, 150, 225) // box (100, 200) 200×50
				do(t, a, chromedp.Sleep(1100*time.Millisecond))
			}
			flush(t, a)
			bctx := visit(t, b, st.URL+"/layout.html?variant=b", 1280, 800, false)
			for range 3 {
				clickAt(t, bctx, 725, 620) // box (700, 600) 100×40
				do(t, bctx, chromedp.Sleep(1100*time.Millisecond))
			}
			flush(t, bctx)
			var m clickMap
			eventually(t, 60*time.Second, "6 clicks on /layout", func() (bool, string) {
				srv.GetJSON(t, "/api/v1/heatmaps/clicks?project=test&url=/layout.html&device=desktop&mode=element", &m)
				return m.Clicks == 6, fmt.Sprintf("%d clicks", m.Clicks)
			})
			if len(m.Elements) != 1 {
				t.Fatalf("elements %+v, want only button#buy", m.Elements)
			}
			e := m.Elements[0]
			if e.Selector != "button#buy" || e.Clicks != 6 || e.Unplaced != 0 || e.Box == nil {
				t.Fatalf("element %+v", e)
			}
			// Every click in the same cell of the element's 16×16 grid.
			if len(e.Offsets) != 1 || e.Offsets[0] != [3]int64{4, 8, 6} {
				t.Errorf("offsets %v, want all six clicks in cell (4, 8)", e.Offsets)
			}
			img := getPNG(t, srv, fmt.Sprintf("/api/v1/heatmaps/clicks.png?project=test&url=/layout.html&device=desktop&mode=element&width=%d&height=2000", m.Width))
			x, y := e.Box.X+e.Box.W*9/32, e.Box.Y+e.Box.H*17/32
			if !hot(img, x, y) {
				t.Errorf("element map not hot at (%d, %d) in the reference box %+v", x, y, *e.Box)
			}
			// Only one spot: the other layout's position stays cold.
			other := [2]int{150, 225}
			if e.Box.X < 400 {
				other = [2]int{725, 620}
			}
			if !cold(img, other[0], other[1]) {
				t.Errorf("element map hot at the other layout's position %v", other)
			}
			// The grid map, by contrast, shows both places.
			grid := getPNG(t, srv, fmt.Sprintf("/api/v1/heatmaps/clicks.png?project=test&url=/layout.html&device=desktop&width=%d&height=2000", m.Width))
			if !hot(grid, 150, 225) || !hot(grid, 725, 620) {
				t.Errorf("grid map not hot at both layouts' positions")
			}
		})

		t.Run("frustration signals", func(t *testing.T) {
			ctx := visit(t, b, st.URL+"/frustration.html", 1280, 800, false)
			center := func(left float64) float64 { return left + 60 }
			move := func() {
				do(t, ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 5, 700), chromedp.Sleep(700*time.Millisecond))
			}
			clickAt(t, ctx, center(50), 120) // #dead: nothing happens
			do(t, ctx, chromedp.Sleep(3200*time.Millisecond))
			move()
			clickAt(t, ctx, center(250), 120) // #menu opens its list: not dead
			do(t, ctx, chromedp.Sleep(600*time.Millisecond))
			clickAt(t, ctx, center(450), 120) // #ok changes its label
			do(t, ctx, chromedp.Sleep(1200*time.Millisecond))
			for _, dx := range []float64{0, 4, -3, 2} { // #rage, broken: four quick clicks
				clickAt(t, ctx, center(650)+dx, 120)
				do(t, ctx, chromedp.Sleep(150*time.Millisecond))
			}
			do(t, ctx, chromedp.Sleep(3200*time.Millisecond))
			move()
			clickAt(t, ctx, center(850), 120) // #err throws
			do(t, ctx, chromedp.Sleep(3200*time.Millisecond))
			move()
			flush(t, ctx)

			var list struct {
				Sessions []struct {
					ID          string `json:"id"`
					RageClicks  int    `json:"rage_clicks"`
					DeadClicks  int    `json:"dead_clicks"`
					EntryURL    string `json:"entry_url"`
					ClickCount  int    `json:"click_count"`
					ErrorsCount int    `json:"errors"`
				} `json:"sessions"`
			}
			type sig struct {
				Type     string `json:"type"`
				OffsetMS int64  `json:"offset_ms"`
				X, Y     int
				Selector string `json:"selector"`
				Count    int    `json:"count"`
				Message  string `json:"message"`
			}
			var sigs struct {
				Signals []sig `json:"signals"`
			}
			var id string
			eventually(t, 60*time.Second, "three signals", func() (bool, string) {
				srv.GetJSON(t, "/api/v1/sessions?project=test&url=/frustration.html", &list)
				if len(list.Sessions) != 1 {
					return false, fmt.Sprintf("%d sessions", len(list.Sessions))
				}
				id = list.Sessions[0].ID
				srv.GetJSON(t, "/api/v1/sessions/"+id+"/signals", &sigs)
				return len(sigs.Signals) >= 3 && list.Sessions[0].ClickCount == 8, fmt.Sprintf("%+v", sigs.Signals)
			})
			want := []struct{ typ, sel string }{
				{"dead_click", "span#dead"},
				{"rage_click", "button#rage"},
				{"error", "button#err"},
			}
			if len(sigs.Signals) != len(want) {
				t.Fatalf("signals %+v, want dead, rage, error", sigs.Signals)
			}
			for i, w := range want {
				g := sigs.Signals[i]
				if g.Type != w.typ || g.Selector != w.sel {
					t.Errorf("signal %d: %s on %q, want %s on %q", i, g.Type, g.Selector, w.typ, w.sel)
				}
				if i > 0 && g.OffsetMS <= sigs.Signals[i-1].OffsetMS {
					t.Errorf("signals out of order: %+v", sigs.Signals)
				}
			}
			if r := sigs.Signals[1]; r.Count != 4 || r.Y != 120 {
				t.Errorf("rage click %+v, want 4 clicks at y 120", r)
			}
			if e := sigs.Signals[2]; !strings.Contains(e.Message, "missing") && !strings.Contains(e.Message, "undefined") {
				t.Errorf("error click message %q", e.Message)
			}
			s := list.Sessions[0]
			if s.RageClicks != 1 || s.DeadClicks != 1 || s.ErrorsCount != 1 {
				t.Errorf("session counts rage %d dead %d errors %d, want 1 1 1", s.RageClicks, s.DeadClicks, s.ErrorsCount)
			}
			for _, has := range []string{"rage_click", "dead_click"} {
				var f struct {
					Sessions []struct{ ID string } `json:"sessions"`
				}
				srv.GetJSON(t, "/api/v1/sessions?project=test&has="+has, &f)
				if len(f.Sessions) != 1 || f.Sessions[0].ID != id {
					t.Errorf("has=%s lists %+v", has, f.Sessions)
				}
			}
			// The rage map: hot on the broken button only.
			rage := getPNG(t, srv, "/api/v1/heatmaps/clicks.png?project=test&url=/frustration.html&device=desktop&mode=rage&width=1280&height=1500")
			if !hot(rage, int(center(650)), 120) {
				t.Errorf("rage map not hot on #rage")
			}
			for _, left := range []float64{50, 250, 450, 850} {
				if !cold(rage, int(center(left)), 120) {
					t.Errorf("rage map hot at the button at %g", left)
				}
			}
			var m clickMap
			srv.GetJSON(t, "/api/v1/heatmaps/clicks?project=test&url=/frustration.html&device=desktop", &m)
			for _, e := range m.Elements {
				wantR, wantD, wantE := int64(0), int64(0), int64(0)
				switch e.Selector {
				case want[0].sel:
					wantD = 1
				case want[1].sel:
					wantR = 1
				case want[2].sel:
					wantE = 1
				}
				if e.Rage != wantR || e.Dead != wantD || e.Error != wantE {
					t.Errorf("element %s: rage %d dead %d error %d, want %d %d %d", e.Selector, e.Rage, e.Dead, e.Error, wantR, wantD, wantE)
				}
			}
		})

		t.Run("pages, snapshot and scroll map", func(t *testing.T) {
			var pages struct {
				Pages []struct {
					Page      string           `json:"page"`
					Pageviews int64            `json:"pageviews"`
					Devices   map[string]int64 `json:"devices"`
				} `json:"pages"`
			}
			srv.GetJSON(t, "/api/v1/heatmaps/pages?project=test", &pages)
			got := map[string]int64{}
			for _, p := range pages.Pages {
				got[p.Page] = p.Pageviews
			}
			if got["/grid.html"] != 2 || got["/layout.html"] != 2 || got["/frustration.html"] != 1 {
				t.Errorf("pages %+v", pages.Pages)
			}
			var sn struct {
				SessionID string `json:"session_id"`
				FromMS    int64  `json:"from_ms"`
				ViewportW int    `json:"viewport_width"`
			}
			srv.GetJSON(t, "/api/v1/heatmaps/snapshot?project=test&url=/grid.html&device=mobile", &sn)
			if sn.SessionID == "" || sn.ViewportW != 390 {
				t.Errorf("mobile snapshot %+v", sn)
			}
			// The snapshot's range of the event stream starts with a full snapshot.
			var evs []struct {
				Type int `json:"type"`
			}
			srv.GetJSON(t, fmt.Sprintf("/api/v1/sessions/%s/events?from_ms=%d&to_ms=%d", sn.SessionID, sn.FromMS, sn.FromMS+1000), &evs)
			full := false
			for _, e := range evs {
				full = full || e.Type == 2
			}
			if !full {
				t.Errorf("no full snapshot in the snapshot's events")
			}
			// The desktop /grid visit scrolled to 1200 of a 3000 px page: its
			// deepest viewport bottom is 2000 px, 66%.
			var sm struct {
				Pageviews int64   `json:"pageviews"`
				FoldPx    float64 `json:"avg_fold_px"`
				Depths    []struct {
					Depth   int     `json:"depth"`
					Reached float64 `json:"reached"`
				} `json:"depths"`
			}
			srv.GetJSON(t, "/api/v1/heatmaps/scroll?project=test&url=/grid.html&device=desktop", &sm)
			if sm.Pageviews != 1 || sm.FoldPx != 800 || sm.Depths[66].Reached != 1 || sm.Depths[67].Reached != 0 {
				t.Errorf("scroll map: %d page views, fold %g, reached 66%% %g 67%% %g", sm.Pageviews, sm.FoldPx, sm.Depths[66].Reached, sm.Depths[67].Reached)
			}
			img := getPNG(t, srv, "/api/v1/heatmaps/scroll.png?project=test&url=/grid.html&device=desktop&width=1280&height=3000")
			if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 3000 {
				t.Errorf("scroll map size %v", b)
			}
		})

		t.Run("viewer", func(t *testing.T) {
			const password = "correct horse battery"
			cmd := exec.Command(servertest.Bin(t), "user", "create", "analyst@example.com", "--data", srv.DataDir, "--index-url", srv.IndexURL)
			cmd.Stdin = strings.NewReader(password + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("user create: %v\n%s", err, out)
			}
			ctx := b.NewContext(t)
			con := browsertest.WatchConsole(t, ctx)
			do(t, ctx, chromedp.EmulateViewport(1400, 1000), chromedp.Navigate(srv.URL+"/login"))
			waitJS(t, ctx, "login form", `!!document.querySelector('#email')`)
			do(t, ctx, chromedp.SendKeys("#email", "analyst@example.com"), chromedp.SendKeys("#password", password),
				chromedp.Click("button[type=submit]"))
			waitJS(t, ctx, "logged in", `location.pathname === '/sessions'`)

			ready := func(what string) {
				t.Helper()
				waitJS(t, ctx, what, `document.getElementById('heatmaps').dataset.state === 'ready'`)
			}
			do(t, ctx, chromedp.Navigate(srv.URL+"/heatmaps?project=test&url=/grid.html&device=desktop"))
			ready("click map")
			// The page is rebuilt from its snapshot, the map laid over it at its size.
			if !eval[bool](t, ctx, `(() => { const s = trailmapHeatmaps.stages[0];
			return !!s.doc.querySelector('#buy') && s.img.naturalWidth === s.pageW && s.img.naturalHeight === s.pageH && s.pageH === 3000 })()`) {
				t.Errorf("page or overlay missing: %s", eval[string](t, ctx, `JSON.stringify({w: trailmapHeatmaps.stages[0].pageW, h: trailmapHeatmaps.stages[0].pageH})`))
			}
			if got := eval[string](t, ctx, `document.querySelector('#hm-elements li').textContent`); !strings.Contains(got, "button#buy") || !strings.Contains(got, "5") {
				t.Errorf("top element %q, want button#buy with 5 clicks", got)
			}
			if got := eval[string](t, ctx, `[...document.querySelectorAll('#hm-page option')].map(o => o.textContent).join('|')`); !strings.Contains(got, "/grid.html — 1 views") {
				t.Errorf("page picker %q", got)
			}
			// Hovering #buy on the page shows its clicks.
			pt := eval[[]float64](t, ctx, `(() => { const s = trailmapHeatmaps.stages[0], r = s.box.getBoundingClientRect();
			return [r.left + 200 * s.k, r.top + 225 * s.k] })()`)
			do(t, ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, pt[0], pt[1]))
			waitJS(t, ctx, "hover card", `!document.getElementById('hm-hover').hidden`)
			if got := eval[string](t, ctx, `document.getElementById('hm-hover').textContent`); !strings.Contains(got, "button#buy") || !strings.Contains(got, "5 clicks") {
				t.Errorf("hover card %q", got)
			}
			browsertest.Screenshot(t, ctx, filepath.Join(t.TempDir(), "viewer-clicks.png"), 1400, 1000)
			// The download: the page and the map in one image.
			got := eval[[]float64](t, ctx, `trailmapHeatmaps.stages[0].composite().then(({canvas, pageDrawn}) => {
			const px = canvas.getContext('2d').getImageData(190, 225, 1, 1).data;
			return [canvas.width, canvas.height, px[0], px[2], pageDrawn ? 1 : 0] })`)
			if got[1] != 3000 || got[2] < 150 || got[3] > 100 {
				t.Errorf("download image %v: want 3000 px tall and red at the clicks", got)
			}
			if got[4] != 1 {
				t.Logf("the browser would not draw the page into the download (map only)")
			}

			// Element mode: drawn here, on #buy's box in the snapshot.
			do(t, ctx, chromedp.Click(`[data-mode=element]`))
			ready("element map")
			if !eval[bool](t, ctx, `(() => { const s = trailmapHeatmaps.stages[0], c = s.canvas;
			const a = (x, y) => c.getContext('2d').getImageData(Math.floor(x / 4), Math.floor(y / 4), 1, 1).data[3];
			return !c.hidden && a(190, 225) > 100 && a(640, 2500) === 0 })()`) {
				t.Errorf("element map not hot on #buy or not cold elsewhere")
			}
			// Scroll map with the average fold.
			do(t, ctx, chromedp.Click(`[data-mode=scroll]`))
			ready("scroll map")
			if !eval[bool](t, ctx, `(() => { const s = trailmapHeatmaps.stages[0]; return s.img.naturalHeight === 3000 && !s.fold.hidden })()`) {
				t.Errorf("scroll map or fold missing")
			}
			if got := eval[string](t, ctx, `trailmapHeatmaps.stages[0].stats.textContent`); !strings.Contains(got, "1 page views") {
				t.Errorf("scroll stats %q", got)
			}
			// Compare two ranges: two stages.
			do(t, ctx, chromedp.Click(`[data-mode=grid]`), chromedp.Click(`#hm-compare`))
			ready("compare")
			if n := eval[int](t, ctx, `document.querySelectorAll('.hm-stage').length`); n != 2 {
				t.Errorf("%d stages in compare mode", n)
			}
			// Mobile tab: the mobile snapshot at 390 px.
			do(t, ctx, chromedp.Click(`#hm-compare`), chromedp.Click(`[data-device=mobile]`))
			ready("mobile")
			if w := eval[int](t, ctx, `trailmapHeatmaps.stages[0].vw`); w != 390 {
				t.Errorf("mobile viewport %d", w)
			}
			// A segment no mobile session matches empties the map; clearing it
			// brings the sessions back.
			setSegment := func(v string) {
				do(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const i = document.getElementById('hm-segment');
				i.value = %q; i.dispatchEvent(new Event('change')) })()`, v)))
			}
			setSegment(`{"field":"device","op":"eq","value":"desktop"}`)
			ready("segment")
			if got := eval[string](t, ctx, `trailmapHeatmaps.stages[0].stats.textContent`); !strings.HasPrefix(got, "0 page views") {
				t.Errorf("segmented stats %q, want no page views", got)
			}
			if !eval[bool](t, ctx, `new URLSearchParams(location.search).has('segment')`) {
				t.Errorf("segment not kept in the URL: %s", eval[string](t, ctx, `location.search`))
			}
			setSegment("")
			ready("segment cleared")
			if got := eval[string](t, ctx, `trailmapHeatmaps.stages[0].stats.textContent`); strings.HasPrefix(got, "0 page views") {
				t.Errorf("stats %q after clearing the segment", got)
			}
			browsertest.Screenshot(t, ctx, filepath.Join(t.TempDir(), "viewer-mobile.png"), 1400, 1000)
			if dir := os.Getenv("TRAILMAP_SHOTS"); dir != "" {
				browsertest.Screenshot(t, ctx, filepath.Join(dir, "heatmaps-mobile.png"), 1400, 1000)
				do(t, ctx, chromedp.Click(`[data-device=desktop]`))
				ready("desktop again")
				browsertest.Screenshot(t, ctx, filepath.Join(dir, "heatmaps-desktop.png"), 1400, 1000)
				do(t, ctx, chromedp.Navigate(srv.URL+"/heatmaps?project=test&url=/frustration.html&device=desktop&mode=rage"))
				ready("rage map")
				browsertest.Screenshot(t, ctx, filepath.Join(dir, "heatmaps-rage.png"), 1400, 1000)
			}
			if errs := con.Errors(); len(errs) > 0 {
				t.Errorf("console errors: %q", errs)
			}
		})

	})
}
