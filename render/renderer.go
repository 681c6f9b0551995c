package render

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // screenshots
	_ "image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/headless"
)

// Install says what a machine without the renderer's tools needs.
const Install = "install Chromium and ffmpeg on the server (Debian/Ubuntu: apt-get install chromium ffmpeg; or build the Docker image's render variant: docker build --target render) and make sure both are on its PATH"

// Renderer plays a render page in headless Chromium frame by frame and
// encodes the frames with ffmpeg.
type Renderer struct {
	// FFmpeg is the ffmpeg executable (a path or a name on PATH); empty:
	// $FFMPEG_BIN, else ffmpeg.
	FFmpeg string

	// For tests: whole takes every changed frame whole (no rectangles),
	// and onFrame sees each frame as it goes to ffmpeg.
	whole   bool
	onFrame func(i int, frame *image.RGBA)
	browser *headless.Browser // one Chromium for many renders
}

// Tools returns the paths of Chromium and ffmpeg, or ErrUnavailable saying
// what to install. It looks them up on every call: installing them needs
// no restart.
func (r *Renderer) Tools() (chromium, ffmpeg string, err error) {
	var missing []string
	chromium, cerr := headless.Binary()
	if cerr != nil {
		missing = append(missing, "chromium")
	}
	name := r.FFmpeg
	if name == "" {
		name = os.Getenv("FFMPEG_BIN")
	}
	if name == "" {
		name = "ffmpeg"
	}
	ffmpeg, ferr := exec.LookPath(name)
	if ferr != nil {
		missing = append(missing, "ffmpeg")
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("%w: %s not found; %s", ErrUnavailable, strings.Join(missing, " and "), Install)
	}
	return chromium, ffmpeg, nil
}

// Page writes a whole render page (ui.Web.WriteRender) for a clip.
type Page func(w io.Writer) error

// Result tells how a render went.
type Result struct {
	Frames int // in the file
	// Shots and Patches count whole screenshots and screenshots of a
	// changed rectangle; a frame that shows what the one before did takes
	// none.
	Shots, Patches int
	// Blocked lists the requests the page made that were refused: anything
	// but the render page itself.
	Blocked []string
	// Where the time went: loading the page, setting frames, taking
	// screenshots, handing them to ffmpeg (and its finishing).
	Load, Seek, Shoot, Encode time.Duration
}

// pageInfo is what the render page says once its first frame is built.
type pageInfo struct {
	Activity []int64 `json:"activity"` // ms on the clip's timeline
}

