-- The nodes of a cluster (trailmap serve processes sharing one index and
-- one bucket) and which node derives the facts of each recording session.
-- A node is named by its --advertise-url and says it is alive every few
-- seconds; a session belongs to the node that took its first batch until
-- that node is not seen for a while, then to the next node that takes one
-- of its batches.
CREATE TABLE cluster_nodes (
	id         TEXT    PRIMARY KEY, -- the node's --advertise-url
	started_at INTEGER NOT NULL,    -- unix ms
	seen_at    INTEGER NOT NULL     -- unix ms, the last heartbeat
);

CREATE TABLE cluster_sessions (
	session_id TEXT    PRIMARY KEY, -- the public session id
	node       TEXT    NOT NULL,    -- cluster_nodes.id (not a foreign key: a node's row goes at a graceful stop, its sessions are then taken over)
	claimed_at INTEGER NOT NULL     -- unix ms
);
CREATE INDEX cluster_sessions_claimed ON cluster_sessions (claimed_at);
