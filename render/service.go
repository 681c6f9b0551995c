package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Blobs is what renders need of the blob store.
type Blobs interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error
}

// Clips makes the render page of a job's clip.
type Clips interface {
	// RenderPage returns the page that shows j's range of its session, and
	// the range's length in ms (the part of it that was recorded).
	RenderPage(ctx context.Context, j *Job) (Page, int64, error)
}

// Cluster runs a job on one node of a cluster at a time (sqldb.DB.Once).
type Cluster interface {
	Once(ctx context.Context, job string, fn func(context.Context) error) (bool, error)
}

// Config says how renders run.
type Config struct {
	// Workers is how many renders this node runs at once (0: it renders
	// nothing and only queues; other nodes render).
	Workers int
	// MaxClip is the longest range one render may cover.
	MaxClip time.Duration
	// PerOwner is how many renders one user (or share link, or API token)
	// may have queued or running at once (0: no limit).
	PerOwner int
	// Lease is how long a worker holds a job without renewing it; a job
	// whose node died is taken again after it.
	Lease time.Duration
	// Attempts is how often a job is started before it fails for good.
	Attempts int
	// Keep is how long finished jobs and their files are kept.
	Keep time.Duration
	// Poll is how often idle workers look for queued jobs of other nodes.
	Poll time.Duration
}

// DefaultConfig: a worker per core, clips of up to 10 minutes, 3 renders
// in flight per user, 30 s leases, files kept 7 days.
func DefaultConfig() Config {
	return Config{Workers: runtime.NumCPU(), MaxClip: DefaultMaxClip, PerOwner: 3, Lease: 30 * time.Second,
		Attempts: 3, Keep: 7 * 24 * time.Hour, Poll: 2 * time.Second}
}

// Service queues renders and runs them.
type Service struct {
	cfg      Config
	store    *Store
	blobs    Blobs
	clips    Clips
	cluster  Cluster
	renderer *Renderer
	log      *slog.Logger
	node     string
	wake     chan struct{}
	now      func() time.Time

	rendered *prometheus.CounterVec
	seconds  prometheus.Counter
}

// New is a render service over store; cluster runs the sweep on one node
// at a time (nil: this node alone). reg may be nil.
func New(cfg Config, store *Store, blobs Blobs, clips Clips, cluster Cluster, reg prometheus.Registerer, log *slog.Logger) *Service {
	host, _ := os.Hostname()
	s := &Service{cfg: cfg, store: store, blobs: blobs, clips: clips, cluster: cluster, renderer: &Renderer{}, log: log,
		node: host + "/" + strconv.Itoa(os.Getpid()) + "/" + newID()[:8], wake: make(chan struct{}, 1), now: store.now,
		rendered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailmap_renders_total",
			Help: "Render jobs that ended, by result (done, failed, canceled)."}, []string{"result"}),
		seconds: prometheus.NewCounter(prometheus.CounterOpts{Name: "trailmap_render_seconds_total",
			Help: "Wall time spent rendering."}),
	}
	if reg != nil {
		reg.MustRegister(s.rendered, s.seconds)
	}
	return s
}

// Renderer is the service's renderer (tests point it at other tools).
func (s *Service) Renderer() *Renderer { return s.renderer }

// Available tells whether this machine can render: nil, or ErrUnavailable
// saying what to install.
func (s *Service) Available() error {
	_, _, err := s.renderer.Tools()
	return err
}

