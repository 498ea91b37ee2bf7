import { Inject, Injectable } from '@nestjs/common';
import type { SessionStatus } from '@kura/schema';
import { PrismaClient } from '../database/prisma.js';

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
   * Records steps of several sessions in one statement (one round trip, one commit). A session's
   * count moves on only while it is open and still at the step's index, and the step row is written
   * only when it did. Returns the sessions whose step landed; the others were ended, or another
   * writer took the index. At most one step per session.
   */
  async appendSteps(steps: ReadonlyArray<{ sessionId: string; step: SessionStepRecord }>): Promise<Set<string>> {
    const input = JSON.stringify(
      steps.map(({ sessionId, step }) => ({
        session_id: sessionId,
        step_index: step.stepIndex,
        observation: step.observation,
        action: step.action,
        reward: step.reward,
        timestamp: step.timestamp,
      })),
    );
    const landed = await this.prisma.$queryRaw<Array<{ session_id: string }>>`
      WITH input AS (
        SELECT * FROM jsonb_to_recordset(${input}::jsonb)
          AS x(session_id text, step_index int, observation jsonb, action jsonb, reward float8, "timestamp" float8)
      ), advanced AS (
        UPDATE sessions s SET step_count = s.step_count + 1, last_step_at = now()
        FROM input i
        WHERE s.id = i.session_id AND s.status = 'open' AND s.step_count = i.step_index
        RETURNING s.id
      )
      INSERT INTO session_steps (session_id, step_index, observation, action, reward, "timestamp")
      SELECT i.session_id, i.step_index, i.observation, i.action, i.reward, i."timestamp"
      FROM input i JOIN advanced a ON a.id = i.session_id
      RETURNING session_id`;
    return new Set(landed.map((row) => row.session_id));
  }

  async lastStep(sessionId: string): Promise<{ stepIndex: number; timestamp: number } | null> {
    return this.prisma.sessionStep.findFirst({
      where: { sessionId },
      orderBy: { stepIndex: 'desc' },
      select: { stepIndex: true, timestamp: true },
    });
  }

  /** One recorded step (a step sent again with its index is compared with it). */
  async stepAt(sessionId: string, stepIndex: number): Promise<SessionStepRecord | null> {
    const row = await this.prisma.sessionStep.findUnique({
      where: { sessionId_stepIndex: { sessionId, stepIndex } },
      select: { stepIndex: true, observation: true, action: true, reward: true, timestamp: true },
    });
    // Written only from checked observations and actions (SessionsService.step).
    return row && { ...row, observation: row.observation as Record<string, unknown>, action: row.action as number[] };
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
