package heatmap

import (
	"bytes"
	"encoding/json"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"
)

// paintReference is the plain bilinear interpolation paint implements.
func paintReference(g *grid, d []float32, capV float32, x, y int) uint8 {
	inten := func(cx, cy int) float64 {
		cx, cy = min(max(cx, 0), g.gw-1), min(max(cy, 0), g.gh-1)
		v := d[cy*g.gw+cx]
		if v <= 0 {
			return 0
		}
		return 255 * math.Sqrt(math.Min(float64(v/capV), 1))
	}
	fx, fy := (float64(x)+0.5)/CellPx-0.5, (float64(y)+0.5)/CellPx-0.5
	x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
	ux, uy := fx-float64(x0), fy-float64(y0)
	top := inten(x0, y0)*(1-ux) + inten(x0+1, y0)*ux
	bot := inten(x0, y0+1)*(1-ux) + inten(x0+1, y0+1)*ux
	v := top*(1-uy) + bot*uy
	if v < 1 {
		return 0
	}
	return uint8(math.Min(v+0.5, 255))
}

func TestPaint(t *testing.T) {
	tests := []struct {
		name   string
		w, h   int
		points int
	}{
		{"aligned", 320, 240, 300},
		{"odd size", 317, 203, 50},
		{"single click", 100, 100, 1},
		{"empty", 64, 64, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tt.w)))
			g := newGrid(tt.w, tt.h)
			for range tt.points {
				g.add(r.Float64()*float64(tt.w), r.Float64()*float64(tt.h), 1+float64(r.IntN(5)))
			}
			d := g.density()
			capV, _ := percentile(d, CapPercentile)
			img := paint(g, d, capV)
			if img.Rect.Dx() != tt.w || img.Rect.Dy() != tt.h {
				t.Fatalf("size %v", img.Rect)
			}
			bad := 0
			for y := 0; y < tt.h; y++ {
				for x := 0; x < tt.w; x++ {
					got, want := int(img.Pix[y*img.Stride+x]), int(paintReference(g, d, capV, x, y))
					if got-want > 1 || want-got > 1 {
						if bad++; bad < 5 {
							t.Errorf("pixel (%d, %d) = %d, reference %d", x, y, got, want)
						}
					}
				}
			}
		})
	}
}

func TestRender_HotAndCold(t *testing.T) {
	g := newGrid(1280, 2000)
	for range 100 {
		g.add(300, 500, 1) // a button
	}
	g.add(1000, 1500, 1) // a lone click
	img, capV, maxV := renderHeat(g)
	if capV <= 0 || maxV < capV {
		t.Fatalf("cap %g max %g", capV, maxV)
	}
	at := func(x, y int) color.NRGBA {
		return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
	}
	if c := at(300, 500); c.R < 200 || c.B > 50 || c.A < 180 {
		t.Errorf("hot spot not red: %v", c)
	}
	if c := at(1000, 1500); c.A == 0 || c.B < 150 || c.R > 50 {
		t.Errorf("lone click not a faint blue: %v", c)
	}
	for _, p := range [][2]int{{300, 560}, {10, 10}, {1270, 1990}, {650, 1000}} {
		if c := at(p[0], p[1]); c.A != 0 {
			t.Errorf("not transparent at %v: %v", p, c)
		}
	}
}

func TestEncodePNG(t *testing.T) {
	g := newGrid(333, 77)
	g.add(100, 30, 10)
	g.add(250, 60, 1)
	img, _, _ := renderHeat(g)
	b, err := encodePNG(img)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if dec.Bounds() != img.Bounds() {
		t.Fatalf("bounds %v, want %v", dec.Bounds(), img.Bounds())
	}
	for y := 0; y < 77; y++ {
		for x := 0; x < 333; x++ {
			r1, g1, b1, a1 := dec.At(x, y).RGBA()
			r2, g2, b2, a2 := img.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				t.Fatalf("pixel (%d, %d) decodes as %v, want %v", x, y, dec.At(x, y), img.At(x, y))
			}
		}
	}
}

func TestPalette(t *testing.T) {
	p := Palette()
	if len(p) != 256 {
		t.Fatalf("%d entries", len(p))
	}
	c := func(i int) color.NRGBA { return p[i].(color.NRGBA) }
	if c(0).A != 0 {
		t.Errorf("index 0 not transparent: %v", c(0))
	}
	want := map[int]color.NRGBA{1: {0, 0, 255, 0}, 64: {0, 255, 255, 0}, 128: {0, 255, 0, 0}, 191: {255, 255, 0, 0}, 255: {255, 0, 0, 0}}
	for i, w := range want {
		got := c(i)
		if d := int(got.R) - int(w.R) + int(got.G) - int(w.G) + int(got.B) - int(w.B); d > 6 || d < -6 {
			t.Errorf("entry %d = %v, want about %v", i, got, w)
		}
	}
	for i := 2; i < 256; i++ {
		if c(i).A < c(i-1).A {
			t.Fatalf("opacity falls at %d", i)
		}
	}
}

