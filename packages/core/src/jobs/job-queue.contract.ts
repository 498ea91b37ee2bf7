// The behaviour every JobQueue adapter must show; job-queue.int-spec.ts runs it against each one.
import { afterEach, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { UnrecoverableJobError, type JobProcessor, type JobQueue, type QueuedJob } from './job-queue.js';

/** The `backoffMs` that makeQueue must give its adapter: the retry tests check delays against it. */
export const JOB_QUEUE_CONTRACT_BACKOFF_MS = 50;
/** The `queues` that makeQueue must give its adapter: the tests of separate queues use them. */
export const JOB_QUEUE_CONTRACT_QUEUES: readonly string[] = ['default', 'slow', 'fast'];

const BACKOFF_MS = JOB_QUEUE_CONTRACT_BACKOFF_MS;
/** How long to keep watching for something that must not happen (a second run, a retry). */
const QUIET_MS = 4 * BACKOFF_MS + 100;
/** Lateness a retry may add to its backoff (Redis's 100 ms tick, round trips, a busy machine). */
const RETRY_SLACK_MS = 250;
/** Node timers and Redis scores count whole milliseconds, so a delay can look 1 ms short. */
const TIMER_ROUNDING_MS = 2;

/**
 * Declares the JobQueue contract tests. `makeQueue` must return a new, empty queue each time (for
 * BullMQ: a random queue name) built with `backoffMs: JOB_QUEUE_CONTRACT_BACKOFF_MS` and
 * `queues: JOB_QUEUE_CONTRACT_QUEUES`, and a `cleanup` that closes it and removes whatever it left behind.
 */
export function describeJobQueueContract(name: string, makeQueue: () => Promise<{ queue: JobQueue; cleanup: () => Promise<void> }>): void {
  describe(`JobQueue contract: ${name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];

    async function openQueue(): Promise<JobQueue> {
      const { queue, cleanup } = await makeQueue();
      cleanups.push(cleanup);
      return queue;
    }

    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it('runs an enqueued job once, with its id, name, payload, attempt 1 and maxAttempts', async () => {
      const queue = await openQueue();
      const runs: QueuedJob[] = [];
      await queue.consume({ processor: async (job) => void runs.push(job), concurrency: 2 });
      const job = { id: 'datasets.convert:ds_1', name: 'datasets.convert', payload: { datasetId: 'ds_1', shards: [0, 1] }, maxAttempts: 3 };

      await queue.enqueue(job);
      await waitFor('the job to finish', async () => runs.length === 1 && !(await queue.has(job.id)));
      await sleep(QUIET_MS);

      expect(runs).toEqual([{ ...job, attempt: 1 }]);
    });

    it('hands over the payload as its JSON form, copied when enqueued', async () => {
      const queue = await openQueue();
      const payload: Record<string, unknown> = { at: new Date(0), left: undefined, list: [1, 'a', null], nested: { ok: true } };
      await queue.enqueue({ id: 'payload-job', name: 'test.payload', payload, maxAttempts: 1 });
      // Changing the caller's object afterwards must not change the job.
      payload.list = [];

      const runs: QueuedJob[] = [];
      await queue.consume({ processor: async (job) => void runs.push(job), concurrency: 1 });
      await waitFor('the job to run', () => runs.length === 1);

      expect(runs[0]?.payload).toStrictEqual({ at: '1970-01-01T00:00:00.000Z', list: [1, 'a', null], nested: { ok: true } });
    });

    it('gives jobs back their ids unchanged, including ":", "%" and digits-only ids', async () => {
      const queue = await openQueue();
      // '%3A' and ':' must stay two jobs, whatever escaping an adapter does.
      const ids = ['blobs.delete:datasets/ds_1/a:b.arrow', '42', '0', '-1', '0:x', ':', '%3A', '%25', '%i42', 'plain'];
      const seen: string[] = [];
      await queue.consume({ processor: async (job) => void seen.push(job.id), concurrency: 4 });

      for (const id of ids) await queue.enqueue({ id, name: 'test.ids', payload: null, maxAttempts: 1 });
      await waitFor('every job to run', () => seen.length >= ids.length);
      await sleep(QUIET_MS);

      expect([...seen].sort()).toEqual([...ids].sort());
    });

    it('runs a job once when the same id is enqueued twice while it waits', async () => {
      const queue = await openQueue();
      await queue.enqueue({ id: 'dup', name: 'test.dup', payload: { version: 1 }, maxAttempts: 2 });
      await queue.enqueue({ id: 'dup', name: 'test.dup', payload: { version: 2 }, maxAttempts: 2 });
      const runs: QueuedJob[] = [];

      await queue.consume({ processor: async (job) => void runs.push(job), concurrency: 2 });
      await waitFor('the job to finish', async () => runs.length >= 1 && !(await queue.has('dup')));
      await sleep(QUIET_MS);

      expect(runs.map((job) => job.payload)).toEqual([{ version: 1 }]);
    });

    it('ignores an id whose job is running, and takes it again once that job is finished', async () => {
      const queue = await openQueue();
      const firstRun = deferred();
      const runs: QueuedJob[] = [];
      await queue.consume({
        processor: async (job) => {
          runs.push(job);
          if (runs.length === 1) await firstRun.promise;
        },
        concurrency: 2,
      });

      await queue.enqueue({ id: 'again', name: 'test.again', payload: 1, maxAttempts: 1 });
      await waitFor('the first run to start', () => runs.length === 1);
      await queue.enqueue({ id: 'again', name: 'test.again', payload: 2, maxAttempts: 1 });
      firstRun.resolve();
      await waitFor('the first run to finish', async () => !(await queue.has('again')));
      await sleep(QUIET_MS);
      expect(runs.map((job) => job.payload)).toEqual([1]);

      // Finished jobs leave the queue: the `jobs` table, not the queue, decides whether to run again.
      await queue.enqueue({ id: 'again', name: 'test.again', payload: 3, maxAttempts: 1 });
      await waitFor('the second run', () => runs.length === 2);
      expect(runs[1]).toMatchObject({ payload: 3, attempt: 1 });
    });

    it('has() is true while a job waits or runs, and false once it is finished or for unknown ids', async () => {
      const queue = await openQueue();
      const release = deferred();
      let started = false;
      expect(await queue.has('never-enqueued')).toBe(false);

      await queue.enqueue({ id: 'tracked', name: 'test.has', payload: null, maxAttempts: 1 });
      expect(await queue.has('tracked')).toBe(true);
      await queue.consume({
        processor: async () => {
          started = true;
          await release.promise;
        },
        concurrency: 1,
      });
      await waitFor('the job to start', () => started);
      expect(await queue.has('tracked')).toBe(true);

      release.resolve();
      await waitFor('has() to turn false', async () => !(await queue.has('tracked')));
    });

    it('retries a failing job after backoffs that grow, until it succeeds', async () => {
      const queue = await openQueue();
      const runs: Array<{ attempt: number; maxAttempts: number; startedAt: number }> = [];
      await queue.consume({
        processor: async (job) => {
          runs.push({ attempt: job.attempt, maxAttempts: job.maxAttempts, startedAt: performance.now() });
          if (job.attempt <= 4) throw new Error(`attempt ${job.attempt} fails`);
        },
        concurrency: 1,
      });

      await queue.enqueue({ id: 'flaky', name: 'test.flaky', payload: null, maxAttempts: 6 });
      await waitFor('the fifth attempt to succeed', async () => runs.length === 5 && !(await queue.has('flaky')));
      await sleep(QUIET_MS);

      expect(runs.map((run) => `${run.attempt}/${run.maxAttempts}`)).toEqual(['1/6', '2/6', '3/6', '4/6', '5/6']);
      // Retry n waits base·2^(n−1) with its upper half random. Four retries, because a retry can
      // start up to ~100 ms late (Redis times out blocked clients on its 10 Hz tick): only the
      // fourth wait's floor, 4·base, is beyond any un-grown backoff plus that lateness.
      const gaps = runs.slice(1).map((run, index) => run.startedAt - (runs[index]?.startedAt ?? Number.NaN));
      gaps.forEach((gap, index) => {
        const ceiling = BACKOFF_MS * 2 ** index;
        expect(gap).toBeGreaterThanOrEqual(ceiling / 2 - TIMER_ROUNDING_MS);
        expect(gap).toBeLessThanOrEqual(ceiling + RETRY_SLACK_MS);
      });
    });

    it('stops a job that always fails after maxAttempts runs', async () => {
      const queue = await openQueue();
      const attempts: number[] = [];
      await queue.consume({
        processor: async (job) => {
          attempts.push(job.attempt);
          throw new Error('always fails');
        },
        concurrency: 1,
      });

      await queue.enqueue({ id: 'doomed', name: 'test.doomed', payload: null, maxAttempts: 3 });
      await waitFor('three attempts', () => attempts.length >= 3);
      await waitFor('the job to leave the queue', async () => !(await queue.has('doomed')));
      await sleep(QUIET_MS);

      expect(attempts).toEqual([1, 2, 3]);
    });

    it('runs a job that throws UnrecoverableJobError once, whatever maxAttempts allows', async () => {
      const queue = await openQueue();
      const runs: string[] = [];
      await queue.consume({
        processor: async (job) => {
          runs.push(job.id);
          if (job.id === 'unrecoverable') throw new UnrecoverableJobError('the dataset is gone');
          // The same error from another copy of the module: recognised by its name.
          throw Object.assign(new Error('bad payload'), { name: 'UnrecoverableJobError' });
        },
        concurrency: 2,
      });

      await queue.enqueue({ id: 'unrecoverable', name: 'test.unrecoverable', payload: null, maxAttempts: 5 });
      await queue.enqueue({ id: 'unrecoverable-by-name', name: 'test.unrecoverable', payload: null, maxAttempts: 5 });
      await waitFor(
        'both jobs to leave the queue',
        async () => runs.length >= 2 && !(await queue.has('unrecoverable')) && !(await queue.has('unrecoverable-by-name')),
      );
      await sleep(QUIET_MS);

      expect([...runs].sort()).toEqual(['unrecoverable', 'unrecoverable-by-name']);
    });

    it('never runs more jobs at once than its concurrency, and uses all of it', async () => {
      const queue = await openQueue();
      const ids = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'];
      for (const id of ids) await queue.enqueue({ id, name: 'test.concurrency', payload: null, maxAttempts: 1 });
      let active = 0;
      let mostActive = 0;
      const finished: string[] = [];

      await queue.consume({
        processor: async (job) => {
          active++;
          mostActive = Math.max(mostActive, active);
          await sleep(80);
          active--;
          finished.push(job.id);
        },
        concurrency: 3,
      });
      await waitFor('every job to finish', () => finished.length >= ids.length);
      await sleep(QUIET_MS);

      expect(mostActive).toBe(3);
      expect([...finished].sort()).toEqual(ids);
    });

    it('close() lets the running job finish, starts no other job, and refuses new ones', async () => {
      const queue = await openQueue();
      const events: string[] = [];
      await queue.consume({
        processor: async (job) => {
          events.push(`${job.id} started`);
          await sleep(300);
          events.push(`${job.id} finished`);
        },
        concurrency: 1,
      });
      await queue.enqueue({ id: 'first', name: 'test.close', payload: null, maxAttempts: 1 });
      await queue.enqueue({ id: 'second', name: 'test.close', payload: null, maxAttempts: 1 });
      await waitFor('the first job to start', () => events.length === 1);

      await queue.close({ timeoutMs: 5_000 });
      events.push('closed');
      await sleep(QUIET_MS);

      expect(events).toEqual(['first started', 'first finished', 'closed']);
      await expect(queue.enqueue({ id: 'late', name: 'test.close', payload: null, maxAttempts: 1 })).rejects.toThrow();
      await expect(queue.ping()).rejects.toThrow();
    });

    it('close() stops waiting for a running job after timeoutMs', async () => {
      const queue = await openQueue();
      const release = deferred();
      let started = false;
      let finished = false;
      await queue.consume({
        processor: async () => {
          started = true;
          await release.promise;
          finished = true;
        },
        concurrency: 1,
      });
      await queue.enqueue({ id: 'stuck', name: 'test.stuck', payload: null, maxAttempts: 1 });
      await waitFor('the job to start', () => started);

      // Should close() ignore its timeout, the job still ends, and the test fails instead of hanging.
      const backstop = setTimeout(release.resolve, 3_000);
      try {
        const closeStarted = performance.now();
        await queue.close({ timeoutMs: 200 });
        const waited = performance.now() - closeStarted;

        expect(waited).toBeGreaterThanOrEqual(200 - TIMER_ROUNDING_MS);
        expect(waited).toBeLessThan(2_000);
        expect(finished).toBe(false);
      } finally {
        clearTimeout(backstop);
        release.resolve();
      }
    });

    it('survives processors that throw, reject, or reject with something that is not an Error', async () => {
      const queue = await openQueue();
      // Jest fails a test on an unhandled rejection too; the listeners make the check explicit.
      const problems: unknown[] = [];
      const onProblem = (problem: unknown) => void problems.push(problem);
      process.on('unhandledRejection', onProblem);
      process.on('uncaughtException', onProblem);
      try {
        const attempts: string[] = [];
        const failures: Record<string, JobProcessor> = {
          // A processor typed as async that throws before returning a promise.
          throws: () => {
            throw new Error('thrown synchronously');
          },
          rejects: async () => {
            throw new Error('rejected');
          },
          // Non-Errors on purpose: BullMQ reads `.name` of what it catches, and null would wedge the job.
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          'rejects-with-string': () => Promise.reject('a string, not an Error'),
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          'rejects-with-null': () => Promise.reject(null),
        };
        const finished: string[] = [];
        await queue.consume({
          processor: (job) => {
            attempts.push(job.id);
            const fail = failures[job.id];
            if (fail) return fail(job);
            finished.push(job.id);
            return Promise.resolve();
          },
          concurrency: 2,
        });

        for (const id of Object.keys(failures)) await queue.enqueue({ id, name: 'test.failing', payload: null, maxAttempts: 2 });
        await waitFor('every failing job to use its two attempts', () => attempts.length >= 8);
        await waitFor('the failing jobs to leave the queue', async () => {
          for (const id of Object.keys(failures)) if (await queue.has(id)) return false;
          return true;
        });
        // The queue still works afterwards.
        await queue.enqueue({ id: 'healthy', name: 'test.healthy', payload: null, maxAttempts: 1 });
        await waitFor('a later job to run', () => finished.length === 1);
        await sleep(QUIET_MS);

        const failingTwice = Object.keys(failures).flatMap((id) => [id, id]);
        expect([...attempts].sort()).toEqual([...failingTwice, 'healthy'].sort());
        expect(problems).toEqual([]);
      } finally {
        process.off('unhandledRejection', onProblem);
        process.off('uncaughtException', onProblem);
      }
    });

    it('runs a job of one queue while a long job of another queue holds all of its slots', async () => {
      const queue = await openQueue();
      const release = deferred();
      const started: string[] = [];
      const finished: string[] = [];
      await queue.consume({
        processor: async (job) => {
          started.push(job.id);
          if (job.name === 'test.slow') await release.promise;
          finished.push(job.id);
        },
        concurrency: { slow: 1, fast: 1 },
      });

      // The slow queue's one slot is taken and another slow job waits behind it.
      await queue.enqueue({ id: 'slow-1', name: 'test.slow', payload: null, maxAttempts: 1, queue: 'slow' });
      await queue.enqueue({ id: 'slow-2', name: 'test.slow', payload: null, maxAttempts: 1, queue: 'slow' });
      await waitFor('the first slow job to start', () => started.includes('slow-1'));
      await queue.enqueue({ id: 'fast-1', name: 'test.fast', payload: null, maxAttempts: 1, queue: 'fast' });
      await queue.enqueue({ id: 'fast-2', name: 'test.fast', payload: null, maxAttempts: 1, queue: 'fast' });

      await waitFor('the fast jobs to finish', () => finished.includes('fast-1') && finished.includes('fast-2'));
      expect(started).not.toContain('slow-2');
      expect(await queue.has('slow-1')).toBe(true);
      expect(await queue.has('slow-2')).toBe(true);
      expect(await queue.has('fast-1')).toBe(false);

      release.resolve();
      await waitFor('the slow jobs to finish', () => finished.includes('slow-1') && finished.includes('slow-2'));
      expect(finished.slice(-2)).toEqual(['slow-1', 'slow-2']);
    });

    it("never runs more jobs of a queue at once than that queue's concurrency, and uses all of it", async () => {
      const queue = await openQueue();
      const jobs = [
        ...['s1', 's2', 's3', 's4'].map((id) => ({ id, queue: 'slow' })),
        ...['f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7'].map((id) => ({ id, queue: 'fast' })),
        ...['d1', 'd2', 'd3'].map((id) => ({ id, queue: 'default' })),
      ];
      for (const job of jobs) await queue.enqueue({ ...job, name: `test.${job.queue}`, payload: null, maxAttempts: 1 });
      const active = new Map<string, number>();
      const mostActive = new Map<string, number>();
      const finished: string[] = [];

      await queue.consume({
        processor: async (job) => {
          active.set(job.name, (active.get(job.name) ?? 0) + 1);
          mostActive.set(job.name, Math.max(mostActive.get(job.name) ?? 0, active.get(job.name) ?? 0));
          await sleep(80);
          active.set(job.name, (active.get(job.name) ?? 0) - 1);
          finished.push(job.id);
        },
        concurrency: { default: 2, slow: 1, fast: 3 },
      });
      await waitFor('every job to finish', () => finished.length >= jobs.length);
      await sleep(QUIET_MS);

      expect(Object.fromEntries(mostActive)).toEqual({ 'test.default': 2, 'test.slow': 1, 'test.fast': 3 });
      expect([...finished].sort()).toEqual(jobs.map((job) => job.id).sort());
    });

    it('consumes only the queues a per-queue concurrency names (another process may take the rest)', async () => {
      const queue = await openQueue();
      const runs: string[] = [];
      await queue.consume({ processor: async (job) => void runs.push(job.id), concurrency: { fast: 2 } });

      await queue.enqueue({ id: 'on-fast', name: 'test.fast', payload: null, maxAttempts: 1, queue: 'fast' });
      await queue.enqueue({ id: 'on-slow', name: 'test.slow', payload: null, maxAttempts: 1, queue: 'slow' });
      await queue.enqueue({ id: 'on-default', name: 'test.default', payload: null, maxAttempts: 1 });
      await waitFor('the fast job to run', () => runs.includes('on-fast'));
      await sleep(QUIET_MS);

      expect(runs).toEqual(['on-fast']);
      expect(await queue.has('on-slow')).toBe(true);
      expect(await queue.has('on-default')).toBe(true);
    });

    it('refuses a queue it was not built with, when enqueueing and when consuming', async () => {
      const queue = await openQueue();
      await expect(queue.enqueue({ id: 'lost', name: 'test.unknown', payload: null, maxAttempts: 1, queue: 'nowhere' })).rejects.toThrow(
        /unknown job queue "nowhere"/,
      );
      await expect(queue.consume({ processor: async () => undefined, concurrency: { nowhere: 1 } })).rejects.toThrow(
        /unknown job queue "nowhere"/,
      );
      await expect(queue.consume({ processor: async () => undefined, concurrency: { fast: 0 } })).rejects.toThrow(/concurrency/);
      expect(await queue.has('lost')).toBe(false);
    });

    it('ping() resolves while the queue is open', async () => {
      const queue = await openQueue();
      await expect(queue.ping()).resolves.toBeUndefined();
    });

    it('refuses maxAttempts and concurrency below 1', async () => {
      const queue = await openQueue();
      await expect(queue.enqueue({ id: 'never', name: 'test.invalid', payload: null, maxAttempts: 0 })).rejects.toThrow(/maxAttempts/);
      await expect(queue.consume({ processor: async () => undefined, concurrency: 0 })).rejects.toThrow(/concurrency/);
      expect(await queue.has('never')).toBe(false);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until the condition holds; fails the test with what it was waiting for. */
async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}
