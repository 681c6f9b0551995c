package assets

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/tdewolff/parse/v2"
	"github.com/tdewolff/parse/v2/css"

	"github.com/trailmap/trailmap/internal/rrweb"
)

// Kinds of asset a recording references.
const (
	KindImage      = "image"
	KindStylesheet = "stylesheet"
	KindFont       = "font"
)

// Ref is one asset a page references: an absolute http(s) URL without a
// fragment, and what the page uses it as.
type Ref struct {
	URL  string `json:"url"`
	Kind string `json:"kind"`
}

// Page is what Collect needs to know of the page the events are on: its URL
// (from the last Meta event) and the href of its <base> element, if any.
// Collect returns the state after the events, to be handed to the next
// call for the same session.
type Page struct {
	URL  string `json:"url"`
	Base string `json:"base,omitempty"`
}

// rrweb incremental sources looked into.
const (
	srcMutation          = 0
	srcStyleSheetRule    = 8
	srcStyleDeclaration  = 13
	srcAdoptedStyleSheet = 15
)

// rrweb serialized node types.
const (
	nodeDocument = 0
	nodeElement  = 2
	nodeText     = 3
)

// Collect returns the assets that events reference, in first-seen order and
// each URL once: stylesheets rrweb did not inline, images (src, srcset,
// picture sources, video posters, image inputs, SVG image and use), and
// every url() and @import in style attributes, inlined style sheets, style
// elements, and style-sheet rule, declaration and adopted-sheet events.
// Relative URLs are resolved against the page's <base> or URL; anything
// that is not http(s) (data:, blob:, about:...) is left out. It is a pure
// function of its arguments: p is the page the first event is on, and the
// returned Page the one the last is on.
func Collect(p Page, events []rrweb.Event) ([]Ref, Page) {
	c := &collector{page: p, seen: map[string]bool{}}
	c.setBase()
	for _, ev := range events {
		switch ev.Type {
		case rrweb.Meta:
			var m struct {
				Href string `json:"href"`
			}
			if json.Unmarshal(ev.Data, &m) == nil && m.Href != "" {
				c.page = Page{URL: m.Href}
				c.setBase()
			}
		case rrweb.FullSnapshot:
			var s struct {
				Node *node `json:"node"`
			}
			if json.Unmarshal(ev.Data, &s) != nil || s.Node == nil {
				continue
			}
			c.page.Base = ""
			if href, ok := findBase(s.Node); ok {
				c.page.Base = href
			}
			c.setBase()
			c.walk(s.Node, "")
		case rrweb.Incremental:
			c.incremental(ev.Data)
		}
	}
	return c.out, c.page
}

// StylesheetRefs returns the url()s and @imports of a style sheet fetched
// from sheetURL, resolved against it.
func StylesheetRefs(sheet []byte, sheetURL string) []Ref {
	base, err := url.Parse(sheetURL)
	if err != nil {
		return nil
	}
	c := &collector{base: base, seen: map[string]bool{}}
	c.css(sheet)
	return c.out
}

type collector struct {
	page Page
	base *url.URL // page.Base, or page.URL; nil: only absolute URLs
	seen map[string]bool
	out  []Ref
}

// node is the part of an rrweb serialized node that references assets.
type node struct {
	Type        int                        `json:"type"`
	TagName     string                     `json:"tagName"`
	Attributes  map[string]json.RawMessage `json:"attributes"`
	ChildNodes  []*node                    `json:"childNodes"`
	TextContent string                     `json:"textContent"`
	IsStyle     bool                       `json:"isStyle"`
}

func (c *collector) setBase() {
	c.base = nil
	page, err := url.Parse(c.page.URL)
	if err != nil || !page.IsAbs() {
		page = nil
	}
	c.base = page
	if c.page.Base == "" {
		return
	}
	var b *url.URL
	if page != nil {
		b, err = page.Parse(c.page.Base)
	} else {
		b, err = url.Parse(c.page.Base)
	}
	if err == nil && b.IsAbs() {
		c.base = b
	}
}

