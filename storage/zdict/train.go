package zdict

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/trailmap/trailmap/storage/index"
)

// Segments is what training needs of the core index.
type Segments interface {
	Projects(ctx context.Context) ([]index.Project, error)
	// RecentSegmentKeys lists the keys of up to limit of a project's
	// stored segments, newest first.
	RecentSegmentKeys(ctx context.Context, projectID int64, limit int) ([]string, error)
}

// TrainConfig says when a project's dictionary is (re)trained.
type TrainConfig struct {
	Every       time.Duration // time between checks
	MinSegments int           // a project's first dictionary waits for this many segments
	Samples     int           // segments sampled (newest first)
	SampleBytes int           // bytes taken of each (its start: page skeletons, snapshots)
	MaxSize     int           // dictionary size limit
	MaxAge      time.Duration // retrain after this long
	// Drift retrains when the segments written since the dictionary was
	// read compress worse than Drift × its ratio on held-out segments
	// (measured on at least DriftBytes raw bytes).
	Drift      float64
	DriftBytes int64
}

// DefaultTrainConfig checks hourly; a first dictionary after 50 segments;
// 400 samples of up to 64 KiB; a 256 KiB dictionary; retrain weekly or on
// 15 % drift over 8 MiB.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{Every: time.Hour, MinSegments: 50, Samples: 400, SampleBytes: 64 << 10, MaxSize: 256 << 10,
		MaxAge: 7 * 24 * time.Hour, Drift: 1.15, DriftBytes: 8 << 20}
}

// ErrTooFewSamples is returned (wrapped) when a project has not recorded
// enough to train on.
var ErrTooFewSamples = errors.New("too few segments to train a dictionary")

// Cluster runs a job on one node of a cluster once per period
// (cluster.Jobs).
type Cluster interface {
	Once(ctx context.Context, job string, period time.Duration, fn func(context.Context) error) (bool, error)
}

// Trainer trains projects' dictionaries from their own recent segments.
type Trainer struct {
	set     *Set
	idx     Segments
	cfg     TrainConfig
	log     *slog.Logger
	cluster Cluster // nil: every check runs here
}

// InCluster makes Run check once per period across the nodes of c.
func (t *Trainer) InCluster(c Cluster) *Trainer {
	t.cluster = c
	return t
}

// NewTrainer returns a trainer; it does nothing until Run or Train.
func NewTrainer(set *Set, idx Segments, cfg TrainConfig, logger *slog.Logger) *Trainer {
	return &Trainer{set: set, idx: idx, cfg: cfg, log: logger.With("component", "zdict")}
}

// Run checks every project a minute after the start and then every
// cfg.Every, training those that are due, until ctx ends.
func (t *Trainer) Run(ctx context.Context) {
	wait := time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = t.cfg.Every
		run := func(ctx context.Context) error {
			_, err := t.TrainDue(ctx, time.Now())
			return err
		}
		var err error
		if t.cluster != nil {
			_, err = t.cluster.Once(ctx, "dictionaries", t.cfg.Every, run)
		} else {
			err = run(ctx)
		}
		if err != nil && ctx.Err() == nil {
			t.log.Error("train dictionaries", slog.Any("error", err))
		}
	}
}

// TrainDue trains the dictionaries that are due at now: a project's first
// once it has MinSegments segments, then after MaxAge or on drift. It
// returns how many it trained.
func (t *Trainer) TrainDue(ctx context.Context, now time.Time) (int, error) {
	projects, err := t.idx.Projects(ctx)
	if err != nil {
		return 0, fmt.Errorf("train dictionaries: %w", err)
	}
	n := 0
	for _, p := range projects {
		info, err := t.set.ReadInfo(ctx, p.ID)
		if err != nil {
			t.log.Warn("project dictionary unreadable", "project", p.ID, slog.Any("error", err))
			continue
		}
		reason := ""
		switch {
		case info == nil:
			reason = "first"
		case now.Sub(info.TrainedAt) > t.cfg.MaxAge:
			reason = "age"
		default:
			if r, raw := t.set.Observed(p.ID); raw >= t.cfg.DriftBytes && info.Ratio > 0 && r > info.Ratio*t.cfg.Drift {
				reason = "drift"
			}
		}
		if reason == "" {
			continue
		}
		got, err := t.Train(ctx, p.ID, reason, now)
		if errors.Is(err, ErrTooFewSamples) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
		t.log.Info("trained a segment dictionary", "project", p.ID, "id", got.ID, "reason", reason, "samples", got.Samples,
			"ratio", fmt.Sprintf("%.3f", got.Ratio), "plain", fmt.Sprintf("%.3f", got.PlainRate), "gzip", fmt.Sprintf("%.3f", got.GzipRatio))
	}
	return n, nil
}

