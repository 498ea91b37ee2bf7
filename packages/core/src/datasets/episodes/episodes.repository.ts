import { Inject, Injectable } from '@nestjs/common';
import type { EpisodeRanges } from '@kura/schema';
import { PostgresCopy, copyText } from '../../database/postgres-copy.js';
import { Prisma, PrismaClient } from '../../database/prisma.js';
import { HELD_OUT_BUCKET_START, SAMPLE_BUCKET_LIMIT } from '../episode-buckets.js';

export interface EpisodeRecord {
  episodeIndex: number;
  version: number;
  uploadId: string;
  sourceEpisode: string;
  length: number;
  task: string | null;
  success: boolean | null;
  shardKey: string;
  batchStart: number;
  batchCount: number;
  byteOffset: bigint;
  byteLength: bigint;
  checksum: string;
  bucket: number;
}

/** One episode row as ingest writes it (dataset, version and upload are given once for all rows). */
export interface NewEpisodeRow {
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

/** An upload adding this many episodes refreshes the table's planner statistics. */
const ANALYZE_AFTER_ROWS = 1_000;

/**
 * The columns reads filter and order episodes by, whose statistics ANALYZE refreshes. The others
 * (checksums, shard keys, metadata…) are only fetched, or looked up through their own index, and
 * are left to autovacuum: their 64-character checksums made half of ANALYZE's time.
 */
const PLANNED_COLUMNS = Prisma.raw('"dataset_id", "episode_index", "version", "task", "success", "length", "bucket"');

/** Episodes one candidates() query returns at most (its arrays are built in one row). */
const CANDIDATES_PER_QUERY = 100_000;

const episodeSelect = {
  episodeIndex: true,
  version: true,
  uploadId: true,
  sourceEpisode: true,
  length: true,
  task: true,
  success: true,
  shardKey: true,
  batchStart: true,
  batchCount: true,
  byteOffset: true,
  byteLength: true,
  checksum: true,
  bucket: true,
} as const;

/** Which episodes of a dataset version a query selects. */
export interface EpisodeFilter {
  datasetId: string;
  version: number;
  episodes?: EpisodeRanges | undefined;
  /** Case-insensitive substring of the episode's task. */
  task?: string | undefined;
  success?: boolean | undefined;
  minLength?: number | undefined;
  maxLength?: number | undefined;
  uploadId?: string | undefined;
  /** Only the public sample (plus its guaranteed first episode, see `sampleFallbackIndex`). */
  sampleOnly?: { fallbackIndex: number | undefined } | undefined;
  excludeHeldOut?: boolean | undefined;
  /** Only the held-out episodes (for evaluations). */
  heldOutOnly?: boolean | undefined;
}

@Injectable()
export class EpisodesRepository {
  constructor(
    @Inject(PrismaClient) private readonly prisma: PrismaClient,
    private readonly copy: PostgresCopy,
  ) {}

