package assets_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/internal/miniotest"
	"github.com/trailmap/trailmap/internal/pgtest"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/index/indextest"
	"github.com/trailmap/trailmap/storage/s3"
	"github.com/trailmap/trailmap/storage/sqldb"
)

func TestMain(m *testing.M) { miniotest.Main(pgtest.Tests(m)) }

// schemas: on SQLite heatmap's schema adds the sessions column that the
// session counters' statements name; on PostgreSQL the core schema has it.
func schemas(d sqldb.Dialect) []sqldb.Schema {
	if d == sqldb.SQLite {
		return []sqldb.Schema{heatmap.Schema, assets.Schema}
	}
	return []sqldb.Schema{assets.Schema}
}

// cdn is a loopback HTTP server standing in for a site's CDN; it counts
// requests per path and keeps the last User-Agent.
type cdn struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
	ua   string
}

func newCDN(t *testing.T, h http.Handler) *cdn {
	c := &cdn{hits: map[string]int{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.hits[r.URL.Path]++
		c.ua = r.UserAgent()
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *cdn) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[path]
}

// png is a 1×1 PNG.
var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

func serve(ctype string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Write(body)
	}
}

type blobStore interface {
	assets.Blobs
	Delete(ctx context.Context, key string) error
}

// env is a recorder with the asset service as its observer, on one index.
type env struct {
	t       *testing.T
	db      *index.DB
	blobs   blobStore
	rec     *recorder.Recorder
	svc     *assets.Service
	store   *assets.Store
	reg     *prometheus.Registry
	project *index.Project
}

func newEnv(t *testing.T, db *index.DB, blobs blobStore, cfg assets.Config, settings string) *env {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{t: t, db: db, blobs: blobs, reg: prometheus.NewRegistry()}
	p, err := db.CreateProject(ctx, "shop", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if settings != "" {
		if err := db.SetProjectSettings(ctx, p.ID, json.RawMessage(settings)); err != nil {
			t.Fatal(err)
		}
	}
	e.project = p
	counters, err := db.PrepareSessionCounters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { counters.Close() })
	e.store = assets.NewStore(db.SQL())
	if e.svc, err = assets.New(cfg, e.store, blobs, counters, db, e.reg, logger); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.svc.Close() })
	rcfg := recorder.DefaultConfig(t.TempDir())
	rcfg.RatePerIP, rcfg.RatePerKey = 0, 0
	if e.rec, err = recorder.New(ctx, rcfg, db, blobs, nil, logger, e.svc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rec.Close(context.Background()) })
	return e
}

func testConfig() assets.Config {
	cfg := assets.DefaultConfig()
	cfg.Version = "test"
	cfg.AllowNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.Timeout = 5 * time.Second
	return cfg
}

// visit records one batch: a page on pageURL whose snapshot holds body
// (element JSON inside <body>) and head.
func (e *env) visit(session, pageURL, head, body string) {
	e.t.Helper()
	now := time.Now().UnixMilli()
	events := fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":%q,"width":1280,"height":800}},`+
		`{"type":2,"timestamp":%d,"data":{"node":{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[`+
		`{"type":2,"id":3,"tagName":"head","attributes":{},"childNodes":[%s]},`+
		`{"type":2,"id":4,"tagName":"body","attributes":{},"childNodes":[%s]}]}]},"initialOffset":{"top":0,"left":0}}}`,
		now, pageURL, now+1, head, body)
	b := fmt.Sprintf(`{"session_id":%q,"visitor_id":"visitor-1","seq":0,"events":[%s]}`, session, events)
	if _, err := e.rec.Ingest(context.Background(), recorder.Request{Key: e.project.WriteKey, Body: strings.NewReader(b)}); err != nil {
		e.t.Fatalf("ingest: %v", err)
	}
}

// status waits for the outcome of url for the env's project today.
func (e *env) status(url string) assets.Copy {
	e.t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, ok, err := e.store.Lookup(ctx, e.project.ID, url, time.Now().Unix()/86400)
		if err != nil {
			e.t.Fatal(err)
		}
		if ok {
			return c
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no outcome for %s", url)
		}
	}
}