// Train trains a dictionary for a project from its recent segments,
// stores it and makes it the project's current one. Nine in ten samples
// train it, the tenth measure it.
func (t *Trainer) Train(ctx context.Context, project int64, reason string, now time.Time) (*Info, error) {
	keys, err := t.idx.RecentSegmentKeys(ctx, project, t.cfg.Samples)
	if err != nil {
		return nil, fmt.Errorf("train dictionary: %w", err)
	}
	if len(keys) < t.cfg.MinSegments {
		return nil, fmt.Errorf("%w: project %d has %d", ErrTooFewSamples, project, len(keys))
	}
	var train, test [][]byte
	for i, k := range keys {
		rc, err := t.set.blobs.Get(ctx, k, 0, -1)
		if err != nil {
			t.log.Warn("segment unreadable for training, skipped", "key", k, slog.Any("error", err))
			continue
		}
		r, err := t.set.Open(ctx, rc)
		if err != nil {
			rc.Close()
			t.log.Warn("segment unreadable for training, skipped", "key", k, slog.Any("error", err))
			continue
		}
		buf := make([]byte, t.cfg.SampleBytes)
		n, _ := io.ReadFull(r, buf)
		r.Close()
		rc.Close()
		if n == 0 {
			continue
		}
		if i%10 == 9 {
			test = append(test, buf[:n])
		} else {
			train = append(train, buf[:n])
		}
	}
	if len(train) < t.cfg.MinSegments*9/10 || len(test) == 0 {
		return nil, fmt.Errorf("%w: %d readable segments", ErrTooFewSamples, len(train)+len(test))
	}
	return t.build(ctx, project, train, test, reason, now)
}

// build makes a dictionary of train, measures it on test, stores it and
// the project's Info. Its content is whole segments (up to SampleBytes
// each) picked evenly from train until MaxSize, the newest last (nearest
// to the data, where zstd's matches are cheapest).
func (t *Trainer) build(ctx context.Context, project int64, train, test [][]byte, reason string, now time.Time) (*Info, error) {
	var picked [][]byte
	size := 0
	step := max(1, len(train)/max(1, t.cfg.MaxSize/max(1, avgLen(train))))
	for i := 0; i < len(train) && size < t.cfg.MaxSize; i += step {
		p := train[i][:min(len(train[i]), t.cfg.MaxSize-size)]
		picked = append(picked, p)
		size += len(p)
	}
	content := make([]byte, 0, size)
	for i := len(picked) - 1; i >= 0; i-- { // train is newest first
		content = append(content, picked[i]...)
	}
	id := uint32(32768 + rand.Int32N(1<<31-32768))
	info := &Info{ID: id, TrainedAt: now.UTC(), Samples: len(picked), Bytes: len(content), Level: t.set.cfg.Level.String(), Reason: reason}
	if old, err := t.set.ReadInfo(ctx, project); err == nil && old != nil {
		info.Previous = old.ID
	}
	var err error
	info.Ratio, info.PlainRate, info.GzipRatio, err = measure(id, content, t.set.cfg.Level, test)
	if err != nil {
		return nil, err
	}
	if err := t.set.blobs.Put(ctx, DictKey(id), bytes.NewReader(content), int64(len(content))); err != nil {
		return nil, fmt.Errorf("store dictionary: %w", err)
	}
	js, _ := json.Marshal(info)
	if err := t.set.blobs.Put(ctx, InfoKey(project), bytes.NewReader(js), int64(len(js))); err != nil {
		return nil, fmt.Errorf("store dictionary info: %w", err)
	}
	t.set.mu.Lock()
	delete(t.set.current, project) // read again at the next segment
	t.set.mu.Unlock()
	return info, nil
}

func avgLen(xs [][]byte) int {
	n := 0
	for _, x := range xs {
		n += len(x)
	}
	return n / max(1, len(xs))
}

// measure compresses test with the dictionary, without one (best level)
// and with gzip -6, each as stored ÷ raw.
func measure(id uint32, content []byte, level zstd.EncoderLevel, test [][]byte) (withDict, plain, gz float64, err error) {
	withEnc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderDictRaw(id, content), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("measure dictionary: %w", err)
	}
	plainEnc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	var raw, a, b, g int
	var buf bytes.Buffer
	for _, s := range test {
		raw += len(s)
		a += len(withEnc.EncodeAll(s, nil))
		b += len(plainEnc.EncodeAll(s, nil))
		buf.Reset()
		zw, _ := gzip.NewWriterLevel(&buf, 6)
		zw.Write(s)
		zw.Close()
		g += buf.Len()
	}
	return float64(a) / float64(raw), float64(b) / float64(raw), float64(g) / float64(raw), nil
}
