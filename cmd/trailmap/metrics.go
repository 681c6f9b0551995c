package main

import (
	"github.com/prometheus/client_golang/prometheus"

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
