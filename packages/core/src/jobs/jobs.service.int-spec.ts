// JobsService on real Postgres with both queues: the `jobs` row follows every attempt, and work the
// queue lost (a crash between the row and the queue, or a dead worker) is enqueued again at start.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { jobNames, type JobPayload } from '@kura/schema';
import { createTestDatabase, requireEnv } from '../../../../test/support/database.js';
import { loadConfig } from '../config/config.js';
import { createPrismaClient, type PrismaClient } from '../database/prisma.js';
import { createLogger } from '../logging/logger.js';
import { BullmqJobQueue } from './bullmq-job-queue.js';
import { InProcessJobQueue } from './in-process-job-queue.js';
import type { JobHandler } from './job-handler.js';
import { UnrecoverableJobError, type JobQueue } from './job-queue.js';
import { JobRepository } from './job.repository.js';
import { JobsService } from './jobs.service.js';

type Behaviour = (payload: JobPayload<'blobs.delete'>, attempt: number) => Promise<void>;

const queueKinds: Array<[string, () => JobQueue & { obliterate?: () => Promise<void> }]> = [
  ['in-process', () => new InProcessJobQueue({ backoffMs: 20 })],
  [
    'BullMQ',
    () =>
      new BullmqJobQueue({
        redisUrl: requireEnv('KURA_TEST_REDIS_URL'),
        queueName: `kura-test-${randomBytes(6).toString('hex')}`,
        backoffMs: 20,
      }),
  ],
];

