package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Limits bound what one ingest request may cost.
type Limits struct {
	// MaxCompressed is the largest request body accepted as sent, in bytes.
	MaxCompressed int64
	// MaxDecompressed is the largest body after decompression, in bytes.
	// Identity bodies must fit both limits.
	MaxDecompressed int64
	// MaxEvents is the largest number of events in one batch.
	MaxEvents int
	// MaxEventBytes is the largest size of one event, compacted, in bytes.
	MaxEventBytes int
	// MaxClockSkew is how far past the server's clock an event may be
	// dated: browsers' clocks run a little ahead. A batch with a later
	// event is refused with ErrTimestampOutOfRange.
	MaxClockSkew time.Duration
	// MaxEventAge is how long before it arrives an event may be dated: the
	// recorder's outbox sends batches again after an outage, so some come
	// late. A batch with an older event is refused with
	// ErrTimestampOutOfRange. Zero, the default, means no bound: recordings
	// of any age can be imported (the rrweb conformance fixtures are dated
	// 1970 to 2021); 168h refuses what no outbox would still hold.
	MaxEventAge time.Duration
}

// DefaultLimits returns limits fit for real recordings: a full snapshot of
// a big page can be several MB of JSON, which gzip shrinks about tenfold.
func DefaultLimits() Limits {
	return Limits{
		MaxCompressed:   4 << 20, // also caps identity bodies: browsers without CompressionStream send big snapshots plain
		MaxDecompressed: 16 << 20,
		MaxEvents:       5000,
		MaxEventBytes:   4 << 20,
		MaxClockSkew:    10 * time.Minute,
	}
}

// Validate reports whether the limits are usable.
func (l Limits) Validate() error {
	switch {
	case l.MaxCompressed <= 0:
		return errors.New("max compressed body size must be positive")
	case l.MaxDecompressed <= 0:
		return errors.New("max decompressed body size must be positive")
	case l.MaxEvents <= 0:
		return errors.New("max events per batch must be positive")
	case l.MaxEventBytes <= 0:
		return errors.New("max event size must be positive")
	case int64(l.MaxEventBytes) > l.MaxDecompressed:
		return errors.New("max event size must not exceed max decompressed body size")
	}
	return l.validateTimes()
}

// validateTimes checks the bounds of event timestamps.
func (l Limits) validateTimes() error {
	switch {
	case l.MaxClockSkew <= 0 || l.MaxClockSkew > maxClockSkew:
		return fmt.Errorf("max clock skew must be from 1ms to %v", maxClockSkew)
	case l.MaxEventAge < 0:
		return errors.New("max event age must not be negative (0: no bound)")
	}
	return nil
}

// zstdMinWindow is the window every zstd decoder accepts even when the
// decompressed limit is smaller: streaming zstd encoders up to level 19
// declare windows of up to 8 MiB whatever the content size.
const zstdMinWindow = 8 << 20

// Decoder decompresses request bodies within Limits. It pools
// decompressors, so one Decoder should be shared by all requests; it is
// safe for concurrent use.
type Decoder struct {
	lim Limits

	bufs  sync.Pool // *[]byte holding a compressed body
	gzip  sync.Pool // *gzip.Reader
	zlib  sync.Pool // io.ReadCloser implementing zlib.Resetter
	flate sync.Pool // io.ReadCloser implementing flate.Resetter
	zstd  sync.Pool // *zstd.Decoder, single-threaded, so nothing to Close
}

// NewDecoder returns a Decoder enforcing lim.
func NewDecoder(lim Limits) *Decoder {
	return &Decoder{lim: lim}
}

// Decompress reads a body sent with the given content encoding using a
// throwaway Decoder. Servers should hold one Decoder instead.
func Decompress(r io.Reader, encoding string, lim Limits) ([]byte, error) {
	return NewDecoder(lim).Decompress(r, encoding)
}

// Decompress reads the body r sent with the content encoding encoding ("",
// "identity", "gzip", "x-gzip", "zstd" or "deflate", case-insensitive) and
// returns it decompressed, in a new slice the caller owns: Read, then
// Decode.
//
// Compressed bodies are read up to MaxCompressed bytes and inflated up to
// MaxDecompressed bytes; identity bodies are read up to the smaller of
// the two. Going over a limit stops reading at once and returns ErrTooLarge,
// so a decompression bomb costs at most the limit. "deflate" accepts both
// zlib-wrapped streams (HTTP deflate, CompressionStream("deflate")) and raw
// deflate. Corrupt or truncated streams return ErrMalformed, other
// encodings ErrUnsupportedEncoding.
func (d *Decoder) Decompress(r io.Reader, encoding string) ([]byte, error) {
	b, err := d.Read(r, encoding)
	if err != nil {
		return nil, err
	}
	defer b.Release()
	return b.Decode()
}

