// Package rrwebgen generates realistic rrweb event streams for benchmarks and
// load tests: a full snapshot of a varied page, then mutations, mouse moves,
// clicks, scrolls and inputs at the rates a browsing visitor produces. Output
// is deterministic for a seed, and varied enough that compression figures
// measured on it are honest (no copy-pasted repeats).
package rrwebgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

var words = strings.Fields(`the a of to and in is for on with as by at from your our new more all
	product price cart checkout account sign login search menu home about contact help support order
	shipping returns size color black white blue red green small medium large add remove quantity
	total subtotal discount code apply continue review delivery free fast secure payment card
	details description features specifications reviews rating stars customer question answer
	blog article news update release guide tutorial learn docs pricing plan team enterprise start`)

var classes = strings.Fields(`container row col card btn btn-primary btn-link nav nav-item header
	footer main content title subtitle text muted price badge list item grid flex hidden active
	image thumb media body section hero cta form input label field icon link menu dropdown`)

var tags = strings.Fields(`div div div span span p a li ul section article h2 h3 button img label input`)

// Gen produces one visitor's session.
type Gen struct {
	rnd     *rand.Rand
	zipf    *rand.Zipf
	combos  []string // class lists in use on the site: real CSS repeats the same combinations
	phrases []string // text that repeats across a page: menu items, card titles, labels
	ts      int64
	nextID  int
	nodes   []int // ids of element nodes on the current page
	texts   []int // ids of text nodes
	page    int
	width   int
	height  int
	scroll  int
}

// New returns a generator starting at unix-ms start.
func New(seed uint64, start int64) *Gen {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &Gen{rnd: rnd, ts: start, width: 1280, height: 800}
	// Word frequencies in page text follow Zipf's law.
	g.zipf = rand.NewZipf(rnd, 1.1, 2, uint64(len(words)-1))
	for range 40 {
		n := 1 + rnd.IntN(3)
		cs := make([]string, n)
		for i := range cs {
			cs[i] = classes[rnd.IntN(len(classes))]
		}
		g.combos = append(g.combos, strings.Join(cs, " "))
	}
	return g
}

// TS is the timestamp of the last event generated.
func (g *Gen) TS() int64 { return g.ts }

func (g *Gen) words(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[g.zipf.Uint64()])
	}
	return b.String()
}

// text is a text node's content: often a phrase the page repeats.
func (g *Gen) text() string {
	if len(g.phrases) > 0 && g.rnd.IntN(10) < 6 {
		return g.phrases[g.rnd.IntN(len(g.phrases))]
	}
	return g.words(2 + g.rnd.IntN(12))
}

func (g *Gen) class() string {
	return g.combos[g.rnd.IntN(len(g.combos))]
}

// element builds a random element subtree of about n nodes.
func (g *Gen) element(depth, n int) map[string]any {
	g.nextID++
	id := g.nextID
	g.nodes = append(g.nodes, id)
	tag := tags[g.rnd.IntN(len(tags))]
	attrs := map[string]any{"class": g.class()}
	switch tag {
	case "a":
		attrs["href"] = fmt.Sprintf("/%s/%d", words[g.rnd.IntN(len(words))], g.rnd.IntN(10000))
	case "img":
		attrs["src"] = fmt.Sprintf("/img/%x.jpg", g.rnd.Uint32())
		attrs["alt"] = g.words(3)
	case "input":
		attrs["type"], attrs["name"] = "text", words[g.rnd.IntN(len(words))]
	}
	var children []any
	if depth < 7 && n > 1 {
		kids := 1 + g.rnd.IntN(4)
		for range kids {
			children = append(children, g.element(depth+1, n/kids))
		}
	} else {
		g.nextID++
		g.texts = append(g.texts, g.nextID)
		children = append(children, map[string]any{"type": 3, "textContent": g.text(), "id": g.nextID})
	}
	return map[string]any{"type": 2, "tagName": tag, "attributes": attrs, "childNodes": children, "id": id}
}

func (g *Gen) ev(typ int, data any) json.RawMessage {
	g.ts += int64(1 + g.rnd.IntN(200))
	b, err := json.Marshal(map[string]any{"type": typ, "data": data, "timestamp": g.ts})
	if err != nil {
		panic(err)
	}
	return b
}

