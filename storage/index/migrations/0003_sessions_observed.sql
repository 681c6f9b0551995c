-- observed_count is how many of a session's batches stage 2 has given to the
-- observers, bumped by the trigger below when stage 2 marks a batch observed,
-- in the observers' transaction. Observers that follow a session batch by
-- batch (heatmap trackers) compare it with what they saw: under load stage 1
-- runs ahead, so batch_count is no measure of what was observed.
ALTER TABLE sessions ADD COLUMN observed_count INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET observed_count = (SELECT COUNT(*) FROM batches b WHERE b.session_id = sessions.id AND b.observed = 1);
CREATE TRIGGER batches_observed AFTER UPDATE OF observed ON batches
WHEN NEW.observed = 1 AND OLD.observed = 0
BEGIN
	UPDATE sessions SET observed_count = observed_count + 1 WHERE id = NEW.session_id;
END;
