import { Inject, Injectable } from '@nestjs/common';
import type { EvaluationMetrics, EvaluationStatus, EvaluationView } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';

export interface EvaluationRecord {
  id: string;
  policyId: string;
  datasetId: string;
  version: number;
  ownerKeyId: string;
  status: EvaluationStatus;
  metrics: EvaluationMetrics | null;
  timing: EvaluationView['timing'];
  error: EvaluationView['error'];
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

const evaluationSelect = {
  id: true,
  policyId: true,
  datasetId: true,
  version: true,
  ownerKeyId: true,
  status: true,
  metrics: true,
  timing: true,
  error: true,
  createdAt: true,
  startedAt: true,
  finishedAt: true,
} as const;

type EvaluationRow = Prisma.EvaluationGetPayload<{ select: typeof evaluationSelect }>;
// metrics, timing and error are written only by PolicyEvaluationService from computed values.
const toRecord = (row: EvaluationRow): EvaluationRecord => ({
  ...row,
  metrics: row.metrics as unknown as EvaluationMetrics | null,
  timing: row.timing as EvaluationRecord['timing'],
  error: row.error as EvaluationRecord['error'],
});

@Injectable()
export class EvaluationsRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  async create(data: Pick<EvaluationRecord, 'id' | 'policyId' | 'datasetId' | 'version' | 'ownerKeyId'>): Promise<EvaluationRecord> {
    return toRecord(await this.prisma.evaluation.create({ data, select: evaluationSelect }));
  }

  async findById(id: string): Promise<EvaluationRecord | null> {
    const row = await this.prisma.evaluation.findUnique({ where: { id }, select: evaluationSelect });
    return row ? toRecord(row) : null;
  }

  async markRunning(id: string): Promise<void> {
    await this.prisma.evaluation.update({ where: { id }, data: { status: 'running', startedAt: new Date() } });
  }

  async complete(id: string, result: { metrics: EvaluationMetrics; timing: NonNullable<EvaluationRecord['timing']> }): Promise<void> {
    await this.prisma.evaluation.update({
      where: { id },
      data: {
        status: 'completed',
        metrics: result.metrics as unknown as Prisma.InputJsonValue,
        timing: result.timing,
        finishedAt: new Date(),
      },
    });
  }

  async fail(id: string, error: NonNullable<EvaluationRecord['error']>): Promise<void> {
    await this.prisma.evaluation.update({
      where: { id },
      data: { status: 'failed', error: error as unknown as Prisma.InputJsonValue, finishedAt: new Date() },
    });
  }

  /** The datasets a policy has been evaluated on. */
  async datasetIdsOfPolicy(policyId: string): Promise<string[]> {
    const rows = await this.prisma.evaluation.findMany({
      where: { policyId },
      distinct: ['datasetId'],
      orderBy: { datasetId: 'asc' },
      select: { datasetId: true },
    });
    return rows.map((row) => row.datasetId);
  }

  /** A policy's evaluations on the given datasets, in creation (id) order. */
  async listByPolicy(params: {
    policyId: string;
    datasetIds: string[];
    afterId: string | undefined;
    take: number;
  }): Promise<EvaluationRecord[]> {
    const rows = await this.prisma.evaluation.findMany({
      where: {
        policyId: params.policyId,
        datasetId: { in: params.datasetIds },
        ...(params.afterId ? { id: { gt: params.afterId } } : {}),
      },
      orderBy: { id: 'asc' },
      take: params.take,
      select: evaluationSelect,
    });
    return rows.map(toRecord);
  }

  /** Each policy's latest completed evaluation on a dataset, for the policies given by `policyWhere`. */
  async latestCompletedPerPolicy(
    datasetId: string,
    policyWhere: Prisma.PolicyWhereInput,
  ): Promise<Array<EvaluationRecord & { policy: { name: string | null; version: number | null } }>> {
    const rows = await this.prisma.evaluation.findMany({
      where: { datasetId, status: 'completed', policy: { AND: [policyWhere, { status: 'ready' }] } },
      orderBy: [{ policyId: 'asc' }, { finishedAt: 'desc' }],
      distinct: ['policyId'],
      select: { ...evaluationSelect, policy: { select: { name: true, version: true } } },
    });
    return rows.map((row) => ({ ...toRecord(row), policy: row.policy }));
  }
}
