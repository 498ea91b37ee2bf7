// Helpers shared by the JobQueue adapters; not exported from the package.
import { jobQueueNames } from '@kura/schema';
import { DEFAULT_JOB_QUEUE, UnrecoverableJobError } from './job-queue.js';

/** How long close() waits for running jobs when the caller does not say. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

/**
 * Whether a processor's error means "never retry". The name is checked too because the error may
 * come from another copy of this module (a second bundle, a worker thread).
 */
export function isUnrecoverable(error: unknown): boolean {
  if (error instanceof UnrecoverableJobError) return true;
  return typeof error === 'object' && error !== null && 'name' in error && error.name === 'UnrecoverableJobError';
}

/** Rejects what no adapter can queue, with the same message in both. */
export function assertEnqueueable(job: { id: string; maxAttempts: number }): void {
  if (job.id.length === 0) throw new RangeError('a job id must not be empty');
  if (!Number.isInteger(job.maxAttempts) || job.maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be a positive integer, got ${job.maxAttempts} (job ${job.id})`);
  }
}

export function assertConcurrency(concurrency: number): void {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
}

/**
 * The queues an adapter serves: those it is given, or every queue jobs are declared in
 * (@kura/schema jobQueues). `default` is always one of them.
 */
export function queuesToServe(queues: readonly string[] | undefined): string[] {
  const names = [...new Set([DEFAULT_JOB_QUEUE, ...(queues ?? jobQueueNames)])];
  for (const name of names) {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new RangeError(`a queue name is letters, digits, "_" and "-", got "${name}"`);
  }
  return names;
}

/** Throws, with the same message in both adapters, for a queue the adapter does not serve. */
export function assertServedQueue(queue: string, served: readonly string[]): void {
  if (!served.includes(queue)) throw unknownQueueError(queue, served);
}

export function unknownQueueError(queue: string, served: readonly string[]): RangeError {
  return new RangeError(`unknown job queue "${queue}" (the queues served are ${served.join(', ')})`);
}

/** consume()'s `concurrency` as one validated number per queue to consume. */
export function concurrencyByQueue(concurrency: number | Readonly<Record<string, number>>, served: readonly string[]): Map<string, number> {
  const entries: Array<[string, number]> =
    typeof concurrency === 'number' ? served.map((queue) => [queue, concurrency]) : Object.entries(concurrency);
  if (entries.length === 0) throw new RangeError('concurrency must name at least one queue');
  for (const [queue, count] of entries) {
    assertServedQueue(queue, served);
    assertConcurrency(count);
  }
  return new Map(entries);
}
