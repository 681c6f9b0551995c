package heatmap

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"math"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// Rendering. Counts are binned on a grid of CellPx output pixels, smoothed
// with a Gaussian kernel (a stamp precomputed once), normalised by a
// percentile cap and painted through a 256-entry palette, interpolating
// between cell centres.
//
//   - Kernel: Gaussian with σ = SigmaPx (12 px) at the output scale,
//     tapered to zero at 3σ (about 40 px) by a (1 − d²/R²)² window: a
//     click makes a soft blob about 70 px across.
//   - Normalisation: the cap is the CapPercentile (99th) percentile of the
//     smoothed density over non-empty cells; density at or above it is the
//     hottest colour, so one hot spot cannot wash out the rest. Intensity
//     is sqrt(density / cap): the square root keeps areas with a few
//     percent of the top density visible (a lone click shows as a faint
//     blue blot) without flattening the hot spots.
//   - Palette: index 0 is transparent; 1–255 run blue → cyan → lime →
//     yellow → red, with opacity 0.85·sqrt(t) (t = 0..1 along the scale),
//     so the edges of each blot fade out instead of ending in a hard rim.

// Rendering constants (see above).
const (
	SigmaPx       = 12.0
	CapPercentile = 99.0
	MaxWidth      = 4096
	MaxHeight     = 30000
	MinWidth      = 100
)

// stampRadius is the kernel's reach in cells.
var stampRadius = int(math.Ceil(3 * SigmaPx / CellPx))

type stamp struct {
	r int
	w []float32 // (2r+1)² weights, peak 1
}

var kernel = sync.OnceValue(func() stamp {
	r := stampRadius
	n := 2*r + 1
	s := stamp{r: r, w: make([]float32, n*n)}
	sig := SigmaPx / CellPx
	reach := float64(r) + 0.5
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			d2 := float64(dx*dx + dy*dy)
			if d2 >= reach*reach {
				continue
			}
			// The window (1 - d²/R²)² takes the tail smoothly to zero, so the
			// square-root colour scale shows no rim where the stamp ends.
			win := 1 - d2/(reach*reach)
			s.w[(dy+r)*n+dx+r] = float32(math.Exp(-d2/(2*sig*sig)) * win * win)
		}
	}
	return s
})

// Palette is the heat palette: index 0 transparent, then blue → cyan →
// lime → yellow → red with rising opacity.
var Palette = sync.OnceValue(func() color.Palette {
	p := make(color.Palette, 256)
	p[0] = color.NRGBA{}
	stops := [5][3]float64{{0, 0, 255}, {0, 255, 255}, {0, 255, 0}, {255, 255, 0}, {255, 0, 0}}
	for i := 1; i < 256; i++ {
		t := float64(i-1) / 254
		p[i] = gradient(stops, t, max(0.85*math.Sqrt(t), 0.02))
	}
	return p
})

func gradient(stops [5][3]float64, t, alpha float64) color.NRGBA {
	f := t * 4
	k := min(int(f), 3)
	u := f - float64(k)
	c := func(j int) uint8 { return uint8(math.Round(stops[k][j]*(1-u) + stops[k+1][j]*u)) }
	return color.NRGBA{c(0), c(1), c(2), uint8(math.Round(alpha * 255))}
}

// grid holds counts binned in cells of CellPx output pixels.
type grid struct {
	w, h   int // output pixels
	gw, gh int // cells
	v      []float32
	total  float64
}

func newGrid(w, h int) *grid {
	gw, gh := (w+CellPx-1)/CellPx, (h+CellPx-1)/CellPx
	return &grid{w: w, h: h, gw: gw, gh: gh, v: make([]float32, gw*gh)}
}

// add counts n clicks at output pixel (x, y); points outside are dropped.
func (g *grid) add(x, y float64, n float64) {
	if x < 0 || y < 0 {
		return
	}
	cx, cy := int(x)/CellPx, int(y)/CellPx
	if cx >= g.gw || cy >= g.gh {
		return
	}
	g.v[cy*g.gw+cx] += float32(n)
	g.total += n
}

// density smooths the counts with the kernel stamp.
func (g *grid) density() []float32 {
	s := kernel()
	n := 2*s.r + 1
	d := make([]float32, len(g.v))
	for cy := 0; cy < g.gh; cy++ {
		row := g.v[cy*g.gw : (cy+1)*g.gw]
		for cx, c := range row {
			if c == 0 {
				continue
			}
			y0, y1 := max(cy-s.r, 0), min(cy+s.r, g.gh-1)
			x0, x1 := max(cx-s.r, 0), min(cx+s.r, g.gw-1)
			for y := y0; y <= y1; y++ {
				wrow := s.w[(y-cy+s.r)*n+(x0-cx+s.r) : (y-cy+s.r)*n+(x1-cx+s.r)+1]
				drow := d[y*g.gw+x0 : y*g.gw+x1+1]
				for i, w := range wrow {
					drow[i] += c * w
				}
			}
		}
	}
	return d
}

