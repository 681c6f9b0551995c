package ui_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

// GET /api/v1/heatmaps/report.png: the page as recorded, drawn by headless
// Chromium, with the click heat over it, a caption band and a legend.
// reportSetup records 30 clicks on a page with a red header and a button
// and waits until the heatmap has them; q is the page's map query.
func reportSetup(t testing.TB) (*servertest.Server, string) {
	t.Helper()
	s := start(t)
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	snap := `{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[` +
		`{"type":2,"id":3,"tagName":"head","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"style","attributes":{},"childNodes":[` +
		`{"type":3,"id":5,"isStyle":true,"textContent":"body{margin:0;background:#fff} #top{height:80px;background:rgb(200,30,30)} #buy{position:absolute;left:100px;top:300px;width:200px;height:60px;background:rgb(230,230,230);border:0} #tall{height:1500px}"}]}]},` +
		`{"type":2,"id":6,"tagName":"body","attributes":{},"childNodes":[` +
		`{"type":2,"id":7,"tagName":"div","attributes":{"id":"top"},"childNodes":[]},` +
		`{"type":2,"id":8,"tagName":"button","attributes":{"id":"buy"},"childNodes":[{"type":3,"id":9,"textContent":"Buy"}]},` +
		`{"type":2,"id":10,"tagName":"div","attributes":{"id":"tall"},"childNodes":[]}]}]}]}`
	evs := []json.RawMessage{
		json.RawMessage(fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/report","width":1280,"height":800}}`, t0)),
		json.RawMessage(fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":%s,"initialOffset":{"top":0,"left":0}}}`, t0+1, snap)),
		// The page's height, as recorder.js reports it (for the scroll map).
		json.RawMessage(fmt.Sprintf(`{"type":5,"timestamp":%d,"data":{"tag":"trailmap/doc","payload":{"width":1280,"height":1600}}}`, t0+2)),
	}
	for i := range 30 {
		ts := t0 + 1000 + int64(i)*700
		evs = append(evs,
			json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":1,"id":8,"x":%d,"y":%d}}`, ts-50, 150+i%3, 320+i%3)),
			json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":8,"x":%d,"y":%d}}`, ts, 150+i%3, 320+i%3)))
	}
	ingest(t, s, s.WriteKey, "report-session-01", 0, evs)
	waitSession(t, s, "report-session-01", len(evs))
	rng := "&from=" + time.UnixMilli(t0).Add(-24*time.Hour).UTC().Format(time.RFC3339) + "&to=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	q := "?url=https://shop.test/report" + rng
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var m struct {
			Clicks int `json:"clicks"`
		}
		resp := s.Request(t, http.MethodGet, "/api/v1/heatmaps/clicks"+q+fmt.Sprintf("&limit=%d", 100+int(time.Now().UnixNano()/1e8%800)), nil)
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if m.Clicks == 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heatmap has %d clicks, want 30", m.Clicks)
		}
	}
	return s, q
}

func TestHeatmapReportPNG(t *testing.T) {
	s, q := reportSetup(t)
	resp := s.Request(t, http.MethodGet, "/api/v1/heatmaps/report.png"+q, nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("report.png: %d %s %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() != 1280 || b.Dy() < 1500 {
		t.Errorf("report is %dx%d, want 1280 wide and the whole page high", b.Dx(), b.Dy())
	}
	rgb := func(x, y int) (int, int, int) {
		r, g, bl, _ := img.At(x, y).RGBA()
		return int(r >> 8), int(g >> 8), int(bl >> 8)
	}
	// The caption band: dark, with light text in it.
	if r, g, bl := rgb(3, 3); r > 40 || g > 40 || bl > 60 {
		t.Errorf("top-left pixel %d,%d,%d: no caption band", r, g, bl)
	}
	light := 0
	for y := 0; y < 40; y++ {
		for x := 0; x < 600; x++ {
			if r, g, bl := rgb(x, y); r > 180 && g > 180 && bl > 180 {
				light++
			}
		}
	}
	if light < 200 {
		t.Errorf("%d light pixels in the caption band: no caption text", light)
	}
	// The page's red header, below the band.
	top := -1
	for y := 0; y < 200; y++ {
		if r, g, bl := rgb(900, y); r > 180 && g < 60 && bl < 60 {
			top = y
			break
		}
	}
	if top < 0 {
		t.Fatal("the page's header colour is not in the report")
	}
	// Hot under the click cluster (page 150,320), cold far from it.
	if r, g, bl := rgb(151, top+321); r < 180 || r < bl+60 {
		t.Errorf("under the clicks %d,%d,%d: not hot", r, g, bl)
	}
	if r, g, bl := rgb(900, top+1200); r < 240 || g < 240 || bl < 240 {
		t.Errorf("far from the clicks %d,%d,%d: not the page's white", r, g, bl)
	}
	t.Logf("report %dx%d, %d KB; page from y=%d", b.Dx(), b.Dy(), len(body)>>10, top)
	if err := os.WriteFile(filepath.Join(shotDir(t), "18-heatmap-report.png"), body, 0o644); err != nil {
		t.Fatal(err)
	}

	// Compare: two ranges side by side, each half with its caption.
	from2 := time.Now().Add(-72 * time.Hour).UTC().Format(time.RFC3339)
	resp = s.Request(t, http.MethodGet, "/api/v1/heatmaps/report.png"+q+"&from2="+from2+"&to2="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("compare: %d %.300s", resp.StatusCode, body)
	}
	cmp, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if w := cmp.Bounds().Dx(); w != 2*1280+16 {
		t.Errorf("compare image %d wide, want two 1280 halves and a 16 px gap", w)
	}
	for _, x0 := range []int{0, 1280 + 16} {
		light := 0
		for y := 0; y < 40; y++ {
			for x := x0; x < x0+600; x++ {
				r, g, bl, _ := cmp.At(x, y).RGBA()
				if r>>8 > 180 && g>>8 > 180 && bl>>8 > 180 {
					light++
				}
			}
		}
		if r, _, _, _ := cmp.At(x0+3, 3).RGBA(); r>>8 > 40 || light < 200 {
			t.Errorf("half at x=%d: no caption band with text (%d light pixels)", x0, light)
		}
	}
	if err := os.WriteFile(filepath.Join(shotDir(t), "19-heatmap-compare.png"), body, 0o644); err != nil {
		t.Fatal(err)
	}

	// The scroll map over the page: the part every view saw (above the
	// fold, 800 px) is tinted red, the part nobody scrolled to blue.
	resp = s.Request(t, http.MethodGet, "/api/v1/heatmaps/report.png"+q+"&mode=scroll", nil)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scroll report: %d %.300s", resp.StatusCode, body)
	}
	sc, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	at := func(x, y int) (int, int, int) {
		r, g, bl, _ := sc.At(x, y).RGBA()
		return int(r >> 8), int(g >> 8), int(bl >> 8)
	}
	seen, unseen := top+600, top+1400
	if r, g, bl := at(900, seen); r < bl+60 || g > 200 {
		t.Errorf("above the fold %d,%d,%d: not red", r, g, bl)
	}
	if r, g, bl := at(900, unseen); bl < r+60 {
		t.Errorf("below what anyone saw %d,%d,%d: not blue", r, g, bl)
	}
	if err := os.WriteFile(filepath.Join(shotDir(t), "19-heatmap-scroll-report.png"), body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkHeatmapReport: time to the first report image of a page (cold:
// headless Chromium started, the snapshot rebuilt, two screenshots) and
// to the same image again (cached for 5 minutes).
func BenchmarkHeatmapReport(b *testing.B) {
	s, q := reportSetup(b)
	get := func(query string) time.Duration {
		start := time.Now()
		resp := s.Request(b, http.MethodGet, "/api/v1/heatmaps/report.png"+query, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("report.png: %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	var cold, cached time.Duration
	for i := range b.N {
		cold += get(q + fmt.Sprintf("&width=%d", 1200+i)) // a query not asked before
		cached += get(q + fmt.Sprintf("&width=%d", 1200+i))
	}
	b.ReportMetric(float64(cold.Milliseconds())/float64(b.N), "cold-ms")
	b.ReportMetric(float64(cached.Microseconds())/1000/float64(b.N), "cached-ms")
}
