package render

import (
	"errors"
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	o := Options{EndMS: 5000}
	o.Defaults()
	if o.Format != FormatMP4 || o.Size != Size720 || o.FPS != 15 || o.Speed != 1 {
		t.Errorf("defaults %+v", o)
	}
	g := Options{Format: FormatGIF, EndMS: 5000}
	g.Defaults()
	if g.FPS != 10 {
		t.Errorf("GIF default fps %d", g.FPS)
	}
	if w, h := o.Dimensions(); w != 1280 || h != 720 {
		t.Errorf("720p %dx%d", w, h)
	}
	p := Options{Size: Size1080, Portrait: true}
	if w, h := p.Dimensions(); w != 1080 || h != 1920 {
		t.Errorf("portrait 1080p %dx%d", w, h)
	}
	for _, bad := range []Options{
		{Format: "avi", Size: Size720, FPS: 10, Speed: 1, EndMS: 1000},
		{Format: FormatMP4, Size: "4k", FPS: 10, Speed: 1, EndMS: 1000},
		{Format: FormatMP4, Size: Size720, FPS: 4, Speed: 1, EndMS: 1000},
		{Format: FormatMP4, Size: Size720, FPS: 31, Speed: 1, EndMS: 1000},
		{Format: FormatMP4, Size: Size720, FPS: 10, Speed: 9, EndMS: 1000},
		{Format: FormatMP4, Size: Size720, FPS: 10, Speed: 1, StartMS: -1, EndMS: 1000},
		{Format: FormatMP4, Size: Size720, FPS: 10, Speed: 1, StartMS: 1000, EndMS: 1000},
		{Format: FormatMP4, Size: Size720, FPS: 10, Speed: 1, EndMS: 11 * 60 * 1000},
		{Format: FormatMP4, Size: Size720, FPS: 10, Speed: 1, EndMS: 1000, Title: string([]byte{0xff})},
	} {
		if err := bad.Validate(DefaultMaxClip); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", bad, err)
		}
	}
	if err := o.Validate(DefaultMaxClip); err != nil {
		t.Error(err)
	}
	// Equal requests share a key; any option that changes the picture
	// changes it.
	a, b := o, o
	b.Caption, b.Title = true, "x"
	if a.cacheKey(1) == b.cacheKey(1) || a.cacheKey(1) == a.cacheKey(2) || a.cacheKey(1) != o.cacheKey(1) {
		t.Error("cache keys")
	}
}

func TestFrameTimes(t *testing.T) {
	o := Options{FPS: 10, Speed: 2}
	ts := FrameTimes(10_000, nil, o)
	// 10 s at 2× is 5 s of video: 50 frames, 200 ms of recording apart.
	if len(ts) != 50 || ts[0] != 0 || ts[1] != 200 || ts[49] != 9800 {
		t.Fatalf("%d frames: %v…%v", len(ts), ts[:2], ts[len(ts)-1])
	}
	// Skipping inactivity: a 20 s gap between interactions at 1 s and 21 s
	// plays its first and last second, and the 18 s between in half a
	// second.
	o = Options{FPS: 10, Speed: 1, SkipInactivity: true}
	ts = FrameTimes(22_000, []int64{1000, 21_000}, o)
	want := time.Duration(2000+500+2000) * time.Millisecond // 0–2 s, 2–20 s fast, 20–22 s
	if got := time.Duration(len(ts)) * 100 * time.Millisecond; got < want-200*time.Millisecond || got > want+200*time.Millisecond {
		t.Errorf("skipping: %d frames (%s of video), want about %s", len(ts), got, want)
	}
	for i := 1; i < len(ts); i++ {
		if ts[i] < ts[i-1] {
			t.Fatalf("frame times go back at %d: %v", i, ts[i-1:i+1])
		}
	}
	if ts[len(ts)-1] < 21_000 {
		t.Errorf("last frame at %d ms: the end is not shown", ts[len(ts)-1])
	}
}
