-- PostgreSQL compresses the packed timelines' chunks with lz4 instead of
-- pglz (see the twin); SQLite stores them as they are: nothing to do here.
SELECT 1;
