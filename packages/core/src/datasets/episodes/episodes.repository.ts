import { Inject, Injectable } from '@nestjs/common';
import type { EpisodeRanges } from '@kura/schema';
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
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /** Episodes a filter selects (every episode added by that version or an earlier one), by index. */
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
