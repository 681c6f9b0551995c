package journey_test

// Real headless Chromium against the real binary: visits recorded by
// recorder.js on a test site in separate browser contexts (devices), then
// the journey pages of the UI.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
	"github.com/trailmap/trailmap/internal/servertest"
	"github.com/trailmap/trailmap/journey"
)

const uiPassword = "correct horse battery"

var bundleOnce sync.Once

// ensureBundles builds the recorder script and the UI (as `make js` does)
// unless the binary comes from `make test`, which built them already.
func ensureBundles(t testing.TB) {
	t.Helper()
	if os.Getenv("TRAILMAP_BIN") != "" {
		return
	}
	var err error
	var out []byte
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

// shop serves a tiny site with the recorder on every page.
func shop(t *testing.T, srv *servertest.Server) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><meta charset=utf-8><title>Shop %s</title>
<script src="%s/recorder.js" data-key="%s" async></script></head>
<body><h1>Page %s</h1><button id="b">Button</button><div style="height:1500px"></div></body></html>`,
			r.URL.Path, srv.URL, srv.WriteKey, r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func waitJS(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+js+`)`)); err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText.slice(0, 1500) : '')`))
	t.Fatalf("waiting for %s (%s):\n%s", what, js, body)
}

// visit loads each page of the site in turn, waiting for the recorder, runs
// js on the last one and flushes; it returns the context's visitor id.
func visit(t *testing.T, ctx context.Context, site string, paths []string, js string) string {
	t.Helper()
	for _, p := range paths {
		do(t, ctx, chromedp.Navigate(site+p))
		waitJS(t, ctx, "recorder", `window.trailmap && window.trailmap.version`)
	}
	if js != "" {
		evalJS[any](t, ctx, js)
	}
	if !evalJS[bool](t, ctx, `trailmap.flush()`) {
		t.Fatal("flush() resolved false")
	}
	return evalJS[string](t, ctx, `localStorage.getItem("trailmap_vid")`)
}

