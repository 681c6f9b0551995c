package cluster

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/trailmap/trailmap/storage/sqldb"
)

// Node states in a Status.
const (
	NodeAlive = "alive" // seen within the stale time
	// NodeStale: not seen for the stale time (killed, hung, cut off); the
	// next node that takes a batch of one of its sessions takes it over.
	NodeStale = "stale"
	// NodeGone: no heartbeat row (it stopped gracefully) but sessions
	// still name it; they move at their next batch.
	NodeGone = "gone"
)

// Status is what the cluster's tables say about its nodes, the sessions
// they own and the cluster-wide jobs: what an operator looks at first
// (`trailmap cluster status`).
type Status struct {
	At     time.Time    `json:"at"`
	Stale  string       `json:"stale_after"` // the stale time the states are judged by
	Window string       `json:"window"`      // the sessions counted: claimed within it
	Nodes  []NodeStatus `json:"nodes"`
	// Orphaned counts the sessions claimed within the window whose owner
	// is stale or gone.
	Orphaned int64       `json:"orphaned_sessions"`
	Jobs     []JobStatus `json:"jobs"`
}

// NodeStatus is one node of a Status.
type NodeStatus struct {
	Node      string     `json:"node"` // its --advertise-url
	State     string     `json:"state"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	SeenAt    *time.Time `json:"seen_at,omitempty"`
	// Sessions counts the sessions it claimed within the window (first
	// batches routed to it, and sessions it took over).
	Sessions int64 `json:"sessions"`
}

// JobStatus is a cluster-wide job's last start (see Jobs).
type JobStatus struct {
	Name      string    `json:"name"`
	Node      string    `json:"node"`
	StartedAt time.Time `json:"started_at"`
}

// ReadStatus reads the cluster's Status at now from db (whose schemas
// include Schema): a node is stale when not seen for stale (the nodes'
// own Config.Stale), and sessions are counted over the window before now.
func ReadStatus(ctx context.Context, db *sqldb.DB, now time.Time, stale, window time.Duration) (Status, error) {
	st := Status{At: now.UTC(), Stale: stale.String(), Window: window.String(), Nodes: []NodeStatus{}, Jobs: []JobStatus{}}
	nodes := map[string]*NodeStatus{}
	rows, err := db.Read().QueryContext(ctx, `SELECT id, started_at, seen_at FROM cluster_nodes`)
	if err != nil {
		return Status{}, fmt.Errorf("cluster: read nodes: %w", err)
	}
	for rows.Next() {
		var id string
		var started, seen int64
		if err := rows.Scan(&id, &started, &seen); err != nil {
			rows.Close()
			return Status{}, fmt.Errorf("cluster: read nodes: %w", err)
		}
		n := &NodeStatus{Node: id, State: NodeAlive, StartedAt: unixMS(started), SeenAt: unixMS(seen)}
		if now.UnixMilli()-seen > stale.Milliseconds() {
			n.State = NodeStale
		}
		nodes[id] = n
	}
	if err := rows.Close(); err != nil {
		return Status{}, fmt.Errorf("cluster: read nodes: %w", err)
	}
	rows, err = db.Read().QueryContext(ctx, `SELECT node, COUNT(*) FROM cluster_sessions WHERE claimed_at >= ? GROUP BY node`,
		now.Add(-window).UnixMilli())
	if err != nil {
		return Status{}, fmt.Errorf("cluster: count sessions: %w", err)
	}
	for rows.Next() {
		var node string
		var count int64
		if err := rows.Scan(&node, &count); err != nil {
			rows.Close()
			return Status{}, fmt.Errorf("cluster: count sessions: %w", err)
		}
		n := nodes[node]
		if n == nil {
			n = &NodeStatus{Node: node, State: NodeGone}
			nodes[node] = n
		}
		n.Sessions = count
		if n.State != NodeAlive {
			st.Orphaned += count
		}
	}
	if err := rows.Close(); err != nil {
		return Status{}, fmt.Errorf("cluster: count sessions: %w", err)
	}
	for _, n := range nodes {
		st.Nodes = append(st.Nodes, *n)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Node < st.Nodes[j].Node })
	rows, err = db.Read().QueryContext(ctx, `SELECT name, node, started_at FROM cluster_jobs ORDER BY name`)
	if err != nil {
		return Status{}, fmt.Errorf("cluster: read jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var j JobStatus
		var started int64
		if err := rows.Scan(&j.Name, &j.Node, &started); err != nil {
			return Status{}, fmt.Errorf("cluster: read jobs: %w", err)
		}
		j.StartedAt = *unixMS(started)
		st.Jobs = append(st.Jobs, j)
	}
	if err := rows.Err(); err != nil {
		return Status{}, fmt.Errorf("cluster: read jobs: %w", err)
	}
	return st, nil
}

func unixMS(ms int64) *time.Time {
	t := time.UnixMilli(ms).UTC()
	return &t
}
