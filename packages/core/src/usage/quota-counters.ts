import { Redis } from 'ioredis';

/**
 * Fixed-window counters for quotas. A counter is named per key, quota and window (the name carries
 * the window's start), and lives until its window ends. One adapter per deployment: in memory for a
 * single api process (embedded mode), Redis when several api processes share the limits.
 */
export interface QuotaCounters {
  /** Adds one unless the counter already holds `limit`; says whether it did. */
  take(name: string, windowEndMs: number, limit: number): Promise<boolean>;
  /** Takes one back (a call that another quota refused after this one counted it). */
  giveBack(name: string): Promise<void>;
  /** Sets a counter this process has not seen to what was already used (after a restart); never lowers one. */
  seed(name: string, windowEndMs: number, used: number): Promise<void>;
  close(): Promise<void>;
}

export class MemoryQuotaCounters implements QuotaCounters {
  private readonly counters = new Map<string, { count: number; windowEndMs: number }>();
  private nextSweepMs = 0;

  async take(name: string, windowEndMs: number, limit: number): Promise<boolean> {
    this.sweep();
    const counter = this.counters.get(name) ?? { count: 0, windowEndMs };
    if (counter.count >= limit) return false;
    counter.count++;
    this.counters.set(name, counter);
    return true;
  }

  async giveBack(name: string): Promise<void> {
    const counter = this.counters.get(name);
    if (counter && counter.count > 0) counter.count--;
  }

  async seed(name: string, windowEndMs: number, used: number): Promise<void> {
    const counter = this.counters.get(name);
    if (!counter) this.counters.set(name, { count: used, windowEndMs });
    else counter.count = Math.max(counter.count, used);
  }

  async close(): Promise<void> {
    this.counters.clear();
  }

  /** Ended windows are dropped once a minute, so memory follows the active keys, not the history. */
  private sweep(): void {
    const now = Date.now();
    if (now < this.nextSweepMs) return;
    this.nextSweepMs = now + 60_000;
    for (const [name, counter] of this.counters) if (counter.windowEndMs <= now) this.counters.delete(name);
  }
}

// Check and add in one step, so two api processes cannot both take the last unit.
const TAKE_SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1`;
const GIVE_BACK_SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then redis.call('DECR', KEYS[1]) end
return 0`;
const SEED_SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > used then redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2]) end
return 0`;

export class RedisQuotaCounters implements QuotaCounters {
  private readonly redis: Redis;

  constructor(params: { redisUrl: string; prefix: string }) {
    // Fail within a second instead of queueing while Redis is away: the caller decides what a failed check means.
    this.redis = new Redis(params.redisUrl, { keyPrefix: `${params.prefix}:quota:`, maxRetriesPerRequest: 1, commandTimeout: 1000 });
    this.redis.on('error', () => undefined);
  }

  async take(name: string, windowEndMs: number, limit: number): Promise<boolean> {
    // Kept a minute past the window so clocks that disagree slightly still see the same counter.
    return (await this.redis.eval(TAKE_SCRIPT, 1, name, limit, windowEndMs + 60_000)) === 1;
  }

  async giveBack(name: string): Promise<void> {
    await this.redis.eval(GIVE_BACK_SCRIPT, 1, name);
  }

  async seed(name: string, windowEndMs: number, used: number): Promise<void> {
    await this.redis.eval(SEED_SCRIPT, 1, name, used, windowEndMs + 60_000);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
