package assets

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/internal/rrweb"
)

func events(t testing.TB, js ...string) []rrweb.Event {
	t.Helper()
	raws := make([]json.RawMessage, len(js))
	for i, s := range js {
		if !json.Valid([]byte(s)) {
			t.Fatalf("event %d is not JSON: %s", i, s)
		}
		raws[i] = json.RawMessage(s)
	}
	return rrweb.SplitAll(raws)
}

const meta = `{"type":4,"timestamp":1,"data":{"href":"https://shop.example/p/42?x=1","width":1200,"height":800}}`

// snap wraps element JSON in a full snapshot of html > head, body.
func snap(head, body string) string {
	return `{"type":2,"timestamp":2,"data":{"node":{"type":0,"id":1,"childNodes":[
		{"type":2,"tagName":"html","id":2,"attributes":{},"childNodes":[
			{"type":2,"tagName":"head","id":3,"attributes":{},"childNodes":[` + head + `]},
			{"type":2,"tagName":"body","id":4,"attributes":{},"childNodes":[` + body + `]}]}]}}}`
}

func el(tag, attrs string, children ...string) string {
	return `{"type":2,"tagName":"` + tag + `","id":9,"attributes":` + attrs + `,"childNodes":[` + strings.Join(children, ",") + `]}`
}

func incr(data string) string { return `{"type":3,"timestamp":3,"data":` + data + `}` }

