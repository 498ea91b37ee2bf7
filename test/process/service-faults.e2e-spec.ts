// Services mode (api + 2 workers) on a Postgres, a Redis and an S3 server of this file's own, each
// stopped and started again while work is in flight: nothing acknowledged is lost, nothing is
// published twice or half, and requests meanwhile answer with a code naming the service (503),
// never a 500 or a dead process.
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tarGzOf } from '../support/archives.js';
import { restClient, restartablePostgres, restartableRedis, restartableS3, sleep, type RestClient } from '../support/faults.js';
import { startApiProcess, startWorker, type KuraProcess } from '../support/processes.js';

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
    const started = await startApiProcess(environment);
    processes.push(started.kura);
    for (let index = 0; index < 2; index++) processes.push(await startWorker(environment));
    api = restClient(started.baseUrl, adminKey);
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

  /** `count` uploads of `episodes` episodes each, all acknowledged; their ids. */
  const uploadMany = async (datasetId: string, count: number, episodes: number) => {
    const uploads: string[] = [];
    for (let index = 0; index < count; index++) {
      const accepted = await api.upload(datasetId, ndjson(episodes, index));
      expect(accepted.status).toBe(202);
      uploads.push(String(accepted.body.id));
    }
    return uploads;
  };

  it('Postgres stopped and started again during ingests: answers 503 DATABASE_UNAVAILABLE meanwhile, then publishes each upload once', async () => {
    const datasetId = await api.dataset('postgres-restarted');
    const uploads = await uploadMany(datasetId, 3, 150);
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

  /** A published 3,000-episode dataset's whole-dataset slice: its data URL and its bytes as downloaded now. */
  const sliceWithBytes = async (name: string) => {
    const datasetId = await api.dataset(name);
    const accepted = await api.upload(datasetId, ndjson(3000, 7));
    expect(await api.finished(String(accepted.body.id))).toMatchObject({ status: 'published' });
    const slice = await api.post('/v1/slices', { sources: [{ datasetId }] });
    expect(slice.status).toBe(201);
    const path = `/v1/slices/${String(slice.body.id)}/data`;
    return { path, url: `${api.baseUrl}${path}`, reference: await download(`${api.baseUrl}${path}`) };
  };
  const download = async (url: string) =>
    Buffer.from(await (await fetch(url, { headers: { Authorization: `Bearer ${adminKey}` } })).arrayBuffer());

  /**
   * Starts downloading `url`, reads its first chunk, runs `fault`, then reads on. Returns what
   * arrived and whether the transfer broke off; asserts it is never a short body that ends as if
   * whole: either all of `reference`, or fewer bytes and an error the client sees.
   */
  const downloadThrough = async (url: string, reference: Buffer, fault: () => Promise<void>) => {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${adminKey}` } });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const chunks: Uint8Array[] = [(await reader.read()).value!];
    await fault();
    let broken = false;
    try {
      for (let part = await reader.read(); !part.done; part = await reader.read()) chunks.push(part.value);
    } catch {
      broken = true;
    }
    const received = Buffer.concat(chunks);
    if (!broken) expect(received.equals(reference)).toBe(true);
    else expect(received.length).toBeLessThan(reference.length);
    return `${broken ? 'broken off, visibly' : 'completed whole'} (${received.length} of ${reference.length} bytes)`;
  };

  it('Postgres stopped during a slice download: the transfer ends whole or visibly broken, new ones answer 503, and after the restart the same bytes', async () => {
    const { path, url, reference } = await sliceWithBytes('download-during-outage');
    const outcome = await downloadThrough(url, reference, () => postgres.stop());
    const during = await api.call(path);
    expect([during.status, during.body.error?.code]).toEqual([503, 'DATABASE_UNAVAILABLE']);
    await postgres.start();
    expect((await download(url)).equals(reference)).toBe(true);
    console.log(`slice download when Postgres stopped: ${outcome}`);
    allAlive();
  }, 180_000);

  it("Postgres stopped during a session's steps: steps answer or 503, every acknowledged step is kept, and the episode is published once", async () => {
    const datasetId = await api.dataset('session-during-outage');
    const policy = await api.call('/v1/policies?access=public', {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: await tarGzOf({
        'policy.json': JSON.stringify({
          name: 'steady',
          runtime: 'js',
          entry: 'policy.js',
          observation: ['observation.state'],
          action: { shape: [1] },
        }),
        'policy.js': 'function act(o) { return [o["observation.state"][0] + 1]; }',
      }),
    });
    expect(policy.status).toBe(202);
    const deadline = Date.now() + 60_000;
    while ((await api.call(`/v1/policies/${String(policy.body.id)}`)).body.status === 'validating' && Date.now() < deadline)
      await sleep(100);
    const session = await api.post('/v1/sessions', { policyId: policy.body.id, datasetId });
    expect(session.status).toBe(201);
    const sessionId = String(session.body.id);

    // Steps one after another, before, during and after the outage; each answered 200 or 503. As a
    // robot would, the client sends a refused step again with its stepIndex until it is answered.
    const acknowledged: number[] = [];
    const refused: string[] = [];
    let replayed = 0;
    let stop = false;
    const stepping = (async () => {
      for (let value = 0; !stop;) {
        const reply = await api.post(`/v1/sessions/${sessionId}/steps`, {
          observation: { 'observation.state': [value] },
          stepIndex: acknowledged.length,
        });
        if (reply.status === 200) {
          acknowledged.push(Number(reply.body.stepIndex));
          if (reply.body.replayed) replayed++;
          value++;
        } else {
          refused.push(`${reply.status} ${reply.body.error?.code}`);
          await sleep(50);
        }
      }
    })();
    while (acknowledged.length < 20) await sleep(10);
    await postgres.stop();
    await sleep(1500);
    await postgres.start();
    const resumed = acknowledged.length;
    while (acknowledged.length < resumed + 20) await sleep(10);
    stop = true;
    await stepping;
    expect(new Set(refused)).toEqual(new Set(refused.length > 0 ? ['503 DATABASE_UNAVAILABLE'] : []));
    // Acknowledged steps are numbered without gaps or repeats.
    expect(acknowledged).toEqual(Array.from({ length: acknowledged.length }, (_, index) => index));

    const ended = await api.post(`/v1/sessions/${sessionId}/end`, {});
    expect(ended.status).toBe(200);
    const upload = await api.finished(String(ended.body.uploadId));
    expect(upload).toMatchObject({ status: 'published', episodeCount: 1, stepCount: acknowledged.length });
    console.log(
      `session steps while Postgres restarted: ${acknowledged.length} acknowledged (${replayed} of them replays of a recorded step), ${refused.length} refused with 503 and sent again`,
    );
    allAlive();
  }, 180_000);

  it('Redis restarted (losing every queued job) while jobs are queued and running: each upload is published once', async () => {
    const datasetId = await api.dataset('redis-restarted');
    const uploads = await uploadMany(datasetId, 6, 100);
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

  it('S3 stopped mid-download: transfers end whole, or break off visibly, or answer 503 — never a short body that looks whole — and after the restart the same bytes', async () => {
    const { url, reference } = await sliceWithBytes('s3-download');
    const headers = { Authorization: `Bearer ${adminKey}` };
    const outcome = await downloadThrough(url, reference, () => s3.stop());
    // A download asked for meanwhile: 503 when its first bytes need the store, else (its prelude is
    // cached) it starts and breaks off visibly — never a 200 that ends as if whole.
    const during = await fetch(url, { headers })
      .then(async (reply) => {
        const bytes = Buffer.from(await reply.arrayBuffer());
        return {
          status: reply.status,
          code: reply.status === 503 ? (JSON.parse(bytes.toString('utf8')) as { error: { code: string } }).error.code : undefined,
          broken: false,
        };
      })
      .catch(() => ({ status: 0, code: undefined, broken: true }));
    expect(during.broken || (during.status === 503 && during.code === 'BLOB_STORE_UNAVAILABLE')).toBe(true);
    await s3.start();
    expect((await download(url)).equals(reference)).toBe(true);
    console.log(
      `slice download when S3 stopped: ${outcome}; one asked for meanwhile: ${during.broken ? 'broken off' : `${during.status} ${during.code}`}`,
    );
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
