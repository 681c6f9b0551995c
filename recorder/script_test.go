package recorder

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"
	"testing/fstest"
)

// maxScriptGzip is the size budget of the recorder script (issue 3).
const maxScriptGzip = 30_000

func TestLoadScript_Budget(t *testing.T) {
	s, err := LoadScript()
	if errors.Is(err, ErrScriptNotBuilt) {
		t.Fatal("recorder/dist/recorder.js is missing: run make js")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recorder.js: %d bytes, %d gzipped (budget %d)", len(s.JS), len(s.Gzip), maxScriptGzip)
	if len(s.Gzip) > maxScriptGzip {
		t.Fatalf("recorder.js is %d bytes gzipped, over the %d byte budget", len(s.Gzip), maxScriptGzip)
	}
	zr, err := gzip.NewReader(bytes.NewReader(s.Gzip))
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(back, s.JS) {
		t.Fatalf("gzip does not round-trip: %v", err)
	}
	if len(s.Hash) != 16 || s.ETag != `"`+s.Hash+`"` {
		t.Fatalf("hash %q etag %q", s.Hash, s.ETag)
	}
}

func TestLoadScript(t *testing.T) {
	tests := []struct {
		name    string
		fs      fstest.MapFS
		wantErr error
	}{
		{"missing", fstest.MapFS{"dist/README.md": {Data: []byte("x")}}, ErrScriptNotBuilt},
		{"empty", fstest.MapFS{"dist/recorder.js": {}}, ErrScriptNotBuilt},
		{"built", fstest.MapFS{"dist/recorder.js": {Data: []byte("(()=>{})();")}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadScript(tt.fs)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(s.JS) != "(()=>{})();" {
				t.Fatalf("JS %q", s.JS)
			}
		})
	}
}
