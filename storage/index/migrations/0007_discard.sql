-- Keep rules (a project's "min_duration_ms" and "require_interaction",
-- enforced for every client, not only Trailmap's script): interactions
-- counts a session's mouse and touch interactions, scrolls, inputs, media
-- interactions and drags; discarded is set when a session closes without
-- meeting its project's rule, which hides it and lets retention delete it.
ALTER TABLE sessions ADD COLUMN interactions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN discarded INTEGER NOT NULL DEFAULT 0;
-- Sessions recorded before the column existed: clicks are interactions.
UPDATE sessions SET interactions = click_count;
CREATE INDEX sessions_discarded ON sessions(id) WHERE discarded = 1;
