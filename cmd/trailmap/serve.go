package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/assets"
	"github.com/trailmap/trailmap/audit"
	"github.com/trailmap/trailmap/cluster"
	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/journey"
	"github.com/trailmap/trailmap/recorder"
	"github.com/trailmap/trailmap/render"
	"github.com/trailmap/trailmap/replay"
	"github.com/trailmap/trailmap/retention"
	"github.com/trailmap/trailmap/server"
	"github.com/trailmap/trailmap/storage"
	"github.com/trailmap/trailmap/storage/fs"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/s3"
	"github.com/trailmap/trailmap/storage/sqldb"
	"github.com/trailmap/trailmap/storage/zdict"
	"github.com/trailmap/trailmap/ui"
)

// Config is everything `trailmap serve` is configured with.
type Config struct {
	DataDir string
	// IndexURL is where the index lives: empty for <DataDir>/index.db, a
	// file path for SQLite elsewhere, postgres://… for PostgreSQL.
	IndexURL      string
	LogFormat     string
	LogLevel      string
	ShutdownGrace time.Duration
	PprofAddr     string
	S3            s3.Config
	Server        server.Config
	Recorder      recorder.Config
	Retention     retention.Config
	// AuditRetention is how long audit entries are kept (0: for ever).
	AuditRetention time.Duration
	// Assets keeps copies of recorded pages' images, fonts and style
	// sheets, unless AssetsOff.
	Assets    assets.Config
	AssetsOff bool
	// DictionariesOff writes segments with zstd alone instead of with
	// per-project dictionaries (segments written with them stay readable).
	DictionariesOff bool
	// Render runs server-side renders of clips (videos, GIFs).
	Render render.Config
	// Heatmap bounds what the heatmap keeps in memory to follow sessions:
	// HeatmapSessions trackers, HeatmapDOMNodes mirrored DOM nodes in all.
	HeatmapSessions, HeatmapDOMNodes int
	// AdvertiseURL makes this node one of a cluster (nodes sharing a
	// PostgreSQL index and a bucket): the address the other nodes reach it
	// at. Empty: one node.
	AdvertiseURL  string
	ClusterSecret string
}

// heatmap is the heatmap's configuration: its memory bounds, and whether
// other nodes write facts too.
func (c Config) heatmap() heatmap.Config {
	h := heatmap.DefaultConfig()
	h.MaxSessions, h.MaxTotalNodes = c.HeatmapSessions, c.HeatmapDOMNodes
	h.Shared = c.AdvertiseURL != ""
	return h
}

// Validate checks the whole configuration.
func (c Config) Validate() error {
	var errs []error
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log format must be json or text, not %q", c.LogFormat))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("log level: %w", err))
	}
	if c.S3.Endpoint != "" {
		errs = append(errs, c.S3.Validate())
	}
	errs = append(errs, c.Server.Validate(), c.Recorder.Validate(), c.Retention.Validate())
	if c.Render.Workers < 0 || c.Render.MaxClip <= 0 || c.Render.PerOwner < 0 || c.Render.Lease < time.Second {
		errs = append(errs, errors.New("render workers and per-user limit must not be negative, the clip limit positive and the lease at least 1s"))
	}
	if !c.AssetsOff {
		errs = append(errs, c.Assets.Validate())
	}
	if err := c.heatmap().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--heatmap-sessions, --heatmap-dom-nodes: %w", err))
	}
	if c.AdvertiseURL != "" {
		if !sqldb.IsPostgres(c.IndexURL) {
			errs = append(errs, errors.New("--advertise-url makes this node one of a cluster, whose nodes share a PostgreSQL index: set --index-url postgres://…"))
		}
		errs = append(errs, cluster.DefaultConfig(c.AdvertiseURL, c.ClusterSecret).Validate())
	}
	return errors.Join(errs...)
}

