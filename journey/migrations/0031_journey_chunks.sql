-- Journey: closed sessions' timelines packed into chunks of a few hundred,
-- so a funnel or path query over a million sessions reads a few thousand
-- rows instead of a million (see journey/pack.go). A session is in exactly
-- one place: its journey_sessions row has chunk NULL (loose) or the id of
-- the chunk that holds it.

ALTER TABLE journey_sessions ADD COLUMN device INTEGER NOT NULL DEFAULT 0; -- 0 unknown, 1 desktop, 2 tablet, 3 mobile
ALTER TABLE journey_sessions ADD COLUMN chunk INTEGER;
CREATE INDEX journey_sessions_loose ON journey_sessions(project_id, started_at) WHERE chunk IS NULL;
CREATE INDEX journey_sessions_chunk ON journey_sessions(chunk) WHERE chunk IS NOT NULL;

CREATE TABLE journey_chunks (
	id          INTEGER PRIMARY KEY,
	project_id  INTEGER NOT NULL,
	first_start INTEGER NOT NULL, -- smallest session start in the chunk, unix ms
	last_start  INTEGER NOT NULL, -- largest
	sessions    INTEGER NOT NULL,
	data        BLOB    NOT NULL
);
CREATE INDEX journey_chunks_range ON journey_chunks(project_id, last_start);

-- A deleted session takes its chunk with it; the chunk's other sessions
-- become loose and are packed again later.
DROP TRIGGER journey_session_deleted;
CREATE TRIGGER journey_session_deleted BEFORE DELETE ON sessions BEGIN
	DELETE FROM journey_chunks WHERE id = (SELECT chunk FROM journey_sessions WHERE session_id = OLD.id);
	UPDATE journey_sessions SET chunk = NULL WHERE chunk = (SELECT chunk FROM journey_sessions WHERE session_id = OLD.id);
	DELETE FROM journey_sessions WHERE session_id = OLD.id;
	DELETE FROM journey_searches WHERE session_id = OLD.id;
END;

-- Timelines derived before the device column are derived again (journey's
-- backfill runs at start).
DELETE FROM journey_sessions;