// Body is a request body as it was sent, read in full by Decoder.Read.
type Body struct {
	d    *Decoder
	name string // "identity", "gzip", "zstd" or "deflate"
	fn   func(src, out []byte) ([]byte, error)
	buf  *[]byte // pooled; holds src
	src  []byte
}

// Read reads the body r sent with the content encoding encoding in full,
// within the limits, without decompressing it: a slow client costs time
// here, not the work that follows. Release the Body once decoded.
func (d *Decoder) Read(r io.Reader, encoding string) (*Body, error) {
	b := &Body{d: d}
	limit := d.lim.MaxCompressed
	switch enc := strings.TrimSpace(encoding); {
	case enc == "" || strings.EqualFold(enc, "identity"):
		b.name = "identity"
		limit = min(d.lim.MaxCompressed, d.lim.MaxDecompressed)
	case strings.EqualFold(enc, "gzip"), strings.EqualFold(enc, "x-gzip"):
		b.name, b.fn = "gzip", d.gunzip
	case strings.EqualFold(enc, "zstd"):
		b.name, b.fn = "zstd", d.unzstd
	case strings.EqualFold(enc, "deflate"):
		b.name, b.fn = "deflate", d.undeflate
	default:
		return nil, fmt.Errorf("%w: %q (want gzip, zstd, deflate or identity)", ErrUnsupportedEncoding, clipForError(enc))
	}
	b.buf, _ = d.bufs.Get().(*[]byte)
	if b.buf == nil {
		b.buf = new([]byte)
	}
	src, over, err := readAtMost(r, (*b.buf)[:0], limit)
	b.src = src
	if err != nil {
		b.Release()
		return nil, readError(err)
	}
	if over {
		b.Release()
		if b.fn == nil {
			return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: compressed body over %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// Release gives the body's buffer back for the next one.
func (b *Body) Release() {
	if b.buf == nil {
		return
	}
	*b.buf = b.src[:0] // keep a grown array for the next body
	b.d.bufs.Put(b.buf)
	b.buf, b.src = nil, nil
}

// Decode returns the body decompressed, in a new slice the caller owns.
func (b *Body) Decode() ([]byte, error) {
	if b.fn == nil {
		return append([]byte{}, b.src...), nil
	}
	if len(b.src) == 0 {
		return nil, fmt.Errorf("%w: empty %s body", ErrMalformed, b.name)
	}
	out, err := b.fn(b.src, make([]byte, 0, b.d.sizeHint(b.src, b.name)))
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: corrupt %s body: %w", ErrMalformed, b.name, err)
	}
	// The events alias this buffer while the batch waits for its segment:
	// do not keep much more memory alive than the body needs.
	if cap(out)-len(out) > len(out)/4 {
		out = append(make([]byte, 0, len(out)), out...)
	}
	return out, nil
}

// sizeHint guesses the decompressed size of src to allocate once: gzip
// trailers and most zstd frame headers state it. A stated size is trusted
// only up to a ratio no JSON reaches, so a lie costs little.
func (d *Decoder) sizeHint(src []byte, name string) int {
	const maxRatio, guessRatio = 64, 10
	hint := int64(len(src)) * guessRatio
	switch name {
	case "gzip":
		if n := len(src); n >= 18 {
			hint = int64(binary.LittleEndian.Uint32(src[n-4:]))
		}
	case "zstd":
		var h zstd.Header
		if h.Decode(src) == nil && h.HasFCS {
			hint = int64(min(h.FrameContentSize, 1<<40))
		}
	}
	// One byte more: reading stops at a Read that returns 0 and io.EOF,
	// which a full buffer would first grow for.
	hint = min(hint+1, int64(len(src))*maxRatio, d.lim.MaxDecompressed+1)
	return int(max(hint, 512))
}

func (d *Decoder) gunzip(src, out []byte) ([]byte, error) {
	zr, _ := d.gzip.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(src))
	} else {
		err = zr.Reset(bytes.NewReader(src))
	}
	if err != nil {
		return nil, err // zr is unusable until a successful Reset: drop it
	}
	out, err = d.drain(zr, out)
	d.gzip.Put(zr)
	return out, err
}

