package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailmap/trailmap/heatmap"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// poolStats is what the index connection reports of its pools.
type poolStats interface {
	Stats() (read, write sqldb.PoolStats)
}

// indexPoolCollector exports the index's connection pools: a leak of
// connections (a rows or a transaction left open) shows as a count that only
// grows, a starved pool as waits.
type indexPoolCollector struct {
	db                         poolStats
	open, inUse, waits, waited *prometheus.Desc
}

func newIndexPoolCollector(db poolStats) *indexPoolCollector {
	pool := []string{"pool"}
	return &indexPoolCollector{
		db:     db,
		open:   prometheus.NewDesc("trailmap_index_connections_open", "Open connections of the index pool (read: the read pool; write: the single writer).", pool, nil),
		inUse:  prometheus.NewDesc("trailmap_index_connections_in_use", "Connections of the index pool in use.", pool, nil),
		waits:  prometheus.NewDesc("trailmap_index_connection_waits_total", "Times a caller waited for a connection of the index pool.", pool, nil),
		waited: prometheus.NewDesc("trailmap_index_connection_wait_seconds_total", "Time callers waited for a connection of the index pool.", pool, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *indexPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.inUse
	ch <- c.waits
	ch <- c.waited
}

// Collect implements prometheus.Collector.
func (c *indexPoolCollector) Collect(ch chan<- prometheus.Metric) {
	read, write := c.db.Stats()
	for pool, s := range map[string]sqldb.PoolStats{"read": read, "write": write} {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.Open), pool)
		ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(s.InUse), pool)
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.Waits), pool)
		ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, s.WaitDuration.Seconds(), pool)
	}
}

// registerHeatmapMemory serves what the heatmap holds to follow sessions,
// and what its bounds (--heatmap-sessions, --heatmap-dom-nodes) cost:
// mirrors dropped, and clicks placed without an element.
func registerHeatmapMemory(reg prometheus.Registerer, heat *heatmap.Service) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "trailmap_heatmap_sessions_followed",
			Help: "Sessions the heatmap follows in memory (--heatmap-sessions bounds them).",
		}, func() float64 { return float64(heat.Memory().Sessions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "trailmap_heatmap_dom_nodes",
			Help: "DOM nodes the heatmap mirrors to name clicked elements (--heatmap-dom-nodes bounds them).",
		}, func() float64 { return float64(heat.Memory().Nodes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "trailmap_heatmap_dom_dropped_total",
			Help: "DOM mirrors dropped for --heatmap-dom-nodes: their sessions' clicks have no element until the page's next full snapshot.",
		}, func() float64 { return float64(heat.Memory().MirrorsDropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "trailmap_heatmap_clicks_without_dom_total",
			Help: "Clicks placed with no DOM known (a mirror dropped, a session resumed after a restart or taken over), which element maps leave out.",
		}, func() float64 { return float64(heat.Memory().ClicksWithoutDOM) }),
	)
}
