package assets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/tdewolff/parse/v2"
	"github.com/tdewolff/parse/v2/css"

	"github.com/trailmap/trailmap/internal/rrweb"
	"github.com/trailmap/trailmap/storage"
)

// ErrNotFound is returned (wrapped) when a project has no copy with a hash.
var ErrNotFound = fmt.Errorf("asset copy: %w", storage.ErrNotFound)

// Reader reads copies back: served to the dashboard, mapped into events.
type Reader struct {
	store *Store
	blobs Blobs
}

// NewReader reads the copies in store and blobs.
func NewReader(store *Store, blobs Blobs) *Reader { return &Reader{store: store, blobs: blobs} }

// Open returns the bytes of project's copy with content hash sha and what
// is known of it; an error wrapping ErrNotFound when the project has none.
// A style sheet's own url()s and @imports are pointed at their copies with
// link, as its events' are; other copies are returned as stored.
func (rd *Reader) Open(ctx context.Context, projectID int64, sha string, link func(sha string) string) (io.ReadCloser, Copy, error) {
	return rd.OpenOnDay(ctx, projectID, -1, sha, link)
}

// OpenOnDay is Open among the copies a session of day (unix days) plays
// with (day < 0: any): what a share link of that session may serve.
func (rd *Reader) OpenOnDay(ctx context.Context, projectID, day int64, sha string, link func(sha string) string) (io.ReadCloser, Copy, error) {
	if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		return nil, Copy{}, ErrNotFound
	}
	c, ok, err := rd.store.ByHashOnDay(ctx, projectID, sha, day)
	if err != nil {
		return nil, Copy{}, err
	}
	if !ok {
		return nil, Copy{}, ErrNotFound
	}
	r, err := rd.blobs.Get(ctx, Key(projectID, sha), 0, -1)
	if err != nil {
		return nil, Copy{}, fmt.Errorf("open asset %s: %w", sha, err)
	}
	if c.ContentType != "text/css" {
		return r, c, nil
	}
	defer r.Close()
	body, err := io.ReadAll(io.LimitReader(r, 32<<20))
	if err != nil {
		return nil, Copy{}, fmt.Errorf("read asset %s: %w", sha, err)
	}
	refs := StylesheetRefs(body, c.URL)
	urls := make([]string, len(refs))
	for i, ref := range refs {
		urls[i] = ref.URL
	}
	copies, err := rd.store.Stored(ctx, projectID, urls, c.Day)
	if err != nil {
		return nil, Copy{}, err
	}
	m := &mapper{known: map[string]string{}}
	for u, cp := range copies {
		m.known[u] = link(cp.SHA256)
	}
	if len(m.known) > 0 {
		m.base, _ = url.Parse(c.URL)
		body = []byte(m.css(string(body)))
	}
	c.Size = int64(len(body))
	return io.NopCloser(bytes.NewReader(body)), c, nil
}

// Rewriter maps the asset URLs in a session's events, read in order, to the
// stored copies of the session's day. Stored events are never changed: this
// is applied as they are read. Events whose assets have no copy are passed
// on byte for byte.
type Rewriter struct {
	store   *Store
	project int64
	day     int64
	link    func(sha string) string
	page    Page
	known   map[string]string // URL → copy link, "" for none
}

// NewRewriter rewrites the events of a session of projectID that started
// on day (unix days); link makes the address a copy is served at from its
// content hash.
func (rd *Reader) NewRewriter(projectID, day int64, link func(sha string) string) *Rewriter {
	return &Rewriter{store: rd.store, project: projectID, day: day, link: link, known: map[string]string{}}
}

