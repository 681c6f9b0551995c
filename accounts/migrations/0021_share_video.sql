-- Whoever shares a clip may let its viewers download it as a video or GIF
-- (rendered on the server, see the render package).
ALTER TABLE shares ADD COLUMN allow_video INTEGER NOT NULL DEFAULT 0;