func parseServe(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	def := recorder.DefaultConfig("")
	fs.StringVar(&c.DataDir, "data", "./data", "data directory: index, write-ahead log and (without S3) blobs")
	fs.StringVar(&c.IndexURL, "index-url", "", indexURLHelp)
	fs.StringVar(&c.Server.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.Server.PublicURL, "public-url", "", "external base URL for share links (default: the request's host)")
	fs.BoolVar(&c.Server.TrustProxy, "trust-proxy", false, "take client IPs from X-Forwarded-For (only behind a proxy)")
	fs.BoolVar(&c.Server.SecureCookies, "secure-cookies", false, "mark login cookies Secure (when served over HTTPS)")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 20*time.Second, "time to finish requests on shutdown")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "serve Go profiles (net/http/pprof) on this separate address, e.g. 127.0.0.1:6060 (empty: off)")

	fs.StringVar(&c.S3.Endpoint, "s3-endpoint", "", "S3-compatible endpoint host:port (empty: local blob store in --data)")
	fs.StringVar(&c.S3.Bucket, "s3-bucket", "trailmap", "S3 bucket (created if missing)")
	fs.StringVar(&c.S3.AccessKey, "s3-access-key", "", "S3 access key")
	fs.StringVar(&c.S3.SecretKey, "s3-secret-key", "", "S3 secret key")
	fs.StringVar(&c.S3.Region, "s3-region", "us-east-1", "S3 region")
	fs.BoolVar(&c.S3.UseSSL, "s3-use-ssl", false, "use TLS to reach S3")

	r := &c.Recorder
	fs.Int64Var(&r.Limits.MaxCompressed, "max-body", def.Limits.MaxCompressed, "max ingest body size as sent (bytes)")
	fs.Int64Var(&r.Limits.MaxDecompressed, "max-decompressed", def.Limits.MaxDecompressed, "max ingest body size after decompression (bytes)")
	fs.IntVar(&r.Limits.MaxEvents, "max-events", def.Limits.MaxEvents, "max events per batch")
	fs.IntVar(&r.Limits.MaxEventBytes, "max-event-size", def.Limits.MaxEventBytes, "max size of one event (bytes)")
	fs.DurationVar(&r.Limits.MaxClockSkew, "max-clock-skew", def.Limits.MaxClockSkew, "refuse batches with events dated more than this after the server's clock (400 timestamp_out_of_range)")
	fs.DurationVar(&r.Limits.MaxEventAge, "max-event-age", def.Limits.MaxEventAge, "refuse batches with events dated more than this before the server's clock, e.g. 168h (0: no bound)")
	fs.Float64Var(&r.RatePerKey, "rate-per-key", def.RatePerKey, "batches per second per write key, a ceiling that refuses only heavy client addresses (0: no limit)")
	fs.Float64Var(&r.RatePerIP, "rate-per-ip", def.RatePerIP, "batches per second per client address (IPv4, or IPv6 /64) (0: no limit)")
	fs.Int64Var(&r.Quota.SessionsPerDay, "quota-sessions-per-day", 0, "sessions a project may start per UTC day unless its settings say otherwise (0: no limit)")
	fs.Int64Var(&r.Quota.EventsPerDay, "quota-events-per-day", 0, "events a project may record per UTC day unless its settings say otherwise (0: no limit)")
	fs.Int64Var(&r.Quota.BytesPerDay, "quota-bytes-per-day", 0, "raw event bytes a project may record per UTC day unless its settings say otherwise (0: no limit)")
	fs.DurationVar(&r.SessionIdle, "session-idle", def.SessionIdle, "a session ends after this long without events")
	fs.DurationVar(&r.SegmentMaxAge, "segment-max-age", def.SegmentMaxAge, "store a session's buffered events at least this often")
	fs.Int64Var(&r.SegmentMaxBytes, "segment-max-bytes", def.SegmentMaxBytes, "store a session's buffered events once this much raw JSON is buffered")
	fs.Int64Var(&r.MaxBuffered, "max-buffered", def.MaxBuffered, "raw bytes buffered in memory across sessions before early flushes")
	fs.IntVar(&r.MaxUnindexed, "max-unindexed", def.MaxUnindexed, "batches acknowledged before their index rows are written (a 202 waits only for the write-ahead log); over this a 202 waits for the index too (0: always)")
	fs.IntVar(&r.FactsWorkers, "facts-workers", def.FactsWorkers, "with a PostgreSQL index: heatmap and journey transactions run at once, over different sessions (SQLite: always 1)")
	fs.IntVar(&r.MaxInFlight, "max-inflight", def.MaxInFlight, "ingest requests processed at once; more get 503 overloaded with Retry-After (0: no limit)")
	fs.IntVar(&r.Devices.TabletMin, "tablet-min-width", def.Devices.TabletMin, "viewport width from which a device is a tablet")
	fs.IntVar(&r.Devices.DesktopMin, "desktop-min-width", def.Devices.DesktopMin, "viewport width from which a device is a desktop")

	c.Assets = assets.DefaultConfig()
	a := &c.Assets
	assetsOn := fs.Bool("assets", true, "keep copies of the images, fonts and style sheets recorded pages reference (see README: Recordings that stand on their own)")
	fs.IntVar(&a.Concurrency, "assets-concurrency", a.Concurrency, "asset fetches at once")
	fs.IntVar(&a.QueueBatches, "assets-queue", a.QueueBatches, "recorded batches waiting to be read for asset URLs; more are dropped (counted in /metrics), never waited for")
	fs.Int64Var(&a.MaxAssetBytes, "assets-max-bytes", a.MaxAssetBytes, "largest asset kept (bytes)")
	fs.IntVar(&a.MaxPerSession, "assets-per-session", a.MaxPerSession, "asset URLs fetched for one session at most")
	fs.Int64Var(&a.MaxProjectDayFetches, "assets-project-day-fetches", a.MaxProjectDayFetches, "asset fetches per project per UTC day (0: no cap)")
	fs.Int64Var(&a.MaxProjectDayBytes, "assets-project-day-bytes", a.MaxProjectDayBytes, "asset bytes fetched per project per UTC day (0: no cap)")
	fs.DurationVar(&a.Timeout, "assets-timeout", a.Timeout, "time limit of one asset fetch, body included")
	allowNets := fs.String("assets-allow-nets", "", "comma-separated addresses or CIDR ranges assets may be fetched from although loopback or private, e.g. 10.1.0.0/16 for an intranet CDN (default: none)")
	allowOrigins := fs.String("assets-allow-origins", "", "comma-separated origins (https://cdn.example.com) every project may fetch assets from, besides its pages' origins and its settings' assets.origins")

	dicts := fs.Bool("segment-dictionaries", true, "compress recording segments with zstd dictionaries trained on each project's own recordings (see README: Storage)")

	c.Retention = retention.DefaultConfig()
	c.Render = render.DefaultConfig()
	fs.IntVar(&c.Render.Workers, "render-workers", c.Render.Workers, "renders (videos, GIFs) this node runs at once; 0 renders nothing here (other nodes do)")
	fs.DurationVar(&c.Render.MaxClip, "render-max-clip", c.Render.MaxClip, "longest stretch of recording one render may cover")
	fs.DurationVar(&c.Render.Lease, "render-lease", c.Render.Lease, "how long a node holds a render without renewing it: a render of a node that died starts again on any node after this")
	fs.IntVar(&c.Render.PerOwner, "render-per-user", c.Render.PerOwner, "renders one user, API token or share link may have queued or running (0: no limit)")
	fs.StringVar(&c.AdvertiseURL, "advertise-url", "", "run as one node of a cluster (see README: Many nodes): this node's base URL as the other nodes reach it, e.g. http://10.0.0.5:8080; needs a postgres:// --index-url")
	fs.StringVar(&c.ClusterSecret, "cluster-secret", "", "with --advertise-url: a secret shared by every node (16+ characters), which signs the requests nodes forward to each other")
	heat := heatmap.DefaultConfig()
	fs.IntVar(&c.HeatmapSessions, "heatmap-sessions", heat.MaxSessions, "sessions the heatmap follows in memory at once (scroll, page, recent clicks; least recent resume from the index)")
	fs.IntVar(&c.HeatmapDOMNodes, "heatmap-dom-nodes", heat.MaxTotalNodes, "DOM nodes the heatmap mirrors in all, ~130 bytes each, to name clicked elements: raise it to nodes per page × sessions recording at once (trailmap_heatmap_dom_dropped_total counts mirrors dropped for it)")
	retentionDays := fs.Int("retention-days", 0, "delete sessions this many days after their last batch, with their recordings (0: keep forever)")
	auditDays := fs.Int("audit-retention-days", 365, "delete audit log entries older than this many days (0: keep forever)")

	if err := envTwins(fs); err != nil {
		return c, usageError{err.Error()}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return c, usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	if *retentionDays < 0 {
		return c, usageError{fmt.Sprintf("retention days must not be negative, got %d", *retentionDays)}
	}
	c.Retention.MaxAge = time.Duration(*retentionDays) * 24 * time.Hour
	if *auditDays < 0 {
		return c, usageError{fmt.Sprintf("audit retention days must not be negative, got %d", *auditDays)}
	}
	c.AuditRetention = time.Duration(*auditDays) * 24 * time.Hour
	c.AssetsOff = !*assetsOn
	c.DictionariesOff = !*dicts
	a.Version = buildVersion()
	nets, err := parseNets(*allowNets)
	if err != nil {
		return c, usageError{err.Error()}
	}
	a.AllowNets = nets
	for _, o := range strings.Split(*allowOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			a.AllowOrigins = append(a.AllowOrigins, o)
		}
	}
	r.DataDir = c.DataDir
	r.Redact = def.Redact
	r.WALFileBytes = def.WALFileBytes
	r.SweepEvery = def.SweepEvery
	if err := c.Validate(); err != nil {
		return c, usageError{err.Error()}
	}
	return c, nil
}

