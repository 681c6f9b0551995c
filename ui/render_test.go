package ui_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailmap/trailmap/internal/servertest"
)

// Renders: a recorded clip turned into MP4, WebM and GIF by the server
// (headless Chromium + ffmpeg), checked with ffprobe and by looking at
// frames ffmpeg extracts.

// renderSite records a 12 s visit of a page with a red header, a line of
// text and, from 5 s on, a blue box at (400,300)–(600,400) of its 1280×800
// viewport; clicks every second, three quick ones at 9 s. The page asks
// for an image from site (a server that counts requests).
func renderSite(t testing.TB, s *servertest.Server, session, site string) int64 {
	t.Helper()
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	snap := `{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[` +
		`{"type":2,"id":3,"tagName":"head","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"style","attributes":{},"childNodes":[` +
		`{"type":3,"id":5,"isStyle":true,"textContent":"body{margin:0;background:#fff;font:32px sans-serif} #top{height:80px;background:rgb(200,30,30)} #box{position:absolute;left:400px;top:300px;width:200px;height:100px;background:rgb(20,60,200)} p{margin:20px 40px;color:#000}"}]}]},` +
		`{"type":2,"id":6,"tagName":"body","attributes":{},"childNodes":[` +
		`{"type":2,"id":7,"tagName":"div","attributes":{"id":"top"},"childNodes":[]},` +
		`{"type":2,"id":8,"tagName":"p","attributes":{},"childNodes":[{"type":3,"id":9,"textContent":"Checkout total: 42 EUR"}]},` +
		`{"type":2,"id":10,"tagName":"img","attributes":{"src":"` + site + `/logo.png","width":"10","height":"10"},"childNodes":[]}]}]}]}`
	evs := []json.RawMessage{
		json.RawMessage(fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/checkout","width":1280,"height":800}}`, t0)),
		json.RawMessage(fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":%s,"initialOffset":{"top":0,"left":0}}}`, t0+1, snap)),
	}
	for i := 1; i <= 11; i++ {
		ts := t0 + int64(i)*1000
		evs = append(evs, json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":1,"positions":[{"x":%d,"y":%d,"id":6,"timeOffset":-100}]}}`, ts-200, 100+i*50, 500)))
		evs = append(evs, json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":6,"x":%d,"y":%d}}`, ts, 100+i*50, 500)))
		if i == 5 {
			evs = append(evs, json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":0,"texts":[],"attributes":[],"removes":[],"adds":[{"parentId":6,"nextId":null,"node":{"type":2,"id":11,"tagName":"div","attributes":{"id":"box"},"childNodes":[]}}]}}`, ts+10)))
		}
		if i == 9 {
			for k := 1; k <= 3; k++ {
				evs = append(evs, json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":6,"x":%d,"y":%d}}`, ts+int64(k)*120, 100+i*50, 500)))
			}
		}
	}
	evs = append(evs, json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":3,"id":1,"x":0,"y":0}}`, t0+12000)))
	ingest(t, s, s.WriteKey, session, 0, evs)
	waitSession(t, s, session, len(evs))
	return t0
}

// countingSite is a recorded site that must see no request from a render.
func countingSite(t testing.TB) (string, *atomic.Int64) {
	var n atomic.Int64
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNotFound)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String(), &n
}

type renderJob struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Progress  int    `json:"progress"`
	Error     string `json:"error"`
	Attempts  int    `json:"attempts"`
	SizeBytes int64  `json:"size_bytes"`
	FileURL   string `json:"file_url"`
	FileName  string `json:"file_name"`
	StatusURL string `json:"status_url"`
}

func submitRender(t testing.TB, s *servertest.Server, body string) renderJob {
	t.Helper()
	resp := s.Request(t, http.MethodPost, "/api/v1/renders", []byte(body))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/renders %s: %d %s", body, resp.StatusCode, b)
	}
	var j renderJob
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// waitRender polls a job until it ends and returns it.
func waitRender(t testing.TB, s *servertest.Server, id string, limit time.Duration) renderJob {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var j renderJob
		s.GetJSON(t, "/api/v1/renders/"+id, &j)
		switch j.Status {
		case "done", "failed", "canceled":
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("render %s still %s (%d%%) after %s\n%s", id, j.Status, j.Progress, limit, tailLogs(s))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tailLogs(s *servertest.Server) string {
	l := s.Logs()
	if len(l) > 4000 {
		l = l[len(l)-4000:]
	}
	return l
}

// fetchRender downloads a finished render into dir and returns its path.
func fetchRender(t testing.TB, s *servertest.Server, j renderJob, dir string) string {
	t.Helper()
	if j.Status != "done" {
		t.Fatalf("render %s: %s %s", j.ID, j.Status, j.Error)
	}
	resp := s.Request(t, http.MethodGet, "/api/v1/renders/"+j.ID+"/file", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || int64(len(b)) != j.SizeBytes {
		t.Fatalf("render file: %d, %d bytes (job says %d): %.200s", resp.StatusCode, len(b), j.SizeBytes, b)
	}
	if !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("render file Content-Disposition %q", resp.Header.Get("Content-Disposition"))
	}
	p := filepath.Join(dir, j.FileName)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type probe struct {
	Streams []struct {
		CodecName    string `json:"codec_name"`
		PixFmt       string `json:"pix_fmt"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		NbReadFrames string `json:"nb_read_frames"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t testing.TB, file string) (probe, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v %s", file, err, out)
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return p, d
}

// frameAt extracts the frame shown at sec of a video as an image.
func frameAt(t testing.TB, file string, sec float64) image.Image {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", strconv.FormatFloat(sec, 'f', 3, 64), "-i", file,
		"-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-").Output()
	if err != nil {
		t.Fatalf("extract frame at %.2fs of %s: %v", sec, file, err)
	}
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func rgbAt(img image.Image, x, y int) (int, int, int) {
	r, g, b, _ := img.At(x, y).RGBA()
	return int(r >> 8), int(g >> 8), int(b >> 8)
}

func isBlue(r, g, b int) bool { return b > 150 && r < 80 && g < 110 }

func needRenderTools(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test installs it)", tool)
		}
	}
}

func TestRender_Formats(t *testing.T) {
	needRenderTools(t)
	site, hits := countingSite(t)
	s := start(t, "--assets=false", "--render-workers=1")
	renderSite(t, s, "render-session-01", site)
	hits.Store(0)
	dir := t.TempDir()

	// MP4, 720p, 10 fps, 2×: 10 s of recording in 5 s of video.
	mp4 := submitRender(t, s, `{"session_id":"render-session-01","start_ms":1000,"end_ms":11000,"format":"mp4","size":"720p","fps":10,"speed":2,"caption":true,"title":"Checkout trouble"}`)
	if mp4.Status != "queued" && mp4.Status != "running" {
		t.Fatalf("new render is %q", mp4.Status)
	}
	began := time.Now()
	j := waitRender(t, s, mp4.ID, 3*time.Minute)
	took := time.Since(began)
	file := fetchRender(t, s, j, dir)
	p, dur := ffprobe(t, file)
	st := p.Streams[0]
	t.Logf("mp4: %s %s %dx%d %.2fs, %d KB, rendered in %s", st.CodecName, st.PixFmt, st.Width, st.Height, dur, j.SizeBytes>>10, took.Round(time.Millisecond))
	if st.CodecName != "h264" || st.PixFmt != "yuv420p" || st.Width != 1280 || st.Height != 720 {
		t.Errorf("mp4 stream %+v", st)
	}
	if dur < 4.5 || dur > 5.5 {
		t.Errorf("mp4 lasts %.2fs, want 5 ± 0.5", dur)
	}
	if head, _ := os.ReadFile(file); !bytes.Contains(head[:min(len(head), 4096)], []byte("moov")) {
		t.Error("mp4 index (moov) is not at the start: not +faststart")
	}
	// The recording (1280×800) is fitted into 1280×(720 − caption bar):
	// find its red header, then the box at its recorded place.
	before, after := frameAt(t, file, 1.0), frameAt(t, file, 3.5) // clip 2 s (recording 3 s) and clip 7 s (recording 8 s)
	for _, f := range []image.Image{before, after} {
		if err := os.WriteFile(filepath.Join(shotDir(t), fmt.Sprintf("19-render-frame-%p.png", f)), encodePNG(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sc, ox, oy := fitOf(t, after)
	bx, by := ox+int(500*sc), oy+int(350*sc)
	if r, g, b := rgbAt(after, bx, by); !isBlue(r, g, b) {
		t.Errorf("at 3.5 s the box's place (%d,%d) is %d,%d,%d, want blue", bx, by, r, g, b)
	}
	if r, g, b := rgbAt(before, bx, by); isBlue(r, g, b) {
		t.Errorf("at 1 s the box (added at 5 s of recording) is already there")
	}
	// The text line under the header: dark pixels in its band.
	dark := 0
	for y := oy + int(100*sc); y < oy+int(140*sc); y++ {
		for x := ox + int(40*sc); x < ox+int(400*sc); x++ {
			if r, g, b := rgbAt(after, x, y); r < 90 && g < 90 && b < 90 {
				dark++
			}
		}
	}
	if dark < 100 {
		t.Errorf("%d dark pixels where the page's text is: no text drawn", dark)
	}
	// The caption bar at the bottom: dark with light text.
	light := 0
	for y := 660; y < 720; y++ {
		for x := 0; x < 640; x++ {
			if r, g, b := rgbAt(after, x, y); r > 180 && g > 180 && b > 180 {
				light++
			}
		}
	}
	if r, g, b := rgbAt(after, 2, 716); r > 50 || g > 50 || b > 60 || light < 100 {
		t.Errorf("no caption bar: corner %d,%d,%d, %d light pixels", r, g, b, light)
	}

	// WebM (VP9), 1×, 4 s.
	webm := submitRender(t, s, `{"session_id":"render-session-01","start_ms":4000,"end_ms":8000,"format":"webm","fps":12}`)
	file = fetchRender(t, s, waitRender(t, s, webm.ID, 3*time.Minute), dir)
	p, dur = ffprobe(t, file)
	t.Logf("webm: %s %s %dx%d %.2fs", p.Streams[0].CodecName, p.Streams[0].PixFmt, p.Streams[0].Width, p.Streams[0].Height, dur)
	if p.Streams[0].CodecName != "vp9" || p.Streams[0].Width != 1280 || dur < 3.5 || dur > 4.5 {
		t.Errorf("webm: %+v %.2fs", p.Streams[0], dur)
	}

	// GIF, 10 fps, 3 s: 30 frames.
	gif := submitRender(t, s, `{"session_id":"render-session-01","start_ms":8000,"end_ms":11000,"format":"gif","fps":10}`)
	gj := waitRender(t, s, gif.ID, 3*time.Minute)
	file = fetchRender(t, s, gj, dir)
	p, dur = ffprobe(t, file)
	t.Logf("gif: %dx%d %s frames, %.2fs, %d KB", p.Streams[0].Width, p.Streams[0].Height, p.Streams[0].NbReadFrames, dur, gj.SizeBytes>>10)
	if p.Streams[0].CodecName != "gif" || p.Streams[0].NbReadFrames != "30" {
		t.Errorf("gif: %+v", p.Streams[0])
	}
	// The rage click at 9 s is marked: red pixels around it at 9.2 s.
	rage := frameAt(t, file, 1.3)
	os.WriteFile(filepath.Join(shotDir(t), "19-render-rage.png"), encodePNG(t, rage), 0o644)

	// The same request again is served from the cache at once.
	again := submitRender(t, s, `{"session_id":"render-session-01","start_ms":4000,"end_ms":8000,"format":"webm","fps":12}`)
	if again.Status != "done" || again.ID == webm.ID {
		t.Errorf("an equal request: %+v, want a new job done at once", again)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the recorded site got %d requests during renders", n)
	}
}

// fitOf finds how the recording was fitted into a frame: the scale and
// the top-left corner of its red header.
func fitOf(t testing.TB, img image.Image) (scale float64, ox, oy int) {
	t.Helper()
	b := img.Bounds()
	red := func(x, y int) bool { r, g, bl := rgbAt(img, x, y); return r > 160 && g < 80 && bl < 80 }
	oy = -1
	for y := 0; y < b.Dy()/2 && oy < 0; y++ {
		if red(b.Dx()/2, y) {
			oy = y
		}
	}
	if oy < 0 {
		t.Fatal("no red header in the frame")
	}
	ox = 0
	for ox < b.Dx()/2 && !red(ox, oy+5) {
		ox++
	}
	x1 := b.Dx() - 1
	for x1 > b.Dx()/2 && !red(x1, oy+5) {
		x1--
	}
	return float64(x1-ox+1) / 1280, ox, oy
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
