package recorder

import (
	"errors"
	"io"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	batches     *prometheus.CounterVec
	events      prometheus.Counter
	bytesIn     *prometheus.CounterVec
	rejects     *prometheus.CounterVec
	indexErrors prometheus.Counter
	outOfOrder  prometheus.Counter
	quarantined *prometheus.CounterVec
	// Wall time the stages after the acknowledgement spend at work,
	// waiting for the index's writer included (how busy each is; their CPU
	// per batch comes from a CPU profile, see BenchmarkIngestServer).
	indexBusy, factsBusy, segmentsBusy prometheus.Counter
	blobErrors                         *prometheus.CounterVec
	flushSeconds                       prometheus.Histogram
	segments                           prometheus.Counter
	bytesStored                        prometheus.Counter
	rawFlushed                         prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, r *Recorder) *metrics {
	m := &metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_ingest_batches_total", Help: "Ingested batches by result (accepted, duplicate).",
		}, []string{"result"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_ingest_events_total", Help: "rrweb events accepted.",
		}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_ingest_bytes_total", Help: "Request body bytes received, compressed (as sent) and decompressed.",
		}, []string{"kind"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_ingest_rejects_total", Help: "Rejected ingest requests by reason code.",
		}, []string{"reason"}),
		indexBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_index_stage_seconds_total",
			Help: "Time stage 1 spent recording batches' core index rows (sessions, pages, visitors).",
		}),
		factsBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_facts_stage_seconds_total",
			Help: "Time stage 2 spent deriving batches' facts (heatmaps, journeys) in the index, summed over its workers (--facts-workers): its rate may exceed 1.",
		}),
		segmentsBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_segments_compress_seconds_total",
			Help: "Time spent compressing segments.",
		}),
		outOfOrder: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_observe_out_of_order_total",
			Help: "Batches whose facts were derived before the batch before them (it did not come within the hold time, or the node was stopping).",
		}),
		indexErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_index_apply_errors_total", Help: "Failed attempts to record accepted batches in the index (retried).",
		}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_batches_quarantined_total",
			Help: "Batches taken out of a stage because it refused them alone while taking others: stage index (the batch is in DataDir/quarantine, tried again at the next start), facts (stored without its heatmap and journey facts).",
		}, []string{"stage"}),
		blobErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trailmap_blob_errors_total", Help: "Blob store errors by operation.",
		}, []string{"op"}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trailmap_segment_flush_seconds", Help: "Time to build and store one segment.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		segments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_segments_stored_total", Help: "Segment objects written to the blob store.",
		}),
		bytesStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_stored_bytes_total", Help: "Compressed segment bytes written to the blob store.",
		}),
		rawFlushed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trailmap_segment_raw_bytes_total", Help: "Raw event bytes that went into stored segments.",
		}),
	}
	for _, stage := range []string{"index", "facts"} {
		m.quarantined.WithLabelValues(stage) // at 0 from the start, so rate() and alerts see them
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		m.batches, m.events, m.bytesIn, m.rejects, m.indexErrors, m.outOfOrder, m.quarantined, m.indexBusy, m.factsBusy, m.segmentsBusy, m.blobErrors, m.flushSeconds, m.segments, m.bytesStored, m.rawFlushed,
		gauge("trailmap_wal_bytes", "Bytes in the write-ahead log.", func() float64 {
			if r.wal == nil {
				return 0
			}
			return float64(r.wal.Stats().Bytes)
		}),
		gauge("trailmap_wal_files", "Files in the write-ahead log.", func() float64 {
			if r.wal == nil {
				return 0
			}
			return float64(r.wal.Stats().Files)
		}),
		gauge("trailmap_buffered_bytes", "Raw event bytes accepted and not yet in stored segments.", func() float64 {
			r.mu.Lock()
			defer r.mu.Unlock()
			return float64(r.buffered)
		}),
		gauge("trailmap_observe_backlog_batches", "Batches in the index whose observers (heatmaps, journeys) have not run yet.", func() float64 {
			r.obsMu.Lock()
			defer r.obsMu.Unlock()
			return float64(r.obsBacklog)
		}),
		gauge("trailmap_quarantine_batches", "Batches in this node's quarantine (the index refused them; see `trailmap quarantine`): alert on any.", func() float64 {
			names, _ := filepath.Glob(filepath.Join(r.cfg.quarantineDir(), "*.batch"))
			return float64(len(names))
		}),
		gauge("trailmap_ingest_in_flight", "Ingest requests being decoded and recorded (refused over --max-inflight).", func() float64 {
			return float64(len(r.inFlight))
		}),
		gauge("trailmap_live_sessions", "Sessions with state in memory.", func() float64 {
			r.mu.Lock()
			defer r.mu.Unlock()
			return float64(len(r.sessions))
		}),
	}
	// Create the usual series at zero so dashboards and alerts see them
	// before the first event.
	for _, r := range []string{"accepted", "duplicate"} {
		m.batches.WithLabelValues(r)
	}
	for _, k := range []string{"compressed", "decompressed"} {
		m.bytesIn.WithLabelValues(k)
	}
	for _, r := range []string{"malformed", "invalid_id", "unknown_key", "too_large", "too_many_events", "event_too_large", "unsupported_encoding", "rate_limited", "shutting_down", "overloaded", "internal"} {
		m.rejects.WithLabelValues(r)
	}
	m.blobErrors.WithLabelValues("put")
	if reg != nil {
		for _, c := range cs {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *metrics) reject(err error) {
	reason := "internal"
	if _, code, ok := Code(err); ok {
		reason = code
	} else if errors.Is(err, ErrShuttingDown) {
		reason = "shutting_down"
	} else if errors.Is(err, ErrOverloaded) {
		reason = "overloaded"
	} else if errors.Is(err, ErrStorageFull) {
		reason = "storage_full"
	}
	m.rejects.WithLabelValues(reason).Inc()
}

// countingReader counts bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// busy adds the time since start to a stage's busy counter.
func (m *metrics) busy(c prometheus.Counter, start time.Time) {
	c.Add(time.Since(start).Seconds())
}
