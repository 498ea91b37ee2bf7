-- The source's own episode id, shown in the episode list and exports. The column held the importer's
-- name for messages, which is that id for every format but LeRobot ("episode_000029" for 29) and
-- ALOHA (the file path without its extension, which is not known any more and so stays).
ALTER TABLE "episodes" RENAME COLUMN "source_id" TO "source_episode";

UPDATE "episodes" AS e
SET "source_episode" = (substring(e."source_episode" from '^episode_([0-9]+)$'))::numeric::text
FROM "uploads" AS u
WHERE u."id" = e."upload_id" AND u."format" = 'lerobot' AND e."source_episode" ~ '^episode_[0-9]+$';
