package zdict

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// SegmentOptions are the options every segment encoder is made with, at
// level: one goroutine, an 8 MB window and a checksum (a dictionary, where
// there is one, is added to them).
func SegmentOptions(level zstd.EncoderLevel) []zstd.EOption {
	return []zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(8 << 20), zstd.WithEncoderCRC(true)}
}

// Encoders hands out zstd encoders made with one set of options and keeps
// up to its capacity of them between uses. Not a sync.Pool: a new encoder
// at the best level allocates and clears about 52 MB (55 ms, against
// 0.19 ms to encode a 20 KB segment with one kept), and a sync.Pool may
// drop what it holds at any garbage collection — under ingest, nearly
// every use (under the race detector, a quarter of its Puts:
// TestRecorder_ConcurrentSessions took 236 s instead of 15). Keep as many
// as segments are compressed at once: the ones kept stay allocated while
// the server runs.
type Encoders struct {
	opts []zstd.EOption
	free chan *zstd.Encoder
}

// NewEncoders returns a list that keeps up to keep encoders made with
// opts (which must be valid: a bad option panics at first use).
func NewEncoders(keep int, opts ...zstd.EOption) *Encoders {
	return &Encoders{opts: opts, free: make(chan *zstd.Encoder, keep)}
}

// EncodeAll compresses src into one frame appended to dst.
func (p *Encoders) EncodeAll(src, dst []byte) []byte {
	var e *zstd.Encoder
	select {
	case e = <-p.free:
	default:
		var err error
		if e, err = zstd.NewWriter(nil, p.opts...); err != nil {
			panic(fmt.Sprintf("zdict: zstd encoder: %v", err)) // only on invalid options
		}
	}
	out := e.EncodeAll(src, dst)
	select {
	case p.free <- e:
	default: // more at once than kept: let this one go
	}
	return out
}
