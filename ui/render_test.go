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

	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
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

func apiCall(t testing.TB, s *servertest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	resp := s.Request(t, method, path, b)
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// A share's render holds its range and nothing else; the link's viewers
// may render it only when the sharer allowed it, and a revoked link's
// renders are gone.
func TestRender_Shares(t *testing.T) {
	needRenderTools(t)
	site, _ := countingSite(t)
	s := start(t, "--assets=false", "--render-workers=1")
	renderSite(t, s, "render-share-01", site)
	dir := t.TempDir()

	st, sh := apiCall(t, s, http.MethodPost, "/api/v1/shares", `{"session_id":"render-share-01","start_ms":3000,"end_ms":6000,"title":"Box appears","allow_video":true}`)
	if st != http.StatusCreated {
		t.Fatalf("share: %d %v", st, sh)
	}
	share := sh["share"].(map[string]any)
	shareID := int64(share["id"].(float64))
	token := sh["token"].(string)
	if share["allow_video"] != true {
		t.Errorf("share allow_video: %v", share["allow_video"])
	}

	// From the dashboard, by share id: whatever range is asked, the share's.
	j := submitRender(t, s, fmt.Sprintf(`{"share":%d,"start_ms":0,"end_ms":12000,"format":"mp4","fps":10}`, shareID))
	done := waitRender(t, s, j.ID, 3*time.Minute)
	file := fetchRender(t, s, done, dir)
	_, dur := ffprobe(t, file)
	if dur < 2.5 || dur > 3.5 {
		t.Errorf("share render lasts %.2fs, want the share's 3 s", dur)
	}
	// The box comes at 5 s of the recording, 2 s into the share: not in
	// its first frame, in its last; nothing before 3 s is shown.
	first, last := frameAt(t, file, 0), frameAt(t, file, dur-0.15)
	sc, ox, oy := fitOf(t, last)
	bx, by := ox+int(500*sc), oy+int(350*sc)
	if r, g, b := rgbAt(first, bx, by); isBlue(r, g, b) {
		t.Error("the share's first frame shows the box")
	}
	if r, g, b := rgbAt(last, bx, by); !isBlue(r, g, b) {
		t.Errorf("the share's last frame lacks the box: %d,%d,%d", r, g, b)
	}

	// From the public link, without an account.
	resp, err := http.Post(s.URL+"/s/"+token+"/renders", "application/json", strings.NewReader(`{"format":"gif","fps":5}`))
	if err != nil {
		t.Fatal(err)
	}
	var pub renderJob
	json.NewDecoder(resp.Body).Decode(&pub)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.HasPrefix(pub.StatusURL, "/s/"+token+"/renders/") {
		t.Fatalf("public render: %d %+v", resp.StatusCode, pub)
	}
	for deadline := time.Now().Add(3 * time.Minute); pub.Status != "done"; time.Sleep(200 * time.Millisecond) {
		r, err := http.Get(s.URL + pub.StatusURL)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(r.Body).Decode(&pub)
		r.Body.Close()
		if pub.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("public render: %+v", pub)
		}
	}
	r, _ := http.Get(s.URL + pub.FileURL)
	gif, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !bytes.HasPrefix(gif, []byte("GIF89a")) {
		t.Fatalf("public render file: %d %.20q", r.StatusCode, gif)
	}
	// Another link's token sees none of these jobs.
	_, sh2 := apiCall(t, s, http.MethodPost, "/api/v1/shares", `{"session_id":"render-share-01","start_ms":0,"end_ms":2000}`)
	token2 := sh2["token"].(string)
	if r, _ := http.Get(s.URL + "/s/" + token2 + "/renders/" + pub.ID); r.StatusCode != http.StatusForbidden {
		t.Errorf("job through a link that allows no video: %d", r.StatusCode)
	}
	if r, _ := http.Post(s.URL+"/s/"+token2+"/renders", "application/json", strings.NewReader(`{}`)); r.StatusCode != http.StatusForbidden {
		t.Errorf("render through a link that allows no video: %d", r.StatusCode)
	}

	// Revoked: the link's renders are gone, from the dashboard too.
	if st, _ := apiCall(t, s, http.MethodDelete, fmt.Sprintf("/api/v1/shares/%d", shareID), ""); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	if r, _ := http.Get(s.URL + pub.FileURL); r.StatusCode != http.StatusGone {
		t.Errorf("public file after revoke: %d", r.StatusCode)
	}
	if st, m := apiCall(t, s, http.MethodGet, "/api/v1/renders/"+j.ID+"/file", ""); st != http.StatusGone {
		t.Errorf("dashboard file of a revoked share's render: %d %v", st, m)
	}
}

