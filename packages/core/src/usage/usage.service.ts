import { Inject, Injectable } from '@nestjs/common';
import { isAdmin, requireRole, type Principal } from '../auth/principal.js';
import { PrismaClient } from '../database/prisma.js';
import { UsageMeter } from './usage.meter.js';
import { otherKeysUsageForbidden } from './usage.errors.js';

export interface UsageView {
  keyId: string;
  actCalls: number;
  sessionSteps: number;
  inferenceMs: number;
  bytesServed: number;
}

/** `GET /v1/usage`: metered use per key over a time range (own key; admins any key or all). */
@Injectable()
export class UsageService {
  constructor(
    @Inject(PrismaClient) private readonly prisma: PrismaClient,
    private readonly meter: UsageMeter,
  ) {}

  async usage(
    principal: Principal,
    query: { from?: Date | undefined; to?: Date | undefined; keyId?: string | undefined },
  ): Promise<{ from: string; to: string; items: UsageView[] }> {
    requireRole(principal, ['operator', 'developer', 'user'], 'read usage');
    if (query.keyId && query.keyId !== principal.keyId && !isAdmin(principal)) {
      throw otherKeysUsageForbidden();
    }
    const keyId = isAdmin(principal) ? query.keyId : principal.keyId;
    const to = query.to ?? new Date();
    const from = query.from ?? new Date(to.getTime() - 30 * 24 * 3600 * 1000);
    // This process's unflushed counts belong in the answer.
    await this.meter.flush();
    const rows = await this.prisma.usageCounter.groupBy({
      by: ['keyId'],
      where: { bucket: { gte: new Date(Math.floor(from.getTime() / 60_000) * 60_000), lte: to }, ...(keyId ? { keyId } : {}) },
      _sum: { actCalls: true, sessionSteps: true, inferenceMs: true, bytesServed: true },
      orderBy: { keyId: 'asc' },
    });
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      items: rows.map((row) => ({
        keyId: row.keyId,
        actCalls: row._sum.actCalls ?? 0,
        sessionSteps: row._sum.sessionSteps ?? 0,
        inferenceMs: Math.round((row._sum.inferenceMs ?? 0) * 1000) / 1000,
        bytesServed: Number(row._sum.bytesServed ?? 0n),
      })),
    };
  }
}
