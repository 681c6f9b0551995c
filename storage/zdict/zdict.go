// Package zdict compresses recording segments with per-project zstd
// dictionaries, and reads segments written with any of them.
//
// Most sessions are short, and zstd without a dictionary does badly on
// small inputs: the Meta event, the full snapshot's page skeleton and the
// shapes of rrweb's events are written again in every segment. A
// dictionary made of a project's own earlier segments (see Trainer) holds
// what its pages have in common, so each segment only pays for what is
// new. The dictionaries are raw zstd history (earlier segments as they
// are), not the entropy-coded kind the zstd trainers build: on short shop
// visits that stores 0.48 × gzip -6 at zstd's default level against
// 0.79–0.81 × with a trained one (see BenchmarkDictionaries).
//
// Dictionaries live in the blob store, next to the segments, so every node
// of a cluster reads every segment:
//
//	dicts/<id>.raw             a dictionary's content, never changed or deleted
//	<project>/dictionary.json  the project's current one (Info)
//
// A segment's zstd frame carries the id of its dictionary: readers load
// the dictionary by that id when they first meet it, so old segments stay
// readable after retraining, and a node that has never seen a dictionary
// reads segments written with it. Id 1 is the built-in dictionary (rrweb's
// vocabulary, compiled in), used by projects that have none of their own
// yet; frames with id 0 have no dictionary (segments from before
// dictionaries, large ones — see largeSegment — or where zstd found none
// useful).
package zdict

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/storage"
)

// BuiltinID is the id of the compiled-in dictionary.
const BuiltinID = 1

// maxDictBytes bounds a dictionary read from the blob store.
const maxDictBytes = 8 << 20

// ErrMissingDictionary is returned (wrapped) for a segment whose
// dictionary is not in the blob store.
var ErrMissingDictionary = errors.New("segment dictionary missing")

// Blobs is what dictionaries need of the blob store.
type Blobs interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
}

// Info describes a project's current dictionary: <project>/dictionary.json.
type Info struct {
	ID        uint32    `json:"id"`
	TrainedAt time.Time `json:"trained_at"`
	Samples   int       `json:"samples"`     // segments it was trained on
	Bytes     int       `json:"bytes"`       // its size
	Ratio     float64   `json:"ratio"`       // stored ÷ raw on held-out segments, with it
	PlainRate float64   `json:"plain_ratio"` // the same without a dictionary, at the best level
	GzipRatio float64   `json:"gzip_ratio"`  // the same with gzip -6, for comparison
	Level     string    `json:"level"`       // zstd level it is used at
	Reason    string    `json:"reason"`      // why it was trained: first, age, drift
	Previous  uint32    `json:"previous_id"` // the one it replaced (0: none)
}

// DictKey is the blob key of dictionary id.
func DictKey(id uint32) string { return "dicts/" + strconv.FormatUint(uint64(id), 10) + ".raw" }

// InfoKey is the blob key of a project's current dictionary.
func InfoKey(project int64) string { return strconv.FormatInt(project, 10) + "/dictionary.json" }

// Config tunes a Set.
type Config struct {
	// Level is the zstd level segments are written at with a dictionary
	// (zstd.SpeedDefault: a dictionary gives what the slow levels used to,
	// several times faster).
	Level zstd.EncoderLevel
	// Concurrency is how many segments are compressed at once: that many
	// encoders for large segments are kept between uses.
	Concurrency int
	// Refresh is how long a project's current dictionary is taken as
	// known before its Info is read again (a retrain on another node is
	// picked up within it).
	Refresh time.Duration
}

// DefaultConfig writes at zstd's default level and looks for a newer
// dictionary every minute.
func DefaultConfig() Config {
	return Config{Level: zstd.SpeedDefault, Concurrency: 2, Refresh: time.Minute}
}

// Set compresses segments with their project's dictionary and reads
// segments written with any dictionary. It is safe for concurrent use.
type Set struct {
	blobs Blobs
	cfg   Config
	log   *slog.Logger

	large *Encoders // zstd's best level, no dictionary: see largeSegment

	mu      sync.Mutex
	dicts   map[uint32]*entry // loaded dictionaries; 0 is "none"
	current map[int64]*current
}

// entry is one dictionary with its encoders and decoders.
type entry struct {
	id   uint32
	raw  []byte // the dictionary's content; nil: no dictionary
	enc  sync.Pool
	fast sync.Pool
	dec  chan *zstd.Decoder
}

