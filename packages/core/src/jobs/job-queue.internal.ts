// Helpers shared by the JobQueue adapters; not exported from the package.
import { UnrecoverableJobError } from './job-queue.js';

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
