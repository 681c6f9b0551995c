package server

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/assets"
)

// copies is a project's asset copies by hash.
type copies map[string]assets.Copy

func (c copies) Open(ctx context.Context, project int64, sha string, link func(string) string) (io.ReadCloser, assets.Copy, error) {
	return c.OpenOnDay(ctx, project, -1, sha, link)
}

func (c copies) OpenOnDay(_ context.Context, _ int64, _ int64, sha string, link func(string) string) (io.ReadCloser, assets.Copy, error) {
	cp, ok := c[sha]
	if !ok {
		return nil, assets.Copy{}, assets.ErrNotFound
	}
	body := strings.Repeat("x", int(cp.Size))
	if cp.ContentType == "text/css" {
		// A style sheet importing the image and itself.
		body = "@import url(" + link("css") + "); .a { background: url(" + link("img") + ") }"
		cp.Size = int64(len(body))
	}
	return io.NopCloser(bytes.NewReader([]byte(body))), cp, nil
}

func (c copies) NewRewriter(int64, int64, func(string) string) *assets.Rewriter { return nil }

// An offline clip inlines each copy once, a style sheet with what it
// references (an @import loop ends), and names what its budget leaves out.
func TestClipInliner(t *testing.T) {
	in := &clipInliner{ctx: context.Background(), project: 1, day: 1, budget: 5000, urls: map[string]string{}, visiting: map[string]bool{},
		assets: copies{
			"img":   {ContentType: "image/png", Size: 1000},
			"font":  {ContentType: "font/woff2", Size: 1500},
			"big":   {ContentType: "image/jpeg", Size: 5 << 20},
			"css":   {ContentType: "text/css"},
			"other": {ContentType: "image/png", Size: 100},
		}}
	img := in.link("img")
	if !strings.HasPrefix(img, "data:image/png;base64,") || in.link("img") != img {
		t.Fatalf("image: %.40q", img)
	}
	css := in.link("css")
	if !strings.HasPrefix(css, "data:text/css;base64,") {
		t.Fatalf("style sheet: %.40q", css)
	}
	if in.link("big") != "" || in.link("missing") != "" {
		t.Error("a copy over the budget, or none at all, was inlined")
	}
	if in.link("font") != "" {
		t.Error("the font fits no more after the image and the sheet, and was inlined")
	}
	if in.used > in.budget {
		t.Errorf("used %d of %d", in.used, in.budget)
	}
	note := in.omittedNote()
	if !strings.Contains(note, "2 image, font or style sheet copies (5.0 MB)") {
		t.Errorf("note %q", note)
	}
	if (&clipInliner{}).omittedNote() != "" {
		t.Error("a note with nothing left out")
	}
}
