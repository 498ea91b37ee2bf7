// Services mode (api + 2 workers) on a Postgres, a Redis and an S3 server of this file's own, each
// stopped and started again while work is in flight: nothing acknowledged is lost, nothing is
// published twice or half, and requests meanwhile answer with a code naming the service (503),
// never a 500 or a dead process.
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '@kura/core';
import { restClient, restartablePostgres, restartableRedis, restartableS3, sleep, type RestClient } from '../support/faults.js';
import { startKuraProcess, waitForHealthy, type KuraProcess } from '../support/processes.js';

const BUCKET = 'kura-faults';
const STEPS = 20;

function ndjson(episodes: number, tag: number): string {
  const lines: string[] = [];
  for (let episode = 0; episode < episodes; episode++)
    for (let step = 0; step < STEPS; step++)
      lines.push(JSON.stringify({ episode, step, observation: { state: [tag, episode, step, 1, 2, 3] }, action: [episode, step] }));
  return `${lines.join('\n')}\n`;
}

describe('services mode with Postgres, Redis and S3 restarted under load', () => {
  let scratch: string;
  let postgres: Awaited<ReturnType<typeof restartablePostgres>>;
  let redis: Awaited<ReturnType<typeof restartableRedis>>;
  let s3: Awaited<ReturnType<typeof restartableS3>>;
  let environment: Record<string, string>;
  const processes: KuraProcess[] = [];
  let api: RestClient;
  const adminKey = `kura_${'s'.repeat(43)}`;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kura-service-faults-'));
    await chmod(scratch, 0o755); // the test's Postgres runs as `postgres`
    [postgres, redis, s3] = await Promise.all([
      restartablePostgres(join(scratch, 'pg')),
      restartableRedis(),
      restartableS3(join(scratch, 's3'), BUCKET),
    ]);
    const port = await freePort();
    environment = {
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      KURA_QUEUE_NAME: `kura-faults-${randomBytes(4).toString('hex')}`,
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: BUCKET,
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: 'S3RVER',
      KURA_ADMIN_KEY: adminKey,
      KURA_DATA_DIR: join(scratch, 'data'),
      // A killed or cut-off worker's job comes back within a second; lost jobs are looked for every second.
      KURA_JOB_LOCK_MS: '1000',
      KURA_JOB_RECOVER_MS: '1000',
    };
    const apiProcess = startKuraProcess('api', { ...environment, PORT: String(port), HOST: '127.0.0.1' });
    processes.push(apiProcess);
    await waitForHealthy(`http://127.0.0.1:${port}`, apiProcess, 60_000);
    for (let index = 0; index < 2; index++) {
      const worker = startKuraProcess('worker', environment);
      processes.push(worker);
      const deadline = Date.now() + 30_000;
      while (!worker.output().includes('worker ready')) {
        if (Date.now() > deadline || worker.child.exitCode !== null) throw new Error(`worker did not start:\n${worker.output()}`);
        await sleep(50);
      }
    }
    api = restClient(`http://127.0.0.1:${port}`, adminKey);
  }, 120_000);

  afterAll(async () => {
    for (const kura of processes) if (kura.child.exitCode === null && kura.child.signalCode === null) kura.child.kill('SIGKILL');
    await Promise.all([postgres?.stop(), redis?.stop(), s3?.stop()]);
    await rm(scratch, { recursive: true, force: true });
  });

  const allAlive = () => expect(processes.map((kura) => kura.child.exitCode ?? kura.child.signalCode)).toEqual(processes.map(() => null));

  /** Every upload published once, the dataset's versions 1..n with one upload each, every episode once. */
  const expectPublishedOnce = async (datasetId: string, uploadIds: string[], episodesEach: number) => {
    for (const id of uploadIds) expect(await api.finished(id)).toMatchObject({ status: 'published', episodeCount: episodesEach });
    const versions = (await api.call(`/v1/datasets/${datasetId}/versions?limit=100`)).body.items!;
    expect(versions.map((version) => Number(version.version)).sort((a, b) => a - b)).toEqual(uploadIds.map((_, index) => index + 1));
    expect(new Set(versions.map((version) => version.uploadId))).toEqual(new Set(uploadIds));
    const episodes = await api.episodes(datasetId);
    expect(episodes.map((episode) => episode.episodeIndex)).toEqual(
      Array.from({ length: uploadIds.length * episodesEach }, (_, index) => index),
    );
  };

  it('Postgres stopped and started again during ingests: answers 503 DATABASE_UNAVAILABLE meanwhile, then publishes each upload once', async () => {
    const datasetId = await api.dataset('postgres-restarted');
    const uploads: string[] = [];
    for (let index = 0; index < 3; index++) {
      const accepted = await api.upload(datasetId, ndjson(150, index));
      expect(accepted.status).toBe(202);
      uploads.push(String(accepted.body.id));
    }
    await postgres.stop();
    const during = await Promise.all([api.call(`/v1/uploads/${uploads[0]}`), api.upload(datasetId, ndjson(5, 9)), api.health()]);
    expect(during.map((reply) => [reply.status, reply.body.error?.code ?? reply.body.status])).toEqual([
      [503, 'DATABASE_UNAVAILABLE'],
      [503, 'DATABASE_UNAVAILABLE'],
      [503, 'error'],
    ]);
    await sleep(3000);
    await postgres.start();
    const restarted = Date.now();
    await expectPublishedOnce(datasetId, uploads, 150);
    console.log(`Postgres restart: 3 uploads published ${Date.now() - restarted} ms after it was back`);
    allAlive();
  }, 180_000);

  it('Redis restarted (losing every queued job) while jobs are queued and running: each upload is published once', async () => {
    const datasetId = await api.dataset('redis-restarted');
    const uploads: string[] = [];
    for (let index = 0; index < 6; index++) {
      const accepted = await api.upload(datasetId, ndjson(100, index));
      expect(accepted.status).toBe(202);
      uploads.push(String(accepted.body.id));
    }
    await redis.stop();
    // Accepted while Redis is down: the job is recorded in Postgres and enqueued once Redis is back.
    const whileDown = await api.upload(datasetId, ndjson(100, 6));
    expect(whileDown.status).toBe(202);
    uploads.push(String(whileDown.body.id));
    expect((await api.health()).body.checks).toMatchObject({ database: 'ok', blobs: 'ok' });
    await sleep(2000);
    await redis.start();
    const restarted = Date.now();
    await expectPublishedOnce(datasetId, uploads, 100);
    console.log(`Redis restart: ${uploads.length} uploads published ${Date.now() - restarted} ms after it was back`);
    allAlive();
  }, 180_000);

  it('S3 stopped mid-upload and mid-ingest: the upload is refused with 503 BLOB_STORE_UNAVAILABLE, the ingest waits and publishes once', async () => {
    const datasetId = await api.dataset('s3-restarted');
    const first = await api.upload(datasetId, ndjson(200, 1));
    expect(first.status).toBe(202);
    // The worker now reads the upload from S3 and writes shards to it.
    await s3.stop();
    const refused = await api.upload(datasetId, ndjson(200, 2), { 'Idempotency-Key': 'second-upload' });
    expect([refused.status, refused.body.error?.code]).toEqual([503, 'BLOB_STORE_UNAVAILABLE']);
    expect((await api.health()).body.checks).toMatchObject({ database: 'ok', queue: 'ok' });
    await sleep(2000);
    await s3.start();
    const restarted = Date.now();
    // The refused upload was not acknowledged: sent again, it is taken.
    const second = await api.upload(datasetId, ndjson(200, 2), { 'Idempotency-Key': 'second-upload' });
    expect(second.status).toBe(202);
    await expectPublishedOnce(datasetId, [String(first.body.id), String(second.body.id)], 200);
    console.log(`S3 restart: both uploads published ${Date.now() - restarted} ms after it was back`);
    allAlive();
  }, 180_000);
});
