package heatmap

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/trailmap/trailmap/internal/rrweb"
)

// Helpers that build rrweb events for tests.

const fixtureDir = "../../shared/testdata/rrweb-fixtures"

// loadFixture reads a shared rrweb fixture (a JSON array of events).
func loadFixture(t testing.TB, name string) []json.RawMessage {
	t.Helper()
	dir := fixtureDir
	if _, err := os.Stat(dir); err != nil {
		dir = "/work/shared/testdata/rrweb-fixtures"
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var evs []json.RawMessage
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatalf("parse fixture %s: %v", name, err)
	}
	return evs
}

func ev(typ int, ts int64, data string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":%d,"data":%s,"timestamp":%d}`, typ, data, ts))
}

func evMetaE(ts int64, href string, w, h int) json.RawMessage {
	return ev(rrweb.Meta, ts, fmt.Sprintf(`{"href":%q,"width":%d,"height":%d}`, href, w, h))
}

func evLoadE(ts int64) json.RawMessage { return ev(rrweb.Load, ts, `{}`) }

func evFull(ts int64, node string, top, left int) json.RawMessage {
	return ev(rrweb.FullSnapshot, ts, fmt.Sprintf(`{"node":%s,"initialOffset":{"top":%d,"left":%d}}`, node, top, left))
}

// evClicks are the mousedown and click rrweb records for one click.
func evClicks(ts int64, id int, x, y float64) []json.RawMessage {
	return []json.RawMessage{
		ev(rrweb.Incremental, ts-60, fmt.Sprintf(`{"source":2,"type":1,"id":%d,"x":%g,"y":%g}`, id, x, y)),
		ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":2,"type":2,"id":%d,"x":%g,"y":%g}`, id, x, y)),
	}
}

func evScroll(ts int64, id int, x, y float64) json.RawMessage {
	return ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":3,"id":%d,"x":%g,"y":%g}`, id, x, y))
}

func evResize(ts int64, w, h int) json.RawMessage {
	return ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":4,"width":%d,"height":%d}`, w, h))
}

func evMove(ts int64, x, y int) json.RawMessage {
	return ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":1,"positions":[{"x":%d,"y":%d,"id":5,"timeOffset":0}]}`, x, y))
}

func evInput(ts int64, id int, text string) json.RawMessage {
	return ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":5,"id":%d,"text":%q,"isChecked":false}`, id, text))
}

func evAttr(ts int64, id int, attrs string) json.RawMessage {
	return ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":0,"texts":[],"attributes":[{"id":%d,"attributes":%s}],"removes":[],"adds":[]}`, id, attrs))
}

func evAdd(ts int64, parent, next int, node string) json.RawMessage {
	nx := "null"
	if next != 0 {
		nx = fmt.Sprint(next)
	}
	return ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":0,"texts":[],"attributes":[],"removes":[],"adds":[{"parentId":%d,"nextId":%s,"node":%s}]}`, parent, nx, node))
}

func evRemove(ts int64, parent, id int) json.RawMessage {
	return ev(rrweb.Incremental, ts, fmt.Sprintf(`{"source":0,"texts":[],"attributes":[],"removes":[{"parentId":%d,"id":%d}],"adds":[]}`, parent, id))
}

func evCustomE(ts int64, tag, payload string) json.RawMessage {
	return ev(rrweb.Custom, ts, fmt.Sprintf(`{"tag":%q,"payload":%s}`, tag, payload))
}

func evDoc(ts int64, w, h int) json.RawMessage {
	return evCustomE(ts, "trailmap/doc", fmt.Sprintf(`{"width":%d,"height":%d}`, w, h))
}

func evClickBox(ts int64, id int, x, y float64, b box) json.RawMessage {
	return evCustomE(ts, "trailmap/click", fmt.Sprintf(`{"id":%d,"x":%g,"y":%g,"box":{"x":%g,"y":%g,"w":%g,"h":%g}}`, id, x, y, b.X, b.Y, b.W, b.H))
}

func evError(ts int64, msg string) json.RawMessage {
	return evCustomE(ts, "trailmap/error", fmt.Sprintf(`{"message":%q,"source":"app.js","line":1,"column":2}`, msg))
}

