-- When each cluster-wide job (the retention sweep, dictionary training)
-- last started, and on which node: a node runs a job only when no node
-- started it within the job's period, so a cluster runs it once per period
-- however many nodes it has (a PostgreSQL advisory lock keeps two runs from
-- overlapping).
CREATE TABLE cluster_jobs (
	name       TEXT    PRIMARY KEY,
	node       TEXT    NOT NULL,
	started_at INTEGER NOT NULL -- unix ms
);
