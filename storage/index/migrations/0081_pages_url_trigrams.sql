-- The sessions list's page pattern filter (a substring of the URL) on
-- PostgreSQL has a trigram index; SQLite has none (it scans page views):
-- nothing to do here, see the PostgreSQL twin.
SELECT 1;
