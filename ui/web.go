package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trailmap/trailmap/accounts"
)

// The templates, the pages and the bundles built by `make js` (dist/ holds
// only a README until then; see Built).
//
//go:embed templates/*.html pages/*.html all:dist
var files embed.FS

// Page is one dashboard page: ui/pages/NAME.html defines its "path" (an echo
// route such as /sessions/:id), "title" and "main", and optionally "nav"
// (the label of its nav entry), "order" (position in the nav) and "admin"
// (any text: a page for admins, left out of members' nav; its API answers
// members 403). Its script is web/src/pages/NAME.js, its optional styles
// NAME.css.
type Page struct {
	Name  string
	Path  string
	Nav   string
	Order int
	Admin bool
	tmpl  *template.Template
}

// NavItem is an entry of the top bar.
type NavItem struct {
	Label, Href string
	Active      bool
}

// PageData is what a dashboard page template receives.
type PageData struct {
	Page   *Page
	Nav    []NavItem
	User   *accounts.User
	CSRF   string
	Params map[string]string
}

// Web renders the pages and serves the bundles; it is read-only after NewWeb.
type Web struct {
	pages               []*Page
	byName              map[string]*Page
	single              map[string]*template.Template // login, setup, share, gone
	manifest            map[string]string
	assets              fs.FS
	exportJS, exportCSS []byte
	renderJS, renderCSS []byte
}

// ErrNotBuilt says the front-end bundles are missing from this build.
var ErrNotBuilt = errors.New("UI assets are not built into this binary: run `make js` (or `make build`) and build again")

// NewWeb parses the embedded templates and reads the bundle manifest.
func NewWeb() (*Web, error) {
	w := &Web{byName: map[string]*Page{}, single: map[string]*template.Template{}, manifest: map[string]string{}}
	if b, err := files.ReadFile("dist/manifest.json"); err == nil {
		if err := json.Unmarshal(b, &w.manifest); err != nil {
			return nil, fmt.Errorf("ui manifest: %w", err)
		}
		w.exportJS, _ = files.ReadFile("dist/export/player.js")
		w.exportCSS, _ = files.ReadFile("dist/export/player.css")
		w.renderJS, _ = files.ReadFile("dist/export/render.js")
		w.renderCSS, _ = files.ReadFile("dist/export/render.css")
	}
	sub, err := fs.Sub(files, "dist/assets")
	if err != nil {
		return nil, fmt.Errorf("ui assets: %w", err)
	}
	w.assets = sub
	funcs := template.FuncMap{"asset": w.Asset}
	for _, name := range []string{"login", "setup", "share", "gone"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(files, "templates/base.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui template %s: %w", name, err)
		}
		w.single[name] = t
	}
	names, err := fs.Glob(files, "pages/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui pages: %w", err)
	}
	for _, file := range names {
		name := strings.TrimSuffix(path.Base(file), ".html")
		t, err := template.New(name).Funcs(funcs).ParseFS(files, "templates/base.html", file)
		if err != nil {
			return nil, fmt.Errorf("ui page %s: %w", name, err)
		}
		p := &Page{Name: name, tmpl: t}
		p.Path = define(t, "path")
		if !strings.HasPrefix(p.Path, "/") {
			return nil, fmt.Errorf("ui page %s: {{define \"path\"}} must be a path like /%s", name, name)
		}
		p.Nav = define(t, "nav")
		p.Admin = define(t, "admin") != ""
		p.Order, _ = strconv.Atoi(define(t, "order"))
		if p.Order == 0 {
			p.Order = 50
		}
		w.pages = append(w.pages, p)
		w.byName[name] = p
	}
	sort.SliceStable(w.pages, func(i, j int) bool {
		if w.pages[i].Order != w.pages[j].Order {
			return w.pages[i].Order < w.pages[j].Order
		}
		return w.pages[i].Name < w.pages[j].Name
	})
	return w, nil
}

// define renders a page's small metadata template ("" if undefined).
func define(t *template.Template, name string) string {
	if t.Lookup(name) == nil {
		return ""
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, nil); err != nil {
		return ""
	}
	return strings.TrimSpace(b.String())
}

// Built reports whether the bundles are in this binary.
func (w *Web) Built() bool { return len(w.manifest) > 0 }

// Pages lists the dashboard pages in nav order.
func (w *Web) Pages() []*Page { return w.pages }

// Asset returns the URL of a bundle by logical name (app.css,
// pages/sessions.js), or "" when there is none.
func (w *Web) Asset(name string) string {
	if p, ok := w.manifest[name]; ok {
		return "/assets/" + p
	}
	return ""
}

// Nav builds the top bar with active marking the current page.
func (w *Web) Nav(active *Page) []NavItem { return w.nav(active, true) }

// nav is Nav with the admin pages left out unless admin.
func (w *Web) nav(active *Page, admin bool) []NavItem {
	var out []NavItem
	for _, p := range w.pages {
		if p.Nav == "" || (p.Admin && !admin) {
			continue
		}
		out = append(out, NavItem{Label: p.Nav, Href: p.Path, Active: p == active || (active != nil && strings.HasPrefix(active.Path, p.Path+"/"))})
	}
	return out
}

