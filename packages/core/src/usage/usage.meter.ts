import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER } from '../database/database.tokens.js';
import type { Logger } from '../logging/logger.js';
import { UsageRepository, type PolicyUsage } from './usage.repository.js';

export interface UsageAmounts {
  actCalls?: number;
  sessionSteps?: number;
  inferenceMs?: number;
  bytesServed?: number;
}

/** How often counted use goes to Postgres: at most this much is lost if the process dies. */
export const USAGE_FLUSH_MS = 5000;

/**
 * Counts use per key and minute in memory and adds it to Postgres in one batch every
 * USAGE_FLUSH_MS (and at shutdown): no database write on the hot path of a call.
 */
@Injectable()
export class UsageMeter implements OnApplicationBootstrap, OnApplicationShutdown {
  private pending = new Map<string, { keyId: string; bucket: Date; amounts: Required<UsageAmounts> }>();
  /** Calls per policy, calling key and minute: the ledger's input (docs/ledger.md). */
  private pendingPolicies = new Map<string, PolicyUsage>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly usageRows: UsageRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.flush().catch((error: unknown) => this.logger.warn({ err: error }, 'usage flush failed'));
    }, USAGE_FLUSH_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch((error: unknown) => this.logger.warn({ err: error }, 'usage flush at shutdown failed'));
  }

  /** Counts use by a key; a policy call (act, session step) also counts for its policy when `policyId` is given. */
  record(keyId: string, amounts: UsageAmounts, policyId?: string): void {
    const bucket = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    this.add(keyId, bucket, amounts);
    if (policyId !== undefined && (amounts.actCalls || amounts.sessionSteps))
      this.addPolicy({ policyId, keyId, bucket, actCalls: amounts.actCalls ?? 0, sessionSteps: amounts.sessionSteps ?? 0 });
  }

  private addPolicy(usage: PolicyUsage): void {
    const id = `${usage.policyId}|${usage.keyId}|${usage.bucket.getTime()}`;
    const entry = this.pendingPolicies.get(id);
    if (!entry) this.pendingPolicies.set(id, { ...usage });
    else {
      entry.actCalls += usage.actCalls;
      entry.sessionSteps += usage.sessionSteps;
    }
  }

  /** What this process counted for a key since a time and has not flushed yet. */
  pendingSince(keyId: string, since: Date): Required<UsageAmounts> {
    const total = { actCalls: 0, sessionSteps: 0, inferenceMs: 0, bytesServed: 0 };
    for (const entry of this.pending.values()) {
      if (entry.keyId !== keyId || entry.bucket < since) continue;
      total.actCalls += entry.amounts.actCalls;
      total.sessionSteps += entry.amounts.sessionSteps;
      total.inferenceMs += entry.amounts.inferenceMs;
      total.bytesServed += entry.amounts.bytesServed;
    }
    return total;
  }

  private add(keyId: string, bucket: Date, amounts: UsageAmounts): void {
    const id = `${keyId}|${bucket.getTime()}`;
    let entry = this.pending.get(id);
    if (!entry) {
      entry = { keyId, bucket, amounts: { actCalls: 0, sessionSteps: 0, inferenceMs: 0, bytesServed: 0 } };
      this.pending.set(id, entry);
    }
    entry.amounts.actCalls += amounts.actCalls ?? 0;
    entry.amounts.sessionSteps += amounts.sessionSteps ?? 0;
    entry.amounts.inferenceMs += amounts.inferenceMs ?? 0;
    entry.amounts.bytesServed += amounts.bytesServed ?? 0;
  }

  /** Adds what was counted since the last flush; on failure the counts are kept for the next one. */
  async flush(): Promise<void> {
    const batch = [...this.pending.values()];
    const policies = [...this.pendingPolicies.values()];
    this.pending = new Map();
    this.pendingPolicies = new Map();
    let written = 0;
    let policiesWritten = 0;
    try {
      for (const { keyId, bucket, amounts } of batch) {
        await this.usageRows.add(keyId, bucket, amounts);
        written++;
      }
      for (const usage of policies) {
        await this.usageRows.addPolicy(usage);
        policiesWritten++;
      }
    } finally {
      // What was not written goes back, under its own minute, for the next flush.
      for (const { keyId, bucket, amounts } of batch.slice(written)) this.add(keyId, bucket, amounts);
      for (const usage of policies.slice(policiesWritten)) this.addPolicy(usage);
    }
  }
}