// Bad requests get clear 4xx answers; cancel stops a render.
func TestRender_BadInputAndCancel(t *testing.T) {
	needRenderTools(t)
	site, _ := countingSite(t)
	s := start(t, "--assets=false", "--render-workers=1", "--render-max-clip=1m", "--render-per-user=2")
	renderSite(t, s, "render-bad-01", site)
	for _, tc := range []struct {
		body string
		code int
		err  string
	}{
		{`{"session_id":"render-bad-01","start_ms":0,"end_ms":5000,"format":"avi"}`, 400, "bad_request"},
		{`{"session_id":"render-bad-01","start_ms":0,"end_ms":5000,"fps":60}`, 400, "bad_request"},
		{`{"session_id":"render-bad-01","start_ms":0,"end_ms":5000,"speed":16}`, 400, "bad_request"},
		{`{"session_id":"render-bad-01","start_ms":0,"end_ms":5000,"size":"4k"}`, 400, "bad_request"},
		{`{"session_id":"render-bad-01","start_ms":5000,"end_ms":1000}`, 400, "bad_request"},
		{`{"session_id":"render-bad-01","start_ms":0}`, 400, "bad_request"},
		{`{"session_id":"render-bad-01","start_ms":60000,"end_ms":70000}`, 400, "bad_request"},
		{`{"session_id":"nope","start_ms":0,"end_ms":5000}`, 404, "not_found"},
		{`{"share":99,"start_ms":0,"end_ms":5000}`, 404, "not_found"},
		{`{}`, 400, "bad_request"},
		{`not json`, 400, "bad_request"},
	} {
		st, m := apiCall(t, s, http.MethodPost, "/api/v1/renders", tc.body)
		if st != tc.code || errCode(m) != tc.err {
			t.Errorf("%s: %d %v, want %d %s", tc.body, st, m, tc.code, tc.err)
		}
	}
	// Unauthenticated.
	if r, _ := http.Post(s.URL+"/api/v1/renders", "application/json", strings.NewReader(`{}`)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.StatusCode)
	}
	if st, _ := apiCall(t, s, http.MethodGet, "/api/v1/renders/rnope", ""); st != http.StatusNotFound {
		t.Errorf("unknown render: %d", st)
	}

	// A long render (1080p, 30 fps), canceled while it runs.
	long := submitRender(t, s, `{"session_id":"render-bad-01","start_ms":0,"end_ms":12000,"size":"1080p","fps":30}`)
	if st, m := apiCall(t, s, http.MethodGet, "/api/v1/renders/"+long.ID+"/file", ""); st != http.StatusConflict || errCode(m) != "not_ready" {
		t.Errorf("file of a running render: %d %v", st, m)
	}
	other := submitRender(t, s, `{"session_id":"render-bad-01","start_ms":0,"end_ms":3000,"fps":5}`)
	if st, m := apiCall(t, s, http.MethodPost, "/api/v1/renders", `{"session_id":"render-bad-01","start_ms":0,"end_ms":4000,"fps":5}`); st != http.StatusTooManyRequests || errCode(m) != "too_many_renders" {
		t.Errorf("third render in flight: %d %v", st, m)
	}
	st, m := apiCall(t, s, http.MethodDelete, "/api/v1/renders/"+long.ID, "")
	if st != http.StatusOK || m["status"] != "canceled" {
		t.Fatalf("cancel: %d %v", st, m)
	}
	// The worker lets go and takes the next job.
	if j := waitRender(t, s, other.ID, 3*time.Minute); j.Status != "done" {
		t.Errorf("the render after a canceled one: %+v", j)
	}
	if j := waitRender(t, s, long.ID, time.Second); j.Status != "canceled" {
		t.Errorf("canceled render: %+v", j)
	}
	if st, _ := apiCall(t, s, http.MethodGet, "/api/v1/renders/"+long.ID+"/file", ""); st != http.StatusConflict {
		t.Errorf("file of a canceled render: %d", st)
	}
}