// Page starts a new page: a Meta event and a full snapshot of about n nodes.
func (g *Gen) Page(n int) []json.RawMessage {
	g.page++
	g.nextID, g.nodes, g.texts, g.scroll = 4, nil, nil, 0
	g.phrases = g.phrases[:0]
	for range 60 {
		g.phrases = append(g.phrases, g.words(1+g.rnd.IntN(5)))
	}
	body := g.element(0, n)
	body["tagName"] = "body"
	doc := map[string]any{"type": 0, "id": 1, "childNodes": []any{
		map[string]any{"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2},
		map[string]any{"type": 2, "tagName": "html", "attributes": map[string]any{"lang": "en"}, "id": 3, "childNodes": []any{
			map[string]any{"type": 2, "tagName": "head", "attributes": map[string]any{}, "id": 4, "childNodes": []any{}},
			body,
		}},
	}}
	return []json.RawMessage{
		g.ev(4, map[string]any{"href": fmt.Sprintf("https://shop.example/%s/%d?ref=%d", words[g.rnd.IntN(len(words))], g.page, g.rnd.IntN(100)), "width": g.width, "height": g.height}),
		g.ev(2, map[string]any{"node": doc, "initialOffset": map[string]any{"left": 0, "top": 0}}),
	}
}

func (g *Gen) node() int {
	if len(g.nodes) == 0 {
		return 1
	}
	return g.nodes[g.rnd.IntN(len(g.nodes))]
}

// Activity returns about seconds of interaction on the current page, in the
// mix a browsing visitor produces (rrweb samples mouse moves every 50 ms and
// sends them in groups every 500 ms).
func (g *Gen) Activity(seconds int) []json.RawMessage {
	var out []json.RawMessage
	for range seconds * 2 {
		positions := make([]any, 0, 10)
		x, y := g.rnd.IntN(g.width), g.rnd.IntN(g.height)
		for i := range 10 {
			x += g.rnd.IntN(41) - 20
			y += g.rnd.IntN(41) - 20
			positions = append(positions, map[string]any{"x": x, "y": y, "id": g.node(), "timeOffset": -500 + i*50})
		}
		out = append(out, g.ev(3, map[string]any{"source": 1, "positions": positions}))
		switch r := g.rnd.IntN(20); {
		case r < 4:
			g.scroll += g.rnd.IntN(400)
			out = append(out, g.ev(3, map[string]any{"source": 3, "id": 1, "x": 0, "y": g.scroll}))
		case r < 6:
			id := g.node()
			for _, t := range []int{1, 0, 2} { // mousedown, mouseup, click
				out = append(out, g.ev(3, map[string]any{"source": 2, "type": t, "id": id, "x": x, "y": y, "pointerType": 0}))
			}
		case r < 10:
			out = append(out, g.mutation())
		case r < 11:
			out = append(out, g.ev(3, map[string]any{"source": 5, "text": strings.Repeat("*", 1+g.rnd.IntN(12)), "isChecked": false, "id": g.node()}))
		}
	}
	return out
}

func (g *Gen) mutation() json.RawMessage {
	var adds, texts, attrs, removes []any
	switch g.rnd.IntN(4) {
	case 0:
		for range 1 + g.rnd.IntN(6) {
			adds = append(adds, map[string]any{"parentId": g.node(), "nextId": nil, "node": g.element(5, 3)})
		}
	case 1:
		for range 1 + g.rnd.IntN(3) {
			if len(g.texts) > 0 {
				texts = append(texts, map[string]any{"id": g.texts[g.rnd.IntN(len(g.texts))], "value": g.words(1 + g.rnd.IntN(6))})
			}
		}
	case 2:
		attrs = append(attrs, map[string]any{"id": g.node(), "attributes": map[string]any{"class": g.class(), "style": fmt.Sprintf("transform: translateX(%dpx)", g.rnd.IntN(500))}})
	case 3:
		removes = append(removes, map[string]any{"parentId": g.node(), "id": g.node()})
	}
	return g.ev(3, map[string]any{"source": 0, "adds": orEmpty(adds), "removes": orEmpty(removes), "texts": orEmpty(texts), "attributes": orEmpty(attrs)})
}

func orEmpty(xs []any) []any {
	if xs == nil {
		return []any{}
	}
	return xs
}
