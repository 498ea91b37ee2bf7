import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Principal } from '../auth/principal.js';
import { LOGGER, QUOTA_COUNTERS } from '../database/database.tokens.js';
import { AppError } from '../errors/app-error.js';
import type { Logger } from '../logging/logger.js';
import type { QuotaCounters } from './quota-counters.js';
import { quotaExceeded } from './usage.errors.js';
import { UsageMeter } from './usage.meter.js';
import { UsageRepository } from './usage.repository.js';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 3600_000;

/** What a call uses: `act` is a policy call through /act; `step` is a recorded session step (also a policy call). */
export type QuotaUse = 'act' | 'step';

/**
 * Enforces the quotas set on keys (`actPerMinute`, `stepsPerDay`) in fixed clock windows (a minute,
 * a UTC day), answering 429 `QUOTA_EXCEEDED` with the seconds until the window ends. Keys without a
 * quota cost nothing here. Daily counters start from the metered use of the day (Postgres) the first
 * time this process sees a key that day, so a restart does not hand out a fresh day.
 */
@Injectable()
export class QuotaService implements OnApplicationShutdown {
  /** The daily counters seeded today (cleared when the day turns). */
  private readonly seeded = new Set<string>();
  private seededDay = 0;

  constructor(
    @Inject(QUOTA_COUNTERS) private readonly counters: QuotaCounters,
    private readonly usageRows: UsageRepository,
    private readonly meter: UsageMeter,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.counters.close();
  }

  /** Counts one use against the key's quotas, or throws 429 without counting it. */
  async charge(principal: Principal, use: QuotaUse): Promise<void> {
    if (principal.kind !== 'key' || !principal.quota) return;
    const { actPerMinute, stepsPerDay } = principal.quota;
    const now = Date.now();
    const taken: string[] = [];
    try {
      if (use === 'step' && stepsPerDay != null) {
        const dayStart = Math.floor(now / DAY_MS) * DAY_MS;
        const name = `${principal.keyId}:steps:${dayStart}`;
        await this.seedDay(name, principal.keyId, dayStart);
        if (!(await this.counters.take(name, dayStart + DAY_MS, stepsPerDay)))
          throw quotaExceeded('stepsPerDay', stepsPerDay, dayStart + DAY_MS - now);
        taken.push(name);
      }
      if (actPerMinute != null) {
        const minuteStart = Math.floor(now / MINUTE_MS) * MINUTE_MS;
        const name = `${principal.keyId}:act:${minuteStart}`;
        if (!(await this.counters.take(name, minuteStart + MINUTE_MS, actPerMinute)))
          throw quotaExceeded('actPerMinute', actPerMinute, minuteStart + MINUTE_MS - now);
        taken.push(name);
      }
    } catch (error) {
      if (error instanceof AppError) {
        // The call is refused: what the other quota counted for it goes back.
        await Promise.all(taken.map((name) => this.counters.giveBack(name))).catch(() => undefined);
        throw error;
      }
      // The counters are unreachable (Redis away): a robot mid-task should not stop for metering, so the call goes on.
      this.logger.warn({ err: error, keyId: principal.keyId }, 'quota check failed; the call is let through');
    }
  }

  private async seedDay(name: string, keyId: string, dayStart: number): Promise<void> {
    if (dayStart !== this.seededDay) {
      this.seeded.clear();
      this.seededDay = dayStart;
    }
    if (this.seeded.has(name)) return;
    const since = new Date(dayStart);
    const used = (await this.usageRows.sessionStepsSince(keyId, since)) + this.meter.pendingSince(keyId, since).sessionSteps;
    await this.counters.seed(name, dayStart + DAY_MS, used);
    this.seeded.add(name);
  }
}
