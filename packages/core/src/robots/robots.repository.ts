import { Inject, Injectable } from '@nestjs/common';
import type { ActionSpace, BodyModelSummary, Camera } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';

export interface RobotRecord {
  id: string;
  name: string;
  robotType: string;
  controlFrequencyHz: number;
  actionSpace: ActionSpace;
  stateSpace: ActionSpace | null;
  jointNames: string[];
  cameras: Camera[];
  ownerKeyId: string;
  bodyModelKey: string | null;
  bodyModel: BodyModelSummary | null;
  createdAt: Date;
  updatedAt: Date;
}

const robotSelect = {
  id: true,
  name: true,
  robotType: true,
  controlFrequencyHz: true,
  actionSpace: true,
  stateSpace: true,
  jointNames: true,
  cameras: true,
  ownerKeyId: true,
  bodyModelKey: true,
  bodyModel: true,
  createdAt: true,
  updatedAt: true,
} as const;

type RobotRow = Prisma.RobotGetPayload<{ select: typeof robotSelect }>;

// JSON columns are written only by this repository, from validated values.
const toRecord = (row: RobotRow): RobotRecord => ({
  ...row,
  cameras: row.cameras as unknown as Camera[],
  bodyModel: row.bodyModel as unknown as BodyModelSummary | null,
});

@Injectable()
export class RobotsRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  async create(data: Omit<RobotRecord, 'createdAt' | 'updatedAt' | 'bodyModelKey' | 'bodyModel'>): Promise<RobotRecord> {
    return toRecord(await this.prisma.robot.create({ data: { ...data, cameras: data.cameras }, select: robotSelect }));
  }

  async findById(id: string): Promise<RobotRecord | null> {
    const row = await this.prisma.robot.findUnique({ where: { id }, select: robotSelect });
    return row ? toRecord(row) : null;
  }

  /** Robots in id order; `publicOnly` keeps those used by a public or sample dataset. */
  async list(params: { afterId: string | undefined; take: number; publicOnly: boolean }): Promise<RobotRecord[]> {
    const rows = await this.prisma.robot.findMany({
      where: {
        ...(params.afterId ? { id: { gt: params.afterId } } : {}),
        ...(params.publicOnly ? { datasets: { some: { access: { in: ['public', 'sample'] } } } } : {}),
      },
      orderBy: { id: 'asc' },
      take: params.take,
      select: robotSelect,
    });
    return rows.map(toRecord);
  }

  async isUsedByPublicDataset(id: string): Promise<boolean> {
    return (await this.prisma.dataset.count({ where: { robotId: id, access: { in: ['public', 'sample'] } } })) > 0;
  }

  /** Points the robot at a new body model; returns the key of the one it replaced. */
  async setBodyModel(id: string, bodyModelKey: string, bodyModel: BodyModelSummary): Promise<{ previousKey: string | null }> {
    return this.prisma.$transaction(async (transaction) => {
      const [previous] = await transaction.$queryRaw<
        Array<{ body_model_key: string | null }>
      >`SELECT body_model_key FROM robots WHERE id = ${id} FOR UPDATE`;
      await transaction.robot.update({
        where: { id },
        data: { bodyModelKey, bodyModel: bodyModel as unknown as Prisma.InputJsonValue },
        select: { id: true },
      });
      return { previousKey: previous?.body_model_key ?? null };
    });
  }
}
