-- Twin of ../0007_discard.sql.
ALTER TABLE sessions ADD COLUMN interactions BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN discarded INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET interactions = click_count;
CREATE INDEX sessions_discarded ON sessions(id) WHERE discarded = 1;
