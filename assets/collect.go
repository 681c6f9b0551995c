package assets

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/tdewolff/parse/v2"
	"github.com/tdewolff/parse/v2/css"

	"github.com/trailmap/trailmap/internal/jsonscan"
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
			var node []byte
			jsonscan.EachField(ev.Data, func(k, v []byte) bool {
				if string(k) == "node" {
					node = v
					return false
				}
				return true
			})
			if node == nil {
				continue
			}
			// The document's <base> applies to every URL in it, also those
			// before it: URLs are resolved once the walk found it.
			c.page.Base, c.deferred, c.pending = "", true, c.pending[:0]
			c.walk(node, "", 0)
			c.deferred = false
			c.setBase()
			for _, p := range c.pending {
				c.add(p.raw, p.kind)
			}
		case rrweb.Incremental:
			if mayReference(ev.Data) {
				c.incremental(ev.Data)
			}
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
	// In a full snapshot, URLs wait in pending until its <base> is known.
	deferred bool
	pending  []pendingRef
	scratch  attrList
	texts    [][]byte // text of nodes whose parent's tag comes later
}

// tags are the element names looked at, interned: most nodes are of a few
// names, and the walk allocates no string for them.
var tags = map[string]string{}

func init() {
	for _, t := range []string{"html", "head", "body", "div", "span", "a", "p", "li", "ul", "img", "link", "style",
		"source", "video", "input", "image", "use", "feimage", "base", "picture", "svg", "script", "button", "section", "i", "path", "td", "tr"} {
		tags[t] = t
	}
}

// tagName is a tagName value in lower case.
func tagName(v []byte) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		if t, ok := tags[string(v[1:len(v)-1])]; ok { // no allocation for the lookup
			return t
		}
	}
	return strings.ToLower(jsonscan.Str(v))
}

type pendingRef struct{ raw, kind string }

// needles are what an incremental event must contain to reference an
// asset; most (mouse, scroll, input) contain none and are not decoded.
var needles = [][]byte{[]byte("src"), []byte("href"), []byte("url("), []byte("poster"), []byte("@import"), []byte("background"), []byte("image-set")}

