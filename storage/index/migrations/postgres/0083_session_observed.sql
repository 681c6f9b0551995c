-- How many of a session's batches stage 2 has given to the observers moves
-- out of the sessions row into a row of its own (see SQLite's 0083): stage 1
-- writes the sessions row of every batch it records, and stage 2's bump of
-- the same row made the two stages wait for each other's row locks and,
-- taking a group's sessions in different orders, deadlock (a one-second
-- stall each time, until the deadlock check broke it).
CREATE TABLE session_observed (
	session_id     BIGINT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
	observed_count BIGINT NOT NULL
);
INSERT INTO session_observed (session_id, observed_count)
	SELECT id, observed_count FROM sessions WHERE observed_count > 0;
CREATE OR REPLACE FUNCTION batches_observed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO session_observed (session_id, observed_count) VALUES (NEW.session_id, 1)
	ON CONFLICT (session_id) DO UPDATE SET observed_count = session_observed.observed_count + 1;
	RETURN NULL;
END
$$;
ALTER TABLE sessions DROP COLUMN observed_count;
