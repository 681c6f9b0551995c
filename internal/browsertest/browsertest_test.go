package browsertest_test

import (
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
)

func TestBrowser(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><body style="margin:0;background:#f00">
<script>
if (location.search == "?boom") { console.error("oops"); setTimeout(() => { throw new Error("kaboom") }) }
</script>`))
	}))
	defer ts.Close()

	b := browsertest.Start(t, browsertest.WithTimeout(time.Minute), browsertest.LoopbackOnly())
	a, c := b.NewContext(t), b.NewContext(t)

	t.Run("separate storage", func(t *testing.T) {
		if err := chromedp.Do(a, chromedp.Navigate(ts.URL),
			chromedp.Evaluate[chromedp.Void](`localStorage.setItem("k", "a")`)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(c, chromedp.Navigate(ts.URL)); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(c, chromedp.Evaluate[*string](`localStorage.getItem("k")`))
		if err != nil {
			t.Fatal(err)
		}
		if got != nil {
			t.Fatalf("second context sees localStorage %q of the first", *got)
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "shot.png")
		browsertest.Screenshot(t, a, path, 320, 200)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 200 {
			t.Fatalf("size %v, want 320x200", b)
		}
		if r, g, _, _ := img.At(10, 10).RGBA(); r>>8 != 0xff || g>>8 != 0 {
			t.Fatalf("pixel %v, want red", img.At(10, 10))
		}
	})

	t.Run("console errors", func(t *testing.T) {
		con := browsertest.WatchConsole(t, c)
		if err := chromedp.Do(c, chromedp.Navigate(ts.URL+"/?boom")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(con.Errors()) < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		errs := strings.Join(con.Errors(), "\n")
		if !strings.Contains(errs, "oops") || !strings.Contains(errs, "kaboom") {
			t.Fatalf("errors %q, want oops and kaboom", errs)
		}
	})
}