// A node killed during a render: after its restart the job is taken again
// (its lease ran out) and finishes once; no half file is ever served.
func TestRender_KilledNodeResumes(t *testing.T) {
	needRenderTools(t)
	site, _ := countingSite(t)
	s := start(t, "--assets=false", "--render-workers=1", "--render-lease=2s")
	renderSite(t, s, "render-kill-01", site)
	j := submitRender(t, s, `{"session_id":"render-kill-01","start_ms":0,"end_ms":12000,"size":"1080p","fps":30,"format":"webm"}`)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var cur renderJob
		s.GetJSON(t, "/api/v1/renders/"+j.ID, &cur)
		if cur.Status == "running" && cur.Progress > 0 {
			break
		}
		if cur.Status == "done" || time.Now().After(deadline) {
			t.Fatalf("render did not get under way in time to be interrupted: %+v", cur)
		}
	}
	s.Kill(t)
	s.Resume(t)
	if st, m := apiCall(t, s, http.MethodGet, "/api/v1/renders/"+j.ID+"/file", ""); st != http.StatusConflict {
		t.Errorf("file right after the restart: %d %v", st, m)
	}
	done := waitRender(t, s, j.ID, 4*time.Minute)
	if done.Status != "done" || done.Attempts != 2 {
		t.Fatalf("after the restart: %+v", done)
	}
	file := fetchRender(t, s, done, t.TempDir())
	if _, dur := ffprobe(t, file); dur < 11.5 || dur > 12.5 {
		t.Errorf("resumed render lasts %.2fs", dur)
	}
	files, _ := filepath.Glob(filepath.Join(s.DataDir, "blobs", strconv.FormatInt(s.ProjectID, 10), "renders", "*"))
	if len(files) != 1 {
		t.Errorf("render files in the store: %v, want one", files)
	}
}

// The UI's "Download video / GIF": in the player's Share tab (with its
// progress), on the share list, and on a public share page whose creator
// allowed it.
func TestBrowser_RenderDownload(t *testing.T) {
	needRenderTools(t)
	site, _ := countingSite(t)
	s := start(t, "--assets=false", "--render-workers=1")
	createUser(t, s, "analyst@example.com")
	renderSite(t, s, "render-ui-0001", site)
	shots := shotDir(t)
	b := browsertest.Start(t, browsertest.WithTimeout(3*time.Minute), browsertest.LoopbackOnly())
	ctx := b.NewContext(t)
	con := browsertest.WatchConsole(t, ctx)
	loginInBrowser(t, ctx, s, "analyst@example.com")

	run(t, ctx, chromedp.Navigate(s.URL+"/sessions/render-ui-0001"))
	waitFor(t, ctx, "player", `document.querySelector('.tp[data-first-frame="1"]')`)
	run(t, ctx, chromedp.Click("#t-share"),
		chromedp.SetValue("#clip-start", "0:02"), chromedp.SetValue("#clip-end", "0:06"),
		chromedp.SendKeys("#clip-title", "Box shows up"),
		chromedp.SetValue(`#render-box select[name=format]`, "gif"),
		chromedp.Click("#render-box .render-go"))
	waitFor(t, ctx, "render progress", `!document.querySelector('#render-box .render-state').hidden || document.querySelector('#render-box .render-file')`)
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#render-box').scrollIntoView({block: 'center'})`))
	shoot(t, ctx, shots, "20-render-progress")
	waitFor(t, ctx, "render done", `document.querySelector('#render-box .render-file')`)
	href := eval[string](t, ctx, `document.querySelector('#render-box .render-file').getAttribute('href')`)
	if st := eval[string](t, ctx, `fetch(`+jsString(href)+`).then(r => r.status + ' ' + r.headers.get('content-type'))`); st != "200 image/gif" {
		t.Errorf("rendered file %s: %s", href, st)
	}
	if txt := eval[string](t, ctx, `document.querySelector('#render-box .render-file').textContent`); !strings.Contains(txt, "GIF") {
		t.Errorf("download button %q", txt)
	}
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#render-box').scrollIntoView({block: 'center'})`))
	shoot(t, ctx, shots, "21-render-done")

	// A share link that allows videos: its viewers get the download.
	run(t, ctx, chromedp.Click("#clip-allow-video"), chromedp.Click("#share-form button[type=submit]"))
	waitFor(t, ctx, "share link", `document.querySelector('.share-url')`)
	link := eval[string](t, ctx, `document.querySelector('.share-url').value`)
	waitFor(t, ctx, "share in the list", `document.querySelectorAll('#shares-list .share-item').length === 1`)
	run(t, ctx, chromedp.Click("#shares-list .share-video-toggle"))
	waitFor(t, ctx, "share's render form", `document.querySelector('#shares-list .share-video:not([hidden]) .render-go')`)

	anon := b.NewContext(t)
	run(t, anon, chromedp.Navigate(link))
	waitFor(t, anon, "clip first frame", `document.querySelector('.tp[data-first-frame="1"]')`)
	waitFor(t, anon, "download section", `document.querySelector('.share-download .render-go')`)
	run(t, anon, chromedp.SetValue(`.share-download select[name=format]`, "mp4"), chromedp.Click(".share-download .render-go"))
	waitFor(t, anon, "public render done", `document.querySelector('.share-download .render-file')`)
	run(t, anon, chromedp.Evaluate[chromedp.Void](`document.querySelector('.share-download').scrollIntoView({block: 'end'})`))
	shoot(t, anon, shots, "22-share-download")
	if errs := con.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