// RenderPage writes a dashboard page.
func (w *Web) RenderPage(out io.Writer, d PageData) error {
	if !w.Built() {
		return ErrNotBuilt
	}
	if d.Nav == nil {
		d.Nav = w.nav(d.Page, d.User == nil || d.User.Role == accounts.RoleAdmin)
	}
	return d.Page.tmpl.ExecuteTemplate(out, "app", d)
}

// Render writes one of the stand-alone pages: "login", "share" or "gone".
func (w *Web) Render(out io.Writer, name string, data any) error {
	t, ok := w.single[name]
	if !ok {
		return fmt.Errorf("ui: no page %q", name)
	}
	if !w.Built() && name != "gone" {
		return ErrNotBuilt
	}
	return t.ExecuteTemplate(out, name+".html", data)
}

// Assets serves the hashed bundles (mount it under /assets/). Every name
// carries its content hash, so answers may be cached forever.
func (w *Web) Assets() http.Handler {
	fsrv := http.FileServerFS(w.assets)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(rw, r)
	})
}

// Clip describes a clip for the share page and the downloaded file.
type Clip struct {
	Title      string `json:"title"`
	Note       string `json:"note,omitempty"`
	StartTS    int64  `json:"start_ts"` // absolute ms of the clip start
	DurationMS int64  `json:"duration_ms"`
	Recorded   string `json:"recorded,omitempty"`
	// Omitted, when set, is asked after the events are written what the
	// file leaves out (asset copies over its size limit); a non-empty
	// answer is shown under the player.
	Omitted func() string `json:"-"`
}

// WriteExport writes a self-contained HTML file that plays a clip offline:
// the player script and styles and the clip's events are all inline. events
// writes the JSON array of events; what it writes is escaped so that no
// "</script>" (or "<!--") inside a recorded page can end the script early.
func (w *Web) WriteExport(out io.Writer, c Clip, events func(io.Writer) error) error {
	if !w.Built() || len(w.exportJS) == 0 {
		return ErrNotBuilt
	}
	meta, err := json.Marshal(c) // escapes <, > and & already
	if err != nil {
		return err
	}
	var head bytes.Buffer
	head.WriteString("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	head.WriteString("<meta name=\"referrer\" content=\"no-referrer\">\n")
	// The file is opened from disk, where no HTTP header applies: the policy
	// sits in the page. Nothing may be fetched — the recorded page's images,
	// fonts and styles included (offline copies are inlined as data:) — and
	// only the player's own script runs.
	head.WriteString("<meta http-equiv=\"Content-Security-Policy\" content=\"")
	head.WriteString(exportCSP(w.exportJS))
	head.WriteString("\">\n<title>")
	template.HTMLEscape(&head, []byte(c.Title))
	head.WriteString(" · Trailmap clip</title>\n<style>\n")
	head.Write(bytes.ReplaceAll(w.exportCSS, []byte("</"), []byte(`<\/`)))
	head.WriteString("\nhtml, body { height: 100%; }\n</style>\n</head>\n<body class=\"share-embed\">\n<div class=\"embed-wrap\">\n<div class=\"embed-title\"><span>")
	template.HTMLEscape(&head, []byte(c.Title))
	if c.Note != "" {
		head.WriteString(" — ")
		template.HTMLEscape(&head, []byte(c.Note))
	}
	head.WriteString("</span><span>Trailmap clip</span></div>\n<div id=\"player\" class=\"embed-player\"></div>\n</div>\n")
	if err := writeClipData(out, &head, meta, events); err != nil {
		return err
	}
	var tail bytes.Buffer
	tail.WriteString("}</script>\n")
	if c.Omitted != nil {
		if note := c.Omitted(); note != "" {
			tail.WriteString("<p class=\"embed-omitted\" role=\"note\">")
			template.HTMLEscape(&tail, []byte(note))
			tail.WriteString("</p>\n")
		}
	}
	tail.WriteString("<script>\n")
	tail.Write(w.exportJS)
	tail.WriteString("\n</script>\n</body>\n</html>\n")
	_, err = out.Write(tail.Bytes())
	return err
}

// RenderClip describes a clip for the server's renderer (package render).
type RenderClip struct {
	StartTS    int64 `json:"start_ts"` // absolute ms of the clip start
	DurationMS int64 `json:"duration_ms"`
	// Caption, when set, puts a bar under the recording: its title, the
	// page and the time recorded.
	Caption *RenderCaption `json:"caption,omitempty"`
	// Signals are the clip's rage, dead and error clicks, marked on screen.
	Signals []RenderSignal `json:"signals,omitempty"`
}

// RenderCaption is a render's caption bar.
type RenderCaption struct {
	Title string `json:"title"`
}

