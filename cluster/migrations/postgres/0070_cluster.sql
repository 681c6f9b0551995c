-- The nodes of a cluster and the owner of each session (see SQLite's 0070).
CREATE TABLE cluster_nodes (
	id         TEXT   PRIMARY KEY,
	started_at BIGINT NOT NULL,
	seen_at    BIGINT NOT NULL
);

CREATE TABLE cluster_sessions (
	session_id TEXT   PRIMARY KEY,
	node       TEXT   NOT NULL,
	claimed_at BIGINT NOT NULL
);
CREATE INDEX cluster_sessions_claimed ON cluster_sessions (claimed_at);