  /**
   * The index, length and bucket of every episode a filter matches, ascending, as three arrays: what
   * a slice chooses from. One aggregate per page instead of an object per row — a 100,000-episode
   * dataset is 100,000 rows, and building a Prisma object for each took most of a slice's creation.
   * Supports the filters of a slice request (not `sampleOnly`, `excludeHeldOut`, `heldOutOnly`).
   */
  async candidates(filter: EpisodeFilter): Promise<{ indices: number[]; lengths: number[]; buckets: number[] }> {
    // It mirrors toWhere() for a slice's filters only: one it does not translate must not be dropped silently.
    if (filter.sampleOnly || filter.excludeHeldOut || filter.heldOutOnly)
      throw new Error("candidates() takes a slice request's filters only (not sampleOnly, excludeHeldOut, heldOutOnly)");
    const conditions: Prisma.Sql[] = [Prisma.sql`"dataset_id" = ${filter.datasetId}`, Prisma.sql`"version" <= ${filter.version}`];
    if (filter.episodes)
      conditions.push(
        Prisma.sql`(${Prisma.join(
          filter.episodes.map(([start, end]) => Prisma.sql`("episode_index" >= ${start} AND "episode_index" <= ${end})`),
          ' OR ',
        )})`,
      );
    if (filter.task !== undefined)
      conditions.push(Prisma.sql`"task" ILIKE ${`%${filter.task.replace(/[\\%_]/g, (character) => `\\${character}`)}%`}`);
    if (filter.success !== undefined) conditions.push(Prisma.sql`"success" = ${filter.success}`);
    if (filter.minLength !== undefined) conditions.push(Prisma.sql`"length" >= ${filter.minLength}`);
    if (filter.maxLength !== undefined) conditions.push(Prisma.sql`"length" <= ${filter.maxLength}`);
    if (filter.uploadId !== undefined) conditions.push(Prisma.sql`"upload_id" = ${filter.uploadId}`);
    const result = { indices: [] as number[], lengths: [] as number[], buckets: [] as number[] };
    for (let after = -1; ;) {
      const [page] = await this.prisma.$queryRaw<Array<{ indices: number[] | null; lengths: number[] | null; buckets: number[] | null }>>`
        SELECT array_agg("episode_index") AS indices, array_agg("length") AS lengths, array_agg("bucket"::int) AS buckets
        FROM (
          SELECT "episode_index", "length", "bucket" FROM "episodes"
          WHERE ${Prisma.join(conditions, ' AND ')} AND "episode_index" > ${after}
          ORDER BY "episode_index" LIMIT ${CANDIDATES_PER_QUERY}
        ) AS page`;
      const indices = page?.indices ?? [];
      for (let position = 0; position < indices.length; position++) {
        result.indices.push(indices[position]!);
        result.lengths.push(page!.lengths![position]!);
        result.buckets.push(page!.buckets![position]!);
      }
      if (indices.length < CANDIDATES_PER_QUERY) return result;
      after = indices[indices.length - 1]!;
    }
  }

  list(filter: EpisodeFilter & { afterIndex: number | undefined; take: number }): Promise<EpisodeRecord[]> {
    return this.prisma.episode.findMany({
      where: {
        AND: [toWhere(filter), filter.afterIndex !== undefined ? { episodeIndex: { gt: filter.afterIndex } } : {}],
      },
      orderBy: { episodeIndex: 'asc' },
      take: filter.take,
      select: episodeSelect,
    });
  }

  /** How many episodes a filter selects. */
  async count(filter: EpisodeFilter): Promise<number> {
    return this.prisma.episode.count({ where: toWhere(filter) });
  }

  /**
   * The episodes with these indices (ascending), up to a few thousand at a time. Rows of a version
   * not yet published are among them: callers ask for indices of a published version, or check.
   */
  findByIndices(datasetId: string, indices: number[]): Promise<EpisodeRecord[]> {
    return this.prisma.episode.findMany({
      where: { datasetId, episodeIndex: { in: indices } },
      orderBy: { episodeIndex: 'asc' },
      select: episodeSelect,
    });
  }

  /**
   * The episode that is public in a `sample` dataset even when no bucket falls in the sample: the
   * lowest index that is not held out. Indices only grow, so it does not move as versions are added.
   * (An unpublished row may be it for a while; every caller also filters by version, so it shows nowhere.)
   */
  async sampleFallbackIndex(datasetId: string): Promise<number | undefined> {
    const first = await this.prisma.episode.findFirst({
      where: { datasetId, bucket: { lt: HELD_OUT_BUCKET_START } },
      orderBy: { episodeIndex: 'asc' },
      select: { episodeIndex: true },
    });
    return first?.episodeIndex;
  }

  /** Where the first record batch of a shard starts (its schema and dictionaries come before it). */
  async firstBatchOffset(shardKey: string): Promise<bigint | undefined> {
    const result = await this.prisma.episode.aggregate({ where: { shardKey }, _min: { byteOffset: true } });
    return result._min.byteOffset ?? undefined;
  }