// testDOM is a page: html(2) > head(3), body(4) > div#app(5) >
// header(6) > nav(7) > a(8) a(9) a(10); main(11) > button.buy(12),
// input(13), button.menu(14), ul.menu(15) hidden, div.card(16) > span(17);
// div.card(18); a[target=_blank](19).
const testDOM = `{"type":0,"id":1,"childNodes":[
 {"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[
  {"type":2,"id":3,"tagName":"head","attributes":{},"childNodes":[]},
  {"type":2,"id":4,"tagName":"body","attributes":{},"childNodes":[
   {"type":2,"id":5,"tagName":"div","attributes":{"id":"app"},"childNodes":[
    {"type":2,"id":6,"tagName":"header","attributes":{},"childNodes":[
     {"type":2,"id":7,"tagName":"nav","attributes":{},"childNodes":[
      {"type":2,"id":8,"tagName":"a","attributes":{"href":"/a"},"childNodes":[{"type":3,"id":20,"textContent":"A"}]},
      {"type":3,"id":21,"textContent":" "},
      {"type":2,"id":9,"tagName":"a","attributes":{"href":"/b","class":"x"},"childNodes":[]},
      {"type":2,"id":10,"tagName":"a","attributes":{"href":"/c"},"childNodes":[]}]}]},
    {"type":2,"id":11,"tagName":"main","attributes":{},"childNodes":[
     {"type":2,"id":12,"tagName":"button","attributes":{"class":"buy primary"},"childNodes":[{"type":3,"id":22,"textContent":"Buy"}]},
     {"type":2,"id":13,"tagName":"input","attributes":{"type":"text"},"childNodes":[]},
     {"type":2,"id":14,"tagName":"button","attributes":{"class":"menu"},"childNodes":[]},
     {"type":2,"id":15,"tagName":"ul","attributes":{"class":"menu","hidden":""},"childNodes":[]},
     {"type":2,"id":16,"tagName":"div","attributes":{"class":"card"},"childNodes":[
      {"type":2,"id":17,"tagName":"span","attributes":{},"childNodes":[]}]},
     {"type":2,"id":18,"tagName":"div","attributes":{"class":"card"},"childNodes":[]},
     {"type":2,"id":19,"tagName":"a","attributes":{"href":"/x","target":"_blank"},"childNodes":[]}]}]}]}]}]}`

// session builds a standard page load: Load, Meta, FullSnapshot, doc size.
func session(ts int64, href string, vw, vh, docW, docH int) []json.RawMessage {
	return []json.RawMessage{
		evLoadE(ts), evMetaE(ts, href, vw, vh), evFull(ts+1, testDOM, 0, 0), evDoc(ts+2, docW, docH),
	}
}

func cat(parts ...any) []json.RawMessage {
	var out []json.RawMessage
	for _, p := range parts {
		switch v := p.(type) {
		case json.RawMessage:
			out = append(out, v)
		case []json.RawMessage:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return out
}

// memSink records what a tracker finds.
type memSink struct {
	pageviews []*pageview
	clicks    []*click
	signals   []*signal
	boxes     int
	saves     int
}

func (m *memSink) startPageview(pv *pageview) error {
	m.pageviews = append(m.pageviews, pv)
	pv.rowID = int64(len(m.pageviews))
	return nil
}
func (m *memSink) savePageview(*pageview) error { m.saves++; return nil }
func (m *memSink) click(c *click) error {
	m.clicks = append(m.clicks, c)
	c.rowID = int64(len(m.clicks))
	return nil
}
func (m *memSink) clickBox(*click) error { m.boxes++; return nil }
func (m *memSink) signal(s *signal, _ []*click) error {
	if s.rowID == 0 {
		m.signals = append(m.signals, s)
		s.rowID = int64(len(m.signals))
	}
	return nil
}

func (m *memSink) signalsOf(typ string) []*signal {
	var out []*signal
	for _, s := range m.signals {
		if s.typ == typ {
			out = append(out, s)
		}
	}
	return out
}

// track runs batches through a fresh tracker with default settings.
func track(t testing.TB, batches ...[]json.RawMessage) (*tracker, *memSink) {
	t.Helper()
	set := DefaultSettings()
	tr := newTracker(&set, 100000)
	m := &memSink{}
	for _, b := range batches {
		if err := tr.observe(rrweb.SplitAll(b), m); err != nil {
			t.Fatalf("observe: %v", err)
		}
	}
	return tr, m
}
