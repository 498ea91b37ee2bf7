import { afterAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { MemoryQuotaCounters, RedisQuotaCounters, type QuotaCounters } from './quota-counters.js';

// One contract, both adapters: the Redis one against the real Redis the suite runs with.
const adapters: Array<[string, () => QuotaCounters]> = [
  ['memory', () => new MemoryQuotaCounters()],
  ['redis', () => new RedisQuotaCounters({ redisUrl: process.env.KURA_TEST_REDIS_URL!, prefix: `kura-test-${randomUUID()}` })],
];

describe.each(adapters)('QuotaCounters (%s)', (_name, create) => {
  const counters = create();
  afterAll(async () => {
    await counters.close();
  });
  const windowEnd = () => Date.now() + 60_000;

  it('takes up to the limit, then refuses, per counter', async () => {
    const taken = [];
    for (let call = 0; call < 5; call++) taken.push(await counters.take('a', windowEnd(), 3));
    expect(taken).toEqual([true, true, true, false, false]);
    expect(await counters.take('b', windowEnd(), 3)).toBe(true);
    expect(await counters.take('zero', windowEnd(), 0)).toBe(false);
  });

  it('gives back one unit, never below zero', async () => {
    for (let call = 0; call < 2; call++) await counters.take('c', windowEnd(), 2);
    expect(await counters.take('c', windowEnd(), 2)).toBe(false);
    await counters.giveBack('c');
    expect(await counters.take('c', windowEnd(), 2)).toBe(true);
    await counters.giveBack('never-used');
    await counters.giveBack('never-used');
    expect(await counters.take('never-used', windowEnd(), 1)).toBe(true);
    expect(await counters.take('never-used', windowEnd(), 1)).toBe(false);
  });

  it('seeds a counter with earlier use but never lowers one', async () => {
    await counters.seed('d', windowEnd(), 4);
    expect(await counters.take('d', windowEnd(), 5)).toBe(true);
    expect(await counters.take('d', windowEnd(), 5)).toBe(false);
    await counters.seed('d', windowEnd(), 1);
    expect(await counters.take('d', windowEnd(), 6)).toBe(true);
    expect(await counters.take('d', windowEnd(), 6)).toBe(false);
  });

  it('lets concurrent callers take exactly the limit', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => counters.take('e', windowEnd(), 20)));
    expect(results.filter(Boolean)).toHaveLength(20);
  });
});

describe('QuotaCounters shared through Redis', () => {
  it('two processes’ counters (two connections) share one limit', async () => {
    const prefix = `kura-test-${randomUUID()}`;
    const first = new RedisQuotaCounters({ redisUrl: process.env.KURA_TEST_REDIS_URL!, prefix });
    const second = new RedisQuotaCounters({ redisUrl: process.env.KURA_TEST_REDIS_URL!, prefix });
    try {
      const end = Date.now() + 60_000;
      const results = await Promise.all(Array.from({ length: 10 }, (_, call) => (call % 2 ? first : second).take('shared', end, 6)));
      expect(results.filter(Boolean)).toHaveLength(6);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});
