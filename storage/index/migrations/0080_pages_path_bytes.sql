-- The sessions list's page prefix filter compares paths as bytes (code
-- points), whatever the database's collation. SQLite's indexes already
-- compare that way (BINARY): nothing to do here; see the PostgreSQL twin.
SELECT 1;
