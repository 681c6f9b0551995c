package recorder

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
)

// The browser recorder bundle, built by `make js` (recorder/js) into dist/.
// dist/README.md is committed so the embed compiles before the bundle exists.
//
//go:embed dist
var dist embed.FS

// ScriptFile is the bundle's path inside dist.
const ScriptFile = "recorder.js"

// ErrScriptNotBuilt means the binary was built without the recorder bundle.
var ErrScriptNotBuilt = errors.New("recorder script not built: run make js, then rebuild")

// Script is the browser recorder, ready to serve. It is immutable.
type Script struct {
	JS   []byte // the minified bundle
	Gzip []byte // JS, gzipped at the best compression
	// Hash is the first 16 hex digits of the SHA-256 of JS, for the
	// versioned URL /recorder.<Hash>.js.
	Hash string
	// ETag is the quoted strong entity tag of JS.
	ETag string
}

// LoadScript reads the embedded bundle and prepares it for serving. It
// returns ErrScriptNotBuilt when the bundle is missing.
func LoadScript() (*Script, error) {
	return loadScript(dist)
}

func loadScript(fsys fs.FS) (*Script, error) {
	js, err := fs.ReadFile(fsys, "dist/"+ScriptFile)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(js) == 0) {
		return nil, ErrScriptNotBuilt
	}
	if err != nil {
		return nil, fmt.Errorf("read recorder script: %w", err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(js); err != nil {
		return nil, fmt.Errorf("gzip recorder script: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip recorder script: %w", err)
	}
	sum := sha256.Sum256(js)
	hash := hex.EncodeToString(sum[:8])
	return &Script{JS: js, Gzip: gz.Bytes(), Hash: hash, ETag: `"` + hash + `"`}, nil
}
