-- Nothing changes here: SQLite has one writer, and its triggers keep
-- page_urls exactly (PostgreSQL's twin moves the adding to the ingest).
SELECT 1;