// Render renders the clip of durationMS that pg shows with o into the file
// out (MP4 needs a seekable output). progress is called after each frame
// with frames done and total.
func (r *Renderer) Render(ctx context.Context, pg Page, durationMS int64, o Options, out string, progress func(done, total int)) (*Result, error) {
	began := time.Now()
	_, ffmpeg, err := r.Tools()
	if err != nil {
		return nil, err
	}
	w, h := o.Dimensions()

	// The page is written to a file and served from a loopback port under a
	// path nobody can guess; the browser may fetch nothing else.
	dir, err := os.MkdirTemp("", "trailmap-render-")
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "clip.html")
	if err := writeFile(file, pg); err != nil {
		return nil, fmt.Errorf("render page: %w", err)
	}
	srv, base, err := servePage(file)
	if err != nil {
		return nil, err
	}
	defer srv.Close()

	b := r.browser
	if b == nil {
		if b, err = startBrowser(ctx); err != nil {
			return nil, err
		}
		defer b.Close()
	}
	tab, closeTab := b.Tab()
	defer closeTab()

	res := &Result{}
	var mu sync.Mutex
	// Every request of the page stops here: the page itself goes on,
	// anything else (the recorded site's images, fonts, beacons) fails.
	listenCtx, stopListen := context.WithCancel(tab)
	defer stopListen()
	paused := chromedp.Events(listenCtx, fetch.RequestPaused)
	go func() {
		for e, err := range paused {
			if err != nil {
				return
			}
			if e.Request.URL == base+"clip.html" {
				_, _ = chromedp.Call(listenCtx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
				continue
			}
			mu.Lock()
			if len(res.Blocked) < 100 {
				res.Blocked = append(res.Blocked, e.Request.URL)
			}
			mu.Unlock()
			_, _ = chromedp.Call(listenCtx, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
		}
	}()
	if _, err := chromedp.Call(tab, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}}); err != nil {
		return nil, fmt.Errorf("render: block the network: %w", err)
	}
	// The page says when it is ready; its load event may never come (the
	// replayed document's refused requests can hold it).
	if err := chromedp.Do(tab, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		return nil, fmt.Errorf("render: load the clip page: %w", err)
	}
	if _, err := chromedp.Call(tab, page.Navigate, page.NavigateParams{URL: base + "clip.html"}); err != nil {
		return nil, fmt.Errorf("render: load the clip page: %w", err)
	}
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`!!window.trailmapRender && window.trailmapRender.state !== 'loading'`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(2*time.Minute))); err != nil {
		return nil, fmt.Errorf("render: load the clip page: %w", err)
	}
	state, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.trailmapRender.state === 'ready' ? JSON.stringify(window.trailmapRender.info) : 'error: ' + window.trailmapRender.error`))
	if err != nil {
		return nil, fmt.Errorf("render: load the clip page: %w", err)
	}
	if msg, ok := strings.CutPrefix(state, "error: "); ok {
		return nil, fmt.Errorf("%w: this part of the recording cannot be shown: %s", ErrInvalid, msg)
	}
	var info pageInfo
	if err := json.Unmarshal([]byte(state), &info); err != nil {
		return nil, fmt.Errorf("render: clip page: %w", err)
	}
	times := FrameTimes(durationMS, info.Activity, o)
	res.Frames = len(times)

	// ffmpeg reads raw frames from a pipe and writes out. The frame is kept
	// here: a whole screenshot when the page changed, a screenshot of the
	// changed rectangle when only the cursor, click effects, hover states
	// or the caption did (far cheaper), nothing when nothing did.
	encCtx, cancelEnc := context.WithCancel(ctx)
	defer cancelEnc()
	cmd := exec.CommandContext(encCtx, ffmpeg, ffmpegArgs(o, w, h, out)...)
	var stderr tailBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ffmpeg: %w", err)
	}
	waited := false
	defer func() {
		if !waited {
			cancelEnc()
			_ = stdin.Close()
			_ = cmd.Wait()
		}
	}()
	full := page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatJpeg, Quality: ptr[int64](92), OptimizeForSpeed: ptr(true)}
	if o.Format == FormatGIF {
		// GIF's palette wants exact colours: no JPEG noise.
		full = page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng, OptimizeForSpeed: ptr(true)}
	}
	frame := image.NewRGBA(image.Rect(0, 0, w, h))
	mark := time.Now()
	res.Load = mark.Sub(began)
	lap := func(d *time.Duration) {
		now := time.Now()
		*d += now.Sub(mark)
		mark = now
	}
	for i, t := range times {
		change, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.trailmapRender.frame(`+strconv.FormatInt(t, 10)+`)`))
		lap(&res.Seek)
		if err == nil && (change != "" || i == 0) {
			rects, ok := parseRects(change, w, h)
			if !ok || i == 0 || r.whole {
				rects = []image.Rectangle{frame.Rect}
			}
			for _, rect := range rects {
				shot := full
				if rect != frame.Rect {
					shot = page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng, OptimizeForSpeed: ptr(true),
						Clip: &page.Viewport{X: float64(rect.Min.X), Y: float64(rect.Min.Y), Width: float64(rect.Dx()), Height: float64(rect.Dy()), Scale: 1}}
					res.Patches++
				} else {
					res.Shots++
				}
				var sr page.CaptureScreenshotResult
				if sr, err = chromedp.Call(tab, page.CaptureScreenshot, shot); err == nil {
					err = paste(frame, sr.Data, rect.Min)
				}
				if err != nil {
					break
				}
			}
			lap(&res.Shoot)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("render: frame %d at %d ms: %w", i, t, err)
		}
		if r.onFrame != nil {
			r.onFrame(i, frame)
		}
		if _, err := stdin.Write(frame.Pix); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("ffmpeg: %w (%s)", err, stderr.String())
		}
		lap(&res.Encode)
		if progress != nil {
			progress(i+1, len(times))
		}
	}
	if err := stdin.Close(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	waited = true
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
	}
	lap(&res.Encode)
	return res, nil
}

