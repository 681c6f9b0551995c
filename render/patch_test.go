package render

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailmap/trailmap/ui"
)

// Frames patched from changed rectangles look like frames taken whole:
// a busy recording (the pointer moving over a button with a hover style,
// a counter's text changing, clicks with a dead click label, an element
// added, a scroll, the caption's clock) rendered both ways, frame by frame.
func TestRenderer_PatchesMatchWholeFrames(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is not installed (make test installs it)")
	}
	web, err := ui.NewWeb()
	if err != nil || !web.Built() {
		t.Fatalf("the UI bundle is not built (make js): %v", err)
	}
	const t0 = int64(1_800_000_000_000)
	snap := `{"type":0,"id":1,"childNodes":[{"type":2,"id":2,"tagName":"html","attributes":{},"childNodes":[` +
		`{"type":2,"id":3,"tagName":"head","attributes":{},"childNodes":[{"type":2,"id":4,"tagName":"style","attributes":{},"childNodes":[` +
		`{"type":3,"id":5,"isStyle":true,"textContent":"body{margin:0;font:28px sans-serif;height:2000px} header{height:60px;background:#234} #n{margin:20px} button{position:absolute;left:300px;top:250px;width:300px;height:120px;font:inherit;background:rgb(220,220,220);border:0} button:hover{background:rgb(0,170,0)} .new{position:absolute;left:800px;top:400px;width:200px;height:100px;background:rgb(200,0,200)}"}]}]},` +
		`{"type":2,"id":6,"tagName":"body","attributes":{},"childNodes":[{"type":2,"id":7,"tagName":"header","attributes":{},"childNodes":[]},` +
		`{"type":2,"id":8,"tagName":"p","attributes":{"id":"n"},"childNodes":[{"type":3,"id":9,"textContent":"Items: 0"}]},` +
		`{"type":2,"id":10,"tagName":"button","attributes":{},"childNodes":[{"type":3,"id":11,"textContent":"Buy"}]}]}]}]}`
	evs := []string{
		fmt.Sprintf(`{"type":4,"timestamp":%d,"data":{"href":"https://shop.test/","width":1280,"height":800}}`, t0),
		fmt.Sprintf(`{"type":2,"timestamp":%d,"data":{"node":%s,"initialOffset":{"top":0,"left":0}}}`, t0+1, snap),
	}
	for at := int64(100); at < 8000; at += 100 {
		x, y := 100+int(at/10), 300+int(at/100)%3*10
		evs = append(evs, fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":1,"positions":[{"x":%d,"y":%d,"id":10,"timeOffset":0}]}}`, t0+at, x, y))
		if at%500 == 0 {
			evs = append(evs, fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":0,"texts":[{"id":9,"value":"Items: %d"}],"attributes":[],"removes":[],"adds":[]}}`, t0+at+10, at/500))
		}
		if at%1500 == 0 {
			evs = append(evs, fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":10,"x":%d,"y":%d}}`, t0+at+20, x, y))
		}
	}
	evs = append(evs,
		fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":0,"texts":[],"attributes":[],"removes":[],"adds":[{"parentId":6,"nextId":null,"node":{"type":2,"id":12,"tagName":"div","attributes":{"class":"new"},"childNodes":[]}}]}}`, t0+3050),
		fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":3,"id":1,"x":0,"y":120}}`, t0+6050),
		fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":3,"id":1,"x":0,"y":120}}`, t0+8000))
	var arr []json.RawMessage
	for _, e := range evs {
		arr = append(arr, json.RawMessage(e))
	}
	raw, _ := json.Marshal(arr)
	clip := ui.RenderClip{StartTS: t0, DurationMS: 8000, Caption: &ui.RenderCaption{Title: "Patches"},
		Signals: []ui.RenderSignal{{Type: "dead_click", TS: t0 + 3020, X: 400, Y: 300}}}
	pg := func(w io.Writer) error {
		return web.WriteRender(w, clip, func(w io.Writer) error { _, err := w.Write(raw); return err })
	}
	// GIF: whole frames are PNG too, so both ways are exact pictures.
	o := Options{Format: FormatGIF, Size: Size720, FPS: 10, Speed: 1, EndMS: 8000, Caption: true}
	render := func(whole bool) ([]*image.RGBA, *Result) {
		var frames []*image.RGBA
		r := &Renderer{whole: whole, onFrame: func(i int, f *image.RGBA) {
			c := image.NewRGBA(f.Rect)
			copy(c.Pix, f.Pix)
			frames = append(frames, c)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a bound, not a target: 121 s on a loaded CI run
		defer cancel()
		res, err := r.Render(ctx, pg, 8000, o, filepath.Join(t.TempDir(), "out.gif"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return frames, res
	}
	whole, wres := render(true)
	patched, pres := render(false)
	t.Logf("whole: %d screenshots; patched: %d whole + %d rectangles", wres.Shots, pres.Shots, pres.Patches)
	if len(whole) != 80 || len(patched) != 80 {
		t.Fatalf("%d and %d frames, want 80", len(whole), len(patched))
	}
	if pres.Patches < 40 || pres.Shots > 20 {
		t.Errorf("patched render took %d whole screenshots and %d rectangles: the rectangles are not used", pres.Shots, pres.Patches)
	}
	for i := range whole {
		a, b := whole[i], patched[i]
		bad := 0
		for p := 0; p < len(a.Pix); p += 4 {
			for c := range 3 {
				d := int(a.Pix[p+c]) - int(b.Pix[p+c])
				if d > 40 || d < -40 {
					bad++
					break
				}
			}
		}
		if bad > 50 {
			t.Errorf("frame %d (%d ms): %d pixels differ between the whole and the patched render", i, i*100, bad)
		}
	}
}