describe.each(queueKinds)('JobsService with the %s queue', (_kind, makeQueue) => {
  let database: { url: string; drop: () => Promise<void> };
  let prisma: PrismaClient;
  const running: Array<{ jobs: JobsService; queue: JobQueue & { obliterate?: () => Promise<void> } }> = [];
  const runs: Array<{ key: string; attempt: number }> = [];
  let behaviour: Behaviour = async () => undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    prisma = createPrismaClient(database.url);
  });
  afterEach(async () => {
    for (const { jobs, queue } of running.splice(0)) {
      await jobs.onModuleDestroy();
      await queue.obliterate?.();
    }
    runs.length = 0;
    behaviour = async () => undefined;
  });
  afterAll(async () => {
    await prisma.$disconnect();
    await database.drop();
  });

  const handler: JobHandler<'blobs.delete'> = {
    jobName: 'blobs.delete',
    handle: async (payload, context) => {
      runs.push({ key: payload.key, attempt: context.attempt });
      await behaviour(payload, context.attempt);
    },
  };

  const startService = async (options: { consume?: boolean; handlers?: JobHandler[]; environment?: Record<string, string> } = {}) => {
    const queue = makeQueue();
    const config = loadConfig({
      KURA_JOB_ATTEMPTS: '3',
      KURA_JOB_BACKOFF_MS: '20',
      KURA_SHUTDOWN_TIMEOUT_MS: '2000',
      ...options.environment,
    });
    // Every known job needs a handler; this suite drives blobs.delete and leaves the others idle.
    const idle: JobHandler[] = jobNames
      .filter((name) => name !== 'blobs.delete')
      .map((name) => ({ jobName: name, handle: async () => undefined }));
    const jobs = new JobsService(new JobRepository(prisma), queue, options.handlers ?? [handler, ...idle], config, createLogger('silent'));
    running.push({ jobs, queue });
    if (options.consume !== false) await jobs.startConsuming();
    return jobs;
  };
  const row = (id: string) => prisma.job.findUniqueOrThrow({ where: { id }, select: { state: true, attempts: true, lastError: true } });
  const waitForState = async (id: string, state: string) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const current = await row(id);
      if (current.state === state) return current;
      if (Date.now() > deadline) throw new Error(`job ${id} stayed ${current.state}, expected ${state}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const uniqueId = () => `blobs.delete:test/${randomBytes(6).toString('hex')}`;

  it('records a job and marks it completed after one run', async () => {
    const jobs = await startService();
    const id = uniqueId();
    await jobs.enqueue('blobs.delete', { key: 'a' }, { id });
    expect(await waitForState(id, 'completed')).toEqual({ state: 'completed', attempts: 1, lastError: null });
    expect(runs).toEqual([{ key: 'a', attempt: 1 }]);
  });

  it('keeps the job queued with its last error between retries, then completes it', async () => {
    behaviour = async (_payload, attempt) => {
      if (attempt < 3) throw new Error(`flaky store, attempt ${attempt}`);
    };
    const jobs = await startService();
    const id = uniqueId();
    await jobs.enqueue('blobs.delete', { key: 'b' }, { id });
    expect(await waitForState(id, 'completed')).toEqual({ state: 'completed', attempts: 3, lastError: null });
    expect(runs.map((run) => run.attempt)).toEqual([1, 2, 3]);
  });

  it('marks a job failed with its error after the last attempt', async () => {
    behaviour = async () => {
      throw new Error('the store is gone');
    };
    const jobs = await startService();
    const id = uniqueId();
    await jobs.enqueue('blobs.delete', { key: 'c' }, { id });
    const failed = await waitForState(id, 'failed');
    expect(failed.attempts).toBe(3);
    expect(failed.lastError).toContain('the store is gone');
    expect(runs).toHaveLength(3);
  });

  it('abandons a job its process died in twice: abandon() records the failure, the work is not run again', async () => {
    const abandoned: Array<{ key: string; deaths: number }> = [];
    const idle: JobHandler[] = jobNames
      .filter((name) => name !== 'blobs.delete')
      .map((name) => ({ jobName: name, handle: async () => undefined }));
    const withAbandon: JobHandler<'blobs.delete'> = {
      ...handler,
      abandon: async (payload, context) => {
        abandoned.push({ key: payload.key, deaths: context.deaths });
      },
    };
    const first = await startService({ consume: false });
    const id = uniqueId();
    await first.enqueue('blobs.delete', { key: 'poison' }, { id });
    // Two runs began and never ended: what two processes killed inside this job leave behind.
    await prisma.job.update({ where: { id }, data: { state: 'running', runsStarted: 2, runsEnded: 0 } });
    await startService({ handlers: [withAbandon, ...idle] });
    const failed = await waitForState(id, 'failed');
    expect(failed.lastError).toContain('died 2 times');
    expect(abandoned).toEqual([{ key: 'poison', deaths: 2 }]);
    expect(runs).toEqual([]);
  });

  it('runs a job again after one process death', async () => {
    const first = await startService({ consume: false });
    const id = uniqueId();
    await first.enqueue('blobs.delete', { key: 'survivor' }, { id });
    await prisma.job.update({ where: { id }, data: { state: 'running', runsStarted: 1, runsEnded: 0 } });
    await startService();
    await waitForState(id, 'completed');
    expect(runs.map((run) => run.key)).toEqual(['survivor']);
  });

  it('does not retry an unrecoverable error', async () => {
    behaviour = async () => {
      throw new UnrecoverableJobError('nothing to delete, ever');
    };
    const jobs = await startService();
    const id = uniqueId();
    await jobs.enqueue('blobs.delete', { key: 'd' }, { id });
    expect(await waitForState(id, 'failed')).toMatchObject({ attempts: 1, lastError: expect.stringContaining('nothing to delete') });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(runs).toHaveLength(1);
  });

  it('runs a pending job once however often it is asked for, and again when asked after it finished', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    behaviour = () => gate;
    const jobs = await startService();
    const id = uniqueId();
    await jobs.enqueue('blobs.delete', { key: 'e' }, { id });
    await jobs.enqueue('blobs.delete', { key: 'e' }, { id });
    await waitForState(id, 'running');
    await jobs.enqueue('blobs.delete', { key: 'e' }, { id });
    release();
    await waitForState(id, 'completed');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(runs).toHaveLength(1);

    await jobs.enqueue('blobs.delete', { key: 'e' }, { id });
    await waitForState(id, 'completed');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runs).toHaveLength(2);
  });

  it('enqueues again at start the jobs the database holds as queued or running but the queue lost', async () => {
    const queuedId = uniqueId();
    const runningId = uniqueId();
    const completedId = uniqueId();
    // As left by a process killed after writing the rows but before (or while) the queue had them.
    await prisma.job.createMany({
      data: [
        { id: queuedId, name: 'blobs.delete', payload: { key: 'lost-queued' }, state: 'queued', maxAttempts: 3 },
        { id: runningId, name: 'blobs.delete', payload: { key: 'lost-running' }, state: 'running', attempts: 1, maxAttempts: 3 },
        { id: completedId, name: 'blobs.delete', payload: { key: 'done' }, state: 'completed', attempts: 1, maxAttempts: 3 },
      ],
    });
    await startService();
    await waitForState(queuedId, 'completed');
    await waitForState(runningId, 'completed');
    expect(runs.map((run) => run.key).sort()).toEqual(['lost-queued', 'lost-running']);
    expect(await row(completedId)).toMatchObject({ state: 'completed', attempts: 1 });
  });

  it('fails a recorded job whose payload no longer validates, without retries', async () => {
    const id = uniqueId();
    await prisma.job.create({ data: { id, name: 'blobs.delete', payload: { path: 'not-key' }, state: 'queued', maxAttempts: 3 } });
    await startService();
    expect(await waitForState(id, 'failed')).toMatchObject({ attempts: 1, lastError: expect.stringContaining('invalid payload') });
    expect(runs).toHaveLength(0);
  });

  it("runs each kind of job in its declared queue: ingests filling theirs do not hold back a blob's deletion", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const ingested: string[] = [];
    const ingest: JobHandler<'uploads.ingest'> = {
      jobName: 'uploads.ingest',
      handle: async (payload) => {
        ingested.push(payload.uploadId);
        await gate;
      },
    };
    const idle: JobHandler[] = jobNames
      .filter((name) => name !== 'blobs.delete' && name !== 'uploads.ingest')
      .map((name) => ({ jobName: name, handle: async () => undefined }));
    // One job at a time in every queue: ingest and default each have their own slot.
    const jobs = await startService({ handlers: [handler, ingest, ...idle], environment: { KURA_JOB_CONCURRENCY: '1' } });
    const suffix = randomBytes(6).toString('hex');
    const [firstIngest, secondIngest] = [`uploads.ingest:upl_${suffix}1`, `uploads.ingest:upl_${suffix}2`];
    await jobs.enqueue('uploads.ingest', { uploadId: 'upl_1' }, { id: firstIngest });
    await jobs.enqueue('uploads.ingest', { uploadId: 'upl_2' }, { id: secondIngest });
    await waitForState(firstIngest, 'running');

    const deletion = uniqueId();
    await jobs.enqueue('blobs.delete', { key: 'while-ingesting' }, { id: deletion });
    await waitForState(deletion, 'completed');
    expect(runs).toEqual([{ key: 'while-ingesting', attempt: 1 }]);
    expect(await row(firstIngest)).toMatchObject({ state: 'running' });
    expect(await row(secondIngest)).toMatchObject({ state: 'queued' });

    release();
    await waitForState(secondIngest, 'completed');
    expect(ingested).toEqual(['upl_1', 'upl_2']);
  });

  it('refuses to consume when a known job has no handler', async () => {
    const jobs = await startService({ consume: false, handlers: [] });
    await expect(jobs.startConsuming()).rejects.toThrow('no handler registered for job(s): blobs.delete, uploads.ingest');
  });
});
