import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { DEFAULT_JOB_QUEUE, type JobProcessor, type JobQueue, type QueuedJob } from './job-queue.js';
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  assertEnqueueable,
  concurrencyByQueue,
  isUnrecoverable,
  queuesToServe,
  unknownQueueError,
} from './job-queue.internal.js';

interface BullmqJobData {
  payload: unknown;
}

/** How long ping() waits for Redis: /health must answer even when Redis does not. */
const PING_TIMEOUT_MS = 2_000;

/** BullMQ states in which a job still counts as queued (see JobQueue.has). */
const PENDING_STATES: ReadonlySet<string> = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);

/**
 * JobQueue of services mode: BullMQ on Redis, so that API and worker processes share its queues.
 * Each Kura queue is a BullMQ queue named `<queueName>.<queue>` (e.g. `kura-jobs.ingest`), consumed
 * by a BullMQ Worker of its own with the queue's concurrency.
 *
 * Finished jobs (completed or failed) are removed at once, so an id can be enqueued again later;
 * whether it should be is the `jobs` table's call, not the queue's.
 */
export class BullmqJobQueue implements JobQueue {
  readonly kind = 'bullmq' as const;

  private readonly backoffMs: number;
  private readonly lockMs: number;
  private readonly redisUrl: string;
  private readonly onError: (error: Error) => void;
  /** Producer connection (also answers ping): ioredis defaults, so commands fail when Redis stays away. */
  private readonly connection: Redis;
  /** The BullMQ queue of each Kura queue, by Kura queue name. */
  private readonly queues = new Map<string, Queue<BullmqJobData>>();
  private readonly workers: Array<Worker<BullmqJobData>> = [];
  private workerConnection: Redis | undefined;
  private closing: Promise<void> | undefined;

  /**
   * @param params.queueName - The prefix of its BullMQ queues' names (KURA_QUEUE_NAME).
   * @param params.queues - The Kura queues it serves (default: every queue of @kura/schema jobQueues).
   * @param params.onError - Told about connection errors (Redis restarting or gone); they are
   *   otherwise ignored, as BullMQ reconnects by itself and ping() reports the outage.
   */
  constructor(params: {
    redisUrl: string;
    queueName: string;
    queues?: readonly string[];
    backoffMs: number;
    lockMs?: number;
    onError?: (error: Error) => void;
  }) {
    this.redisUrl = params.redisUrl;
    this.lockMs = params.lockMs ?? 30_000;
    this.backoffMs = params.backoffMs;
    this.onError = params.onError ?? (() => undefined);
    // Enqueueing fails fast while Redis is down instead of waiting out ioredis's 20 reconnections
    // (over a minute): the job is recorded in Postgres first, and recover() enqueues it once Redis is back.
    this.connection = new Redis(params.redisUrl, { maxRetriesPerRequest: 1 });
    this.connection.on('error', this.onError);
    for (const queue of queuesToServe(params.queues)) {
      const bullmqQueue = new Queue<BullmqJobData>(bullmqQueueName(params.queueName, queue), { connection: this.connection });
      // An EventEmitter 'error' without a listener would throw and end the process.
      bullmqQueue.on('error', this.onError);
      this.queues.set(queue, bullmqQueue);
    }
  }