// readyBlobs is a blob store that can say whether it is reachable.
type readyBlobs interface {
	storage.Blobs
	Ready(ctx context.Context) error
}

// serve constructs every part, connects them and runs until ctx ends.
func serve(ctx context.Context, cfg Config, stderr io.Writer) error {
	logger := newLogger(cfg, stderr)
	logger.Info("starting trailmap", "version", buildVersion(), "addr", cfg.Server.Addr, "data", cfg.DataDir)

	db, err := openIndex(ctx, cfg.DataDir, cfg.IndexURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := ensureDefaultProject(ctx, db, logger); err != nil {
		return err
	}

	var blobs readyBlobs
	if cfg.S3.Endpoint != "" {
		c, err := connectS3(ctx, cfg.S3, logger)
		if err != nil {
			return err
		}
		blobs = c
		logger.Info("blob store: s3", "endpoint", cfg.S3.Endpoint, "bucket", cfg.S3.Bucket)
	} else {
		c, err := fs.New(filepath.Join(cfg.DataDir, "blobs"))
		if err != nil {
			return err
		}
		blobs = c
		logger.Info("blob store: local", "dir", filepath.Join(cfg.DataDir, "blobs"))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newIndexPoolCollector(db.SQL()))

	heat, err := heatmap.New(ctx, cfg.heatmap(), db.SQL(), db, logger)
	if err != nil {
		return err
	}
	defer heat.Close()
	registerHeatmapMemory(reg, heat)
	jour, err := journey.New(ctx, db, logger)
	if err != nil {
		return err
	}
	defer jour.Close()
	observers := []recorder.Observer{heat, jour}
	var assetReader server.Assets // nil: no asset routes
	var uploads server.Uploads
	if !cfg.AssetsOff {
		counters, err := db.PrepareSessionCounters(ctx)
		if err != nil {
			return err
		}
		defer counters.Close()
		store := assets.NewStore(db.SQL())
		svc, err := assets.New(cfg.Assets, store, blobs, counters, db, reg, logger)
		if err != nil {
			return err
		}
		defer svc.Close()
		assetSweepCtx, stopAssetSweep := context.WithCancel(ctx)
		assetSweepDone := make(chan struct{})
		go func() {
			defer close(assetSweepDone)
			sweepAssets(assetSweepCtx, db, store, blobs, logger)
		}()
		defer func() { stopAssetSweep(); <-assetSweepDone }()
		observers = append(observers, svc)
		assetReader = assets.NewReader(store, blobs)
		uploads = svc
	}
	// Segments may be written with a dictionary whether or not new ones
	// are: the reader always knows them.
	dictCfg := zdict.DefaultConfig()
	dictCfg.Concurrency = recorder.FlushConcurrency
	segDicts := zdict.New(blobs, dictCfg, logger)
	if !cfg.DictionariesOff {
		cfg.Recorder.Compressor = segDicts
		if err := segDicts.WriteBuiltin(ctx); err != nil {
			logger.Warn("segment dictionaries", slog.Any("error", err))
		}
	}
	// The retention of what only this node holds: quarantined batches past
	// their project's retention go, now (before the recorder would try them
	// again) and at every sweep.
	purgeQuarantine := func(_ context.Context, now time.Time, keep retention.Keep) error {
		n, err := recorder.PurgeQuarantine(cfg.Recorder.DataDir, now, keep)
		if n > 0 {
			logger.Info("retention: deleted quarantined batches past their project's retention", "batches", n)
		}
		return err
	}
	sweeper := retention.New(db, blobs, cfg.Retention, reg, logger).OnEveryNode(purgeQuarantine)
	keep, err := sweeper.Keep(ctx)
	if err != nil {
		return err
	}
	if err := purgeQuarantine(ctx, time.Now(), keep); err != nil {
		return err
	}
	rec, err := recorder.New(ctx, cfg.Recorder, db, blobs, reg, logger, observers...)
	if err != nil {
		return err
	}
	stream := replay.New(db, blobs, rec, replay.WithSegments(segDicts))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "trailmap_replay_segments_read_total",
		Help: "Segment objects opened by replay (seeks read only the segments they need).",
	}, func() float64 { return float64(stream.SegmentsRead()) }))
	uiSvc := ui.New(accounts.New(db.SQL()), db, ui.Config{}, time.Now, logger)
	setupToken, err := firstRunToken(ctx, uiSvc)
	if err != nil {
		return err
	}
	auditLog := audit.New(db.SQL(), time.Now)
	var srv *server.Server
	renders := render.New(cfg.Render, render.NewStore(db.SQL(), nil), blobs,
		render.ClipsFunc(func(ctx context.Context, j *render.Job) (render.Page, int64, error) { return srv.RenderPage(ctx, j) }),
		db.SQL(), reg, logger)
	if err := renders.Available(); err != nil {
		logger.Info("renders of videos and GIFs are off on this machine", "why", err.Error())
	}
	var router server.Router // nil: one node
	if cfg.AdvertiseURL != "" {
		cl, err := cluster.New(ctx, db.SQL(), cluster.DefaultConfig(cfg.AdvertiseURL, cfg.ClusterSecret), reg, logger)
		if err != nil {
			return errors.Join(err, rec.Close(context.WithoutCancel(ctx)))
		}
		clusterCtx, stopCluster := context.WithCancel(context.WithoutCancel(ctx))
		clusterDone := make(chan struct{})
		go func() {
			defer close(clusterDone)
			cl.Run(clusterCtx)
		}()
		// Leave the cluster once this node has stopped taking batches.
		defer func() { stopCluster(); <-clusterDone }()
		router = cl
		logger.Info("cluster node", "advertise_url", cl.Self())
	}
	srv = server.New(cfg.Server, server.Deps{
		Index:    db,
		Recorder: rec,
		Replay:   stream,
		Registry: reg,
		Extra: server.Extras{
			Cookies:   server.LoginCookies(uiSvc),
			UI:        uiSvc,
			FirstRun:  server.FirstRun{Token: setupToken, Users: uiSvc},
			Shares:    uiSvc,
			Notes:     uiSvc,
			Heatmaps:  heat,
			People:    jour,
			Funnels:   jour,
			Paths:     jour,
			Intent:    jour,
			Stages:    jour,
			Audiences: jour,
			Segments:  jour,
			Forget:    newForgetter(db, blobs, heat, jour, logger),
			Audit:     auditLog,
			Assets:    assetReader,
			Uploads:   uploads,
			Renders:   renders,
			Router:    router,
		},
		Ready: map[string]server.Checker{"blobs": blobs, "recorder": rec,
			"index_writes": server.CheckFunc(rec.IndexReady)},
		Logger: logger,
	})

	jour.Start() // derives journey timelines of sessions recorded without them
	// Cluster-wide jobs run once per period across the nodes (and never
	// two runs at once: PostgreSQL advisory locks).
	self := cfg.AdvertiseURL
	if self == "" {
		self, _ = os.Hostname()
	}
	jobs := cluster.NewJobs(db.SQL(), self)
	sweeper.InCluster(jobs)
	sweepCtx, stopSweep := context.WithCancel(ctx)
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		sweeper.Run(sweepCtx)
	}()
	defer func() { stopSweep(); <-sweepDone }()
	if !cfg.DictionariesOff {
		trainer := zdict.NewTrainer(segDicts, db, zdict.DefaultTrainConfig(), logger).InCluster(jobs)
		trainDone := make(chan struct{})
		go func() {
			defer close(trainDone)
			trainer.Run(sweepCtx)
		}()
		defer func() { stopSweep(); <-trainDone }()
	}
	renderDone := make(chan struct{})
	go func() {
		defer close(renderDone)
		renders.Run(sweepCtx)
	}()
	defer func() { stopSweep(); <-renderDone }()
	if cfg.AuditRetention > 0 {
		auditDone := make(chan struct{})
		go func() {
			defer close(auditDone)
			sweepAudit(sweepCtx, auditLog, cfg.AuditRetention, logger)
		}()
		defer func() { stopSweep(); <-auditDone }()
	}
	if cfg.Retention.MaxAge > 0 {
		logger.Info("retention", "days", int(cfg.Retention.MaxAge/(24*time.Hour)))
	}
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return errors.Join(fmt.Errorf("listen: %w", err), rec.Close(context.WithoutCancel(ctx)))
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, logger)
	}
	logger.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/")
	if setupToken != "" {
		base := cfg.Server.PublicURL
		if base == "" {
			base = "http://" + ln.Addr().String()
		}
		logSetup(logger, base, setupToken)
	}
	serveErr := srv.Serve(ctx, httpSrv, cfg.ShutdownGrace, func() error { return httpSrv.Serve(ln) })
	logger.Info("shutting down: flushing buffered sessions")
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := rec.Close(closeCtx); err != nil {
		logger.Error("flush on shutdown", slog.Any("error", err))
		serveErr = errors.Join(serveErr, err)
	}
	logger.Info("stopped")
	return serveErr
}