// Submit checks and queues a render of j's session with j.Options (see
// Store.Create); j.Owner is who asks.
func (s *Service) Submit(ctx context.Context, j Job) (*Job, error) {
	if err := s.Available(); err != nil {
		return nil, err
	}
	j.Options.Defaults()
	if err := j.Options.Validate(s.cfg.MaxClip); err != nil {
		return nil, err
	}
	job, err := s.store.Create(ctx, j, s.cfg.PerOwner)
	if err != nil {
		return nil, err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return job, nil
}

// Job returns job id (ErrNotFound).
func (s *Service) Job(ctx context.Context, id string) (*Job, error) { return s.store.Get(ctx, id) }

// Open opens a finished job's file (ErrNotReady before).
func (s *Service) Open(ctx context.Context, j *Job) (io.ReadCloser, error) {
	if j.Status != StatusDone || j.BlobKey == "" {
		return nil, fmt.Errorf("%w: the render is %s", ErrNotReady, j.Status)
	}
	r, err := s.blobs.Get(ctx, j.BlobKey, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("render %s file: %w", j.ID, err)
	}
	return r, nil
}

// Cancel stops a queued or running job, or withdraws a finished one's
// file. A worker running it stops at its next lease renewal.
func (s *Service) Cancel(ctx context.Context, id string) (*Job, error) {
	j, err := s.store.Cancel(ctx, id)
	if err == nil && j.Status == StatusCanceled {
		s.rendered.WithLabelValues("canceled").Inc()
	}
	return j, err
}

// Run runs the node's workers and the cluster's sweep until ctx ends. Jobs
// a worker holds when ctx ends go back to the queue.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work(ctx, s.node+"/"+strconv.Itoa(i))
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sweepLoop(ctx)
	}()
	wg.Wait()
}

func (s *Service) work(ctx context.Context, worker string) {
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	for ctx.Err() == nil {
		// A node without Chromium or ffmpeg takes no job: another node of
		// the cluster may render it.
		err := s.Available()
		var j *Job
		if err == nil {
			j, err = s.store.Claim(ctx, worker, s.cfg.Lease)
		}
		if err == nil {
			s.run(ctx, worker, j)
			continue
		}
		if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
			s.log.Warn("render queue", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-poll.C:
		}
	}
}

// run renders j, which worker holds.
func (s *Service) run(ctx context.Context, worker string, j *Job) {
	log := s.log.With("render", j.ID, "session", j.SessionID, "attempt", j.Attempts)
	if j.Attempts > s.cfg.Attempts {
		s.fail(ctx, worker, j, log, fmt.Errorf("the render stopped %d times without finishing", j.Attempts-1))
		return
	}
	began := s.now()
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	beat := s.heartbeat(jctx, j, worker, cancel)
	progress := func(done, total int) {
		eta := time.Duration(float64(s.now().Sub(began)) / float64(done) * float64(total-done))
		beat.set(min(99, done*100/max(total, 1)), eta)
	}
	dir, err := os.MkdirTemp("", "trailmap-render-out-")
	if err != nil {
		beat.stop()
		s.fail(ctx, worker, j, log, err)
		return
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "out."+j.Options.Format)
	var res *Result
	page, dur, err := s.clips.RenderPage(jctx, j)
	if err == nil {
		res, err = s.renderer.Render(jctx, page, dur, j.Options, out, progress)
	}
	wasLost := beat.stop()
	s.seconds.Add(s.now().Sub(began).Seconds())
	switch {
	case wasLost:
		log.Info("render stopped: canceled or taken over")
		return
	case ctx.Err() != nil:
		// Shutting down: the job goes back to the queue for any node.
		if err := s.store.Release(context.WithoutCancel(ctx), j.ID, worker); err != nil {
			log.Warn("render: give the job back", slog.Any("error", err))
		}
		return
	case err != nil:
		s.fail(ctx, worker, j, log, err)
		return
	}
	if len(res.Blocked) > 0 {
		log.Warn("render: the page asked for what it may not have (refused)", "requests", len(res.Blocked), "first", res.Blocked[0])
	}
	key := strconv.FormatInt(j.ProjectID, 10) + "/renders/" + j.ID + "-" + strconv.Itoa(j.Attempts) + "." + j.Options.Format
	size, err := s.put(ctx, key, out)
	if err != nil {
		s.fail(ctx, worker, j, log, err)
		return
	}
	if err := s.store.Finish(ctx, j.ID, worker, key, size); err != nil {
		// Canceled or taken over meanwhile: this file is nobody's.
		_ = s.blobs.Delete(context.WithoutCancel(ctx), key)
		log.Info("render finished but no longer wanted", slog.Any("error", err))
		return
	}
	s.rendered.WithLabelValues("done").Inc()
	log.Info("render done", "frames", res.Frames, "screenshots", res.Shots, "patches", res.Patches, "bytes", size, "took", s.now().Sub(began).Round(time.Millisecond),
		"load", res.Load.Round(time.Millisecond), "seek", res.Seek.Round(time.Millisecond), "shoot", res.Shoot.Round(time.Millisecond),
		"encode", res.Encode.Round(time.Millisecond))
}

