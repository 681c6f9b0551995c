-- How many of a session's batches stage 2 has given to the observers moves
-- out of the sessions row (0003's observed_count) into a row of its own.
-- Stage 1 writes the sessions row of every batch it records, stage 2 bumped
-- the same row for every batch it observed: on PostgreSQL the two stages'
-- transactions waited for each other's row locks and, taking a group's
-- sessions in different orders, deadlocked (a one-second stall until
-- PostgreSQL's deadlock check broke it). Here they touch different rows.
-- SQLite has one writer and no such waits; it takes the same shape so that
-- both dialects keep one schema.
CREATE TABLE session_observed (
	session_id     INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
	observed_count INTEGER NOT NULL
);
INSERT INTO session_observed (session_id, observed_count)
	SELECT id, observed_count FROM sessions WHERE observed_count > 0;
DROP TRIGGER batches_observed;
CREATE TRIGGER batches_observed AFTER UPDATE OF observed ON batches
WHEN NEW.observed = 1 AND OLD.observed = 0
BEGIN
	INSERT INTO session_observed (session_id, observed_count) VALUES (NEW.session_id, 1)
	ON CONFLICT (session_id) DO UPDATE SET observed_count = observed_count + 1;
END;
ALTER TABLE sessions DROP COLUMN observed_count;