func TestCollect(t *testing.T) {
	img := func(u string) Ref { return Ref{URL: u, Kind: KindImage} }
	font := func(u string) Ref { return Ref{URL: u, Kind: KindFont} }
	sheet := func(u string) Ref { return Ref{URL: u, Kind: KindStylesheet} }
	tests := []struct {
		name   string
		page   Page
		events []string
		want   []Ref
	}{
		{
			name:   "stylesheet link not inlined, inlined one read for urls",
			events: []string{meta, snap(el("link", `{"rel":"stylesheet","href":"/s/site.css"}`)+","+el("link", `{"rel":"Preload Stylesheet","href":"/s/in.css","_cssText":"body { background: url(\"https://cdn.example/bg.png\"); }"}`), "")},
			want:   []Ref{sheet("https://shop.example/s/site.css"), img("https://cdn.example/bg.png")},
		},
		{
			name:   "img src and srcset, rr_dataURL skipped",
			events: []string{meta, snap("", el("img", `{"src":"a.png","srcset":"a-1x.png 1x, https://cdn.example/a-2x.png 2x,data:image/png;base64,AAA= 3x"}`)+","+el("img", `{"src":"inlined.png","rr_dataURL":"data:image/png;base64,AA"}`))},
			want:   []Ref{img("https://shop.example/p/a.png"), img("https://shop.example/p/a-1x.png"), img("https://cdn.example/a-2x.png")},
		},
		{
			name:   "picture source, video poster, input image, svg image and use",
			events: []string{meta, snap("", el("picture", `{}`, el("source", `{"srcset":"//cdn.example/p.webp 600w, //cdn.example/p2.webp 1200w","type":"image/webp"}`))+","+el("video", `{"poster":"/v.jpg","src":"/v.mp4"}`)+","+el("input", `{"type":"IMAGE","src":"/go.png"}`)+","+el("input", `{"type":"text","src":"/no.png"}`)+","+el("svg", `{}`, el("image", `{"href":"/i.svg"}`), el("use", `{"xlink:href":"/sprite.svg#cart"}`), el("use", `{"href":"#local"}`)))},
			want:   []Ref{img("https://cdn.example/p.webp"), img("https://cdn.example/p2.webp"), img("https://shop.example/v.jpg"), img("https://shop.example/go.png"), img("https://shop.example/i.svg"), img("https://shop.example/sprite.svg")},
		},
		{
			name:   "base element resolves relative urls",
			events: []string{meta, snap(el("link", `{"rel":"stylesheet","href":"css/a.css"}`)+","+el("base", `{"href":"https://static.example/v2/"}`), el("img", `{"src":"b.png"}`))},
			want:   []Ref{sheet("https://static.example/v2/css/a.css"), img("https://static.example/v2/b.png")},
		},
		{
			name: "style attribute, style element text, font-face and import",
			events: []string{meta, snap(
				el("style", `{}`, `{"type":3,"id":20,"isStyle":true,"textContent":"@import url(\"/base.css\"); @import 'more.css' screen; @font-face { font-family: F; src: local(F), url(/f.woff2) format('woff2'), url('/f.woff') } .a { background: url( 'x\\.png' ) } .b{background-image:image-set(\"/s1.png\" 1x, url(/s2.png) 2x)}"}`),
				el("div", `{"style":"background:url(/d.png);mask:url(data:image/svg+xml,abc)"}`))},
			want: []Ref{sheet("https://shop.example/base.css"), sheet("https://shop.example/p/more.css"), font("https://shop.example/f.woff2"), font("https://shop.example/f.woff"), img("https://shop.example/p/x.png"), img("https://shop.example/s1.png"), img("https://shop.example/s2.png"), img("https://shop.example/d.png")},
		},
		{
			name: "mutations: added nodes, attributes, style diff, css text",
			page: Page{URL: "https://shop.example/"},
			events: []string{incr(`{"source":0,"adds":[{"parentId":4,"nextId":null,"node":` + el("img", `{"src":"/new.png"}`) + `},{"parentId":5,"node":{"type":3,"id":30,"isStyle":true,"textContent":".z{background:url(/z.png)}"}}],
				"attributes":[{"id":9,"attributes":{"src":"/changed.png","srcset":"/c1.png 1x","class":"x","style":{"background-image":"url(\"/diff.png\")","color":"red","mask":["url(/m.png)","important"],"width":false}}}],
				"texts":[{"id":31,"value":".t { background: url(/t.png) }"},{"id":32,"value":"just text url(/no.png)"}],"removes":[]}`)},
			want: []Ref{img("https://shop.example/new.png"), img("https://shop.example/z.png"), img("https://shop.example/changed.png"), img("https://shop.example/c1.png"), img("https://shop.example/diff.png"), img("https://shop.example/m.png"), img("https://shop.example/t.png")},
		},
		{
			name: "style sheet rule, declaration and adopted sheet events",
			page: Page{URL: "https://shop.example/a/"},
			events: []string{
				incr(`{"source":8,"id":7,"adds":[{"rule":"@font-face{font-family:G;src:url(g.ttf)}","index":0}],"removes":[{"index":1}]}`),
				incr(`{"source":8,"styleId":2,"replace":".r{background:url(r.png)}"}`),
				incr(`{"source":13,"id":7,"index":[0],"set":{"property":"background","value":"url(decl.png)","priority":""}}`),
				incr(`{"source":15,"id":1,"styleIds":[3],"styles":[{"styleId":3,"rules":[{"rule":"@import url(https://cdn.example/adopted.css);","index":0}]}]}`),
			},
			want: []Ref{font("https://shop.example/a/g.ttf"), img("https://shop.example/a/r.png"), img("https://shop.example/a/decl.png"), sheet("https://cdn.example/adopted.css")},
		},
		{
			name: "other schemes, fragments and duplicates left out",
			events: []string{meta, snap(el("link", `{"rel":"stylesheet","href":"javascript:alert(1)"}`),
				el("img", `{"src":"file:///etc/passwd"}`)+","+el("img", `{"src":"blob:https://shop.example/uuid"}`)+","+el("img", `{"src":"ftp://x.example/a.png"}`)+","+
					el("img", `{"src":"/same.png#one"}`)+","+el("img", `{"src":"/same.png#two"}`)+","+el("img", `{"src":"https://user:pw@cdn.example/x.png"}`)+","+el("img", `{"src":"  "}`)+","+el("img", `{"src":"HTTPS://CDN.example/Up.png"}`))},
			want: []Ref{img("https://shop.example/same.png"), img("https://CDN.example/Up.png")},
		},
		{
			name:   "relative urls without a page are left out",
			events: []string{snap("", el("img", `{"src":"/rel.png"}`)+","+el("img", `{"src":"https://cdn.example/abs.png"}`))},
			want:   []Ref{img("https://cdn.example/abs.png")},
		},
		{
			name:   "a new page resets base",
			page:   Page{URL: "https://shop.example/", Base: "https://old.example/"},
			events: []string{`{"type":4,"timestamp":5,"data":{"href":"https://shop.example/two/"}}`, incr(`{"source":0,"adds":[{"parentId":4,"node":` + el("img", `{"src":"i.png"}`) + `}]}`)},
			want:   []Ref{img("https://shop.example/two/i.png")},
		},
		{
			// rrweb writes type, tagName and attributes before childNodes;
			// a writer that sorts keys (Go maps) puts them after: a style
			// element's text is still style-sheet text, an element's own
			// assets come after its children's.
			name: "node keys in any order",
			events: []string{meta, `{"type":2,"timestamp":2,"data":{"node":{"childNodes":[{"attributes":{},"childNodes":[
				{"attributes":{},"childNodes":[{"id":11,"textContent":".q{background:url(/q.png)}","type":3}],"id":10,"tagName":"style","type":2},
				{"attributes":{"style":"background:url(/outer.png)"},"childNodes":[{"attributes":{"src":"/inner.png"},"childNodes":[],"id":13,"tagName":"img","type":2},
					{"id":14,"textContent":"url(/not-css.png)","type":3}],"id":12,"tagName":"div","type":2}],"id":2,"tagName":"html","type":2}],"id":1,"type":0}}}`},
			want: []Ref{img("https://shop.example/q.png"), img("https://shop.example/inner.png"), img("https://shop.example/outer.png")},
		},
		{
			name:   "malformed events are skipped",
			events: []string{meta, `{"type":2,"timestamp":2,"data":{"node":"nope"}}`, incr(`{"source":0,"adds":"x"}`), incr(`{"source":"0"}`), `{"type":3,"timestamp":3}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := Collect(tt.page, events(t, tt.events...))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Collect:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestCollect_pageCarriesOver(t *testing.T) {
	_, p := Collect(Page{}, events(t, meta, snap(el("base", `{"href":"/b/"}`), "")))
	if p.URL != "https://shop.example/p/42?x=1" || p.Base != "/b/" {
		t.Fatalf("page after the batch: %+v", p)
	}
	got, _ := Collect(p, events(t, incr(`{"source":0,"adds":[{"parentId":4,"node":`+el("img", `{"src":"i.png"}`)+`}]}`)))
	if want := []Ref{{URL: "https://shop.example/b/i.png", Kind: KindImage}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("next batch: got %v, want %v", got, want)
	}
}

func TestStylesheetRefs(t *testing.T) {
	got := StylesheetRefs([]byte(`@import "b.css"; @font-face{src:url(../f/x.woff2)} a{background:url(i.png)} b{background:url(data:x)}`), "https://cdn.example/css/a.css")
	want := []Ref{
		{URL: "https://cdn.example/css/b.css", Kind: KindStylesheet},
		{URL: "https://cdn.example/f/x.woff2", Kind: KindFont},
		{URL: "https://cdn.example/css/i.png", Kind: KindImage},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestCollect_corpus runs Collect over the shared rrweb fixtures: it must not
// fail on any of them, must return only absolute http(s) URLs, and finds
// the web font of the real 2018 recording.
func TestCollect_corpus(t *testing.T) {
	paths, _ := filepath.Glob("../../shared/testdata/rrweb-fixtures/*.json")
	if len(paths) == 0 {
		t.Fatal("no rrweb fixtures in ../../shared/testdata/rrweb-fixtures (shared/ must sit beside the repository)")
	}
	all := map[string]bool{}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		refs, _ := Collect(Page{}, rrweb.SplitAll(raws))
		for _, r := range refs {
			if !strings.HasPrefix(r.URL, "http://") && !strings.HasPrefix(r.URL, "https://") || strings.Contains(r.URL, "#") {
				t.Errorf("%s: bad URL %q", filepath.Base(path), r.URL)
			}
			all[r.URL+" "+r.Kind] = true
		}
		t.Logf("%s: %d assets", filepath.Base(path), len(refs))
	}
	if !all["https://demoit.app/static/demoit/font/FiraMono.woff2 font"] {
		t.Errorf("the demo recording's web font was not found")
	}
	for k := range all {
		if strings.Contains(k, ".js ") || strings.Contains(k, ".webm ") {
			t.Errorf("a script or a media file was collected: %s", k)
		}
	}
}

func BenchmarkCollect_demo(b *testing.B) {
	raw, err := os.ReadFile("../../shared/testdata/rrweb-fixtures/player-demo-recording.json")
	if err != nil {
		b.Fatal(err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		b.Fatal(err)
	}
	evs := rrweb.SplitAll(raws)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		Collect(Page{}, evs)
	}
}

// FuzzCollect: whatever a full snapshot or mutation holds, Collect neither
// panics nor returns anything but absolute http(s) URLs without fragments.
func FuzzCollect(f *testing.F) {
	f.Add(`{"type":0,"id":1,"childNodes":[{"type":2,"tagName":"style","id":2,"attributes":{},"childNodes":[{"type":3,"id":3,"textContent":"a{background:url(/a.png)}"}]}]}`)
	f.Add(`{"childNodes":[{"childNodes":[{"textContent":"b{background:url(b.png)}","type":3}],"tagName":"style","type":2}],"type":0}`)
	f.Add(`{"type":2,"tagName":"img","attributes":{"src":"/i.png","srcset":"/j.png 2x"},"childNodes":[{"type":2,"childNodes":[[]]}]}`)
	f.Fuzz(func(t *testing.T, node string) {
		if !json.Valid([]byte(node)) {
			return
		}
		evs := events(t, meta, `{"type":2,"timestamp":2,"data":{"node":`+node+`}}`,
			incr(`{"source":0,"adds":[{"parentId":1,"node":`+node+`}]}`))
		refs, _ := Collect(Page{}, evs)
		for _, r := range refs {
			if !strings.HasPrefix(r.URL, "http://") && !strings.HasPrefix(r.URL, "https://") || strings.Contains(r.URL, "#") {
				t.Errorf("bad URL %q", r.URL)
			}
		}
	})
}
