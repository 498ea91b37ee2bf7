import { Inject, Injectable } from '@nestjs/common';
import { Prisma, PrismaClient } from '../database/prisma.js';

export type SessionStatus = 'open' | 'ended' | 'truncated';

export interface SessionRecord {
  id: string;
  policyId: string;
  datasetId: string;
  ownerKeyId: string;
  task: string | null;
  status: SessionStatus;
  stepCount: number;
  success: boolean | null;
  uploadId: string | null;
  createdAt: Date;
  lastStepAt: Date;
  endedAt: Date | null;
}

export interface SessionStepRecord {
  stepIndex: number;
  observation: Record<string, unknown>;
  action: number[];
  reward: number | null;
  timestamp: number;
}

const sessionSelect = {
  id: true,
  policyId: true,
  datasetId: true,
  ownerKeyId: true,
  task: true,
  status: true,
  stepCount: true,
  success: true,
  uploadId: true,
  createdAt: true,
  lastStepAt: true,
  endedAt: true,
} as const;

@Injectable()
export class SessionsRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  create(data: Pick<SessionRecord, 'id' | 'policyId' | 'datasetId' | 'ownerKeyId' | 'task'>): Promise<SessionRecord> {
    return this.prisma.session.create({ data, select: sessionSelect });
  }

  findById(id: string): Promise<SessionRecord | null> {
    return this.prisma.session.findUnique({ where: { id }, select: sessionSelect });
  }

  /**
   * Records a step as the session's next one, in one transaction: the step row and the count. Returns
   * 'conflict' when another step took the index first (two writers on one session).
   */
  async appendStep(sessionId: string, step: SessionStepRecord): Promise<'ok' | 'conflict'> {
    try {
      await this.prisma.$transaction([
        this.prisma.sessionStep.create({
          data: {
            sessionId,
            stepIndex: step.stepIndex,
            observation: step.observation as Prisma.InputJsonValue,
            action: step.action,
            reward: step.reward,
            timestamp: step.timestamp,
          },
        }),
        this.prisma.session.update({ where: { id: sessionId }, data: { stepCount: step.stepIndex + 1, lastStepAt: new Date() } }),
      ]);
      return 'ok';
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return 'conflict';
      throw error;
    }
  }

  async lastStep(sessionId: string): Promise<{ stepIndex: number; timestamp: number } | null> {
    return this.prisma.sessionStep.findFirst({
      where: { sessionId },
      orderBy: { stepIndex: 'desc' },
      select: { stepIndex: true, timestamp: true },
    });
  }

  /** The steps in order, a page at a time (for turning a session into an upload). */
  async steps(sessionId: string, afterIndex: number, take: number): Promise<SessionStepRecord[]> {
    const rows = await this.prisma.sessionStep.findMany({
      where: { sessionId, stepIndex: { gt: afterIndex } },
      orderBy: { stepIndex: 'asc' },
      take,
      select: { stepIndex: true, observation: true, action: true, reward: true, timestamp: true },
    });
    // Written only from checked observations and actions (SessionsService.step).
    return rows.map((row) => ({ ...row, observation: row.observation as Record<string, unknown>, action: row.action as number[] }));
  }

  /** Marks the session ended (or truncated) unless it already is; returns whether this call ended it. */
  async end(id: string, status: 'ended' | 'truncated', success: boolean | null): Promise<boolean> {
    const { count } = await this.prisma.session.updateMany({
      where: { id, status: 'open' },
      data: { status, success, endedAt: new Date() },
    });
    return count > 0;
  }

  async setTask(id: string, task: string): Promise<void> {
    await this.prisma.session.updateMany({ where: { id, task: null }, data: { task } });
  }

  async setUpload(id: string, uploadId: string): Promise<void> {
    await this.prisma.session.update({ where: { id }, data: { uploadId } });
  }

  /** Open sessions without a step since `before`. */
  idleSince(before: Date): Promise<Array<{ id: string }>> {
    return this.prisma.session.findMany({ where: { status: 'open', lastStepAt: { lt: before } }, select: { id: true }, take: 100 });
  }

  /** Ended sessions whose upload was not made yet (a crash between ending and uploading). */
  endedWithoutUpload(): Promise<Array<{ id: string }>> {
    return this.prisma.session.findMany({
      where: { status: { in: ['ended', 'truncated'] }, uploadId: null, stepCount: { gt: 0 } },
      select: { id: true },
      take: 100,
    });
  }
}