  async enqueue(job: { id: string; name: string; payload: unknown; maxAttempts: number; queue?: string }): Promise<void> {
    assertEnqueueable(job);
    const queue = this.queue(job.queue ?? DEFAULT_JOB_QUEUE);
    if (this.closing) throw new Error('the job queue is closed');
    // BullMQ keeps the existing job when the id is taken, which gives the "no-op if pending" rule.
    await queue.add(
      job.name,
      { payload: job.payload },
      {
        jobId: toBullmqJobId(job.id),
        attempts: job.maxAttempts,
        backoff: { type: 'exponential', delay: this.backoffMs, jitter: 0.5 },
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  async has(id: string): Promise<boolean> {
    const states = await Promise.all([...this.queues.values()].map((queue) => queue.getJobState(toBullmqJobId(id))));
    return states.some((state) => PENDING_STATES.has(state));
  }

  async consume(params: { processor: JobProcessor; concurrency: number | Readonly<Record<string, number>> }): Promise<void> {
    const concurrency = concurrencyByQueue(params.concurrency, [...this.queues.keys()]);
    if (this.closing) throw new Error('the job queue is closed');
    if (this.workerConnection) throw new Error('the job queue already has a consumer');
    // A worker waits out Redis outages instead of failing commands; BullMQ requires
    // maxRetriesPerRequest: null on the duplicate it makes of this client for blocking reads. The
    // workers share this client; each blocks on a duplicate of its own.
    this.workerConnection = new Redis(this.redisUrl, { maxRetriesPerRequest: null });
    this.workerConnection.on('error', this.onError);
    const processor = params.processor;
    for (const [queue, count] of concurrency) {
      const worker = new Worker<BullmqJobData>(this.queue(queue).name, (job) => runProcessor(processor, job), {
        connection: this.workerConnection,
        concurrency: count,
        // A worker that dies (SIGKILL, lost machine) stops renewing its job's lock; another worker's
        // stalled check puts the job back to waiting within about one lock period. Stalls are not
        // failures of the work, so several are allowed.
        lockDuration: this.lockMs,
        stalledInterval: this.lockMs,
        maxStalledCount: 10,
      });
      worker.on('error', this.onError);
      this.workers.push(worker);
    }
    await Promise.all(this.workers.map((worker) => worker.waitUntilReady()));
  }

  async close(params?: { timeoutMs?: number }): Promise<void> {
    this.closing ??= this.shutDown(params?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    return this.closing;
  }

  async ping(): Promise<void> {
    if (this.closing) throw new Error('the job queue is closed');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer PING within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.connection.ping(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Removes its queues and all their jobs from Redis, whatever their state, even after close().
   * For tests, which give every queue a random name.
   */
  async obliterate(): Promise<void> {
    const connection = new Redis(this.redisUrl);
    connection.on('error', this.onError);
    try {
      for (const { name } of this.queues.values()) {
        const queue = new Queue(name, { connection });
        queue.on('error', this.onError);
        try {
          await queue.obliterate({ force: true });
        } finally {
          await queue.close();
        }
      }
    } finally {
      await closeConnection(connection);
    }
  }

  private queue(queue: string): Queue<BullmqJobData> {
    const bullmqQueue = this.queues.get(queue);
    if (!bullmqQueue) throw unknownQueueError(queue, [...this.queues.keys()]);
    return bullmqQueue;
  }

  private async shutDown(timeoutMs: number): Promise<void> {
    if (this.workers.length > 0) {
      // worker.close() stops fetching and waits for the active jobs to finish.
      const closed = Promise.all(this.workers.map((worker) => worker.close()));
      if (!(await settlesWithin(closed, timeoutMs))) {
        // Give up on them. Their locks expire and BullMQ's stalled check puts them back to waiting
        // (or fails them after maxStalledCount); either way the `jobs` table still has them as
        // running, and recover() enqueues again whatever the queue lost.
        closed.catch(this.onError);
        await Promise.all(this.workers.map((worker) => worker.disconnect()));
      }
    }
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    // BullMQ leaves clients it was given open: they are ours to close.
    await closeConnection(this.connection);
    if (this.workerConnection) await closeConnection(this.workerConnection);
  }
}

/** The BullMQ queue of Kura queue `queue` (KURA_QUEUE_NAME cannot hold '.', so names cannot collide). */
export function bullmqQueueName(prefix: string, queue: string): string {
  return `${prefix}.${queue}`;
}

/** Calls the processor with a QueuedJob and translates failures into what BullMQ understands. */
async function runProcessor(processor: JobProcessor, job: Job<BullmqJobData>): Promise<void> {
  if (job.id === undefined) throw new UnrecoverableError('BullMQ handed over a job without an id');
  // BullMQ counts attemptsMade when a run ends (completed, failed, or moved to delayed), so the
  // run in progress is attemptsMade + 1.
  const queued: QueuedJob = {
    id: fromBullmqJobId(job.id),
    name: job.name,
    payload: job.data.payload,
    attempt: job.attemptsMade + 1,
    maxAttempts: job.opts.attempts ?? 1,
  };
  try {
    await processor(queued);
  } catch (error) {
    if (isUnrecoverable(error)) throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
    // BullMQ reads .message and .stack of what it catches; anything else is wrapped.
    throw error instanceof Error ? error : new Error(`job ${queued.id} failed with a non-Error value: ${String(error)}`);
  }
}

/** Closes a client, letting it finish pending replies when it is connected. */
async function closeConnection(connection: Redis): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status === 'ready') {
    try {
      await connection.quit();
      return;
    } catch {
      // Lost meanwhile: disconnect below.
    }
  }
  connection.disconnect();
}

/** Whether the promise settles (either way) within timeoutMs. */
async function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// BullMQ refuses custom job ids that contain ':' (it separates key parts), that are integers
// ('42', '-1': reserved for its own counter) or that start with '0:'. Ids are therefore escaped,
// reversibly: '%' → '%25' and ':' → '%3A', and an integer gets the prefix '%i' (which escaping
// never produces).
const INTEGER_ID_PREFIX = '%i';

/** The BullMQ job id for a Kura job id (exported for tests). */
export function toBullmqJobId(id: string): string {
  const escaped = id.replaceAll('%', '%25').replaceAll(':', '%3A');
  return `${Number.parseInt(escaped, 10)}` === escaped ? `${INTEGER_ID_PREFIX}${escaped}` : escaped;
}

/** The Kura job id of a BullMQ job id made by toBullmqJobId. */
export function fromBullmqJobId(bullmqId: string): string {
  const escaped = bullmqId.startsWith(INTEGER_ID_PREFIX) ? bullmqId.slice(INTEGER_ID_PREFIX.length) : bullmqId;
  return escaped.replace(/%3A|%25/g, (escape) => (escape === '%3A' ? ':' : '%'));
}
