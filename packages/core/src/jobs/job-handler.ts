import type { JobName, JobPayload } from '@kura/schema';

/** Injection token of the list of job handlers a process can run. */
export const JOB_HANDLERS = Symbol('JOB_HANDLERS');

/**
 * Does the work of one kind of job. Handlers must be idempotent: a job may run again after a
 * crash or a lost acknowledgement. Throw UnrecoverableJobError for work that can never succeed.
 */
export interface JobHandler<N extends JobName = JobName> {
  readonly jobName: N;
  handle(payload: JobPayload<N>, context: { jobId: string; attempt: number; maxAttempts: number }): Promise<void>;
  /**
   * Records the coded failure of work whose process died `deaths` times inside it (KURA_JOB_MAX_DEATHS):
   * it is not run again, so one poisonous input cannot take a process down in a loop.
   */
  abandon?(payload: JobPayload<N>, context: { jobId: string; deaths: number }): Promise<void>;
  /**
   * Records the coded failure of work whose last attempt failed (or that can never succeed): the
   * handler itself must not decide an attempt is the last, since an outage is waited out above it.
   */
  gaveUp?(payload: JobPayload<N>, context: { jobId: string; message: string }): Promise<void>;
}
