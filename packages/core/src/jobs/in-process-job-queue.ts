import { retryDelayMs, type JobProcessor, type JobQueue, type QueuedJob } from './job-queue.js';
import { DEFAULT_CLOSE_TIMEOUT_MS, assertConcurrency, assertEnqueueable, isUnrecoverable } from './job-queue.internal.js';

/**
 * JobQueue of embedded mode: jobs live in this process's memory only. That is enough because the
 * `jobs` table is the record: whatever is waiting or delayed when the process stops is enqueued
 * again at the next start.
 */
export class InProcessJobQueue implements JobQueue {
  readonly kind = 'in-process' as const;

  private readonly backoffMs: number;
  /** Jobs ready to run, by id, oldest first (a Map keeps insertion order). */
  private readonly waiting = new Map<string, QueuedJob>();
  /** Jobs waiting out their retry backoff, by id. */
  private readonly delayed = new Map<string, NodeJS.Timeout>();
  private readonly running = new Map<string, Promise<void>>();
  private processor: JobProcessor | undefined;
  private concurrency = 0;
  private closed = false;

  constructor(params: { backoffMs: number }) {
    this.backoffMs = params.backoffMs;
  }

  async enqueue(job: { id: string; name: string; payload: unknown; maxAttempts: number }): Promise<void> {
    assertEnqueueable(job);
    if (this.closed) throw new Error('the job queue is closed');
    if (this.isPending(job.id)) return;
    // A JSON copy, as Redis would keep it: the processor sees what it would see in services mode,
    // and later changes to the caller's object do not reach the job.
    const payload: unknown = job.payload === undefined ? undefined : JSON.parse(JSON.stringify(job.payload));
    this.waiting.set(job.id, { id: job.id, name: job.name, payload, attempt: 1, maxAttempts: job.maxAttempts });
    this.startWaitingJobs();
  }

  async has(id: string): Promise<boolean> {
    return this.isPending(id);
  }

  async consume(params: { processor: JobProcessor; concurrency: number }): Promise<void> {
    assertConcurrency(params.concurrency);
    if (this.closed) throw new Error('the job queue is closed');
    if (this.processor) throw new Error('the job queue already has a consumer');
    this.processor = params.processor;
    this.concurrency = params.concurrency;
    this.startWaitingJobs();
  }

  async close(params?: { timeoutMs?: number }): Promise<void> {
    this.closed = true;
    this.waiting.clear();
    for (const timer of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    const running = Promise.all(this.running.values());
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, params?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    });
    try {
      await Promise.race([running, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('the job queue is closed');
  }

  private isPending(id: string): boolean {
    return this.running.has(id) || this.delayed.has(id) || this.waiting.has(id);
  }

  private startWaitingJobs(): void {
    const processor = this.processor;
    if (!processor) return;
    while (!this.closed && this.running.size < this.concurrency) {
      const next = this.waiting.values().next();
      if (next.done) return;
      const job = next.value;
      this.waiting.delete(job.id);
      this.running.set(job.id, this.run(processor, job));
    }
  }

  /** Never rejects: a processor's failure becomes a retry or the end of the job. */
  private async run(processor: JobProcessor, job: QueuedJob): Promise<void> {
    // Job code starts on a later tick, so enqueue() and consume() never run it themselves.
    await Promise.resolve();
    try {
      await processor(job);
    } catch (error) {
      if (!this.closed && !isUnrecoverable(error) && job.attempt < job.maxAttempts) this.scheduleRetry(job);
      // Otherwise the job is over; the processor's caller has recorded why.
    } finally {
      this.running.delete(job.id);
      this.startWaitingJobs();
    }
  }

  private scheduleRetry(job: QueuedJob): void {
    const delay = retryDelayMs({ attempt: job.attempt, baseMs: this.backoffMs });
    const timer = setTimeout(() => {
      this.delayed.delete(job.id);
      this.waiting.set(job.id, { ...job, attempt: job.attempt + 1 });
      this.startWaitingJobs();
    }, delay);
    this.delayed.set(job.id, timer);
  }
}