// findBase returns the href of the document's first <base> with one.
func findBase(n *node) (string, bool) {
	if n.Type == nodeElement && strings.EqualFold(n.TagName, "base") {
		if href := attr(n.Attributes, "href"); href != "" {
			return href, true
		}
	}
	for _, ch := range n.ChildNodes {
		if ch == nil {
			continue
		}
		if h, ok := findBase(ch); ok {
			return h, true
		}
	}
	return "", false
}

// attr returns a string attribute ("" when missing or not a string).
func attr(attrs map[string]json.RawMessage, name string) string {
	raw, ok := attrs[name]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func (c *collector) walk(n *node, parentTag string) {
	switch n.Type {
	case nodeElement:
		c.element(strings.ToLower(n.TagName), n.Attributes)
	case nodeText:
		if n.IsStyle || parentTag == "style" {
			c.css([]byte(n.TextContent))
		}
	case nodeDocument:
	default:
		return
	}
	tag := strings.ToLower(n.TagName)
	for _, ch := range n.ChildNodes {
		if ch != nil {
			c.walk(ch, tag)
		}
	}
}

// element adds what an element with these attributes references.
func (c *collector) element(tag string, attrs map[string]json.RawMessage) {
	if len(attrs) == 0 {
		return
	}
	if s := attr(attrs, "style"); s != "" {
		c.css([]byte(s))
	}
	if s := attr(attrs, "_cssText"); s != "" {
		c.css([]byte(s))
	}
	if s := attr(attrs, "background"); s != "" { // <body background>, <td background>
		c.add(s, KindImage)
	}
	switch tag {
	case "link":
		rel := " " + strings.ToLower(attr(attrs, "rel")) + " "
		href := attr(attrs, "href")
		switch {
		case strings.Contains(rel, " stylesheet ") && attr(attrs, "_cssText") == "":
			c.add(href, KindStylesheet)
		case strings.Contains(rel, " preload "):
			switch strings.ToLower(attr(attrs, "as")) {
			case "font":
				c.add(href, KindFont)
			case "image":
				c.add(href, KindImage)
			case "style":
				c.add(href, KindStylesheet)
			}
		}
	case "img":
		if attr(attrs, "rr_dataURL") == "" { // rrweb inlined it already
			c.add(attr(attrs, "src"), KindImage)
			c.srcset(attr(attrs, "srcset"))
		}
	case "source":
		c.srcset(attr(attrs, "srcset"))
	case "video":
		c.add(attr(attrs, "poster"), KindImage)
	case "input":
		if strings.EqualFold(attr(attrs, "type"), "image") {
			c.add(attr(attrs, "src"), KindImage)
		}
	case "image", "use", "feimage":
		href := attr(attrs, "href")
		if href == "" {
			href = attr(attrs, "xlink:href")
		}
		if !strings.HasPrefix(href, "#") {
			c.add(href, KindImage)
		}
	}
}

func (c *collector) incremental(data []byte) {
	var d struct {
		Source int `json:"source"`
		// Mutation
		Adds []struct {
			Node *node `json:"node"`
		} `json:"adds"`
		Attributes []struct {
			Attributes map[string]json.RawMessage `json:"attributes"`
		} `json:"attributes"`
		Texts []struct {
			Value *string `json:"value"`
		} `json:"texts"`
		// StyleDeclaration
		Set *struct {
			Value *string `json:"value"`
		} `json:"set"`
		// AdoptedStyleSheet
		Styles []struct {
			Rules []struct {
				Rule string `json:"rule"`
			} `json:"rules"`
		} `json:"styles"`
	}
	switch sourceOf(data) {
	case srcStyleSheetRule: // its adds are rules, not nodes
		c.styleRules(data)
		return
	case srcMutation, srcStyleDeclaration, srcAdoptedStyleSheet:
	default:
		return
	}
	if json.Unmarshal(data, &d) != nil {
		return
	}
	switch d.Source {
	case srcMutation:
		for _, a := range d.Adds {
			if a.Node == nil {
				continue
			}
			if a.Node.Type == nodeText && a.Node.IsStyle {
				c.css([]byte(a.Node.TextContent))
				continue
			}
			c.walk(a.Node, "")
		}
		for _, a := range d.Attributes {
			c.attributes(a.Attributes)
		}
		for _, t := range d.Texts {
			// A text mutation does not say which element it is in; one that
			// reads like CSS is taken as a <style>'s new text.
			if t.Value != nil && looksLikeCSS(*t.Value) {
				c.css([]byte(*t.Value))
			}
		}
	case srcStyleDeclaration:
		if d.Set != nil && d.Set.Value != nil {
			c.css([]byte(*d.Set.Value))
		}
	case srcAdoptedStyleSheet:
		for _, s := range d.Styles {
			for _, r := range s.Rules {
				c.css([]byte(r.Rule))
			}
		}
	}
}

// styleRules reads a StyleSheetRule event: rules added by insertRule, and
// whole texts given to replace/replaceSync.
func (c *collector) styleRules(data []byte) {
	var d struct {
		Adds []struct {
			Rule string `json:"rule"`
		} `json:"adds"`
		Replace     *string `json:"replace"`
		ReplaceSync *string `json:"replaceSync"`
	}
	if json.Unmarshal(data, &d) != nil {
		return
	}
	for _, a := range d.Adds {
		c.css([]byte(a.Rule))
	}
	for _, s := range []*string{d.Replace, d.ReplaceSync} {
		if s != nil {
			c.css([]byte(*s))
		}
	}
}

// sourceOf reads an incremental event's source without decoding the rest.
func sourceOf(data []byte) int {
	var s struct {
		Source *int `json:"source"`
	}
	if json.Unmarshal(data, &s) != nil || s.Source == nil {
		return -1
	}
	return *s.Source
}

// attributes reads an attribute mutation. The element's tag is not in the
// event, so the attributes that reference images on any element count:
// src (img, input), srcset, poster, SVG href, and style.
func (c *collector) attributes(attrs map[string]json.RawMessage) {
	for _, name := range slices.Sorted(maps.Keys(attrs)) { // a stable order
		raw := attrs[name]
		switch strings.ToLower(name) {
		case "style":
			if len(raw) > 0 && raw[0] == '{' { // a style diff: property → value | [value, priority] | false
				var diff map[string]json.RawMessage
				if json.Unmarshal(raw, &diff) != nil {
					continue
				}
				for _, prop := range slices.Sorted(maps.Keys(diff)) {
					v := diff[prop]
					var s string
					var pair []string
					if json.Unmarshal(v, &s) == nil {
						c.css([]byte(s))
					} else if json.Unmarshal(v, &pair) == nil && len(pair) > 0 {
						c.css([]byte(pair[0]))
					}
				}
				continue
			}
			c.css([]byte(attr(attrs, name)))
		case "src", "poster", "xlink:href":
			c.add(attr(attrs, name), KindImage)
		case "srcset":
			c.srcset(attr(attrs, name))
		case "_csstext":
			c.css([]byte(attr(attrs, name)))
		}
	}
}

func looksLikeCSS(s string) bool {
	return strings.Contains(s, "{") && (strings.Contains(s, "url(") || strings.Contains(s, "@import"))
}

// srcset adds the URLs of a srcset attribute ("a.png 1x, b.png 2x").
func (c *collector) srcset(s string) {
	for s != "" {
		s = strings.TrimLeft(s, " \t\n\r\f,")
		end := strings.IndexAny(s, " \t\n\r\f")
		if end < 0 {
			end = len(s)
		}
		u := s[:end]
		s = s[end:]
		trailingComma := strings.HasSuffix(u, ",")
		u = strings.TrimRight(u, ",")
		c.add(u, KindImage)
		if trailingComma {
			continue
		}
		// Skip the descriptors up to the next comma outside parentheses.
		depth := 0
		i := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				if depth > 0 {
					depth--
				}
			case ',':
				if depth == 0 {
					goto next
				}
			}
		}
	next:
		s = s[i:]
	}
}

