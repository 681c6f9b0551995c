-- Folded into postgres/0001_core.sql: nothing ran on PostgreSQL before it.
SELECT 1;