func TestPercentile(t *testing.T) {
	d := make([]float32, 1000)
	for i := range 100 {
		d[i] = float32(i + 1) // 1..100 among zeros
	}
	capV, maxV := percentile(d, 99)
	if maxV != 100 || capV < 98 || capV > 100.1 {
		t.Errorf("cap %g max %g, want about 99 and 100", capV, maxV)
	}
	d[0] = 1e6 // one outlier does not move the cap
	capV, _ = percentile(d, 90)
	if capV > 1e6/4096*2 {
		t.Errorf("cap %g follows the outlier", capV)
	}
	if c, m := percentile(make([]float32, 10), 99); c != 0 || m != 0 {
		t.Errorf("empty: %g %g", c, m)
	}
}

func TestCells(t *testing.T) {
	tests := []struct {
		name string
		in   cells
	}{
		{"empty", cells{}},
		{"one", cells{5: 1}},
		{"sparse", cells{0: 3, 159: 1, 2047: 1 << 40, 70: 9}},
		{"zeros and negatives dropped", cells{1: 0, 2: -3, 3: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cells{}
			if err := addCells(got, encodeCells(tt.in)); err != nil {
				t.Fatal(err)
			}
			for i, n := range tt.in {
				if n > 0 && got[i] != n {
					t.Errorf("cell %d = %d, want %d", i, got[i], n)
				}
				if n <= 0 && got[i] != 0 {
					t.Errorf("cell %d kept %d", i, got[i])
				}
			}
		})
	}
	if err := addCells(cells{}, []byte{0x80}); err == nil {
		t.Error("truncated blob accepted")
	}
}

func TestPageRules_PageKey(t *testing.T) {
	rules := PageRules{QueryParams: []string{"lang", "id"}, Groups: []string{"/product/*", "/docs/**", "/blog/*.html"}}
	tests := []struct {
		name  string
		rules PageRules
		url   string
		want  string
	}{
		{"path only", PageRules{}, "https://a.test/shop/cart?x=1#top", "/shop/cart"},
		{"root", PageRules{}, "https://a.test", "/"},
		{"trailing slash", PageRules{}, "https://a.test/about/", "/about"},
		{"bare path", PageRules{}, "/about?x=1", "/about"},
		{"allowed params sorted", rules, "https://a.test/search?q=x&lang=de&id=4", "/search?id=4&lang=de"},
		{"group", rules, "https://a.test/product/1234?lang=en", "/product/*?lang=en"},
		{"group does not match deeper paths", rules, "https://a.test/product/1234/reviews", "/product/1234/reviews"},
		{"rest-of-path group", rules, "https://a.test/docs/a/b/c", "/docs/**"},
		{"segment pattern", rules, "https://a.test/blog/hello.html", "/blog/*.html"},
		{"key is stable", rules, "/product/*?lang=en", "/product/*?lang=en"},
		{"hash routes", PageRules{IncludeHash: true}, "https://a.test/app#/settings", "/app#/settings"},
		{"hash ignored", PageRules{}, "https://a.test/app#/settings", "/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rules.PageKey(tt.url); got != tt.want {
				t.Errorf("PageKey(%q) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    Frustration
		wantErr bool
	}{
		{"empty", `{}`, DefaultSettings().Frustration, false},
		{"other keys only", `{"redact_params":["token"]}`, DefaultSettings().Frustration, false},
		{"overrides", `{"frustration":{"rage_clicks":5,"rage_radius_px":20,"dead_window_ms":4000}}`,
			Frustration{RageClicks: 5, RageRadiusPx: 20, RageWindowMS: 1000, DeadWindowMS: 4000, ErrorWindowMS: 1000}, false},
		{"nonsense values fall back", `{"frustration":{"rage_clicks":1,"error_window_ms":-4}}`, DefaultSettings().Frustration, false},
		{"bad json", `{"heatmap":[`, DefaultSettings().Frustration, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSettings(json.RawMessage(tt.raw))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v", err)
			}
			if s.Frustration != tt.want {
				t.Errorf("%+v, want %+v", s.Frustration, tt.want)
			}
		})
	}
}
