-- A trigram index on page URLs, so that the sessions list's page pattern
-- filter (*x*, a substring) finds the few page views that match, or that
-- none does, without reading every page view. pg_trgm ships with
-- PostgreSQL (contrib) and is a trusted extension: the database's owner may
-- create it. Where it cannot be created, the filter reads page views as
-- before (a notice says why) and nothing else changes.
DO $$
BEGIN
	CREATE EXTENSION IF NOT EXISTS pg_trgm;
	CREATE INDEX pages_url_trgm ON pages USING gin (url gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'trailmap: no trigram index on page URLs (%): the page pattern filter reads every page view', SQLERRM;
END
$$;