// percentile returns the p-th percentile of the non-zero values of d
// (a 4096-bin histogram: exact to 1/4096 of the maximum), and the maximum.
func percentile(d []float32, p float64) (capV, maxV float32) {
	var n int
	for _, v := range d {
		if v > 0 {
			n++
			maxV = max(maxV, v)
		}
	}
	if n == 0 {
		return 0, 0
	}
	const bins = 4096
	var h [bins]int32
	scale := float32(bins-1) / maxV
	for _, v := range d {
		if v > 0 {
			h[int(v*scale)]++
		}
	}
	want := int(math.Ceil(float64(n) * p / 100))
	acc := 0
	for i := range h {
		acc += int(h[i])
		if acc >= want {
			return max(float32(i+1)/scale, maxV/bins), maxV
		}
	}
	return maxV, maxV
}

// paint turns densities into palette indices at the output size,
// interpolating bilinearly between cell centres.
func paint(g *grid, d []float32, capV float32) *image.Paletted {
	img := image.NewPaletted(image.Rect(0, 0, g.w, g.h), Palette())
	if capV <= 0 {
		return img
	}
	// Intensities per cell, 0..255 scale as float.
	inten := make([]float32, len(d))
	rowUsed := make([]bool, g.gh)
	k := 1 / capV
	for cy := 0; cy < g.gh; cy++ {
		for cx := 0; cx < g.gw; cx++ {
			i := cy*g.gw + cx
			if v := d[i]; v > 0 {
				inten[i] = 255 * float32(math.Sqrt(float64(min(v*k, 1))))
				rowUsed[cy] = true
			}
		}
	}
	// Each output row: interpolate vertically between its two cell rows,
	// then horizontally across each cell's CellPx pixels.
	line := make([]float32, g.gw)
	var frac [CellPx]float32
	for i := range frac {
		frac[i] = float32((float64(i) + 0.5) / CellPx)
	}
	half := CellPx / 2
	for y := 0; y < g.h; y++ {
		fy := (float64(y)+0.5)/CellPx - 0.5
		j0 := int(math.Floor(fy))
		fyw := float32(fy - float64(j0))
		j1 := j0 + 1
		j0, j1 = min(max(j0, 0), g.gh-1), min(max(j1, 0), g.gh-1)
		if !rowUsed[j0] && !rowUsed[j1] {
			continue
		}
		r0, r1 := inten[j0*g.gw:(j0+1)*g.gw], inten[j1*g.gw:(j1+1)*g.gw]
		used := false
		for i := range line {
			v := r0[i] + (r1[i]-r0[i])*fyw
			line[i] = v
			used = used || v >= 1
		}
		if !used {
			continue
		}
		out := img.Pix[y*img.Stride : y*img.Stride+g.w]
		// Pixels left of the first cell centre and right of the last take
		// its value; between centres i and i+1 the value is interpolated.
		fill := func(x0, x1 int, v float32) {
			if v < 1 {
				return
			}
			idx := uint8(min(v+0.5, 255))
			for x := max(x0, 0); x < min(x1, g.w); x++ {
				out[x] = idx
			}
		}
		fill(0, half, line[0])
		for i := 0; i+1 < g.gw; i++ {
			a, b := line[i], line[i+1]
			x0 := i*CellPx + half
			if a < 1 && b < 1 {
				continue
			}
			if x0+CellPx > g.w {
				for k := 0; x0+k < g.w; k++ {
					if v := a + (b-a)*frac[k]; v >= 1 {
						out[x0+k] = uint8(min(v+0.5, 255))
					}
				}
				continue
			}
			seg := out[x0 : x0+CellPx]
			d := b - a
			for k := range seg {
				if v := a + d*frac[k]; v >= 1 {
					seg[k] = uint8(min(v+0.5, 255))
				}
			}
		}
		fill((g.gw-1)*CellPx+half, g.w, line[g.gw-1])
	}
	return img
}

// encodePNG writes a paletted image as a PNG: one IDAT of unfiltered rows
// (maps are flat runs of few colours, which filters do not help), deflated
// at the fastest level with klauspost/compress, about three times as fast as
// image/png on a 1280×6000 map.
func encodePNG(img *image.Paletted) ([]byte, error) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	var buf bytes.Buffer
	buf.Grow(64 << 10)
	buf.WriteString("\x89PNG\r\n\x1a\n")
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 3 // 8-bit palette indexes
	writeChunk(&buf, "IHDR", ihdr[:])
	plte := make([]byte, 0, 3*len(img.Palette))
	trns := make([]byte, 0, len(img.Palette))
	for _, c := range img.Palette {
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		plte = append(plte, n.R, n.G, n.B)
		trns = append(trns, n.A)
	}
	writeChunk(&buf, "PLTE", plte)
	writeChunk(&buf, "tRNS", trns)
	var data bytes.Buffer
	zw, err := zlib.NewWriterLevel(&data, zlib.BestSpeed)
	if err != nil {
		return nil, err
	}
	row := make([]byte, 1+w) // filter byte 0, then the row
	for y := 0; y < h; y++ {
		copy(row[1:], img.Pix[y*img.Stride:y*img.Stride+w])
		if _, err := zw.Write(row); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	writeChunk(&buf, "IDAT", data.Bytes())
	writeChunk(&buf, "IEND", nil)
	return buf.Bytes(), nil
}

func writeChunk(buf *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	buf.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	buf.WriteString(typ)
	buf.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	buf.Write(n[:])
}

// renderHeat smooths, normalises and paints a grid.
func renderHeat(g *grid) (img *image.Paletted, capV, maxV float32) {
	d := g.density()
	capV, maxV = percentile(d, CapPercentile)
	return paint(g, d, capV), capV, maxV
}
