-- Journey: closed sessions' timelines packed into chunks (see
-- journey/pack.go), PostgreSQL twin of 0031_journey_chunks.sql. 0030's twin
-- already gave journey_sessions its device and chunk columns and indexes.

CREATE TABLE journey_chunks (
	id          BIGSERIAL PRIMARY KEY,
	project_id  BIGINT NOT NULL,
	first_start BIGINT NOT NULL, -- smallest session start in the chunk, unix ms
	last_start  BIGINT NOT NULL, -- largest
	sessions    BIGINT NOT NULL,
	data        BYTEA  NOT NULL
);
CREATE INDEX journey_chunks_range ON journey_chunks(project_id, last_start);

-- Derived rows go with their session (retention deletes sessions); a
-- deleted session takes its chunk with it, the chunk's other sessions
-- become loose and are packed again later.
CREATE FUNCTION journey_session_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	c BIGINT;
BEGIN
	SELECT chunk INTO c FROM journey_sessions WHERE session_id = OLD.id;
	IF c IS NOT NULL THEN
		DELETE FROM journey_chunks WHERE id = c;
		UPDATE journey_sessions SET chunk = NULL WHERE chunk = c;
	END IF;
	DELETE FROM journey_sessions WHERE session_id = OLD.id;
	DELETE FROM journey_searches WHERE session_id = OLD.id;
	RETURN OLD;
END
$$;
CREATE TRIGGER journey_session_deleted BEFORE DELETE ON sessions
FOR EACH ROW EXECUTE FUNCTION journey_session_deleted();