// beat renews a running job's lease with its progress.
type beat struct {
	mu       sync.Mutex
	pct      int
	eta      time.Duration
	lost     bool
	cancel   func()
	finished chan struct{}
}

func (b *beat) set(pct int, eta time.Duration) {
	b.mu.Lock()
	b.pct, b.eta = pct, eta
	b.mu.Unlock()
}

// stop ends the renewals and tells whether the job was lost meanwhile.
func (b *beat) stop() bool {
	b.cancel()
	<-b.finished
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lost
}

// heartbeat renews j's lease with its progress every second (or third of a
// lease) until stopped; when the job is no longer the worker's (canceled,
// or taken over) it calls lost, which stops the render.
func (s *Service) heartbeat(ctx context.Context, j *Job, worker string, lost func()) *beat {
	bctx, cancel := context.WithCancel(ctx)
	b := &beat{cancel: cancel, finished: make(chan struct{})}
	go func() {
		defer close(b.finished)
		t := time.NewTicker(min(time.Second, max(s.cfg.Lease/3, 50*time.Millisecond)))
		defer t.Stop()
		for {
			select {
			case <-bctx.Done():
				return
			case <-t.C:
			}
			b.mu.Lock()
			pct, eta := b.pct, b.eta
			b.mu.Unlock()
			if err := s.store.Renew(bctx, j.ID, worker, pct, eta, s.cfg.Lease); errors.Is(err, ErrLost) {
				b.mu.Lock()
				b.lost = true
				b.mu.Unlock()
				lost()
				return
			}
		}
	}()
	return b
}

func (s *Service) put(ctx context.Context, key, file string) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := s.blobs.Put(ctx, key, f, st.Size()); err != nil {
		return 0, fmt.Errorf("store render: %w", err)
	}
	return st.Size(), nil
}

func (s *Service) fail(ctx context.Context, worker string, j *Job, log *slog.Logger, err error) {
	log.Warn("render failed", slog.Any("error", err))
	msg := err.Error()
	if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnavailable) {
		msg = "the render failed: " + msg
	}
	if ferr := s.store.Fail(context.WithoutCancel(ctx), j.ID, worker, msg); ferr != nil && !errors.Is(ferr, ErrLost) {
		log.Warn("render: record failure", slog.Any("error", ferr))
	}
	s.rendered.WithLabelValues("failed").Inc()
}

// sweepLoop expires old jobs and deletes files nobody names, once a
// minute, on one node of the cluster at a time.
func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("render sweep", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep deletes jobs that ended longer than Keep ago and the files no job
// names any more (those of deleted sessions included).
func (s *Service) Sweep(ctx context.Context) error {
	sweep := func(ctx context.Context) error {
		if _, err := s.store.Expire(ctx, s.now().Add(-s.cfg.Keep)); err != nil {
			return err
		}
		for {
			keys, err := s.store.Trash(ctx, 100)
			if err != nil || len(keys) == 0 {
				return err
			}
			for _, k := range keys {
				used, err := s.store.InUse(ctx, k)
				if err != nil {
					return err
				}
				if !used {
					if err := s.blobs.Delete(ctx, k); err != nil {
						return fmt.Errorf("delete render file %s: %w", k, err)
					}
				}
				if err := s.store.ClearTrash(ctx, k); err != nil {
					return err
				}
			}
		}
	}
	if s.cluster == nil {
		return sweep(ctx)
	}
	_, err := s.cluster.Once(ctx, "render-sweep", sweep)
	return err
}

// ClipsFunc is a function as Clips.
type ClipsFunc func(ctx context.Context, j *Job) (Page, int64, error)

// RenderPage calls f.
func (f ClipsFunc) RenderPage(ctx context.Context, j *Job) (Page, int64, error) { return f(ctx, j) }