// settle waits until the batches given to the recorder were observed and
// the service has nothing queued.
func (e *env) settle() {
	e.t.Helper()
	// A hang bound, not a timing: it returns as soon as all is done. A
	// snapshot of 10,000 images (TestService_caps) took over 20 s under
	// the race detector on a loaded 2-core CI machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.rec.CaughtUp(ctx); err != nil { // the 202 does not wait for the index rows
		e.t.Fatal(err)
	}
	for {
		n := 0
		err := e.db.SQL().Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions s LEFT JOIN session_observed o ON o.session_id = s.id
			WHERE COALESCE(o.observed_count, 0) < s.batch_count`).Scan(&n)
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			e.t.Fatal("batches not observed")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := e.svc.Wait(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) metric(name, label string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (e *env) blob(sha string) []byte {
	e.t.Helper()
	r, err := e.blobs.Get(context.Background(), assets.Key(e.project.ID, sha), 0, -1)
	if err != nil {
		e.t.Fatalf("get blob %s: %v", sha, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// site is a CDN with an image, a font, a style sheet that @imports another
// and references a background image, served to a page on another origin.
func site(t *testing.T) *cdn {
	mux := http.NewServeMux()
	mux.Handle("/img.png", serve("image/png", png))
	mux.Handle("/bg.png", serve("image/png", append([]byte{}, append(png, 'x')...)))
	mux.Handle("/font.woff2", serve("font/woff2", []byte("wOF2fake-font")))
	mux.Handle("/css/site.css", serve("text/css; charset=utf-8", []byte(`@import "more.css"; body{background:url(../bg.png)}`)))
	mux.Handle("/css/more.css", serve("text/css", []byte(`@font-face{font-family:F;src:url(/font.woff2)}`)))
	return newCDN(t, mux)
}

func pageWith(c *cdn) (head, body string) {
	head = `{"type":2,"id":5,"tagName":"link","attributes":{"rel":"stylesheet","href":"` + c.URL + `/css/site.css"},"childNodes":[]}`
	body = `{"type":2,"id":6,"tagName":"img","attributes":{"src":"` + c.URL + `/img.png"},"childNodes":[]}`
	return head, body
}

func TestService_fetchesIntoBlobs(t *testing.T) {
	indextest.EachWith(t, schemas, func(t *testing.T, db *index.DB) {
		blobs, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		c := site(t)
		e := newEnv(t, db, blobs, testConfig(), `{"assets":{"origins":["`+c.URL+`"]}}`)
		head, body := pageWith(c)
		e.visit("session-0001", "https://shop.example/p/1", head, body)
		e.settle()

		for _, tc := range []struct {
			path, ctype string
			want        []byte
		}{
			{"/img.png", "image/png", png},
			{"/bg.png", "image/png", append(append([]byte{}, png...), 'x')},
			{"/css/site.css", "text/css", nil},
			{"/css/more.css", "text/css", nil},
			{"/font.woff2", "font/woff2", []byte("wOF2fake-font")},
		} {
			cp := e.status(c.URL + tc.path)
			if cp.Status != assets.StatusStored || cp.ContentType != tc.ctype {
				t.Errorf("%s: %+v", tc.path, cp)
				continue
			}
			got := e.blob(cp.SHA256)
			if hash(got) != cp.SHA256 || (tc.want != nil && string(got) != string(tc.want)) {
				t.Errorf("%s: blob does not match (%d bytes)", tc.path, len(got))
			}
		}
		if c.ua != "Trailmap-Assets/test" {
			t.Errorf("User-Agent %q", c.ua)
		}

		// A second session of the same day fetches nothing again.
		e.visit("session-0002", "https://shop.example/p/2", head, body)
		e.settle()
		for _, p := range []string{"/img.png", "/css/site.css", "/css/more.css", "/font.woff2", "/bg.png"} {
			if n := c.count(p); n != 1 {
				t.Errorf("%s fetched %d times, want 1", p, n)
			}
		}
		origins, err := e.store.Origins(context.Background(), e.project.ID)
		if err != nil || len(origins) != 1 || origins[0] != "https://shop.example" {
			t.Errorf("page origins %v, %v", origins, err)
		}
	})
}

func TestService_minio(t *testing.T) {
	blobs, err := s3.New(t.Context(), miniotest.Shared(t).Config(t))
	if err != nil {
		t.Fatal(err)
	}
	c := site(t)
	e := newEnv(t, indextest.New(t, schemas(sqldb.SQLite)...), blobs, testConfig(), `{"assets":{"origins":["`+c.URL+`"]}}`)
	head, body := pageWith(c)
	e.visit("session-0001", "https://shop.example/", head, body)
	e.settle()
	cp := e.status(c.URL + "/img.png")
	if cp.Status != assets.StatusStored || string(e.blob(cp.SHA256)) != string(png) {
		t.Fatalf("image copy %+v", cp)
	}
}

// TestService_guards is the SSRF and abuse table: each case records a page
// referencing one URL and checks what became of it.
func TestService_guards(t *testing.T) {
	okCDN := site(t)
	var drip sync.WaitGroup
	mux := http.NewServeMux()
	mux.Handle("/admin.png", serve("image/png", png))
	mux.HandleFunc("/huge.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", "1073741824") // 1 GB announced
		w.Write(png)
	})
	mux.HandleFunc("/endless.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		buf := make([]byte, 64<<10)
		for sent := 0; sent < 1<<30; sent += len(buf) { // 1 GB, no length: stopped at the cap
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/drip.png", func(w http.ResponseWriter, r *http.Request) {
		drip.Add(1)
		defer drip.Done()
		w.Header().Set("Content-Type", "image/png")
		for {
			if _, err := w.Write([]byte{0}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	mux.Handle("/login.png", serve("text/html", []byte("<html>please log in</html>")))
	mux.Handle("/script.png", serve("application/javascript", []byte("alert(1)")))
	mux.HandleFunc("/to-loopback.png", func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := strings.Cut(r.Host, ":")
		http.Redirect(w, r, "http://127.0.0.2:"+port+"/admin.png", http.StatusFound)
	})
	mux.HandleFunc("/to-other.png", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, okCDN.URL+"/img.png", http.StatusFound)
	})
	mux.HandleFunc("/to-file.png", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	mux.HandleFunc("/loop1.css", serve("text/css", []byte(`@import "loop2.css"; a{background:url(loop-img.png)}`)))
	mux.HandleFunc("/loop2.css", serve("text/css", []byte(`@import url(loop1.css);`)))
	mux.HandleFunc("/deep0.css", serve("text/css", []byte(`@import "deep1.css";`)))
	mux.HandleFunc("/deep1.css", serve("text/css", []byte(`@import "deep2.css";`)))
	mux.HandleFunc("/deep2.css", serve("text/css", []byte(`@import "deep3.css";`)))
	mux.HandleFunc("/deep3.css", serve("text/css", []byte(`@import "deep4.css";`)))
	mux.HandleFunc("/deep4.css", serve("text/css", []byte(`a{}`)))
	mux.Handle("/loop-img.png", serve("image/png", png))
	srv := newCDN(t, mux)
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	localhost := "http://localhost:" + port

	allowLoopback := testConfig()
	noLoopback := testConfig()
	noLoopback.AllowNets = nil
	slow := testConfig()
	slow.Timeout = 300 * time.Millisecond
	origins := func(o ...string) string {
		b, _ := json.Marshal(map[string]any{"assets": map[string]any{"origins": o}})
		return string(b)
	}
	img := func(u string) string {
		return `{"type":2,"id":6,"tagName":"img","attributes":{"src":"` + u + `"},"childNodes":[]}`
	}
	sheet := func(u string) string {
		return `{"type":2,"id":5,"tagName":"link","attributes":{"rel":"stylesheet","href":"` + u + `"},"childNodes":[]}`
	}
	tests := []struct {
		name       string
		cfg        assets.Config
		settings   string
		head, body string
		page       string            // default: a page on the server's origin
		want       map[string]string // url → status ("-": no row at all)
		hits       map[string]int    // path → requests the server saw
	}{
		{name: "loopback refused without an allow setting", cfg: noLoopback, settings: origins(srv.URL),
			body: img(srv.URL + "/admin.png"), want: map[string]string{srv.URL + "/admin.png": assets.StatusRefusedAddress}, hits: map[string]int{"/admin.png": 0}},
		{name: "a name resolving to loopback refused", cfg: noLoopback, settings: origins(localhost),
			body: img(localhost + "/admin.png"), want: map[string]string{localhost + "/admin.png": assets.StatusRefusedAddress}, hits: map[string]int{"/admin.png": 0}},
		{name: "cloud metadata refused", cfg: allowLoopback, settings: origins("http://169.254.169.254"),
			body: img("http://169.254.169.254/latest/meta-data/iam.png"), want: map[string]string{"http://169.254.169.254/latest/meta-data/iam.png": assets.StatusRefusedAddress}},
		{name: "private ranges refused", cfg: allowLoopback, settings: origins("http://10.0.0.1", "http://192.168.1.1:8080", "http://[fd00::1]"),
			body: img("http://10.0.0.1/a.png") + "," + img("http://192.168.1.1:8080/b.png") + "," + img("http://[fd00::1]/c.png"),
			want: map[string]string{"http://10.0.0.1/a.png": assets.StatusRefusedAddress, "http://192.168.1.1:8080/b.png": assets.StatusRefusedAddress, "http://[fd00::1]/c.png": assets.StatusRefusedAddress}},
		{name: "other schemes never fetched", cfg: allowLoopback, settings: origins(srv.URL),
			body: img("file:///etc/passwd") + "," + img("ftp://127.0.0.1/x.png") + "," + img("gopher://127.0.0.1/x.png"),
			want: map[string]string{"file:///etc/passwd": "-", "ftp://127.0.0.1/x.png": "-", "gopher://127.0.0.1/x.png": "-"}},
		{name: "origin not allowed", cfg: allowLoopback, page: "https://shop.example/",
			body: img(srv.URL + "/admin.png"), want: map[string]string{srv.URL + "/admin.png": assets.StatusRefusedOrigin}, hits: map[string]int{"/admin.png": 0}},
		{name: "page origin allowed by default", cfg: allowLoopback,
			body: img("/admin.png"), want: map[string]string{srv.URL + "/admin.png": assets.StatusStored}},
		{name: "redirect to loopback refused", cfg: allowLoopback, settings: origins(srv.URL, "http://127.0.0.2:"+port),
			body: img(srv.URL + "/to-loopback.png"), want: map[string]string{srv.URL + "/to-loopback.png": assets.StatusRefusedAddress}},
		{name: "redirect to an origin not allowed refused", cfg: allowLoopback, settings: origins(srv.URL),
			body: img(srv.URL + "/to-other.png"), want: map[string]string{srv.URL + "/to-other.png": assets.StatusRefusedOrigin}},
		{name: "redirect to file: refused", cfg: allowLoopback, settings: origins(srv.URL),
			body: img(srv.URL + "/to-file.png"), want: map[string]string{srv.URL + "/to-file.png": assets.StatusRefusedOrigin}},
		{name: "1 GB announced", cfg: allowLoopback, settings: origins(srv.URL),
			body: img(srv.URL + "/huge.png"), want: map[string]string{srv.URL + "/huge.png": assets.StatusTooLarge}},
		{name: "1 GB streamed, stopped at the cap", cfg: allowLoopback, settings: origins(srv.URL),
			body: img(srv.URL + "/endless.png"), want: map[string]string{srv.URL + "/endless.png": assets.StatusTooLarge}},
		{name: "slow drip stopped by the timeout", cfg: slow, settings: origins(srv.URL),
			body: img(srv.URL + "/drip.png"), want: map[string]string{srv.URL + "/drip.png": assets.StatusFailed}},
		{name: "html or script instead of an image not kept", cfg: allowLoopback, settings: origins(srv.URL),
			body: img(srv.URL+"/login.png") + "," + img(srv.URL+"/script.png"),
			want: map[string]string{srv.URL + "/login.png": assets.StatusBadType, srv.URL + "/script.png": assets.StatusBadType}},
		{name: "import loop fetched once each", cfg: allowLoopback, settings: origins(srv.URL),
			head: sheet(srv.URL + "/loop1.css"),
			want: map[string]string{srv.URL + "/loop1.css": assets.StatusStored, srv.URL + "/loop2.css": assets.StatusStored, srv.URL + "/loop-img.png": assets.StatusStored},
			hits: map[string]int{"/loop1.css": 1, "/loop2.css": 1, "/loop-img.png": 1}},
		{name: "imports followed three deep", cfg: allowLoopback, settings: origins(srv.URL),
			head: sheet(srv.URL + "/deep0.css"),
			want: map[string]string{srv.URL + "/deep3.css": assets.StatusStored, srv.URL + "/deep4.css": "-"},
			hits: map[string]int{"/deep4.css": 0}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.mu.Lock()
			clear(srv.hits)
			srv.mu.Unlock()
			e := newEnv(t, indextest.New(t, schemas(sqldb.SQLite)...), mustFS(t), tt.cfg, tt.settings)
			page := tt.page
			if page == "" {
				page = srv.URL + "/page"
			}
			e.visit(fmt.Sprintf("guard-session-%03d", i), page, tt.head, tt.body)
			e.settle()
			for u, want := range tt.want {
				if want == "-" {
					if _, ok, _ := e.store.Lookup(context.Background(), e.project.ID, u, time.Now().Unix()/86400); ok {
						t.Errorf("%s: a row, want none", u)
					}
					continue
				}
				if got := e.status(u); got.Status != want {
					t.Errorf("%s: status %q, want %q", u, got.Status, want)
				}
			}
			for p, want := range tt.hits {
				if got := srv.count(p); got != want {
					t.Errorf("%s requested %d times, want %d", p, got, want)
				}
			}
		})
	}
	srv.CloseClientConnections()
	drip.Wait()
}

func mustFS(t testing.TB) *fs.Client {
	b, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestService_caps: 10,000 distinct URLs in one batch are acknowledged like
// any batch; the session's cap lets a few through and the rest is counted
// as dropped; the project's daily cap stops fetching.
func TestService_caps(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		perSession, perDay   int
		wantRequests         int
		wantSession, wantDay float64
	}{
		{name: "session cap", perSession: 20, wantRequests: 20, wantSession: 10000 - 20},
		{name: "project day cap", perSession: 10000, perDay: 5, wantRequests: 5, wantDay: 10000 - 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := site(t)
			cfg := testConfig()
			cfg.MaxPerSession = tc.perSession
			cfg.MaxProjectDayFetches = int64(tc.perDay)
			cfg.FetchQueue = 10000
			cfg.Concurrency = 1 // the daily cap is checked before each fetch: exact with one fetcher
			e := newEnv(t, indextest.New(t, schemas(sqldb.SQLite)...), mustFS(t), cfg, `{"assets":{"origins":["`+c.URL+`"]}}`)
			var b strings.Builder
			for i := range 10000 {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"type":2,"id":%d,"tagName":"img","attributes":{"src":"%s/n/%d.png"},"childNodes":[]}`, 100+i, c.URL, i)
			}
			e.visit("caps-session-1", "https://shop.example/", "", b.String())
			e.settle()
			if got := e.metric("trailmap_assets_dropped_total", "session_cap"); got != tc.wantSession {
				t.Errorf("dropped for the session cap: %v, want %v", got, tc.wantSession)
			}
			if got := e.metric("trailmap_assets_dropped_total", "project_day_cap"); got != tc.wantDay {
				t.Errorf("dropped for the project's day cap: %v, want %v", got, tc.wantDay)
			}
			c.mu.Lock()
			requests := 0
			for _, n := range c.hits {
				requests += n
			}
			c.mu.Unlock()
			if requests != tc.wantRequests {
				t.Errorf("%d requests to the CDN, want %d", requests, tc.wantRequests)
			}
		})
	}
}

