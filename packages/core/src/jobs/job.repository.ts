import { Inject, Injectable } from '@nestjs/common';
import { Prisma, PrismaClient } from '../database/prisma.js';

export type JobStateName = 'queued' | 'running' | 'completed' | 'failed';

export interface JobRecord {
  id: string;
  name: string;
  payload: unknown;
  state: JobStateName;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
}

const jobSelect = { id: true, name: true, payload: true, state: true, attempts: true, maxAttempts: true, lastError: true } as const;
const MAX_ERROR_LENGTH = 4000;

/** The `jobs` table: the record of every job's state, attempts and last error. */
@Injectable()
export class JobRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /**
   * Records a job as queued. A new row, or a finished one with the same id (the work is asked for
   * again), becomes queued; a row already queued or running is left alone. Returns the row.
   */
  async upsertQueued(job: {
    id: string;
    name: string;
    payload: unknown;
    maxAttempts: number;
  }): Promise<{ record: JobRecord; isNew: boolean }> {
    const payload = job.payload as Prisma.InputJsonValue;
    const inserted = await this.prisma.job.createMany({
      data: [{ id: job.id, name: job.name, payload, maxAttempts: job.maxAttempts }],
      skipDuplicates: true,
    });
    if (inserted.count === 1) return { record: await this.get(job.id), isNew: true };
    const requeued = await this.prisma.job.updateMany({
      where: { id: job.id, state: { in: ['completed', 'failed'] } },
      data: {
        state: 'queued',
        payload,
        attempts: 0,
        maxAttempts: job.maxAttempts,
        lastError: null,
        startedAt: null,
        finishedAt: null,
        runsStarted: 0,
        runsEnded: 0,
      },
    });
    return { record: await this.get(job.id), isNew: requeued.count === 1 };
  }

  async get(id: string): Promise<JobRecord> {
    return this.prisma.job.findUniqueOrThrow({ where: { id }, select: jobSelect });
  }

  find(id: string): Promise<JobRecord | null> {
    return this.prisma.job.findUnique({ where: { id }, select: jobSelect });
  }

  /**
   * Records a run as begun, durably, before any of its work. Returns how many earlier runs began and
   * never ended: each one is a process that died inside the job.
   */
  async markRunning(id: string, attempt: number): Promise<{ deaths: number }> {
    const job = await this.prisma.job.update({
      where: { id },
      data: { state: 'running', attempts: attempt, startedAt: new Date(), runsStarted: { increment: 1 } },
      select: { runsStarted: true, runsEnded: true },
    });
    return { deaths: job.runsStarted - 1 - job.runsEnded };
  }

  async markCompleted(id: string): Promise<void> {
    await this.prisma.job.update({
      where: { id },
      data: { state: 'completed', lastError: null, finishedAt: new Date(), runsEnded: { increment: 1 } },
      select: { id: true },
    });
  }

  /** The attempt failed and another one will come: back to queued, keeping the error. */
  async markRetrying(id: string, error: string): Promise<void> {
    await this.prisma.job.update({
      where: { id },
      data: { state: 'queued', lastError: error.slice(0, MAX_ERROR_LENGTH), runsEnded: { increment: 1 } },
      select: { id: true },
    });
  }

  async markFailed(id: string, error: string): Promise<void> {
    await this.prisma.job.update({
      where: { id },
      data: { state: 'failed', lastError: error.slice(0, MAX_ERROR_LENGTH), finishedAt: new Date(), runsEnded: { increment: 1 } },
      select: { id: true },
    });
  }

  /** Jobs that should be in a queue: queued, or running (their worker may have died). */
  findUnfinished(afterId: string | undefined, take: number): Promise<JobRecord[]> {
    return this.prisma.job.findMany({
      where: { state: { in: ['queued', 'running'] }, ...(afterId ? { id: { gt: afterId } } : {}) },
      orderBy: { id: 'asc' },
      take,
      select: jobSelect,
    });
  }

  async countByState(): Promise<Record<JobStateName, number>> {
    const groups = await this.prisma.job.groupBy({ by: ['state'], _count: { _all: true } });
    const counts: Record<JobStateName, number> = { queued: 0, running: 0, completed: 0, failed: 0 };
    for (const group of groups) counts[group.state] = group._count._all;
    return counts;
  }
}
