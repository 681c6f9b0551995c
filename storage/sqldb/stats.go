package sqldb

import (
	"database/sql"
	"time"
)

// PoolStats describes one connection pool of the index, for metrics.
type PoolStats struct {
	Open, InUse  int           // connections open, and of those in use
	Waits        int64         // times a caller waited for a connection
	WaitDuration time.Duration // in all
}

// Stats reports the read pool and the single writer's pool.
func (db *DB) Stats() (read, write PoolStats) {
	return poolStats(db.read.Stats()), poolStats(db.write.Stats())
}

func poolStats(s sql.DBStats) PoolStats {
	return PoolStats{Open: s.OpenConnections, InUse: s.InUse, Waits: s.WaitCount, WaitDuration: s.WaitDuration}
}