func (d *Decoder) unzstd(src, out []byte) ([]byte, error) {
	// A frame that declares its size says at once whether it fits.
	var h zstd.Header
	if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize > uint64(d.lim.MaxDecompressed) {
		return nil, fmt.Errorf("%w: zstd frame declares %d bytes, over %d", ErrTooLarge, h.FrameContentSize, d.lim.MaxDecompressed)
	}
	zr, _ := d.zstd.Get().(*zstd.Decoder)
	if zr == nil {
		window := uint64(max(d.lim.MaxDecompressed, zstdMinWindow))
		var err error
		zr, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1), // no goroutines: pooled decoders can be dropped
			zstd.WithDecoderMaxMemory(window),
			zstd.WithDecoderMaxWindow(window),
		)
		if err != nil {
			return nil, fmt.Errorf("new zstd decoder: %w", err)
		}
	}
	defer d.zstd.Put(zr)
	if err := zr.Reset(bytes.NewReader(src)); err != nil {
		return nil, err
	}
	out, err := d.drain(zr, out)
	_ = zr.Reset(nil) // drop the reference to src
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return nil, fmt.Errorf("%w: zstd frame needs more than %d bytes of memory", ErrTooLarge, max(d.lim.MaxDecompressed, zstdMinWindow))
	}
	return out, err
}

// undeflate inflates zlib-wrapped or raw deflate. A zlib header is two
// bytes a raw stream starts with only by chance, so when the zlib reading
// fails the body is tried again as raw deflate.
func (d *Decoder) undeflate(src, out []byte) ([]byte, error) {
	if isZlibHeader(src) {
		res, err := d.unzlib(src, out)
		if err == nil || errors.Is(err, ErrTooLarge) {
			return res, err
		}
		if raw, rawErr := d.unflate(src, out[:0]); rawErr == nil || errors.Is(rawErr, ErrTooLarge) {
			return raw, rawErr
		}
		return nil, err
	}
	return d.unflate(src, out)
}

func (d *Decoder) unzlib(src, out []byte) ([]byte, error) {
	zr, _ := d.zlib.Get().(io.ReadCloser)
	var err error
	if zr == nil {
		zr, err = zlib.NewReader(bytes.NewReader(src))
	} else {
		err = zr.(zlib.Resetter).Reset(bytes.NewReader(src), nil)
	}
	if err != nil {
		return nil, err
	}
	out, err = d.drain(zr, out)
	d.zlib.Put(zr)
	return out, err
}

func (d *Decoder) unflate(src, out []byte) ([]byte, error) {
	fr, _ := d.flate.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(bytes.NewReader(src))
	} else if err := fr.(flate.Resetter).Reset(bytes.NewReader(src), nil); err != nil {
		return nil, err
	}
	out, err := d.drain(fr, out)
	d.flate.Put(fr)
	return out, err
}

// drain appends r to out, stopping after MaxDecompressed+1 bytes.
func (d *Decoder) drain(r io.Reader, out []byte) ([]byte, error) {
	out, over, err := readAtMost(r, out, d.lim.MaxDecompressed)
	if err != nil {
		return nil, err
	}
	if over {
		return nil, fmt.Errorf("%w: decompressed body over %d bytes", ErrTooLarge, d.lim.MaxDecompressed)
	}
	return out, nil
}

// isZlibHeader reports whether b starts with a zlib header (RFC 1950):
// deflate method, window up to 32 KiB, valid check bits, no preset dictionary.
func isZlibHeader(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	cmf, flg := b[0], b[1]
	return cmf&0x0f == 8 && cmf>>4 <= 7 && (uint16(cmf)<<8|uint16(flg))%31 == 0 && flg&0x20 == 0
}

// readAtMost appends r to dst until EOF or until more than limit bytes were
// read; over reports the latter. It never reads more than limit+1 bytes.
func readAtMost(r io.Reader, dst []byte, limit int64) (out []byte, over bool, err error) {
	start := len(dst)
	lr := &io.LimitedReader{R: r, N: limit + 1}
	for {
		if len(dst) == cap(dst) {
			grown := min(max(2*int64(cap(dst)), 4096), int64(start)+limit+1)
			if grown <= int64(cap(dst)) {
				grown = int64(cap(dst)) + 512
			}
			dst = append(make([]byte, 0, grown), dst...)
		}
		n, err := lr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)-start) > limit {
			return dst, true, nil
		}
		if err == io.EOF {
			return dst, false, nil
		}
		if err != nil {
			return dst, false, err
		}
	}
}

// readError classifies an error reading the request body: a body cut by
// http.MaxBytesReader is too large, anything else is the client's fault.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: body over %d bytes", ErrTooLarge, mbe.Limit)
	}
	return fmt.Errorf("%w: read body: %w", ErrMalformed, err)
}

// clipForError shortens client input quoted in an error message.
func clipForError(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
