import { describe, expect, it } from '@jest/globals';
import { fromBullmqJobId, toBullmqJobId } from './bullmq-job-queue.js';
import { retryDelayMs } from './job-queue.js';

describe('retryDelayMs', () => {
  const baseMs = 100;

  it.each([1, 2, 3, 4, 5])('keeps retry %i between half of base·2^(n−1) and all of it', (attempt) => {
    const ceiling = baseMs * 2 ** (attempt - 1);
    expect(retryDelayMs({ attempt, baseMs, random: () => 0 })).toBe(ceiling / 2);
    expect(retryDelayMs({ attempt, baseMs, random: () => 0.999999 })).toBe(ceiling - 1);
    const delay = retryDelayMs({ attempt, baseMs });
    expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
    expect(delay).toBeLessThan(ceiling);
  });

  it('spreads retries of the same attempt over the upper half', () => {
    expect(retryDelayMs({ attempt: 3, baseMs, random: () => 0.5 })).toBe(300);
  });
});

describe('BullMQ job ids', () => {
  // BullMQ rejects ids with ':' and integer ids; the mapping must avoid both and be reversible.
  const ids = ['blobs.delete:datasets/ds_1/a:b.arrow', '42', '0', '-7', '0:x', ':', '%3A', '%25', '%i42', '%', 'plain'];

  it.each(ids)('maps %p to an id BullMQ accepts and back', (id) => {
    const bullmqId = toBullmqJobId(id);
    expect(bullmqId).not.toContain(':');
    expect(`${Number.parseInt(bullmqId, 10)}`).not.toBe(bullmqId);
    expect(fromBullmqJobId(bullmqId)).toBe(id);
  });

  it('maps different ids to different BullMQ ids', () => {
    expect(new Set(ids.map(toBullmqJobId)).size).toBe(ids.length);
  });
});
