import { Inject, Injectable } from '@nestjs/common';
import { PrismaClient } from '../database/prisma.js';

export interface EpisodeRecord {
  episodeIndex: number;
  version: number;
  uploadId: string;
  sourceId: string;
  length: number;
  task: string | null;
  success: boolean | null;
  shardKey: string;
  batchStart: number;
  batchCount: number;
  byteOffset: bigint;
  byteLength: bigint;
  checksum: string;
}

const episodeSelect = {
  episodeIndex: true,
  version: true,
  uploadId: true,
  sourceId: true,
  length: true,
  task: true,
  success: true,
  shardKey: true,
  batchStart: true,
  batchCount: true,
  byteOffset: true,
  byteLength: true,
  checksum: true,
} as const;

@Injectable()
export class EpisodesRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /** Episodes of a dataset version (every episode added by that version or an earlier one), by index. */
  list(params: { datasetId: string; version: number; afterIndex: number | undefined; take: number }): Promise<EpisodeRecord[]> {
    return this.prisma.episode.findMany({
      where: {
        datasetId: params.datasetId,
        version: { lte: params.version },
        ...(params.afterIndex !== undefined ? { episodeIndex: { gt: params.afterIndex } } : {}),
      },
      orderBy: { episodeIndex: 'asc' },
      take: params.take,
      select: episodeSelect,
    });
  }
}
