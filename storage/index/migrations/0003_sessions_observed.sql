-- observed_count is how many of a session's batches stage 2 has given to the
-- observers, bumped in the same transaction. Observers that follow a session
-- batch by batch (heatmap trackers) compare it with what they saw: under load
-- stage 1 runs ahead, so batch_count is no measure of what was observed.
ALTER TABLE sessions ADD COLUMN observed_count INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET observed_count = (SELECT COUNT(*) FROM batches b WHERE b.session_id = sessions.id AND b.observed = 1);
