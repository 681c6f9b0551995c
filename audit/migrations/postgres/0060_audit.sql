-- The audit log: who did what to the dashboard's data, when, from where.
CREATE TABLE audit_log (
	id         BIGSERIAL PRIMARY KEY,
	at         BIGINT  NOT NULL,              -- unix ms
	actor_kind TEXT    NOT NULL,              -- user, token, cli, system, anonymous
	actor      TEXT    NOT NULL DEFAULT '',   -- email, token name; '' for anonymous
	action     TEXT    NOT NULL,              -- e.g. login.failed, share.create
	target     TEXT    NOT NULL DEFAULT '',   -- what it was done to
	project_id BIGINT,                        -- the project concerned, if one
	ip         TEXT    NOT NULL DEFAULT '',   -- anonymised like visitors' addresses
	detail     TEXT    NOT NULL DEFAULT '{}'  -- JSON
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_action ON audit_log (action, at DESC);
