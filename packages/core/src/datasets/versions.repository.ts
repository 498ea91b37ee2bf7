import { Inject, Injectable } from '@nestjs/common';
import { PrismaClient } from '../database/prisma.js';

export interface DatasetVersionRecord {
  version: number;
  episodeCount: number;
  stepCount: bigint;
  uploadId: string;
  manifestKey: string;
  statsKey: string;
  createdAt: Date;
}

const versionSelect = {
  version: true,
  episodeCount: true,
  stepCount: true,
  uploadId: true,
  manifestKey: true,
  statsKey: true,
  createdAt: true,
} as const;

@Injectable()
export class VersionsRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  list(params: { datasetId: string; afterVersion: number | undefined; take: number }): Promise<DatasetVersionRecord[]> {
    return this.prisma.datasetVersion.findMany({
      where: { datasetId: params.datasetId, ...(params.afterVersion !== undefined ? { version: { gt: params.afterVersion } } : {}) },
      orderBy: { version: 'asc' },
      take: params.take,
      select: versionSelect,
    });
  }

  find(datasetId: string, version: number): Promise<DatasetVersionRecord | null> {
    return this.prisma.datasetVersion.findUnique({ where: { datasetId_version: { datasetId, version } }, select: versionSelect });
  }
}
