import { Injectable } from '@nestjs/common';
import type { UsageQuery, UsageView } from '@kura/schema';
import { isAdmin, requireRole, type Principal } from '../auth/principal.js';
import { UsageMeter } from './usage.meter.js';
import { otherKeysUsageForbidden } from './usage.errors.js';
import { UsageRepository } from './usage.repository.js';

/** `GET /v1/usage`: metered use per key over a time range (own key; admins any key or all). */
@Injectable()
export class UsageService {
  constructor(
    private readonly usageRows: UsageRepository,
    private readonly meter: UsageMeter,
  ) {}

  async usage(principal: Principal, query: UsageQuery): Promise<{ from: string; to: string; items: UsageView[] }> {
    requireRole(principal, ['operator', 'developer', 'user'], 'read usage');
    if (query.keyId && query.keyId !== principal.keyId && !isAdmin(principal)) {
      throw otherKeysUsageForbidden();
    }
    const keyId = isAdmin(principal) ? query.keyId : principal.keyId;
    const to = query.to ?? new Date();
    const from = query.from ?? new Date(to.getTime() - 30 * 24 * 3600 * 1000);
    // This process's unflushed counts belong in the answer.
    await this.meter.flush();
    const rows = await this.usageRows.totalsByKey({ from: new Date(Math.floor(from.getTime() / 60_000) * 60_000), to, keyId });
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      items: rows.map((row) => ({
        keyId: row.keyId,
        actCalls: row.actCalls,
        sessionSteps: row.sessionSteps,
        inferenceMs: Math.round(row.inferenceMs * 1000) / 1000,
        bytesServed: row.bytesServed,
      })),
    };
  }
}