// current is a project's current dictionary as last read.
type current struct {
	info    *Info // nil: none of its own (the built-in one applies)
	checked time.Time
	// What its segments took, since it was read: stored and raw bytes.
	stored, raw int64
}

// New returns a Set over blobs.
func New(blobs Blobs, cfg Config, logger *slog.Logger) *Set {
	s := &Set{blobs: blobs, cfg: cfg, log: logger.With("component", "zdict"),
		large: NewEncoders(max(cfg.Concurrency, 1), SegmentOptions(zstd.SpeedBestCompression)...),
		dicts: map[uint32]*entry{}, current: map[int64]*current{}}
	s.dicts[0] = s.newEntry(0, nil)
	s.dicts[BuiltinID] = s.newEntry(BuiltinID, []byte(builtin))
	return s
}

func (s *Set) newEntry(id uint32, raw []byte) *entry {
	e := &entry{id: id, raw: raw, dec: make(chan *zstd.Decoder, 4)}
	opts := func(level zstd.EncoderLevel) []zstd.EOption {
		o := SegmentOptions(level)
		if raw != nil { // entry 0 (no dictionary) only ever decodes
			o = append(o, zstd.WithEncoderDictRaw(id, raw))
		}
		return o
	}
	newPool := func(level zstd.EncoderLevel) func() any {
		return func() any {
			enc, err := zstd.NewWriter(nil, opts(level)...)
			if err != nil {
				panic(fmt.Sprintf("zdict: encoder for dictionary %d: %v", id, err)) // checked by load
			}
			return enc
		}
	}
	e.enc.New = newPool(s.cfg.Level)
	e.fast.New = newPool(zstd.SpeedFastest)
	return e
}

func (e *entry) decoder() (*zstd.Decoder, error) {
	select {
	case d := <-e.dec:
		return d, nil
	default:
	}
	opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64 << 20)}
	if e.raw != nil {
		opts = append(opts, zstd.WithDecoderDictRaw(e.id, e.raw))
	}
	return zstd.NewReader(nil, opts...)
}

func (e *entry) putDecoder(d *zstd.Decoder) {
	select {
	case e.dec <- d:
	default:
		d.Close()
	}
}

// load returns dictionary id, reading it from the blob store the first
// time.
func (s *Set) load(ctx context.Context, id uint32) (*entry, error) {
	s.mu.Lock()
	e := s.dicts[id]
	s.mu.Unlock()
	if e != nil {
		return e, nil
	}
	rc, err := s.blobs.Get(ctx, DictKey(id), 0, -1)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: dictionary %d (object %s) is not in the blob store", ErrMissingDictionary, id, DictKey(id))
	}
	if err != nil {
		return nil, fmt.Errorf("read dictionary %d: %w", id, err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxDictBytes+1))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read dictionary %d: %w", id, err)
	}
	if len(data) == 0 || len(data) > maxDictBytes {
		return nil, fmt.Errorf("%w: object %s holds %d bytes, not a dictionary", ErrMissingDictionary, DictKey(id), len(data))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.dicts[id]; e != nil {
		return e, nil
	}
	e = s.newEntry(id, data)
	s.dicts[id] = e
	return e, nil
}

