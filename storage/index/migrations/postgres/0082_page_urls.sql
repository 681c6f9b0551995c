-- SQLite's 0082 keeps the distinct page URLs (page_urls) for the sessions
-- list's page pattern filter. PostgreSQL has the trigram index on
-- pages.url (0081) for it instead: a table of counts that every node's
-- ingest updates would make its hot rows (the home page) a lock every
-- node's stage 1 waits on. Nothing to do here.
SELECT 1;
