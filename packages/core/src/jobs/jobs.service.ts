import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { jobNames, jobPayloadSchemas, jobQueueOf, type JobName, type JobPayload } from '@kura/schema';
import type { KuraConfig } from '../config/config.js';
import { outageOf } from '../errors/outages.js';
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
  private recovering: NodeJS.Timeout | undefined;

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
    // A crash between the row and the queue is repaired by recover() at the next start; a queue
    // that is down (Redis restarting) by the consumers' periodic recover(): the row is the record,
    // so the work asked for is not lost and the caller need not hear of the outage.
    if (record.state === 'queued')
      await this.queue
        .enqueue({
          id: record.id,
          name: record.name,
          payload: record.payload,
          maxAttempts: record.maxAttempts,
          queue: jobQueueOf(record.name),
        })
        .catch((error: unknown) => {
          if (outageOf(error) !== 'queue' || this.queue.kind === 'in-process') throw error;
          this.logger.warn(
            { err: error, jobId: record.id },
            'the job queue is down; the job is recorded and will be enqueued when it is back',
          );
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
    // A shared queue can lose jobs while this process runs (Redis restarted without persistence):
    // the jobs table is the record, so what it says is pending is enqueued again from time to time.
    if (this.queue.kind !== 'in-process')
      this.recovering = setInterval(
        () => void this.recover().catch((error: unknown) => this.logger.warn({ err: error }, 'could not check the queue for lost jobs')),
        this.config.jobs.recoverMs,
      ).unref();
    this.logger.info({ queue: this.queue.kind, concurrency: this.config.jobs.concurrency }, 'consuming jobs');
  }

  countByState() {
    return this.jobs.countByState();
  }

  /**
   * One attempt of one job, with its row kept in step. A dependency that is down (the database
   * restarting, the object store or Redis unreachable) is waited out, up to config.jobs.outageWaitMs,
   * and the handler run again in the same attempt: handlers are idempotent, and an outage is nobody's
   * failure, so it must not spend the attempts that bad work gets. A full disk is not waited out.
   */
  async process(job: QueuedJob): Promise<void> {
    const outageDeadline = Date.now() + this.config.jobs.outageWaitMs;
    const log = this.logger.child({ jobId: job.id, job: job.name, attempt: job.attempt });
    const untilAnswered = <T>(step: () => Promise<T>) => this.throughOutages(step, outageDeadline, log);
    const record = await untilAnswered(() => this.jobs.find(job.id));
    // Already done (a duplicate delivery after a crash): nothing to do.
    if (!record || record.state === 'completed' || record.state === 'failed') return;
    const handler = this.handlers.get(job.name);
    const { deaths } = await untilAnswered(() => this.jobs.markRunning(job.id, job.attempt));
    let payload: unknown;
    try {
      if (!handler) throw new UnrecoverableJobError(`no handler for job "${job.name}" in this process`);
      payload = parsePayload(job.name, record.payload);
      if (deaths >= this.config.jobs.maxDeaths) {
        await untilAnswered(() => handler.abandon?.(payload as never, { jobId: job.id, deaths }) ?? Promise.resolve());
        const message = `abandoned: the process died ${deaths} times while running this job`;
        await untilAnswered(() => this.jobs.markFailed(job.id, message));
        log.error({ deaths }, 'job abandoned after its process died in it repeatedly');
        return;
      }
      const started = Date.now();
      await untilAnswered(() => handler.handle(payload as never, { jobId: job.id, attempt: job.attempt, maxAttempts: job.maxAttempts }));
      await untilAnswered(() => this.jobs.markCompleted(job.id));
      log.info({ ms: Date.now() - started }, 'job completed');
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      const final = error instanceof UnrecoverableJobError || job.attempt >= job.maxAttempts;
      if (final) {
        if (handler?.gaveUp && payload !== undefined)
          await untilAnswered(() => handler.gaveUp!(payload as never, { jobId: job.id, message }));
        await untilAnswered(() => this.jobs.markFailed(job.id, message));
        log.error({ err: error }, 'job failed');
      } else {
        await untilAnswered(() => this.jobs.markRetrying(job.id, message));
        log.warn({ err: error }, 'job attempt failed; it will be retried');
      }
      throw error;
    }
  }

  /** Runs `step`, again after each outage (backing off to 5 s), until it ends otherwise or the deadline passes. */
  private async throughOutages<T>(step: () => Promise<T>, deadline: number, log: Logger): Promise<T> {
    for (let waits = 0; ; waits++) {
      try {
        return await step();
      } catch (error) {
        const outage = outageOf(error);
        if (!outage || outage === 'disk' || Date.now() >= deadline) throw error;
        const waitMs = Math.min(OUTAGE_FIRST_WAIT_MS * 2 ** waits, OUTAGE_MAX_WAIT_MS, Math.max(0, deadline - Date.now()));
        log.warn({ outage, waitMs, err: error }, 'a service the job needs is down; waiting, then running the step again');
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.recovering);
    await this.queue.close({ timeoutMs: this.config.shutdownTimeoutMs });
    if (this.consuming) this.logger.info('job queue closed');
  }
}

const OUTAGE_FIRST_WAIT_MS = 250;
const OUTAGE_MAX_WAIT_MS = 5000;

function parsePayload(name: string, payload: unknown): unknown {
  if (!(name in jobPayloadSchemas)) throw new UnrecoverableJobError(`unknown job "${name}"`);
  const result = jobPayloadSchemas[name as JobName].safeParse(payload);
  if (!result.success) throw new UnrecoverableJobError(`invalid payload for job "${name}": ${result.error.message}`);
  return result.data;
}
