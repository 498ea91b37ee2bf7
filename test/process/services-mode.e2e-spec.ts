// Services mode as docker-compose runs it: an api and two workers sharing Postgres, Redis (BullMQ)
// and an S3-compatible store (s3rver), each a separate process started from its built entry point.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { freePort, generateKey } from '@kura/core';
import { S3BlobStore } from '../../packages/core/src/blobs/s3-blob-store.js';
import { createTestDatabase, requireEnv } from '../support/database.js';
import { eventually } from '../support/app.js';
import { startKuraProcess, waitForHealthy, type KuraProcess } from '../support/processes.js';

const so101 = new URL('../../test/fixtures/urdf/so101/so101_new_calib.urdf', import.meta.url);

describe('services mode (api + 2 workers on Postgres, Redis, S3)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let environment: Record<string, string>;
  let api: KuraProcess;
  let workers: KuraProcess[];
  let baseUrl: string;
  const adminKey = generateKey();

  beforeAll(async () => {
    database = await createTestDatabase();
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    environment = {
      DATABASE_URL: database.url,
      REDIS_URL: requireEnv('KURA_TEST_REDIS_URL'),
      KURA_QUEUE_NAME: `kura-test-${randomBytes(4).toString('hex')}`,
      S3_ENDPOINT: requireEnv('KURA_TEST_S3_ENDPOINT'),
      S3_BUCKET: requireEnv('KURA_TEST_S3_BUCKET'),
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: 'S3RVER',
      KURA_ADMIN_KEY: adminKey,
      KURA_DATA_DIR: '/tmp/kura-services-unused',
    };
    api = startKuraProcess('api', { ...environment, PORT: String(port), HOST: '127.0.0.1' });
    await waitForHealthy(baseUrl, api);
    workers = [startKuraProcess('worker', environment), startKuraProcess('worker', environment)];
    await eventually(async () => (workers.every((worker) => worker.output().includes('worker ready')) ? true : undefined), 20_000);
  });

  afterAll(async () => {
    for (const kura of [...(workers ?? []), api]) if (kura && kura.child.exitCode === null) kura.child.kill('SIGKILL');
    await database.drop();
  });

  it('runs jobs on the workers: a replaced body model is deleted from S3', async () => {
    const headers = { Authorization: `Bearer ${adminKey}` };
    const created = await fetch(`${baseUrl}/v1/robots`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'so101', robotType: 'so101', controlFrequencyHz: 30, actionSpace: 'joint_position' }),
    });
    const robot = (await created.json()) as { id: string };
    const urdf = await readFile(so101, 'utf8');
    const put = (text: string) =>
      fetch(`${baseUrl}/v1/robots/${robot.id}/body-model`, {
        method: 'PUT',
        headers: { ...headers, 'Content-Type': 'application/xml' },
        body: text,
      });
    expect((await put(urdf)).status).toBe(200);

    const s3 = new S3BlobStore({
      endpoint: environment.S3_ENDPOINT,
      bucket: environment.S3_BUCKET!,
      region: 'us-east-1',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      forcePathStyle: true,
    });
    const keys: string[] = [];
    for await (const blob of s3.list({ prefix: `robots/${robot.id}/` })) keys.push(blob.key);
    expect(keys).toHaveLength(1);

    expect((await put(urdf.replace('name="so101_new_calib"', 'name="v2"'))).status).toBe(200);
    await eventually(async () => ((await s3.head({ key: keys[0]! })) === undefined ? true : undefined), 20_000);

    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT state, attempts FROM jobs WHERE id = $1', [`blobs.delete:${keys[0]}`]);
      expect(rows).toEqual([{ state: 'completed', attempts: 1 }]);
    } finally {
      await client.end();
    }
    // The row is written before the worker's log line reaches its stdout pipe.
    await eventually(async () => (workers.some((worker) => worker.output().includes('job completed')) ? true : undefined), 5_000);
    // The api leaves jobs to the workers in services mode.
    expect(api.output()).not.toContain('job completed');
  });

  it('stops workers and the api gracefully', async () => {
    for (const worker of workers) worker.child.kill('SIGTERM');
    for (const worker of workers) expect(await worker.exited).toBe(0);
    api.child.kill('SIGTERM');
    expect(await api.exited).toBe(0);
  });

  it('refuses to start a worker without DATABASE_URL and REDIS_URL', async () => {
    const worker = startKuraProcess('worker', { KURA_DATA_DIR: '/tmp/kura-services-unused' });
    expect(await worker.exited).toBe(1);
    expect(worker.output()).toContain('DATABASE_URL');
    expect(worker.output()).toContain('REDIS_URL');
  });
});