// startBrowser starts the renderer's Chromium: frames are taken as fast as
// the page can draw them, not at the screen's 60 Hz.
func startBrowser(ctx context.Context) (*headless.Browser, error) {
	b, err := headless.Start(ctx, chromedp.Flag("disable-gpu-vsync", true), chromedp.Flag("disable-frame-rate-limit", true))
	if errors.Is(err, headless.ErrUnavailable) {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return b, err
}

func ptr[T any](v T) *T { return &v }

func writeFile(name string, pg Page) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pg(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ffmpegArgs encodes raw w×h RGBA frames from stdin at o.FPS into out.
func ffmpegArgs(o Options, w, h int, out string) []string {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "rawvideo", "-pix_fmt", "rgba", "-s", strconv.Itoa(w) + "x" + strconv.Itoa(h), "-framerate", strconv.Itoa(o.FPS),
		"-i", "-", "-threads", "0"}
	switch o.Format {
	case FormatMP4:
		// H.264 in yuv420p with the index up front: plays in PowerPoint,
		// Keynote and every browser. Screen content compresses well with
		// the stillimage tune.
		args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-crf", "23",
			"-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4")
	case FormatWebM:
		args = append(args, "-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "36", "-deadline", "realtime", "-cpu-used", "8",
			"-row-mt", "1", "-pix_fmt", "yuv420p", "-f", "webm")
	case FormatGIF:
		// One palette for the clip, built from what changes: small and
		// clean. Only the changed rectangle of each frame is stored.
		args = append(args, "-vf", "split[a][b];[a]palettegen=max_colors=128:stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle",
			"-loop", "0", "-f", "gif")
	}
	return append(args, out)
}

// parseRects reads "x,y,w,h;…" inside a fw×fh frame; ok is false for
// anything else ("full").
func parseRects(s string, fw, fh int) ([]image.Rectangle, bool) {
	var out []image.Rectangle
	for _, part := range strings.Split(s, ";") {
		f := strings.Split(part, ",")
		if len(f) != 4 {
			return nil, false
		}
		var v [4]int
		for i, p := range f {
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, false
			}
			v[i] = n
		}
		if r := image.Rect(v[0], v[1], v[0]+v[2], v[1]+v[3]).Intersect(image.Rect(0, 0, fw, fh)); !r.Empty() {
			out = append(out, r)
		}
	}
	return out, len(out) > 0
}

// paste decodes a screenshot (JPEG or PNG) and draws it into frame at at.
func paste(frame *image.RGBA, data []byte, at image.Point) error {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	draw.Draw(frame, img.Bounds().Add(at), img, img.Bounds().Min, draw.Src)
	return nil
}

// servePage serves file at a random path on a loopback port; base is the
// URL of that path, ending in "/".
func servePage(file string) (*http.Server, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("render page listener: %w", err)
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	prefix := "/render/" + hex.EncodeToString(tok[:]) + "/"
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+"clip.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFile(w, r, file)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv, "http://" + l.Addr().String() + prefix, nil
}

// tailBuffer keeps the last 4 KiB written to it (ffmpeg's error output).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-4096:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}