// Event returns raw with the URLs of assets that have copies pointed at
// them.
func (r *Rewriter) Event(ctx context.Context, raw []byte) ([]byte, error) {
	ev := rrweb.Split(raw)
	before := r.page
	refs, after := Collect(r.page, []rrweb.Event{ev})
	r.page = after
	var missing []string
	for _, ref := range refs {
		if _, ok := r.known[ref.URL]; !ok {
			missing = append(missing, ref.URL)
		}
	}
	if len(missing) > 0 {
		if len(r.known) > 50000 {
			clear(r.known)
		}
		copies, err := r.store.Stored(ctx, r.project, missing, r.day)
		if err != nil {
			return nil, err
		}
		for _, u := range missing {
			r.known[u] = ""
			if c, ok := copies[u]; ok {
				r.known[u] = r.link(c.SHA256)
			}
		}
	}
	hit := false
	for _, ref := range refs {
		if r.known[ref.URL] != "" {
			hit = true
			break
		}
	}
	if !hit {
		return raw, nil
	}
	// The page the event's URLs are relative to: a full snapshot's own
	// <base> is known after it; a Meta event carries no asset URLs.
	page := before
	if ev.Type == rrweb.FullSnapshot {
		page = after
	}
	m := &mapper{known: r.known}
	m.setBase(page)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw, nil //nolint:nilerr // not ours to judge: passed on as stored
	}
	v = m.walk(v, "")
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode rewritten event: %w", err)
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

// mapper replaces URLs in decoded event JSON.
type mapper struct {
	known map[string]string
	base  *url.URL
}

func (m *mapper) setBase(p Page) {
	c := &collector{page: p}
	c.setBase()
	m.base = c.base
}

// url maps one URL as written in the page; ok false when it has no copy.
func (m *mapper) url(raw string) (string, bool) {
	u, ok := Resolve(m.base, raw)
	if !ok {
		return "", false
	}
	l := m.known[u]
	return l, l != ""
}

// walk rewrites the strings under the keys that hold asset URLs or CSS.
func (m *mapper) walk(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if strings.EqualFold(key, "style") { // a style diff: property → value
				x[k] = m.walk(val, "style")
			} else {
				x[k] = m.walk(val, k)
			}
		}
		return x
	case []any:
		for i, val := range x {
			x[i] = m.walk(val, key)
		}
		return x
	case string:
		switch strings.ToLower(key) {
		case "src", "href", "poster", "xlink:href", "background":
			if l, ok := m.url(x); ok {
				return l
			}
		case "srcset":
			return m.srcset(x)
		case "style", "_csstext", "textcontent", "rule", "value", "replace", "replacesync":
			if strings.Contains(x, "url(") || strings.Contains(x, "@import") || strings.Contains(x, "image-set(") {
				return m.css(x)
			}
		}
	}
	return v
}

func (m *mapper) srcset(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		f := strings.Fields(p)
		if len(f) == 0 {
			continue
		}
		if l, ok := m.url(f[0]); ok {
			f[0] = l
			parts[i] = " " + strings.Join(f, " ")
		}
	}
	return strings.TrimSpace(strings.Join(parts, ","))
}

// css rewrites the url()s, @import strings and image-set() strings of CSS
// text, leaving every other byte as it was.
func (m *mapper) css(text string) string {
	l := css.NewLexer(parse.NewInputString(text))
	var out strings.Builder
	inImport, setDepth := false, 0
	for {
		tt, data := l.Next()
		if tt == css.ErrorToken {
			break
		}
		switch tt {
		case css.AtKeywordToken:
			inImport = strings.EqualFold(string(data), "@import")
		case css.SemicolonToken, css.LeftBraceToken:
			inImport = false
		case css.URLToken:
			if u, ok := m.url(cssURL(data)); ok {
				out.WriteString(`url("` + u + `")`)
				continue
			}
		case css.StringToken:
			if inImport || setDepth > 0 {
				if u, ok := m.url(cssString(data)); ok {
					out.WriteString(`"` + u + `"`)
					continue
				}
			}
		case css.FunctionToken:
			f := strings.ToLower(string(data))
			if setDepth > 0 {
				setDepth++
			} else if f == "image-set(" || f == "-webkit-image-set(" {
				setDepth = 1
			}
		case css.LeftParenthesisToken:
			if setDepth > 0 {
				setDepth++
			}
		case css.RightParenthesisToken:
			if setDepth > 0 {
				setDepth--
			}
		}
		out.Write(data)
	}
	return out.String()
}
