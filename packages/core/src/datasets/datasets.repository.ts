import { Inject, Injectable } from '@nestjs/common';
import type { DatasetAccess, FeatureSpec } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';
import type { DatasetAccessRecord } from './dataset-access-cache.js';

export interface DatasetRecord {
  id: string;
  name: string;
  robotId: string;
  access: DatasetAccess;
  license: string | null;
  description: string | null;
  features: FeatureSpec | null;
  ownerKeyId: string;
  latestVersion: number;
  episodeCount: number;
  stepCount: bigint;
  createdAt: Date;
}

const datasetSelect = {
  id: true,
  name: true,
  robotId: true,
  access: true,
  license: true,
  description: true,
  features: true,
  ownerKeyId: true,
  latestVersion: true,
  episodeCount: true,
  stepCount: true,
  createdAt: true,
} as const;

type DatasetRow = Prisma.DatasetGetPayload<{ select: typeof datasetSelect }>;
// The features column is written only from a validated FeatureSpec.
const toRecord = (row: DatasetRow): DatasetRecord => ({ ...row, features: row.features as FeatureSpec | null });

/** A dataset as a new version of it starts from (see DatasetsRepository.findForNewVersion). */
export interface DatasetForNewVersion {
  id: string;
  features: FeatureSpec | null;
  latestVersion: number;
  episodeCount: number;
  stepCount: bigint;
  robot: { id: string; robotType: string; actionSpace: string; controlFrequencyHz: number };
}

/** Which datasets a caller may list: everything, the open ones, or the open ones plus its own and those granted to it. */
export type DatasetVisibility = { kind: 'all' } | { kind: 'open' } | { kind: 'open-owned-or-granted'; keyId: string };

@Injectable()
export class DatasetsRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /** Inserts a dataset; returns 'name-taken' instead of throwing on a duplicate name. */
  async create(
    data: Omit<DatasetRecord, 'createdAt' | 'latestVersion' | 'episodeCount' | 'stepCount'>,
  ): Promise<DatasetRecord | 'name-taken'> {
    try {
      const row = await this.prisma.dataset.create({
        data: { ...data, features: data.features === null ? Prisma.DbNull : (data.features as Prisma.InputJsonValue) },
        select: datasetSelect,
      });
      return toRecord(row);
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return 'name-taken';
      throw error;
    }
  }

  async findById(id: string): Promise<DatasetRecord | null> {
    const row = await this.prisma.dataset.findUnique({ where: { id }, select: datasetSelect });
    return row ? toRecord(row) : null;
  }

  /** What decides who may read the dataset (DatasetReachService.readLevel). */
  async findAccess(id: string): Promise<DatasetAccessRecord | null> {
    return this.prisma.dataset.findUnique({ where: { id }, select: { id: true, access: true, ownerKeyId: true } });
  }

  /** What a new version builds on: the dataset's features, latest version and totals, and its robot's embodiment. Throws if the dataset does not exist. */
  async findForNewVersion(id: string): Promise<DatasetForNewVersion> {
    const row = await this.prisma.dataset.findUniqueOrThrow({
      where: { id },
      select: {
        id: true,
        features: true,
        latestVersion: true,
        episodeCount: true,
        stepCount: true,
        robot: { select: { controlFrequencyHz: true, robotType: true, actionSpace: true, id: true } },
      },
    });
    return { ...row, features: row.features as FeatureSpec | null };
  }

  async list(params: {
    afterId: string | undefined;
    take: number;
    visibility: DatasetVisibility;
    robotId?: string;
  }): Promise<DatasetRecord[]> {
    const open: Prisma.DatasetWhereInput = { access: { in: ['public', 'sample'] } };
    const visible: Prisma.DatasetWhereInput =
      params.visibility.kind === 'all'
        ? {}
        : params.visibility.kind === 'open'
          ? open
          : { OR: [open, { ownerKeyId: params.visibility.keyId }, { grants: { some: { keyId: params.visibility.keyId } } }] };
    const rows = await this.prisma.dataset.findMany({
      where: { AND: [visible, params.afterId ? { id: { gt: params.afterId } } : {}, params.robotId ? { robotId: params.robotId } : {}] },
      orderBy: { id: 'asc' },
      take: params.take,
      select: datasetSelect,
    });
    return rows.map(toRecord);
  }
}
