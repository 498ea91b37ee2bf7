import { Inject, Injectable } from '@nestjs/common';
import { PrismaClient } from '../database/prisma.js';

/** Use counted for a key, per kind. */
export interface UsageTotals {
  actCalls: number;
  sessionSteps: number;
  inferenceMs: number;
  bytesServed: number;
}

/** A policy's calls by one key in one minute (`policy_usage_counters`). */
export interface PolicyUsage {
  policyId: string;
  keyId: string;
  bucket: Date;
  actCalls: number;
  sessionSteps: number;
}

/** The `usage_counters` table: metered use per key and minute; and `policy_usage_counters`, the same per policy. */
@Injectable()
export class UsageRepository {
  constructor(@Inject(PrismaClient) private readonly prisma: PrismaClient) {}

  /** Adds use to a key's counter for one minute (created if it is the first of that minute). */
  async add(keyId: string, bucket: Date, amounts: UsageTotals): Promise<void> {
    await this.prisma.$executeRaw`
      INSERT INTO usage_counters (key_id, bucket, act_calls, session_steps, inference_ms, bytes_served)
      VALUES (${keyId}, ${bucket}, ${amounts.actCalls}, ${amounts.sessionSteps}, ${amounts.inferenceMs}, ${BigInt(Math.round(amounts.bytesServed))})
      ON CONFLICT (key_id, bucket) DO UPDATE SET
        act_calls = usage_counters.act_calls + EXCLUDED.act_calls,
        session_steps = usage_counters.session_steps + EXCLUDED.session_steps,
        inference_ms = usage_counters.inference_ms + EXCLUDED.inference_ms,
        bytes_served = usage_counters.bytes_served + EXCLUDED.bytes_served`;
  }

  /** Adds a policy's calls by a key to their minute. */
  async addPolicy(usage: PolicyUsage): Promise<void> {
    await this.prisma.$executeRaw`
      INSERT INTO policy_usage_counters (policy_id, key_id, bucket, act_calls, session_steps)
      VALUES (${usage.policyId}, ${usage.keyId}, ${usage.bucket}, ${usage.actCalls}, ${usage.sessionSteps})
      ON CONFLICT (policy_id, key_id, bucket) DO UPDATE SET
        act_calls = policy_usage_counters.act_calls + EXCLUDED.act_calls,
        session_steps = policy_usage_counters.session_steps + EXCLUDED.session_steps`;
  }

  /** The session steps stored for a key from `since` on. */
  async sessionStepsSince(keyId: string, since: Date): Promise<number> {
    const stored = await this.prisma.usageCounter.aggregate({
      where: { keyId, bucket: { gte: since } },
      _sum: { sessionSteps: true },
    });
    return stored._sum.sessionSteps ?? 0;
  }

  /** Stored use per key (one key, or every key) in minutes from `from` to `to`, by key id. */
  async totalsByKey(params: { from: Date; to: Date; keyId: string | undefined }): Promise<Array<UsageTotals & { keyId: string }>> {
    const rows = await this.prisma.usageCounter.groupBy({
      by: ['keyId'],
      where: { bucket: { gte: params.from, lte: params.to }, ...(params.keyId ? { keyId: params.keyId } : {}) },
      _sum: { actCalls: true, sessionSteps: true, inferenceMs: true, bytesServed: true },
      orderBy: { keyId: 'asc' },
    });
    return rows.map((row) => ({
      keyId: row.keyId,
      actCalls: row._sum.actCalls ?? 0,
      sessionSteps: row._sum.sessionSteps ?? 0,
      inferenceMs: row._sum.inferenceMs ?? 0,
      bytesServed: Number(row._sum.bytesServed ?? 0n),
    }));
  }
}