// servePprof serves the Go profiler on its own address, so it is never
// exposed on the public listener.
func servePprof(addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	logger.Info("profiler listening", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		logger.Error("profiler", slog.Any("error", err))
	}
}

// connectS3 connects to the bucket, retrying for a while: in a compose file
// or after a reboot the object store may still be starting.
func connectS3(ctx context.Context, cfg s3.Config, logger *slog.Logger) (*s3.Client, error) {
	deadline := time.Now().Add(60 * time.Second)
	for wait := 500 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		c, err := s3.New(ctx, cfg)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("connect to s3 at %s: %w", cfg.Endpoint, err)
		}
		logger.Warn("object store not reachable yet, retrying", "endpoint", cfg.Endpoint, "in", wait, slog.Any("error", err))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ensureDefaultProject creates project "default" on first start and logs its
// write key once.
func ensureDefaultProject(ctx context.Context, db *index.DB, logger *slog.Logger) error {
	ps, err := db.Projects(ctx)
	if err != nil {
		return err
	}
	if len(ps) > 0 {
		return nil
	}
	p, err := db.CreateProject(ctx, "default", time.Now())
	if err != nil {
		return err
	}
	logger.Info("created project \"default\"; add the recorder to your site with its write key (shown only now)",
		"project", p.Name, "write_key", p.WriteKey,
		"snippet", fmt.Sprintf(`<script src="http://HOST/recorder.js" data-key="%s" async></script>`, p.WriteKey))
	return nil
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel)) // validated already
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// parseNets reads a comma-separated list of addresses and CIDR ranges.
func parseNets(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("assets allow nets: %q is neither an address nor a CIDR range", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
