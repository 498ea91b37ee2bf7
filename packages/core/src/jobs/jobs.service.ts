import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { jobNames, jobPayloadSchemas, jobQueueOf, type JobName, type JobPayload } from '@kura/schema';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG, LOGGER } from '../database/database.tokens.js';
import type { Logger } from '../logging/logger.js';
import { JOB_HANDLERS, type JobHandler } from './job-handler.js';
import { JOB_QUEUE, UnrecoverableJobError, type JobQueue, type QueuedJob } from './job-queue.js';
import { JobRepository } from './job.repository.js';

/**
 * Runs background work so that nothing is lost: each job is first recorded in the `jobs` table,
 * then handed to the queue; the row follows every attempt. At start, rows that should be in the
 * queue but are not are enqueued again.
 */
@Injectable()
export class JobsService implements OnModuleDestroy {
  private readonly handlers = new Map<string, JobHandler>();
  private consuming = false;

  constructor(
    private readonly jobs: JobRepository,
    @Inject(JOB_QUEUE) private readonly queue: JobQueue,
    @Inject(JOB_HANDLERS) handlers: JobHandler[],
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    for (const handler of handlers) this.handlers.set(handler.jobName, handler);
  }

  /**
   * Asks for a job to run. `id` must name the work deterministically (e.g. `blobs.delete:<key>`),
   * so asking twice while it is pending runs it once.
   */
  async enqueue<N extends JobName>(name: N, payload: JobPayload<N>, options: { id: string; maxAttempts?: number }): Promise<void> {
    const parsed = jobPayloadSchemas[name].parse(payload);
    const maxAttempts = options.maxAttempts ?? this.config.jobs.attempts;
    const { record } = await this.jobs.upsertQueued({ id: options.id, name, payload: parsed, maxAttempts });
    // A crash between the row and the queue is repaired by recover() at the next start.
    if (record.state === 'queued')
      await this.queue.enqueue({
        id: record.id,
        name: record.name,
        payload: record.payload,
        maxAttempts: record.maxAttempts,
        queue: jobQueueOf(record.name),
      });
  }

  /** Enqueues again every queued or running job the queue has lost. Returns how many. */
  async recover(): Promise<number> {
    let recovered = 0;
    let afterId: string | undefined;
    for (;;) {
      const batch = await this.jobs.findUnfinished(afterId, 500);
      for (const job of batch) {
        if (await this.queue.has(job.id)) continue;
        await this.queue.enqueue({
          id: job.id,
          name: job.name,
          payload: job.payload,
          maxAttempts: job.maxAttempts,
          queue: jobQueueOf(job.name),
        });
        recovered++;
      }
      if (batch.length < 500) break;
      afterId = batch[batch.length - 1]?.id;
    }
    if (recovered > 0) this.logger.info({ recovered }, 'jobs missing from the queue were enqueued again');
    return recovered;
  }

  /**
   * Starts running jobs in this process, each queue with its own concurrency (config.jobs.concurrency).
   * Refuses when a known job has no handler.
   */
  async startConsuming(): Promise<void> {
    const missing = jobNames.filter((name) => !this.handlers.has(name));
    if (missing.length > 0) throw new Error(`no handler registered for job(s): ${missing.join(', ')}`);
    await this.recover();
    this.consuming = true;
    await this.queue.consume({ processor: (job) => this.process(job), concurrency: this.config.jobs.concurrency });
    this.logger.info({ queue: this.queue.kind, concurrency: this.config.jobs.concurrency }, 'consuming jobs');
  }

  countByState() {
    return this.jobs.countByState();
  }

  /** One attempt of one job, with its row kept in step. */
  async process(job: QueuedJob): Promise<void> {
    const record = await this.jobs.find(job.id);
    // Already done (a duplicate delivery after a crash): nothing to do.
    if (!record || record.state === 'completed' || record.state === 'failed') return;
    const handler = this.handlers.get(job.name);
    const { deaths } = await this.jobs.markRunning(job.id, job.attempt);
    const log = this.logger.child({ jobId: job.id, job: job.name, attempt: job.attempt });
    try {
      if (!handler) throw new UnrecoverableJobError(`no handler for job "${job.name}" in this process`);
      const payload = parsePayload(job.name, record.payload);
      if (deaths >= this.config.jobs.maxDeaths) {
        await handler.abandon?.(payload as never, { jobId: job.id, deaths });
        const message = `abandoned: the process died ${deaths} times while running this job`;
        await this.jobs.markFailed(job.id, message);
        log.error({ deaths }, 'job abandoned after its process died in it repeatedly');
        return;
      }
      const started = Date.now();
      await handler.handle(payload as never, { jobId: job.id, attempt: job.attempt, maxAttempts: job.maxAttempts });
      await this.jobs.markCompleted(job.id);
      log.info({ ms: Date.now() - started }, 'job completed');
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      const final = error instanceof UnrecoverableJobError || job.attempt >= job.maxAttempts;
      if (final) {
        await this.jobs.markFailed(job.id, message);
        log.error({ err: error }, 'job failed');
      } else {
        await this.jobs.markRetrying(job.id, message);
        log.warn({ err: error }, 'job attempt failed; it will be retried');
      }
      throw error;
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close({ timeoutMs: this.config.shutdownTimeoutMs });
    if (this.consuming) this.logger.info('job queue closed');
  }
}

function parsePayload(name: string, payload: unknown): unknown {
  if (!(name in jobPayloadSchemas)) throw new UnrecoverableJobError(`unknown job "${name}"`);
  const result = jobPayloadSchemas[name as JobName].safeParse(payload);
  if (!result.success) throw new UnrecoverableJobError(`invalid payload for job "${name}": ${result.error.message}`);
  return result.data;
}