// css adds the url()s, image-set() strings and @imports of CSS text: a
// style sheet, a rule or a declaration list. url()s inside @font-face are
// fonts, @imports style sheets, the rest images.
func (c *collector) css(text []byte) {
	if len(text) == 0 {
		return
	}
	l := css.NewLexer(parse.NewInputBytes(text))
	var (
		fontDepth   = -1 // brace depth of the @font-face block we are in
		depth       int
		pendingFont bool // @font-face seen, its block not opened yet
		inImport    bool // between @import and its end
		setDepth    int  // parentheses open inside image-set(
	)
	for {
		tt, data := l.Next()
		switch tt {
		case css.ErrorToken:
			return
		case css.AtKeywordToken:
			kw := strings.ToLower(string(data))
			inImport = kw == "@import"
			pendingFont = kw == "@font-face"
		case css.LeftBraceToken:
			depth++
			if pendingFont {
				fontDepth, pendingFont = depth, false
			}
			inImport = false
		case css.RightBraceToken:
			if depth == fontDepth {
				fontDepth = -1
			}
			if depth > 0 {
				depth--
			}
		case css.SemicolonToken:
			inImport = false
		case css.URLToken:
			kind := KindImage
			switch {
			case inImport:
				kind = KindStylesheet
			case fontDepth >= 0:
				kind = KindFont
			}
			c.add(cssURL(data), kind)
		case css.StringToken:
			switch {
			case inImport:
				c.add(cssString(data), KindStylesheet)
			case setDepth > 0:
				c.add(cssString(data), KindImage)
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
	}
}

// cssURL returns the address in a url(...) token.
func cssURL(tok []byte) string {
	s := string(tok)
	if len(s) < 5 {
		return ""
	}
	s = strings.TrimSpace(s[4 : len(s)-1]) // "url(" ... ")"
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') {
		return cssString([]byte(s))
	}
	return cssUnescape(s)
}

// cssString returns the value of a quoted CSS string token.
func cssString(tok []byte) string {
	s := string(tok)
	if len(s) < 2 {
		return ""
	}
	q := s[0]
	s = s[1:]
	if s[len(s)-1] == q {
		s = s[:len(s)-1]
	}
	return cssUnescape(s)
}

// cssUnescape resolves CSS escapes: a backslash and up to six hex digits
// (and one whitespace after them), or a backslash and a character.
func cssUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		j := i
		var r rune
		for j < len(s) && j-i < 6 && isHex(s[j]) {
			r = r*16 + rune(unhex(s[j]))
			j++
		}
		if j == i { // an escaped character
			if s[i] != '\n' {
				b.WriteByte(s[i])
			}
			continue
		}
		if r == 0 || r > 0x10FFFF {
			r = '\uFFFD'
		}
		b.WriteRune(r)
		if j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n') {
			j++
		}
		i = j - 1
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// add resolves raw and adds it once when it is an http(s) address.
func (c *collector) add(raw, kind string) {
	if u, ok := Resolve(c.base, raw); ok && !c.seen[u] {
		c.seen[u] = true
		c.out = append(c.out, Ref{URL: u, Kind: kind})
	}
}

// maxURL is the longest address kept; longer ones are left out.
const maxURL = 2048

// Resolve makes raw absolute against base (nil: raw must be absolute) and
// reports whether the result is an http(s) URL with a host, returned
// without its fragment.
func Resolve(base *url.URL, raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw[0] == '#' || len(raw) > maxURL {
		return "", false
	}
	if i := strings.IndexByte(raw, ':'); i > 0 && i < 12 {
		switch strings.ToLower(raw[:i]) {
		case "http", "https":
		default:
			if !strings.ContainsAny(raw[:i], "/?#") {
				return "", false // data:, blob:, javascript:, about:, file:...
			}
		}
	}
	var u *url.URL
	var err error
	if base != nil {
		u, err = base.Parse(raw)
	} else {
		u, err = url.Parse(raw)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", false
	}
	u.Fragment, u.RawFragment = "", ""
	s := u.String()
	if len(s) > maxURL {
		return "", false
	}
	return s, true
}