func TestBrowser_Journeys(t *testing.T) {
	ensureBundles(t)
	servertest.EachIndex(t, func(t *testing.T, indexURL string) {
		srv := servertest.StartOn(t, indexURL)
		site := shop(t, srv)
		b := browsertest.Start(t, browsertest.LoopbackOnly())

		// Two devices of one buyer: home and a product on the first, identified
		// there; cart and purchase on the second, identified only at the end.
		dev1 := visit(t, b.NewContext(t), site.URL, []string{"/", "/product/1"},
			`trailmap.identify("buyer-7", {email: "buyer@example.com"})`)
		dev2 := visit(t, b.NewContext(t), site.URL, []string{"/cart"},
			`trailmap.track("purchase", {total: 42}); trailmap.identify("buyer-7")`)
		// Three anonymous visitors who leave at different steps.
		leftAt1 := visit(t, b.NewContext(t), site.URL, []string{"/"}, "")
		leftAt2 := visit(t, b.NewContext(t), site.URL, []string{"/", "/product/2"}, "")
		bought := visit(t, b.NewContext(t), site.URL, []string{"/", "/product/3", "/cart"}, `trailmap.track("purchase", {total: 9})`)

		sessionOf := map[string]string{} // visitor → session
		eventually(t, "five visitors' sessions in the index", func() (bool, string) {
			var list struct {
				Sessions []struct {
					ID        string `json:"id"`
					VisitorID string `json:"visitor_id"`
				} `json:"sessions"`
			}
			srv.GetJSON(t, "/api/v1/sessions?project=test", &list)
			clear(sessionOf)
			for _, s := range list.Sessions {
				sessionOf[s.VisitorID] = s.ID
			}
			return len(sessionOf) == 5, fmt.Sprint(sessionOf)
		})

		var person journey.Person
		eventually(t, "one person with both devices' visits", func() (bool, string) {
			resp := srv.Request(t, http.MethodGet, "/api/v1/people/u:buyer-7?project=test", nil)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false, resp.Status
			}
			srv.GetJSON(t, "/api/v1/people/u:buyer-7?project=test", &person)
			return len(person.VisitList) == 2, fmt.Sprintf("%d visits", len(person.VisitList))
		})
		gotVisitors := append([]string(nil), person.Visitors...)
		sort.Strings(gotVisitors)
		wantVisitors := []string{dev1, dev2}
		sort.Strings(wantVisitors)
		if !slices.Equal(gotVisitors, wantVisitors) || person.VisitList[0].ID != sessionOf[dev1] || person.VisitList[1].ID != sessionOf[dev2] {
			t.Fatalf("person: visitors %q, visits %s %s; want %q, %s then %s", person.Visitors,
				person.VisitList[0].ID, person.VisitList[1].ID, wantVisitors, sessionOf[dev1], sessionOf[dev2])
		}

		// The UI.
		cmd := exec.Command(servertest.Bin(t), "user", "create", "analyst@example.com", "--data", srv.DataDir, "--index-url", srv.IndexURL)
		cmd.Stdin = strings.NewReader(uiPassword + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user create: %v\n%s", err, out)
		}
		ctx := b.NewContext(t)
		con := browsertest.WatchConsole(t, ctx)
		do(t, ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL+"/login"))
		waitJS(t, ctx, "login form", `document.querySelector('#email')`)
		do(t, ctx, chromedp.SendKeys("#email", "analyst@example.com"), chromedp.SendKeys("#password", uiPassword),
			chromedp.Click("button[type=submit]"))
		waitJS(t, ctx, "logged in", `location.pathname === '/sessions'`)

		t.Run("people", func(t *testing.T) {
			do(t, ctx, chromedp.Navigate(srv.URL+"/people"))
			waitJS(t, ctx, "people list", `document.querySelector('tr[data-person="u:buyer-7"] a')`)
			if n := evalJS[int](t, ctx, `document.querySelectorAll('#people tbody tr').length`); n != 4 {
				t.Errorf("people rows %d, want 4 (the buyer and three anonymous visitors)", n)
			}
			do(t, ctx, chromedp.Click(`tr[data-person="u:buyer-7"] a`))
			waitJS(t, ctx, "person timeline", `document.querySelectorAll('.j-visit').length === 2`)
			got := evalJS[[]string](t, ctx, `[...document.querySelectorAll('.j-visit')].map(v => v.dataset.session)`)
			if !slices.Equal(got, []string{sessionOf[dev1], sessionOf[dev2]}) {
				t.Errorf("visits on the page %q, want %s then %s", got, sessionOf[dev1], sessionOf[dev2])
			}
			if text := evalJS[string](t, ctx, `document.getElementById('p-about').innerText`); !strings.Contains(text, "buyer@example.com") {
				t.Errorf("about panel: %q", text)
			}
			// The second visit's recording opens in the player.
			do(t, ctx, chromedp.Click(`.j-visit[data-session="`+sessionOf[dev2]+`"] a.btn`))
			waitJS(t, ctx, "player", `location.pathname === '/sessions/`+sessionOf[dev2]+`' && document.getElementById('player-page')`)
		})

		t.Run("funnel drop-off opens those recordings", func(t *testing.T) {
			do(t, ctx, chromedp.Navigate(srv.URL+"/funnels"))
			waitJS(t, ctx, "builder", `document.querySelectorAll('#steps .step').length === 4`)
			do(t, ctx, chromedp.Click("#run"))
			waitJS(t, ctx, "results", `document.querySelector('#results tr[data-step="1"]')`)
			counts := evalJS[[]string](t, ctx, `[...document.querySelectorAll('#results tbody tr')].map(r => r.cells[1].textContent + '/' + (r.cells[5].firstChild ? r.cells[5].firstChild.textContent : ''))`)
			// Reached/dropped: home 4 (1 left), product 3 (2 left), cart 1, purchase 1.
			if want := []string{"4/1", "3/2", "1/0", "1/—"}; !slices.Equal(counts, want) {
				t.Errorf("funnel %q, want %q", counts, want)
			}
			for _, tc := range []struct {
				step int
				want []string
			}{
				{1, []string{sessionOf[leftAt1]}},
				{2, []string{sessionOf[dev1], sessionOf[leftAt2]}},
			} {
				do(t, ctx, chromedp.Click(fmt.Sprintf(`#results tr[data-step="%d"] a[data-status="dropped"]`, tc.step)))
				waitJS(t, ctx, "session list", fmt.Sprintf(`document.querySelectorAll('#session-list tbody tr').length === %d`, len(tc.want)))
				got := evalJS[[]string](t, ctx, `[...document.querySelectorAll('#session-list tbody tr')].map(r => r.dataset.session)`)
				sort.Strings(got)
				sort.Strings(tc.want)
				if !slices.Equal(got, tc.want) {
					t.Errorf("dropped after step %d: %q, want %q", tc.step, got, tc.want)
				}
				hrefs := evalJS[[]string](t, ctx, `[...document.querySelectorAll('#session-list tbody a.btn')].map(a => a.getAttribute('href'))`)
				for i, h := range hrefs {
					hrefs[i] = strings.TrimPrefix(h, "/sessions/")
				}
				sort.Strings(hrefs)
				if !slices.Equal(hrefs, tc.want) {
					t.Errorf("recording links %q, want %q", hrefs, tc.want)
				}
			}
			// Open the recording of the one who left at step 1.
			do(t, ctx, chromedp.Click(`#results tr[data-step="1"] a[data-status="dropped"]`))
			waitJS(t, ctx, "one session", `document.querySelectorAll('#session-list tbody tr').length === 1`)
			do(t, ctx, chromedp.Click(`#session-list tbody a.btn`))
			waitJS(t, ctx, "player of that session", `location.pathname === '/sessions/`+sessionOf[leftAt1]+`' && document.getElementById('player-page')`)
			_ = bought
		})

		t.Run("paths", func(t *testing.T) {
			do(t, ctx, chromedp.Navigate(srv.URL+"/paths?page=/&depth=2"))
			waitJS(t, ctx, "sankey", `document.querySelector('#flow svg .node')`)
			nodes := evalJS[[]string](t, ctx, `[...document.querySelectorAll('#flow svg .node')].map(n => n.dataset.name)`)
			sort.Strings(nodes)
			// From home: products 1-3 (one session each), and the exit.
			want := []string{"(exit)", "(exit)", "/", "/cart", "/product/1", "/product/2", "/product/3"}
			if !slices.Equal(nodes, want) {
				t.Errorf("sankey nodes %q, want %q", nodes, want)
			}
		})

		t.Run("intent", func(t *testing.T) {
			do(t, ctx, chromedp.Navigate(srv.URL+"/intent"))
			waitJS(t, ctx, "conversion stats", `document.querySelector('#conv dl')`)
			if text := evalJS[string](t, ctx, `document.getElementById('conv').innerText`); !strings.Contains(text, "2 (") {
				t.Errorf("conversions panel: %q", text)
			}
		})
		if errs := con.Errors(); len(errs) > 0 {
			t.Errorf("console errors: %q", errs)
		}
	})
}
