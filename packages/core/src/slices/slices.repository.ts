import { Inject, Injectable } from '@nestjs/common';
import type { SliceSteps } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';
import type { SliceColumn } from './slice-columns.js';

export interface SliceSourceRecord {
  position: number;
  datasetId: string;
  version: number;
  weight: number;
  /** Chosen episode indices as ranges text ("0-9,12"). */
  episodes: string;
  episodeCount: number;
  stepCount: bigint;
  sampleOnly: boolean;
  includesHeldOut: boolean;
}

export interface SliceRecord {
  id: string;
  ownerKeyId: string | null;
  columns: SliceColumn[];
  steps: SliceSteps | null;
  request: unknown;
  episodeCount: number;
  stepCount: bigint;
  withheldHeldOut: number;
  withheldGrant: number;
  createdAt: Date;
  sources: SliceSourceRecord[];
}

const sliceSelect = {
  id: true,
  ownerKeyId: true,
  columns: true,
  steps: true,
  request: true,
  episodeCount: true,
  stepCount: true,
  withheldHeldOut: true,
  withheldGrant: true,
  createdAt: true,
  sources: {
    orderBy: { position: 'asc' },
    select: {
      position: true,
      datasetId: true,
      version: true,
      weight: true,
      episodes: true,
      episodeCount: true,
      stepCount: true,
      sampleOnly: true,
      includesHeldOut: true,
    },
  },
} as const;

type SliceRow = Prisma.SliceGetPayload<{ select: typeof sliceSelect }>;
// columns and steps are written only from validated values (SlicesService.create).
const toRecord = (row: SliceRow): SliceRecord => ({
  ...row,
  columns: row.columns as unknown as SliceColumn[],
  steps: row.steps as SliceSteps | null,
});

@Injectable()
export class SlicesRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  async create(slice: Omit<SliceRecord, 'createdAt'>): Promise<SliceRecord> {
    const row = await this.prisma.slice.create({
      data: {
        id: slice.id,
        ownerKeyId: slice.ownerKeyId,
        columns: slice.columns as unknown as Prisma.InputJsonValue,
        steps: slice.steps === null ? Prisma.DbNull : (slice.steps as unknown as Prisma.InputJsonValue),
        request: slice.request as Prisma.InputJsonValue,
        episodeCount: slice.episodeCount,
        stepCount: slice.stepCount,
        withheldHeldOut: slice.withheldHeldOut,
        withheldGrant: slice.withheldGrant,
        sources: { create: slice.sources },
      },
      select: sliceSelect,
    });
    return toRecord(row);
  }

  async findById(id: string): Promise<SliceRecord | null> {
    const row = await this.prisma.slice.findUnique({ where: { id }, select: sliceSelect });
    return row ? toRecord(row) : null;
  }
}