  /**
   * Writes the episode rows of a version that is not published yet, in one COPY outside any
   * transaction: readers only see episodes up to the dataset's `latestVersion`, so these stay
   * invisible until the short publishing transaction moves it.
   */
  async insertUnpublished(params: { datasetId: string; version: number; uploadId: string; rows: NewEpisodeRow[] }): Promise<void> {
    if (params.rows.length === 0) return;
    const { version } = params;
    const datasetId = copyText(params.datasetId);
    const uploadId = copyText(params.uploadId);
    const lines = function* (rows: NewEpisodeRow[]) {
      for (const row of rows)
        yield `${datasetId}\t${version}\t${uploadId}\t${row.episodeIndex}\t${copyText(row.sourceEpisode)}\t${row.length}\t${copyText(row.task)}\t${copyText(row.success)}\t${copyText(row.shardKey)}\t${row.batchStart}\t${row.batchCount}\t${row.byteOffset}\t${row.byteLength}\t${copyText(row.checksum)}\t${copyText(row.metadata === null ? null : JSON.stringify(row.metadata))}\t${row.bucket}\n`;
    };
    await this.copy.copyIn(
      `COPY "episodes" ("dataset_id", "version", "upload_id", "episode_index", "source_episode", "length", "task", "success",
        "shard_key", "batch_start", "batch_count", "byte_offset", "byte_length", "checksum", "metadata", "bucket") FROM STDIN`,
      lines(params.rows),
    );
  }

  /**
   * Fresh planner statistics before `newRows` rows become visible: until autovacuum gets to it, a
   * table that just grew by thousands of rows is planned as the small one it was (a sort of every
   * episode of the dataset for a 50-row page, instead of walking the primary key). ANALYZE samples a
   * fixed number of rows, so its cost does not grow with the table.
   */
  async analyzeAfterInsert(newRows: number): Promise<void> {
    if (this.analyzeDue(newRows)) await this.analyze();
  }

  /** Whether `newRows` new rows call for fresh planner statistics (see analyzeAfterInsert). */
  analyzeDue(newRows: number): boolean {
    return newRows >= ANALYZE_AFTER_ROWS;
  }

  async analyze(): Promise<void> {
    await this.prisma.$executeRaw`ANALYZE "episodes" (${PLANNED_COLUMNS})`;
  }

  /**
   * Removes the episode rows of versions that were never published: what an ingest that crashed (or
   * failed) between writing its rows and publishing left behind. Run under the dataset's lock before
   * writing new rows, whose indices would otherwise collide with them.
   */
  async deleteUnpublished(params: { datasetId: string; latestVersion: number }): Promise<void> {
    await this.prisma.episode.deleteMany({ where: { datasetId: params.datasetId, version: { gt: params.latestVersion } } });
  }

  /** Removes the rows an upload wrote that were not published (a failed upload leaves nothing behind). */
  async deleteUnpublishedOf(uploadId: string): Promise<void> {
    await this.prisma.$executeRaw`
      DELETE FROM "episodes" AS e USING "datasets" AS d
      WHERE e."upload_id" = ${uploadId} AND d."id" = e."dataset_id" AND e."version" > d."latest_version"`;
  }
}

function toWhere(filter: EpisodeFilter): Prisma.EpisodeWhereInput {
  const conditions: Prisma.EpisodeWhereInput[] = [{ datasetId: filter.datasetId, version: { lte: filter.version } }];
  if (filter.episodes) conditions.push({ OR: filter.episodes.map(([start, end]) => ({ episodeIndex: { gte: start, lte: end } })) });
  if (filter.task !== undefined) conditions.push({ task: { contains: filter.task, mode: 'insensitive' } });
  if (filter.success !== undefined) conditions.push({ success: filter.success });
  if (filter.minLength !== undefined) conditions.push({ length: { gte: filter.minLength } });
  if (filter.maxLength !== undefined) conditions.push({ length: { lte: filter.maxLength } });
  if (filter.uploadId !== undefined) conditions.push({ uploadId: filter.uploadId });
  if (filter.excludeHeldOut) conditions.push({ bucket: { lt: HELD_OUT_BUCKET_START } });
  if (filter.heldOutOnly) conditions.push({ bucket: { gte: HELD_OUT_BUCKET_START } });
  if (filter.sampleOnly) {
    const fallback = filter.sampleOnly.fallbackIndex;
    conditions.push({
      OR: [{ bucket: { lt: SAMPLE_BUCKET_LIMIT } }, ...(fallback !== undefined ? [{ episodeIndex: fallback }] : [])],
    });
  }
  return { AND: conditions };
}
