package render

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A page that follows the render page's protocol without the UI bundle:
// the background is red before 1 s and blue after.
const fakePage = `<!doctype html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src *">
<link rel="icon" href="data:,"><style>html,body{margin:0;height:100%}</style></head><body><img src="http://192.0.2.1/x.png">
<script>
window.trailmapRender = { state: 'ready', info: { activity: [], width: 1280, height: 720 }, last: -1,
  frame(t) { const c = t < 1000 ? 'rgb(220,20,20)' : 'rgb(20,40,220)'; const ch = c !== this.last; this.last = c; document.body.style.background = c; return ch ? 'full' : ''; } };
</script></body></html>`

func TestRenderer_FakePage(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is not installed (make test installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "out.mp4")
	r := &Renderer{}
	o := Options{Format: FormatMP4, Size: Size720, FPS: 10, Speed: 1, EndMS: 2000}
	res, err := r.Render(ctx, func(w io.Writer) error { _, err := io.WriteString(w, fakePage); return err }, 2000, o, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d frames, %d screenshots, %d bytes, blocked %v", res.Frames, res.Shots, st.Size(), res.Blocked)
	if res.Frames != 20 || res.Shots != 2 {
		t.Errorf("frames %d, shots %d; want 20 and 2", res.Frames, res.Shots)
	}
	if len(res.Blocked) != 1 || !strings.Contains(res.Blocked[0], "192.0.2.1") {
		t.Errorf("blocked %v, want the page's image", res.Blocked)
	}
}
