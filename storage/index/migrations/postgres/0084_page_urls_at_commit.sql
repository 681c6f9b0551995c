-- A page view's URL is no longer added to page_urls by a trigger, as the
-- page view is inserted, but by the ingest at the end of its transaction,
-- every URL of the transaction in one statement in key order (see
-- index.newPageURLs): nodes of a cluster recording the first views of the
-- same new pages added them in the orders their batches came, each waited
-- for a URL the other had inserted, and PostgreSQL broke the deadlock after
-- a second by failing one transaction.
DROP TRIGGER page_urls_add ON pages;
DROP FUNCTION page_urls_add();
