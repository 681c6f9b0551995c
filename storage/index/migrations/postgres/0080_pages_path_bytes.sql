-- The sessions list's page prefix filter compares paths COLLATE "C" (as
-- code points, like SQLite), which an index in the database's collation
-- cannot serve unless that collation is C: a database made with a
-- language locale (en_US.UTF-8, the postgres image's default) would read
-- every page view for a prefix that matches nothing.
CREATE INDEX pages_path_bytes ON pages (path COLLATE "C", session_id);
