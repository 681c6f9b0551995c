-- Twin of ../0009_list_filters.sql (the same statements).
-- The sessions list's filters answer from indexes on a large index: a
-- visitor or user id looked up in any project (support looking up a
-- customer), and the rare signals (sessions with rage or dead clicks,
-- errors, conversions) newest first.
CREATE INDEX visitors_id ON visitors(id);
CREATE INDEX visitors_user_id ON visitors(user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_rage ON sessions(project_id, started_at DESC, id DESC) WHERE rage_clicks > 0;
CREATE INDEX sessions_dead ON sessions(project_id, started_at DESC, id DESC) WHERE dead_clicks > 0;
CREATE INDEX sessions_errors ON sessions(project_id, started_at DESC, id DESC) WHERE errors > 0;
CREATE INDEX sessions_conversions ON sessions(project_id, started_at DESC, id DESC) WHERE conversions > 0;
