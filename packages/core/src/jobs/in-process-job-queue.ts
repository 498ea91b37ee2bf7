import { DEFAULT_JOB_QUEUE, retryDelayMs, type JobProcessor, type JobQueue, type QueuedJob } from './job-queue.js';
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  assertEnqueueable,
  concurrencyByQueue,
  isUnrecoverable,
  queuesToServe,
  unknownQueueError,
} from './job-queue.internal.js';

/**
 * JobQueue of embedded mode: jobs live in this process's memory only. That is enough because the
 * `jobs` table is the record: whatever is waiting or delayed when the process stops is enqueued
 * again at the next start. Each queue has its own waiting line and concurrency.
 */
export class InProcessJobQueue implements JobQueue {
  readonly kind = 'in-process' as const;

  private readonly backoffMs: number;
  private readonly lanes = new Map<string, Lane>();
  /** Jobs waiting out their retry backoff, by id. */
  private readonly delayed = new Map<string, NodeJS.Timeout>();
  private processor: JobProcessor | undefined;
  private closed = false;

  /** @param params.queues - The queues it serves (default: every queue of @kura/schema jobQueues). */
  constructor(params: { backoffMs: number; queues?: readonly string[] }) {
    this.backoffMs = params.backoffMs;
    for (const queue of queuesToServe(params.queues)) this.lanes.set(queue, { concurrency: 0, waiting: new Map(), running: new Map() });
  }

  async enqueue(job: { id: string; name: string; payload: unknown; maxAttempts: number; queue?: string }): Promise<void> {
    assertEnqueueable(job);
    const lane = this.lane(job.queue ?? DEFAULT_JOB_QUEUE);
    if (this.closed) throw new Error('the job queue is closed');
    if (this.isPending(job.id)) return;
    // A JSON copy, as Redis would keep it: the processor sees what it would see in services mode,
    // and later changes to the caller's object do not reach the job.
    const payload: unknown = job.payload === undefined ? undefined : JSON.parse(JSON.stringify(job.payload));
    lane.waiting.set(job.id, { id: job.id, name: job.name, payload, attempt: 1, maxAttempts: job.maxAttempts });
    this.startWaitingJobs(lane);
  }

  async has(id: string): Promise<boolean> {
    return this.isPending(id);
  }

  async consume(params: { processor: JobProcessor; concurrency: number | Readonly<Record<string, number>> }): Promise<void> {
    const concurrency = concurrencyByQueue(params.concurrency, [...this.lanes.keys()]);
    if (this.closed) throw new Error('the job queue is closed');
    if (this.processor) throw new Error('the job queue already has a consumer');
    this.processor = params.processor;
    for (const [queue, count] of concurrency) this.lane(queue).concurrency = count;
    for (const lane of this.lanes.values()) this.startWaitingJobs(lane);
  }

  async close(params?: { timeoutMs?: number }): Promise<void> {
    this.closed = true;
    for (const lane of this.lanes.values()) lane.waiting.clear();
    for (const timer of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    const running = Promise.all([...this.lanes.values()].flatMap((lane) => [...lane.running.values()]));
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

  private lane(queue: string): Lane {
    const lane = this.lanes.get(queue);
    if (!lane) throw unknownQueueError(queue, [...this.lanes.keys()]);
    return lane;
  }

  private isPending(id: string): boolean {
    if (this.delayed.has(id)) return true;
    for (const lane of this.lanes.values()) if (lane.running.has(id) || lane.waiting.has(id)) return true;
    return false;
  }

  private startWaitingJobs(lane: Lane): void {
    const processor = this.processor;
    if (!processor) return;
    while (!this.closed && lane.running.size < lane.concurrency) {
      const next = lane.waiting.values().next();
      if (next.done) return;
      const job = next.value;
      lane.waiting.delete(job.id);
      lane.running.set(job.id, this.run(processor, lane, job));
    }
  }

  /** Never rejects: a processor's failure becomes a retry or the end of the job. */
  private async run(processor: JobProcessor, lane: Lane, job: QueuedJob): Promise<void> {
    // Job code starts on a later tick, so enqueue() and consume() never run it themselves.
    await Promise.resolve();
    try {
      await processor(job);
    } catch (error) {
      if (!this.closed && !isUnrecoverable(error) && job.attempt < job.maxAttempts) this.scheduleRetry(lane, job);
      // Otherwise the job is over; the processor's caller has recorded why.
    } finally {
      lane.running.delete(job.id);
      this.startWaitingJobs(lane);
    }
  }

  private scheduleRetry(lane: Lane, job: QueuedJob): void {
    const delay = retryDelayMs({ attempt: job.attempt, baseMs: this.backoffMs });
    const timer = setTimeout(() => {
      this.delayed.delete(job.id);
      lane.waiting.set(job.id, { ...job, attempt: job.attempt + 1 });
      this.startWaitingJobs(lane);
    }, delay);
    this.delayed.set(job.id, timer);
  }
}

/** One queue's jobs: its own concurrency (0 until consumed), waiting line and running set. */
interface Lane {
  concurrency: number;
  /** Jobs ready to run, by id, oldest first (a Map keeps insertion order). */
  waiting: Map<string, QueuedJob>;
  running: Map<string, Promise<void>>;
}