// TestService_queueFull: with a one-batch queue and a collector kept busy,
// ingest still answers and the batches that do not fit are counted.
func TestService_queueFull(t *testing.T) {
	c := site(t)
	cfg := testConfig()
	cfg.QueueBatches = 1
	cfg.QueueBytes = 1 << 30
	e := newEnv(t, indextest.New(t, schemas(sqldb.SQLite)...), mustFS(t), cfg, `{"assets":{"origins":["`+c.URL+`"]}}`)
	head, body := pageWith(c)
	for i := range 50 {
		e.visit(fmt.Sprintf("queue-session-%02d", i), "https://shop.example/", head, body)
	}
	e.settle()
	dropped := e.metric("trailmap_assets_dropped_total", "batch_queue_full")
	t.Logf("%v of 50 batches dropped by the asset queue", dropped)
	if cp := e.status(c.URL + "/img.png"); cp.Status != assets.StatusStored {
		t.Errorf("image: %+v", cp)
	}
}

// TestReader_rewrite: once copies are stored, events read through a
// Rewriter point at them, a style sheet copy's own url()s too, and events
// without copies pass byte for byte.
func TestReader_rewrite(t *testing.T) {
	indextest.EachWith(t, schemas, func(t *testing.T, db *index.DB) {
		ctx := context.Background()
		c := site(t)
		e := newEnv(t, db, mustFS(t), testConfig(), `{"assets":{"origins":["`+c.URL+`"]}}`)
		head, body := pageWith(c)
		e.visit("session-0001", "https://shop.example/p/1", head, body)
		e.settle()
		imgCopy := e.status(c.URL + "/img.png")
		cssCopy := e.status(c.URL + "/css/site.css")
		bgCopy := e.status(c.URL + "/bg.png")
		moreCopy := e.status(c.URL + "/css/more.css")

		link := func(sha string) string { return "/copies/" + sha }
		rd := assets.NewReader(e.store, e.blobs)
		rw := rd.NewRewriter(e.project.ID, time.Now().Unix()/86400, link)
		meta := `{"type":4,"timestamp":1,"data":{"href":"https://shop.example/p/1","width":1,"height":1}}`
		out, err := rw.Event(ctx, []byte(meta))
		if err != nil || string(out) != meta {
			t.Fatalf("meta event changed: %s, %v", out, err)
		}
		snap := `{"type":2,"timestamp":2,"data":{"node":{"type":0,"id":1,"childNodes":[` + head + `,` + body +
			`,{"type":2,"id":7,"tagName":"div","attributes":{"style":"background:url('` + c.URL + `/bg.png')","title":"` + c.URL + `/img.png"},"childNodes":[]}` +
			`,{"type":2,"id":8,"tagName":"img","attributes":{"src":"` + c.URL + `/never-fetched.png"},"childNodes":[]}]}}}`
		out, err = rw.Event(ctx, []byte(snap))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Data struct {
				Node struct {
					ChildNodes []struct {
						Attributes map[string]string `json:"attributes"`
					} `json:"childNodes"`
				} `json:"node"`
			} `json:"data"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("rewritten event is not JSON: %v\n%s", err, out)
		}
		ch := got.Data.Node.ChildNodes
		for _, tc := range []struct{ got, want string }{
			{ch[0].Attributes["href"], link(cssCopy.SHA256)},
			{ch[1].Attributes["src"], link(imgCopy.SHA256)},
			{ch[2].Attributes["style"], `background:url("` + link(bgCopy.SHA256) + `")`},
			{ch[2].Attributes["title"], c.URL + "/img.png"}, // not an asset attribute
			{ch[3].Attributes["src"], c.URL + "/never-fetched.png"},
		} {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		}

		r, cp, err := rd.Open(ctx, e.project.ID, cssCopy.SHA256, link)
		if err != nil {
			t.Fatal(err)
		}
		sheet, _ := io.ReadAll(r)
		r.Close()
		if want := `@import "` + link(moreCopy.SHA256) + `"; body{background:url("` + link(bgCopy.SHA256) + `")}`; string(sheet) != want || cp.ContentType != "text/css" {
			t.Errorf("served sheet %q (%s), want %q", sheet, cp.ContentType, want)
		}
		if _, _, err := rd.Open(ctx, e.project.ID+1, imgCopy.SHA256, link); !errors.Is(err, assets.ErrNotFound) {
			t.Errorf("another project's copy: %v, want ErrNotFound", err)
		}
		if _, _, err := rd.Open(ctx, e.project.ID, "../../etc/passwd", link); !errors.Is(err, assets.ErrNotFound) {
			t.Errorf("a bad hash: %v, want ErrNotFound", err)
		}
	})
}

// TestService_nextDay: a URL is fetched again on another day, as the page
// may have changed; a fresh copy (Cache-Control max-age) is reused without
// a request, an ETag is revalidated (304 keeps the copy), and a URL with a
// content hash is fetched once for every day.
func TestService_nextDay(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	mux := http.NewServeMux()
	mux.HandleFunc("/etag.png", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	})
	mux.HandleFunc("/fresh.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=172800")
		w.Header().Set("Content-Type", "image/png")
		w.Write(append(append([]byte{}, png...), 'f'))
	})
	mux.Handle("/plain.png", serve("image/png", append(append([]byte{}, png...), 'p')))
	mux.Handle("/app.3f9a1c2b.png", serve("image/png", append(append([]byte{}, png...), 'h')))
	c := newCDN(t, mux)
	cfg := testConfig()
	cfg.Now = clock
	e := newEnv(t, indextest.New(t, schemas(sqldb.SQLite)...), mustFS(t), cfg, `{"assets":{"origins":["`+c.URL+`"]}}`)
	body := ""
	for i, p := range []string{"/etag.png", "/fresh.png", "/plain.png", "/app.3f9a1c2b.png"} {
		if i > 0 {
			body += ","
		}
		body += fmt.Sprintf(`{"type":2,"id":%d,"tagName":"img","attributes":{"src":"%s%s"},"childNodes":[]}`, 10+i, c.URL, p)
	}
	lookup := func(path string, day int64) assets.Copy {
		t.Helper()
		cp, ok, err := e.store.Lookup(context.Background(), e.project.ID, c.URL+path, day)
		if err != nil || !ok {
			t.Fatalf("%s on day %d: %v %v", path, day, ok, err)
		}
		return cp
	}
	day1 := now.Unix() / 86400
	e.visit("day-one-session", "https://shop.example/", "", body)
	e.settle()
	first := map[string]assets.Copy{}
	for _, p := range []string{"/etag.png", "/fresh.png", "/plain.png", "/app.3f9a1c2b.png"} {
		first[p] = lookup(p, day1)
		if first[p].Status != assets.StatusStored {
			t.Fatalf("%s: %+v", p, first[p])
		}
	}
	if first["/app.3f9a1c2b.png"].Day != 0 {
		t.Errorf("content-hashed URL stored for day %d, want 0 (every day)", first["/app.3f9a1c2b.png"].Day)
	}

	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	e.visit("day-two-session", "https://shop.example/", "", body)
	e.settle()
	for path, want := range map[string]int{"/etag.png": 2, "/fresh.png": 1, "/plain.png": 2, "/app.3f9a1c2b.png": 1} {
		if got := c.count(path); got != want {
			t.Errorf("%s requested %d times over two days, want %d", path, got, want)
		}
		cp := lookup(path, day1+1)
		if cp.Status != assets.StatusStored || cp.SHA256 != first[path].SHA256 {
			t.Errorf("%s on day two: %+v", path, cp)
		}
		if path != "/app.3f9a1c2b.png" && cp.Day != day1+1 {
			t.Errorf("%s: day two plays with the copy of day %d", path, cp.Day)
		}
	}
	if got := e.metric("trailmap_assets_fetches_total", "not_modified"); got != 1 {
		t.Errorf("not modified: %v, want 1", got)
	}
	if got := e.metric("trailmap_assets_fetches_total", "fresh"); got != 1 {
		t.Errorf("fresh: %v, want 1", got)
	}
}
