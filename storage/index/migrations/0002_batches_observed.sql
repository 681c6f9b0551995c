-- Observers (heatmap, journey) run in a second stage after a batch's core rows
-- are committed. observed = 0 marks a batch whose observers have not run yet;
-- its events are still in the write-ahead log, so they run at the next start.
-- Batches recorded before this migration were observed in the same transaction.
ALTER TABLE batches ADD COLUMN observed INTEGER NOT NULL DEFAULT 1;
