// Package render turns recorded clips into files for slides: MP4 (H.264),
// WebM (VP9) and GIF. Headless Chromium plays the stored events in a page
// made for it (the rrweb replayer, a cursor, click ripples, rage and dead
// clicks marked, an optional caption bar), set to each frame's time in turn
// — a deterministic render, not a real-time screen capture — and ffmpeg
// encodes the screenshots. The page gets nothing from the network: its
// events and the stored copies of the site's assets are in it.
//
// Renders are jobs in a persistent queue (render_jobs, which this package
// owns with render_trash). Any node's workers take queued jobs under a lease
// they renew while they work; a job whose node died is taken again once its
// lease runs out, and only the holder of the lease may commit the file, so
// a restart neither loses a job nor serves a half file. Files live in the
// blob store, shared by equal requests; they go with their session.
package render

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/trailmap/trailmap/storage/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Schema is the render tables' migrations (0050–0059), for sqldb.Open. They
// refer to the core's sessions and the accounts' shares: open the index
// with accounts.Schema too.
var Schema = sqldb.NewSchema("render", 50, 59, migrations)

// Errors of the render package.
var (
	// ErrInvalid is returned (wrapped, with what is wrong) for options that
	// cannot be rendered.
	ErrInvalid = errors.New("invalid render request")
	// ErrUnavailable means Chromium or ffmpeg is not installed.
	ErrUnavailable = errors.New("renderer unavailable")
	// ErrTooMany means the caller has too many renders in flight.
	ErrTooMany = errors.New("too many renders in flight")
	// ErrNotFound means there is no such job.
	ErrNotFound = errors.New("render not found")
	// ErrNotReady means the job's file is not (or no longer) there.
	ErrNotReady = errors.New("render not finished")
	// ErrLost means a worker no longer holds its job (canceled, or taken
	// over after its lease ran out).
	ErrLost = errors.New("render job lost")
)

// Formats.
const (
	FormatMP4  = "mp4"
	FormatWebM = "webm"
	FormatGIF  = "gif"
)

// Sizes.
const (
	Size720  = "720p"
	Size1080 = "1080p"
)

// DefaultMaxClip is the longest range one render may cover by default.
const DefaultMaxClip = 10 * time.Minute

// version changes whenever the same options would render differently: it
// is part of the cache key, so files of an older renderer are not reused.
const version = "1"

// Options are what a render makes of a clip.
type Options struct {
	StartMS        int64  `json:"start_ms"` // from the session start
	EndMS          int64  `json:"end_ms"`
	Format         string `json:"format"`
	Size           string `json:"size"`
	FPS            int    `json:"fps"`
	Speed          int    `json:"speed"`
	SkipInactivity bool   `json:"skip_inactivity"`
	// Caption adds a bar under the recording: Title, the page and the time
	// it was recorded.
	Caption bool   `json:"caption"`
	Title   string `json:"title,omitempty"`
	// Portrait is set for sessions recorded on a portrait screen (phones):
	// the frame is 9:16.
	Portrait bool `json:"portrait,omitempty"`
}

// Defaults fills unset options: MP4, 720p, 15 fps (10 for GIF), 1×.
func (o *Options) Defaults() {
	if o.Format == "" {
		o.Format = FormatMP4
	}
	if o.Size == "" {
		o.Size = Size720
	}
	if o.FPS == 0 {
		o.FPS = 15
		if o.Format == FormatGIF {
			o.FPS = 10
		}
	}
	if o.Speed == 0 {
		o.Speed = 1
	}
}

// Validate reports options that cannot be rendered (ErrInvalid), with
// maxClip the longest range allowed.
func (o Options) Validate(maxClip time.Duration) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	switch {
	case o.Format != FormatMP4 && o.Format != FormatWebM && o.Format != FormatGIF:
		return bad("format must be mp4, webm or gif")
	case o.Size != Size720 && o.Size != Size1080:
		return bad("size must be 720p or 1080p")
	case o.FPS < 5 || o.FPS > 30:
		return bad("fps must be 5 to 30")
	case o.Speed < 1 || o.Speed > 8:
		return bad("speed must be 1 to 8")
	case o.StartMS < 0:
		return bad("start_ms must not be negative")
	case o.EndMS <= o.StartMS:
		return bad("end_ms must be after start_ms")
	case time.Duration(o.EndMS-o.StartMS)*time.Millisecond > maxClip:
		return bad("a render covers at most %s of recording; choose a shorter range", maxClip)
	case !utf8.ValidString(o.Title) || utf8.RuneCountInString(o.Title) > 200:
		return bad("title must be text of at most 200 characters")
	}
	return nil
}

// Dimensions are the frame's width and height in pixels.
func (o Options) Dimensions() (w, h int) {
	w, h = 1280, 720
	if o.Size == Size1080 {
		w, h = 1920, 1080
	}
	if o.Portrait {
		w, h = h, w
	}
	return w, h
}

// cacheKey names what a render of session row's range with o looks like:
// equal keys, equal files.
func (o Options) cacheKey(sessionRow int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "v%s\x00%d\x00%d\x00%d\x00%s\x00%s\x00%d\x00%d\x00%t\x00%t\x00%t\x00", version, sessionRow,
		o.StartMS, o.EndMS, o.Format, o.Size, o.FPS, o.Speed, o.SkipInactivity, o.Caption, o.Portrait)
	if o.Caption {
		h.Write([]byte(o.Title))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ContentType is the MIME type of a format's files.
func ContentType(format string) string {
	switch format {
	case FormatWebM:
		return "video/webm"
	case FormatGIF:
		return "image/gif"
	}
	return "video/mp4"
}

// FileName is a download name for a job's file.
func FileName(j *Job) string {
	return "trailmap-" + j.SessionID + "-" + strconv.FormatInt(j.Options.StartMS/1000, 10) + "s-" +
		strconv.FormatInt(j.Options.EndMS/1000, 10) + "s." + j.Options.Format
}