// projectDict returns the dictionary a project's segments are written
// with now, and its current state.
func (s *Set) projectDict(ctx context.Context, project int64) (*entry, *current) {
	s.mu.Lock()
	c := s.current[project]
	fresh := c != nil && time.Since(c.checked) < s.cfg.Refresh
	s.mu.Unlock()
	if !fresh {
		info, err := s.ReadInfo(ctx, project)
		if err != nil {
			s.log.Warn("project dictionary unreadable, using the built-in one", "project", project, slog.Any("error", err))
		}
		s.mu.Lock()
		if c == nil || c.info == nil || info == nil || c.info.ID != info.ID {
			c = &current{info: info}
			s.current[project] = c
		}
		c.checked = time.Now()
		s.mu.Unlock()
	}
	if c.info != nil {
		e, err := s.load(ctx, c.info.ID)
		if err == nil {
			return e, c
		}
		s.log.Warn("project dictionary unreadable, using the built-in one", "project", project, slog.Any("error", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dicts[BuiltinID], c
}

// WriteBuiltin stores the built-in dictionary as dicts/1.raw, for tools
// outside Trailmap that read segments (zstd -D); Trailmap itself has it
// compiled in.
func (s *Set) WriteBuiltin(ctx context.Context) error {
	if err := s.blobs.Put(ctx, DictKey(BuiltinID), bytes.NewReader([]byte(builtin)), int64(len(builtin))); err != nil {
		return fmt.Errorf("store the built-in dictionary: %w", err)
	}
	return nil
}

// ReadInfo reads a project's current dictionary (nil: none of its own).
func (s *Set) ReadInfo(ctx context.Context, project int64) (*Info, error) {
	rc, err := s.blobs.Get(ctx, InfoKey(project), 0, -1)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", InfoKey(project), err)
	}
	defer rc.Close()
	var info Info
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("read %s: %w", InfoKey(project), err)
	}
	return &info, nil
}

// largeSegment is the raw size from which a segment owes little to its
// dictionary and much to zstd's own matching: it is written at zstd's best
// level without a dictionary, as segments were before dictionaries. The
// dictionary would gain 3–4 % there (on the rrweb demo recording, 158 KB:
// 0.753 × gzip -6 with the built-in one, 0.782 × without; 300 KB of shop
// visits 0.487 × and 0.501 ×) and cost 4–7 times the time: zstd's best
// level starts every frame with a dictionary by copying its 34 MB of
// match tables (22 ms against 5.4 ms for the demo recording; see
// BenchmarkCompress_large). At "better" with the dictionary the demo
// recording takes 0.827 ×, and at the default 0.93 ×.
const largeSegment = 64 << 10

// Compress compresses a segment of project with its dictionary: at the
// configured level, at zstd's best without a dictionary when it is large,
// or (fast, when ingest is under pressure) at the fastest.
func (s *Set) Compress(ctx context.Context, project int64, raw []byte, fast bool) []byte {
	dst := make([]byte, 0, len(raw)/6)
	if !fast && len(raw) >= largeSegment {
		return s.large.EncodeAll(raw, dst)
	}
	e, c := s.projectDict(ctx, project)
	pool := &e.enc
	if fast {
		pool = &e.fast
	}
	enc := pool.Get().(*zstd.Encoder)
	out := enc.EncodeAll(raw, dst)
	pool.Put(enc)
	// What the dictionary is judged on for drift: the segments it wrote.
	s.mu.Lock()
	c.stored += int64(len(out))
	c.raw += int64(len(raw))
	s.mu.Unlock()
	return out
}

// Observed is stored ÷ raw of what a project's segments took since its
// current dictionary was read (0: nothing written yet), and the raw bytes
// it is measured on.
func (s *Set) Observed(project int64) (ratio float64, raw int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.current[project]
	if c == nil || c.raw == 0 {
		return 0, 0
	}
	return float64(c.stored) / float64(c.raw), c.raw
}

// reader decompresses a stored segment with the dictionary its frame
// names. Close returns the decoder; it does not close the source.
type reader struct {
	d *zstd.Decoder
	e *entry
}

func (r *reader) Read(p []byte) (int, error) {
	if r.d == nil {
		return 0, errors.New("zdict: read after close")
	}
	return r.d.Read(p)
}

// Close hands the decoder back for reuse.
func (r *reader) Close() error {
	if r.d != nil {
		r.d.Reset(nil)
		r.e.putDecoder(r.d)
		r.d = nil
	}
	return nil
}

// Open reads the segment frame's header from r and returns a reader of
// its events, loading its dictionary when this Set has not met it yet
// (ErrMissingDictionary when it is not in the blob store).
func (s *Set) Open(ctx context.Context, r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	hdr, _ := br.Peek(zstd.HeaderMaxSize)
	var h zstd.Header
	if err := h.Decode(hdr); err != nil && len(hdr) > 0 {
		return nil, fmt.Errorf("segment header: %w", err)
	}
	e, err := s.load(ctx, h.DictionaryID)
	if err != nil {
		return nil, err
	}
	d, err := e.decoder()
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	if err := d.Reset(br); err != nil {
		e.putDecoder(d)
		return nil, fmt.Errorf("read segment: %w", err)
	}
	return &reader{d: d, e: e}, nil
}

// DecodeAll decompresses a whole segment.
func (s *Set) DecodeAll(ctx context.Context, src []byte) ([]byte, error) {
	r, err := s.Open(ctx, bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
