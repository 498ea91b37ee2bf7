// A worker killed in the middle of a training run (services mode: api + worker over BullMQ): the run
// ends `failed` with WORKER_LOST once another worker takes the job again — never run twice, no trainer
// process left behind, its work folder removed, and no policy registered.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort, generateKey } from '@kura/core';
import { eventually } from '../support/app.js';
import { tarGzOf } from '../support/archives.js';
import { createTestDatabase, requireEnv } from '../support/database.js';
import { startKuraProcess, waitForHealthy, type KuraProcess } from '../support/processes.js';

/** Processes whose command line names `text` (the trainer's bwrap names its run's folder). */
async function processesNaming(text: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.includes(text)) found.push(Number(entry));
  }
  return found;
}

describe('a worker killed mid-run', () => {
  let database: { url: string; drop: () => Promise<void> };
  let scratch: string;
  let environment: Record<string, string>;
  let api: KuraProcess;
  const workers: KuraProcess[] = [];
  let baseUrl: string;
  const adminKey = generateKey();

  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${adminKey}`, ...(body !== undefined ? { 'Content-Type': contentType } : {}) },
      ...(body !== undefined ? { body: body instanceof Buffer ? body : typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const startWorker = async () => {
    const worker = startKuraProcess('worker', environment);
    workers.push(worker);
    await eventually(async () => (worker.output().includes('worker ready') ? true : undefined), 20_000);
    return worker;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    scratch = await mkdtemp(join(tmpdir(), 'kura-worker-lost-'));
    await chmod(scratch, 0o755);
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    environment = {
      DATABASE_URL: database.url,
      REDIS_URL: requireEnv('KURA_TEST_REDIS_URL'),
      KURA_QUEUE_NAME: `kura-test-${randomBytes(4).toString('hex')}`,
      KURA_ADMIN_KEY: adminKey,
      KURA_DATA_DIR: join(scratch, 'data'),
      KURA_TRAINING_DIR: join(scratch, 'training'),
      // A lost worker's job is noticed (stalled) within seconds rather than BullMQ's default 30.
      KURA_JOB_LOCK_MS: '2000',
    };
    api = startKuraProcess('api', { ...environment, PORT: String(port), HOST: '127.0.0.1' });
    await waitForHealthy(baseUrl, api);
  }, 60_000);
  afterAll(async () => {
    for (const kura of [...workers, api]) if (kura && kura.child.exitCode === null) kura.child.kill('SIGKILL');
    await database.drop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('fails the run WORKER_LOST, with no trainer process left and nothing registered', async () => {
    const worker = await startWorker();
    const robot = await call('POST', '/v1/robots', {
      name: 'arm',
      robotType: 'so101',
      controlFrequencyHz: 10,
      actionSpace: 'joint_position',
    });
    const dataset = await call('POST', '/v1/datasets', { name: 'runs', robotId: robot.body.id, access: 'public' });
    const datasetId = dataset.body.id as string;
    const lines = Array.from({ length: 200 }, (_, index) =>
      JSON.stringify({ episode: Math.floor(index / 10), step: index % 10, observation: { state: [index, 1] }, action: [0] }),
    );
    const upload = await call(
      'POST',
      `/v1/datasets/${datasetId}/uploads?format=kura-ndjson`,
      `${lines.join('\n')}\n`,
      'application/x-ndjson',
    );
    expect(upload.status).toBe(202);
    await eventually(
      async () => ((await call('GET', `/v1/uploads/${String(upload.body.id)}`)).body.status === 'published' ? true : undefined),
      60_000,
    );

    const bundle = await tarGzOf({
      'trainer.json': JSON.stringify({
        name: 'sleeper',
        runtime: 'python',
        entry: 'train.py',
        features: ['observation.state'],
        resources: { cpuSeconds: 600, memoryMb: 512, wallSeconds: 600 },
      }),
      'train.py': 'import time\nprint("started", flush=True)\ntime.sleep(600)\n',
    });
    const trainer = await call('POST', '/v1/trainers', bundle, 'application/octet-stream');
    expect(trainer.status).toBe(202);
    await eventually(
      async () => ((await call('GET', `/v1/trainers/${String(trainer.body.id)}`)).body.status === 'ready' ? true : undefined),
      60_000,
    );
    const training = await call('POST', '/v1/trainings', { trainerId: trainer.body.id, sources: [{ datasetId }] });
    expect(training.status).toBe(202);
    const id = training.body.id as string;
    await eventually(async () => ((await call('GET', `/v1/trainings/${id}`)).body.status === 'running' ? true : undefined), 60_000);
    // `running` is recorded just before the jail starts: wait for its process.
    await eventually(async () => ((await processesNaming(id)).length > 0 ? true : undefined), 10_000);

    worker.child.kill('SIGKILL');
    await worker.exited;
    // The jail dies with its parent: no trainer outlives the worker.
    // Seconds on a loaded machine: what matters is that none is left, not how fast it goes.
    await eventually(async () => ((await processesNaming(id)).length === 0 ? true : undefined), 30_000);

    await startWorker();
    const lost = await eventually(async () => {
      const now = await call('GET', `/v1/trainings/${id}`);
      return now.body.status === 'failed' ? now.body : undefined;
    }, 60_000);
    expect(lost).toMatchObject({ status: 'failed', policyId: null, error: { code: 'WORKER_LOST' } });
    expect(existsSync(join(scratch, 'training', id))).toBe(false);
    expect((await call('GET', '/v1/policies')).body.items).toEqual([]);
  }, 240_000);
});