func mayReference(data []byte) bool {
	for _, n := range needles {
		if bytes.Contains(data, n) {
			return true
		}
	}
	return false
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

// attrList is an element's attributes as raw JSON values.
type attrList []attr

type attr struct {
	name, val []byte
}

// get returns a string attribute ("" when missing or not a string).
func (a attrList) get(name string) string {
	for _, kv := range a {
		if string(kv.name) == name {
			return jsonscan.Str(kv.val)
		}
	}
	return ""
}

// maxDepth bounds the nesting of nodes walked.
const maxDepth = 512

// walk reads a serialized rrweb node and its children (raw JSON).
func (c *collector) walk(n []byte, parentTag string, depth int) {
	c.node(n, 0, parentTag, depth)
}

// unknownTag stands for a parent whose tagName comes after its childNodes
// (rrweb writes it before; other writers, such as Go maps, may not).
const unknownTag = "\x00"

// node reads the serialized node at b[i] and its children in one pass, so
// that a node's bytes are scanned once whatever its depth (scanning each
// node's fields and then each child's scanned a node once per ancestor).
// It returns the index after the node (-1 when it is malformed) and, for a
// text node under a parent whose tag is not known yet, its text: the
// parent decides whether it is style-sheet text once it knows its tag.
// An element's attributes are looked at when its childNodes are reached
// (rrweb writes type, tagName and attributes before them), so assets are
// found in document order; otherwise after the node.
func (c *collector) node(b []byte, i int, parentTag string, depth int) (int, []byte) {
	i = jsonscan.SkipSpace(b, i)
	if i >= len(b) || b[i] != '{' || depth > maxDepth {
		return jsonscan.SkipValue(b, i), nil
	}
	typ := int64(-1)
	var tag string
	var attrs, text []byte
	haveTag, headDone, isStyle := false, false, false
	texts := len(c.texts) // children's texts waiting for this node's tag
	j := i + 1
	for { // malformed: j = -1 and break
		j = jsonscan.SkipSpace(b, j)
		if j < len(b) && b[j] == '}' {
			j++
			break
		}
		if j >= len(b) || b[j] != '"' {
			j = -1
			break
		}
		ke := jsonscan.SkipString(b, j)
		if ke < 0 {
			j = -1
			break
		}
		key := b[j+1 : ke-1]
		j = jsonscan.SkipSpace(b, ke)
		if j >= len(b) || b[j] != ':' {
			j = -1
			break
		}
		j = jsonscan.SkipSpace(b, j+1)
		var ve int
		if string(key) == "childNodes" && j < len(b) && b[j] == '[' && (typ < 0 || typ == nodeElement || typ == nodeDocument) {
			known := typ == nodeDocument || typ == nodeElement && haveTag
			if known && (typ == nodeDocument || attrs != nil) {
				c.head(typ, tag, attrs)
				headDone = true
			}
			pt := unknownTag
			if known {
				pt = tag
			}
			ve = c.children(b, j, pt, depth)
		} else {
			ve = jsonscan.SkipValue(b, j)
		}
		if ve < 0 {
			j = -1
			break
		}
		val := b[j:ve]
		switch string(key) {
		case "type":
			typ, _ = jsonscan.Int(val)
		case "tagName":
			tag, haveTag = tagName(val), true
		case "attributes":
			attrs = val
		case "textContent":
			text = val
		case "isStyle":
			isStyle = string(val) == "true"
		}
		j = jsonscan.SkipSpace(b, ve)
		if j < len(b) && b[j] == ',' {
			j++
		}
	}
	waiting := c.texts[texts:]
	c.texts = c.texts[:texts]
	if j < 0 {
		return -1, nil
	}
	switch typ {
	case nodeElement:
		if !headDone {
			c.head(typ, tag, attrs)
		}
		if tag == "style" {
			for _, t := range waiting {
				c.css([]byte(jsonscan.Str(t)))
			}
		}
	case nodeDocument:
	case nodeText:
		switch {
		case isStyle || parentTag == "style":
			c.css([]byte(jsonscan.Str(text)))
		case parentTag == unknownTag && text != nil:
			return j, text
		}
	}
	return j, nil
}

// head looks at what a node itself references, before or after its
// children.
func (c *collector) head(typ int64, tag string, attrs []byte) {
	if typ != nodeElement {
		return
	}
	as := c.scratch[:0]
	jsonscan.EachField(attrs, func(ak, av []byte) bool {
		as = append(as, attr{name: ak, val: av})
		return true
	})
	c.scratch = as
	if tag == "base" && c.deferred && c.page.Base == "" {
		c.page.Base = as.get("href")
	}
	c.element(tag, as)
}

// children reads the array of child nodes at b[i] and returns the index
// after it (-1 when it is malformed).
func (c *collector) children(b []byte, i int, parentTag string, depth int) int {
	return jsonscan.Elems(b, i, func(j int) int {
		e, text := c.node(b, j, parentTag, depth+1)
		if text != nil {
			c.texts = append(c.texts, text)
		}
		return e
	})
}

// element adds what an element with these attributes references.
func (c *collector) element(tag string, attrs attrList) {
	if len(attrs) == 0 {
		return
	}
	attr := func(a attrList, name string) string { return a.get(name) }
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
	source := int64(-1)
	jsonscan.EachField(data, func(k, v []byte) bool {
		if string(k) == "source" {
			source, _ = jsonscan.Int(v)
			return false
		}
		return true
	})
	switch source {
	case srcMutation:
		jsonscan.EachField(data, func(k, v []byte) bool {
			switch string(k) {
			case "adds":
				jsonscan.EachElem(v, func(add []byte) bool {
					jsonscan.EachField(add, func(k, node []byte) bool {
						if string(k) == "node" {
							c.walk(node, "", 0) // a style's text node says isStyle
							return false
						}
						return true
					})
					return true
				})
			case "attributes":
				jsonscan.EachElem(v, func(m []byte) bool {
					jsonscan.EachField(m, func(k, as []byte) bool {
						if string(k) == "attributes" {
							c.attributes(as)
							return false
						}
						return true
					})
					return true
				})
			case "texts":
				jsonscan.EachElem(v, func(m []byte) bool {
					jsonscan.EachField(m, func(k, val []byte) bool {
						// A text mutation does not say which element it is
						// in; one that reads like CSS is taken as a
						// <style>'s new text.
						if string(k) == "value" {
							if t := jsonscan.Str(val); looksLikeCSS(t) {
								c.css([]byte(t))
							}
							return false
						}
						return true
					})
					return true
				})
			}
			return true
		})
	case srcStyleSheetRule: // rules added by insertRule; texts given to replace/replaceSync
		jsonscan.EachField(data, func(k, v []byte) bool {
			switch string(k) {
			case "adds":
				jsonscan.EachElem(v, func(add []byte) bool {
					c.cssField(add, "rule")
					return true
				})
			case "replace", "replaceSync":
				c.css([]byte(jsonscan.Str(v)))
			}
			return true
		})
	case srcStyleDeclaration:
		jsonscan.EachField(data, func(k, v []byte) bool {
			if string(k) == "set" {
				c.cssField(v, "value")
			}
			return true
		})
	case srcAdoptedStyleSheet:
		jsonscan.EachField(data, func(k, v []byte) bool {
			if string(k) == "styles" {
				jsonscan.EachElem(v, func(style []byte) bool {
					jsonscan.EachField(style, func(k, rules []byte) bool {
						if string(k) == "rules" {
							jsonscan.EachElem(rules, func(r []byte) bool {
								c.cssField(r, "rule")
								return true
							})
						}
						return true
					})
					return true
				})
			}
			return true
		})
	}
}

// cssField reads the string field name of obj as CSS.
func (c *collector) cssField(obj []byte, name string) {
	jsonscan.EachField(obj, func(k, v []byte) bool {
		if string(k) == name {
			c.css([]byte(jsonscan.Str(v)))
			return false
		}
		return true
	})
}

// attributes reads an attribute mutation. The element's tag is not in the
// event, so the attributes that reference images on any element count:
// src (img, input), srcset, poster, SVG href, and style.
func (c *collector) attributes(obj []byte) {
	attrs := map[string][]byte{}
	jsonscan.EachField(obj, func(k, v []byte) bool {
		attrs[string(k)] = v
		return true
	})
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
			c.css([]byte(jsonscan.Str(raw)))
		case "src", "poster", "xlink:href":
			c.add(jsonscan.Str(raw), KindImage)
		case "srcset":
			c.srcset(jsonscan.Str(raw))
		case "_csstext":
			c.css([]byte(jsonscan.Str(raw)))
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
	if c.deferred {
		c.pending = append(c.pending, pendingRef{raw, kind})
		return
	}
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
