package ui_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/trailmap/trailmap/internal/browsertest"
)

// BenchmarkCanvasRecording measures what data-canvas costs: the bytes a
// visit sends per second while an 800×400 chart canvas is redrawn ten
// times a second, without canvas recording and at 2 and 5 frames a
// second (rrweb samples the canvas as WebP images),.
func BenchmarkCanvasRecording(b *testing.B) {
	s := start(b)
	page := func(attrs string) string {
		return fmt.Sprintf(`<!doctype html><html><head><title>Chart</title>
<script src="%s/recorder.js" data-key="%s" %s async></script></head><body>
<h1>Live chart</h1><canvas id="c" width="800" height="400"></canvas>
<script>
var x = document.getElementById('c').getContext('2d'), n = 0;
setInterval(function () {
  n++;
  x.fillStyle = '#fff'; x.fillRect(0, 0, 800, 400);
  x.strokeStyle = '#2456d6'; x.lineWidth = 3; x.beginPath();
  for (var i = 0; i <= 80; i++) { var y = 200 + 150 * Math.sin((i + n) / 8); if (i) x.lineTo(i * 10, y); else x.moveTo(0, y); }
  x.stroke(); x.fillStyle = '#111'; x.font = '20px sans-serif'; x.fillText('tick ' + n, 20, 30);
}, 100);
</script></body></html>`, s.URL, s.WriteKey, attrs)
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page(r.URL.Query().Get("attrs")))
	}))
	b.Cleanup(site.Close)
	br := browsertest.Start(b, browsertest.WithTimeout(5*time.Minute), browsertest.LoopbackOnly())
	const seconds = 5
	for _, fps := range []int{0, 2, 5} {
		b.Run(fmt.Sprintf("fps=%d", fps), func(b *testing.B) {
			var perSec float64
			for i := 0; i < b.N; i++ {
				ctx := br.NewContext(b)
				attrs := ""
				if fps > 0 {
					attrs = fmt.Sprintf(`data-canvas="%d"`, fps)
				}
				run(b, ctx, chromedp.Navigate(site.URL+"/?attrs="+url.QueryEscape(attrs)))
				waitFor(b, ctx, "recorder", `window.trailmap && window.trailmap.version === 1`)
				sid := eval[string](b, ctx, `new Promise(r => setTimeout(() => r(JSON.parse(sessionStorage.getItem('trailmap')).sid), 300))`)
				run(b, ctx, chromedp.Sleep(seconds*time.Second))
				eval[bool](b, ctx, `trailmap.flush()`)
				var got struct {
					RawBytes int64 `json:"raw_bytes"`
				}
				deadline := time.Now().Add(30 * time.Second)
				for got.RawBytes == 0 && time.Now().Before(deadline) {
					r := s.Request(b, http.MethodGet, "/api/v1/sessions/"+sid, nil)
					if r.StatusCode == http.StatusOK {
						r.Body.Close()
						s.GetJSON(b, "/api/v1/sessions/"+sid, &got)
					} else {
						r.Body.Close()
					}
					time.Sleep(200 * time.Millisecond)
				}
				perSec = float64(got.RawBytes) / seconds
			}
			b.ReportMetric(perSec, "bytes/s")
		})
	}
}