// RenderSignal is a frustration signal at an absolute time and position.
type RenderSignal struct {
	Type string `json:"type"` // rage_click, dead_click, error
	TS   int64  `json:"ts"`
	X    int    `json:"x"`
	Y    int    `json:"y"`
}

// WriteRender writes the page the server's renderer plays a clip in: the
// render script and styles and the clip's events, all inline, under a
// policy that lets the page fetch nothing (see WriteExport).
func (w *Web) WriteRender(out io.Writer, c RenderClip, events func(io.Writer) error) error {
	if !w.Built() || len(w.renderJS) == 0 {
		return ErrNotBuilt
	}
	meta, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var head bytes.Buffer
	head.WriteString("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"referrer\" content=\"no-referrer\">\n")
	head.WriteString("<meta http-equiv=\"Content-Security-Policy\" content=\"")
	head.WriteString(exportCSP(w.renderJS))
	head.WriteString("\">\n<link rel=\"icon\" href=\"data:,\">\n<title>Trailmap render</title>\n<style>\n")
	head.Write(bytes.ReplaceAll(w.renderCSS, []byte("</"), []byte(`<\/`)))
	head.WriteString("\n</style>\n</head>\n<body>\n")
	if err := writeClipData(out, &head, meta, events); err != nil {
		return err
	}
	var tail bytes.Buffer
	tail.WriteString("}</script>\n<script>\n")
	tail.Write(w.renderJS)
	tail.WriteString("\n</script>\n</body>\n</html>\n")
	_, err = out.Write(tail.Bytes())
	return err
}

// writeClipData writes head, then the clip-data script element up to its
// end: meta (a JSON object) with the events (escaped for the script
// element) as its last field; the caller writes "}</script>".
func writeClipData(out io.Writer, head *bytes.Buffer, meta []byte, events func(io.Writer) error) error {
	head.WriteString("<script type=\"application/json\" id=\"clip-data\">")
	head.Write(meta[:len(meta)-1])
	head.WriteString(`,"events":`)
	if _, err := out.Write(head.Bytes()); err != nil {
		return err
	}
	ew := &jsonScriptWriter{w: out}
	if err := events(ew); err != nil {
		return err
	}
	return ew.err
}

// exportCSP is the offline clip's (and the render page's) policy: no
// network at all, and no script but js (by its hash; the clip's events are
// JSON data, never run).
func exportCSP(js []byte) string {
	sum := sha256.Sum256([]byte("\n" + string(js) + "\n")) // the <script> element's text, as WriteExport writes it
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"style-src 'unsafe-inline' data:; img-src data: blob:; font-src data:; media-src data: blob:; " +
		"connect-src 'none'; " +
		"form-action 'none'; base-uri 'none'; object-src 'none'"
}

// jsonScriptWriter escapes JSON for a <script> element: <, > and & become
// \u003c, \u003e and \u0026, and U+2028/U+2029 their escapes. In JSON these
// can only occur inside strings, where the escapes mean the same.
type jsonScriptWriter struct {
	w   io.Writer
	err error
	buf []byte
	// pending holds the first bytes of a multi-byte rune split across writes.
	pending []byte
}

func (j *jsonScriptWriter) Write(p []byte) (int, error) {
	if j.err != nil {
		return 0, j.err
	}
	n := len(p)
	if len(j.pending) > 0 {
		p = append(j.pending, p...)
		j.pending = nil
	}
	// Keep an incomplete trailing rune for the next write.
	if k := incompleteTail(p); k > 0 {
		j.pending = append([]byte(nil), p[len(p)-k:]...)
		p = p[:len(p)-k]
	}
	j.buf = j.buf[:0]
	last := 0
	for i := 0; i < len(p); {
		c := p[i]
		var rep string
		size := 1
		switch {
		case c == '<':
			rep = `\u003c`
		case c == '>':
			rep = `\u003e`
		case c == '&':
			rep = `\u0026`
		case c == 0xE2 && i+2 < len(p) && p[i+1] == 0x80 && (p[i+2] == 0xA8 || p[i+2] == 0xA9):
			rep, size = `\u2028`, 3
			if p[i+2] == 0xA9 {
				rep = `\u2029`
			}
		}
		if rep != "" {
			j.buf = append(j.buf, p[last:i]...)
			j.buf = append(j.buf, rep...)
			last = i + size
		}
		i += size
	}
	j.buf = append(j.buf, p[last:]...)
	if _, err := j.w.Write(j.buf); err != nil {
		j.err = err
		return 0, err
	}
	return n, nil
}

// incompleteTail is how many bytes at the end of p start a rune that is not
// complete yet (0 to 3).
func incompleteTail(p []byte) int {
	for k := 1; k <= 3 && k <= len(p); k++ {
		c := p[len(p)-k]
		if c < 0x80 {
			return 0
		}
		if utf8.RuneStart(c) {
			need := 2
			if c >= 0xF0 {
				need = 4
			} else if c >= 0xE0 {
				need = 3
			}
			if need > k {
				return k
			}
			return 0
		}
	}
	return 0
}
