import type { PrismaClient } from '../../database/prisma.js';

/** One row of the episodes table, as ingest writes it. */
export interface EpisodeRow {
  episodeIndex: number;
  sourceEpisode: string;
  length: number;
  task: string | null;
  success: boolean | null;
  shardKey: string;
  batchStart: number;
  batchCount: number;
  byteOffset: number;
  byteLength: number;
  checksum: string;
  metadata: Record<string, unknown> | null;
  bucket: number;
}

/** Rows per INSERT: each statement sends one array per column, so its size is bounded, not its count of parameters. */
const ROWS_PER_STATEMENT = 5_000;

/**
 * Writes the episode rows of a version that is not published yet, a few thousand rows per
 * statement and outside any transaction: readers only see episodes up to the dataset's
 * `latestVersion`, so these stay invisible until the short publishing transaction moves it.
 */
export async function insertEpisodeRows(
  prisma: PrismaClient,
  params: { datasetId: string; version: number; uploadId: string; rows: EpisodeRow[] },
): Promise<void> {
  const { datasetId, version, uploadId } = params;
  for (let start = 0; start < params.rows.length; start += ROWS_PER_STATEMENT) {
    const rows = params.rows.slice(start, start + ROWS_PER_STATEMENT);
    const column = <T>(pick: (row: EpisodeRow) => T) => rows.map(pick);
    await prisma.$executeRaw`
      INSERT INTO "episodes" ("dataset_id", "version", "upload_id", "episode_index", "source_episode", "length", "task",
        "success", "shard_key", "batch_start", "batch_count", "byte_offset", "byte_length", "checksum", "metadata", "bucket")
      SELECT ${datasetId}, ${version}::int, ${uploadId}, row.*
      FROM unnest(
        ${column((row) => row.episodeIndex)}::int[],
        ${column((row) => row.sourceEpisode)}::text[],
        ${column((row) => row.length)}::int[],
        ${column((row) => row.task)}::text[],
        ${column((row) => row.success)}::boolean[],
        ${column((row) => row.shardKey)}::text[],
        ${column((row) => row.batchStart)}::int[],
        ${column((row) => row.batchCount)}::int[],
        ${column((row) => String(row.byteOffset))}::bigint[],
        ${column((row) => String(row.byteLength))}::bigint[],
        ${column((row) => row.checksum)}::text[],
        ${column((row) => (row.metadata === null ? null : JSON.stringify(row.metadata)))}::jsonb[],
        ${column((row) => row.bucket)}::smallint[]
      ) AS row`;
  }
}

/**
 * Removes the episode rows of versions that were never published: what an ingest that crashed (or
 * failed) between writing its rows and publishing left behind. Run under the dataset's lock before
 * writing new rows, whose indices would otherwise collide with them.
 */
export async function deleteUnpublishedEpisodes(prisma: PrismaClient, params: { datasetId: string; latestVersion: number }): Promise<void> {
  await prisma.episode.deleteMany({ where: { datasetId: params.datasetId, version: { gt: params.latestVersion } } });
}

/** Removes the rows an upload wrote that were not published (a failed upload leaves nothing behind). */
export async function deleteUnpublishedEpisodesOf(prisma: PrismaClient, uploadId: string): Promise<void> {
  await prisma.$executeRaw`
    DELETE FROM "episodes" AS e USING "datasets" AS d
    WHERE e."upload_id" = ${uploadId} AND d."id" = e."dataset_id" AND e."version" > d."latest_version"`;
}
