-- When each cluster-wide job last started, and on which node (see SQLite's 0071).
CREATE TABLE cluster_jobs (
	name       TEXT   PRIMARY KEY,
	node       TEXT   NOT NULL,
	started_at BIGINT NOT NULL
);
