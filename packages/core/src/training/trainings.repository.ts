import { Inject, Injectable } from '@nestjs/common';
import type { CreateTrainingRequest, TrainingProblem, TrainingResources, TrainingStatus } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';

/** One pinned source of a run. */
export interface TrainingSourceRecord {
  datasetId: string;
  version: number;
  weight: number;
  /** Episode indices as ranges text ("0-9,12"). */
  episodes: string;
  episodeCount: number;
  stepCount: number;
  beyondAccess: number;
}

export interface TrainingMetricsRecord {
  series: Record<string, Array<[number, number]>>;
  truncated: boolean;
}

export interface TrainingRecord {
  id: string;
  trainerId: string;
  ownerKeyId: string;
  status: TrainingStatus;
  dryRun: boolean;
  request: CreateTrainingRequest;
  sources: TrainingSourceRecord[];
  resources: TrainingResources;
  episodeCount: number;
  stepCount: bigint;
  beyondAccessEpisodes: number;
  metrics: TrainingMetricsRecord;
  logKey: string | null;
  policyId: string | null;
  evaluationIds: string[];
  error: TrainingProblem | null;
  cancelRequested: boolean;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

const FINISHED: TrainingStatus[] = ['succeeded', 'failed', 'cancelled'];
const json = (value: unknown) => value as Prisma.InputJsonValue;
// Every JSON column is written only from validated values by this repository's callers.
const toRecord = (row: Prisma.TrainingGetPayload<object>): TrainingRecord => ({
  ...row,
  request: row.request as unknown as CreateTrainingRequest,
  sources: row.sources as unknown as TrainingSourceRecord[],
  resources: row.resources as unknown as TrainingResources,
  metrics: row.metrics as unknown as TrainingMetricsRecord,
  evaluationIds: row.evaluationIds as unknown as string[],
  error: row.error as unknown as TrainingProblem | null,
});

@Injectable()
export class TrainingsRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  async create(
    data: Pick<
      TrainingRecord,
      | 'id'
      | 'trainerId'
      | 'ownerKeyId'
      | 'dryRun'
      | 'request'
      | 'sources'
      | 'resources'
      | 'episodeCount'
      | 'stepCount'
      | 'beyondAccessEpisodes'
    >,
  ): Promise<TrainingRecord> {
    return toRecord(
      await this.prisma.training.create({
        data: { ...data, request: json(data.request), sources: json(data.sources), resources: json(data.resources) },
      }),
    );
  }

  async findById(id: string): Promise<TrainingRecord | null> {
    const row = await this.prisma.training.findUnique({ where: { id } });
    return row ? toRecord(row) : null;
  }

  async list(params: { ownerKeyId: string | undefined; afterId: string | undefined; take: number }): Promise<TrainingRecord[]> {
    const rows = await this.prisma.training.findMany({
      where: {
        ...(params.ownerKeyId ? { ownerKeyId: params.ownerKeyId } : {}),
        ...(params.afterId ? { id: { gt: params.afterId } } : {}),
      },
      orderBy: { id: 'asc' },
      take: params.take,
    });
    return rows.map(toRecord);
  }

  /**
   * Takes a queued run for this attempt: `claimed`, or `lost` when an earlier attempt had started it
   * (its worker died mid-run: Kura does not run it again, see docs/training.md), or `finished`.
   */
  async claim(id: string): Promise<'claimed' | 'lost' | 'finished'> {
    const { count } = await this.prisma.training.updateMany({
      where: { id, status: 'queued' },
      data: { status: 'preparing', startedAt: new Date() },
    });
    if (count === 1) return 'claimed';
    const row = await this.prisma.training.findUnique({ where: { id }, select: { status: true } });
    return !row || FINISHED.includes(row.status) ? 'finished' : 'lost';
  }

  async markRunning(id: string): Promise<void> {
    await this.prisma.training.updateMany({ where: { id, status: 'preparing' }, data: { status: 'running' } });
  }

  async saveMetrics(id: string, metrics: TrainingMetricsRecord): Promise<void> {
    await this.prisma.training.updateMany({ where: { id, status: { notIn: FINISHED } }, data: { metrics: json(metrics) } });
  }

  async cancelRequested(id: string): Promise<boolean> {
    const row = await this.prisma.training.findUnique({ where: { id }, select: { cancelRequested: true } });
    return row?.cancelRequested ?? true;
  }

  /** Cancels a queued run at once; asks a started one to stop (its worker sees it within a second). */
  async requestCancel(id: string): Promise<TrainingStatus | 'finished'> {
    const queued = await this.prisma.training.updateMany({
      where: { id, status: 'queued' },
      data: { status: 'cancelled', cancelRequested: true, finishedAt: new Date() },
    });
    if (queued.count === 1) return 'cancelled';
    const started = await this.prisma.training.updateMany({
      where: { id, status: { in: ['preparing', 'running'] } },
      data: { cancelRequested: true },
    });
    return started.count === 1 ? 'running' : 'finished';
  }

  /**
   * The run's policy, written with the link to it in one transaction: a policy of a run exists with
   * its lineage or not at all (a worker dying in between leaves neither).
   */
  async registerPolicy(id: string, policy: Prisma.PolicyUncheckedCreateInput): Promise<void> {
    await this.prisma.$transaction([
      this.prisma.policy.create({ data: policy }),
      this.prisma.training.update({ where: { id }, data: { policyId: policy.id } }),
    ]);
  }

  /** Ends an unfinished run; the first ending stands. Returns whether this one was recorded. */
  async finish(
    id: string,
    result: {
      status: 'succeeded' | 'failed' | 'cancelled';
      error?: TrainingProblem | undefined;
      metrics?: TrainingMetricsRecord | undefined;
      logKey?: string | undefined;
      evaluationIds?: string[] | undefined;
    },
  ): Promise<boolean> {
    const { count } = await this.prisma.training.updateMany({
      where: { id, status: { notIn: FINISHED } },
      data: {
        status: result.status,
        finishedAt: new Date(),
        ...(result.error ? { error: json(result.error) } : {}),
        ...(result.metrics ? { metrics: json(result.metrics) } : {}),
        ...(result.logKey ? { logKey: result.logKey } : {}),
        ...(result.evaluationIds ? { evaluationIds: json(result.evaluationIds) } : {}),
      },
    });
    return count === 1;
  }
}
