/** Injection token of the JobQueue. */
export const JOB_QUEUE = Symbol('JOB_QUEUE');

/** The queue a job goes to when its producer names none. */
export const DEFAULT_JOB_QUEUE = 'default';

/** A job as a queue hands it to a consumer. */
export interface QueuedJob {
  /** Deterministic id chosen by the producer; the same id is never queued twice at once. */
  id: string;
  name: string;
  payload: unknown;
  /** 1 for the first run, 2 for the first retry, … */
  attempt: number;
  maxAttempts: number;
}

export type JobProcessor = (job: QueuedJob) => Promise<void>;

/**
 * Carries work to consumers; it is not the record of the work (the `jobs` table is).
 *
 * Adapters: in-process (embedded mode) and BullMQ (services mode). Both pass one contract suite.
 * A processor that throws gets the job retried after an exponential backoff with jitter, up to
 * `maxAttempts` runs; throwing UnrecoverableJobError ends it at once.
 *
 * Jobs wait in named queues, fixed when the adapter is built (`default` among them). Each queue has
 * its own concurrency, so jobs of one queue never wait for slots taken by another's. A job id
 * always goes to the same queue (JobsService derives both from the job's name).
 */
export interface JobQueue {
  readonly kind: 'in-process' | 'bullmq';
  /**
   * Adds a job to `queue` (default `default`) unless one with the same id is waiting, delayed or
   * running (then a no-op). Throws for a queue the adapter was not built with.
   */
  enqueue(job: { id: string; name: string; payload: unknown; maxAttempts: number; queue?: string }): Promise<void>;
  /** Whether a job with this id is waiting, delayed or running, in any queue. */
  has(id: string): Promise<boolean>;
  /**
   * Starts taking jobs. `concurrency`: how many jobs of each queue run at once, either one number
   * for every queue or a number per queue (queues left out are not consumed by this process).
   */
  consume(params: { processor: JobProcessor; concurrency: number | Readonly<Record<string, number>> }): Promise<void>;
  /** Stops taking jobs and waits (up to timeoutMs) for the running ones to finish. */
  close(params?: { timeoutMs?: number }): Promise<void>;
  /** Throws when the queue cannot be used (for /health). */
  ping(): Promise<void>;
}

/** Thrown by a job processor for work that can never succeed (bad payload, deleted target): no retries. */
export class UnrecoverableJobError extends Error {
  override name = 'UnrecoverableJobError';
}

/**
 * The delay before retry number `attempt` (1 = first retry): base·2^(attempt−1), with its upper
 * half randomised so that many failed jobs do not retry in lockstep. BullMQ's `exponential`
 * backoff with `jitter: 0.5` computes the same.
 */
export function retryDelayMs(params: { attempt: number; baseMs: number; random?: () => number }): number {
  const ceiling = params.baseMs * 2 ** (params.attempt - 1);
  const jitter = 0.5;
  return Math.floor((params.random ?? Math.random)() * ceiling * jitter + ceiling * (1 - jitter));
}
