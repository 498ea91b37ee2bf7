import { Inject, Injectable } from '@nestjs/common';
import type { TrainerManifest, TrainerStatus, TrainingProblem } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';

export interface TrainerRecord {
  id: string;
  name: string | null;
  ownerKeyId: string;
  status: TrainerStatus;
  manifest: TrainerManifest | null;
  errors: TrainingProblem[];
  bundleKey: string;
  bytes: bigint;
  sha256: string;
  createdAt: Date;
}

const trainerSelect = {
  id: true,
  name: true,
  ownerKeyId: true,
  status: true,
  manifest: true,
  errors: true,
  bundleKey: true,
  bytes: true,
  sha256: true,
  createdAt: true,
} as const;

type TrainerRow = Prisma.TrainerGetPayload<{ select: typeof trainerSelect }>;
// manifest and errors are written only from validated values (TrainerValidationService).
const toRecord = (row: TrainerRow): TrainerRecord => ({
  ...row,
  manifest: row.manifest as TrainerManifest | null,
  errors: row.errors as unknown as TrainingProblem[],
});

@Injectable()
export class TrainersRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  async create(data: Pick<TrainerRecord, 'id' | 'ownerKeyId' | 'bundleKey' | 'bytes' | 'sha256'>): Promise<TrainerRecord> {
    return toRecord(await this.prisma.trainer.create({ data, select: trainerSelect }));
  }

  async findById(id: string): Promise<TrainerRecord | null> {
    const row = await this.prisma.trainer.findUnique({ where: { id }, select: trainerSelect });
    return row ? toRecord(row) : null;
  }

  /** Trainers of one owner (all of them for admins: `ownerKeyId` undefined), by id. */
  async list(params: { ownerKeyId: string | undefined; afterId: string | undefined; take: number }): Promise<TrainerRecord[]> {
    const rows = await this.prisma.trainer.findMany({
      where: {
        ...(params.ownerKeyId ? { ownerKeyId: params.ownerKeyId } : {}),
        ...(params.afterId ? { id: { gt: params.afterId } } : {}),
      },
      orderBy: { id: 'asc' },
      take: params.take,
      select: trainerSelect,
    });
    return rows.map(toRecord);
  }

  /** Records validation's outcome if the trainer is still `validating` (the first outcome stands). */
  async finishValidation(
    id: string,
    result: { status: 'ready' | 'rejected'; manifest: TrainerManifest | null; errors: TrainingProblem[] },
  ): Promise<boolean> {
    const { count } = await this.prisma.trainer.updateMany({
      where: { id, status: 'validating' },
      data: {
        status: result.status,
        name: result.manifest?.name ?? null,
        manifest: result.manifest === null ? Prisma.DbNull : (result.manifest as Prisma.InputJsonValue),
        errors: result.errors as unknown as Prisma.InputJsonValue,
      },
    });
    return count === 1;
  }
}
