-- The distinct page URLs of each project, for the sessions list's page
-- pattern filter (*x*, a substring): it matches the pattern against these
-- (through their own trigram index) instead of every page view, then finds
-- the page views of the URLs that match through pages_url. SQLite's 0082
-- keeps exact counts and deletes a URL with its last page view; here every
-- node's ingest adds to the table, and counts would make a popular page's
-- row a lock that every node's stage 1 waits on. So a URL is added with its
-- first page view (and its seen_at renewed at most once a day, without a
-- wait), and the retention sweep removes URLs that no page view has and
-- that were not seen for two days (index.PrunePageURLs): the table is a
-- superset of the URLs in pages, which is all the filter relies on. The
-- trigram index on pages.url (0081) goes: the small table's serves, and a
-- b-tree finds the page views of a URL.
CREATE TABLE page_urls (
	project_id BIGINT NOT NULL,
	url        TEXT   NOT NULL,
	path       TEXT   NOT NULL,
	seen_at    BIGINT NOT NULL, -- unix ms, the database's clock
	PRIMARY KEY (project_id, url)
);

INSERT INTO page_urls (project_id, url, path, seen_at)
	SELECT s.project_id, p.url, MIN(p.path), (extract(epoch FROM clock_timestamp()) * 1000)::bigint
	FROM pages p JOIN sessions s ON s.id = p.session_id
	GROUP BY s.project_id, p.url;

CREATE FUNCTION page_urls_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	now BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
	INSERT INTO page_urls (project_id, url, path, seen_at)
		SELECT s.project_id, NEW.url, NEW.path, now FROM sessions s WHERE s.id = NEW.session_id
		ON CONFLICT (project_id, url) DO UPDATE SET seen_at = excluded.seen_at
		WHERE page_urls.seen_at < excluded.seen_at - 86400000;
	RETURN NULL;
END
$$;
CREATE TRIGGER page_urls_add AFTER INSERT ON pages FOR EACH ROW EXECUTE FUNCTION page_urls_add();

CREATE INDEX pages_url ON pages (url) INCLUDE (session_id);
DROP INDEX IF EXISTS pages_url_trgm;
DO $$
BEGIN
	CREATE EXTENSION IF NOT EXISTS pg_trgm;
	CREATE INDEX page_urls_trgm ON page_urls USING gin (url gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'trailmap: no trigram index on page URLs (%): the page pattern filter reads every distinct URL', SQLERRM;
END
$$;
