// SIGKILL the embedded process while it converts an upload, again and again, then let it finish:
// the upload must be published exactly once, with every episode once, every shard whole, and no
// shard file that the version does not reference. With the default KURA_JOB_MAX_DEATHS (2) the
// third start fails the upload instead: a process that keeps dying on an upload stops trying.
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '@kura/core';
import { createTestDatabase } from '../support/database.js';
import { expectShardsAsListed } from '../support/faults.js';
import {
  servicesEnvironment,
  startKuraProcess,
  startWorker as startWorkerProcess,
  waitForHealthy,
  type KuraProcess,
} from '../support/processes.js';

const EPISODES = 120;
const STEPS = 50;

function ndjson(): Buffer {
  const lines: string[] = [];
  for (let episode = 0; episode < EPISODES; episode++) {
    for (let step = 0; step < STEPS; step++) {
      lines.push(
        JSON.stringify({
          episode,
          step,
          observation: { state: Array.from({ length: 32 }, (_, index) => episode + step / 100 + index) },
          action: [episode, step],
          language: `task ${episode % 3}`,
        }),
      );
    }
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

describe('crash safety of ingest (SIGKILL of the embedded process)', () => {
  let scratch: string;
  let dataDir: string;
  let baseUrl: string;
  let port: number;
  let kura: KuraProcess | undefined;
  const adminKey = `kura_${'c'.repeat(43)}`;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kura-crash-'));
    await chmod(scratch, 0o755);
    dataDir = join(scratch, 'data');
    port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    if (kura && kura.child.exitCode === null) {
      kura.child.kill('SIGINT');
      await kura.exited;
    }
    await rm(scratch, { recursive: true, force: true });
  });

  // Small shards, so a kill can land between shard writes as well as inside one.
  const start = async (extra: Record<string, string> = {}) => {
    kura = startKuraProcess('api', {
      ...extra,
      KURA_DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      KURA_ADMIN_KEY: adminKey,
      KURA_SHARD_BYTES: String(256 * 1024),
      KURA_JOB_BACKOFF_MS: '100',
    });
    await waitForHealthy(baseUrl, kura);
  };
  const api = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${adminKey}`, ...(init.headers ?? {}) },
    });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> },
    };
  };

  const createUpload = async () => {
    const robot = await api('/v1/robots', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'r', robotType: 'r', controlFrequencyHz: 10, actionSpace: 'other' }),
    });
    const dataset = await api('/v1/datasets', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: `crash-${Date.now()}`, robotId: robot.body.id, access: 'private' }),
    });
    const accepted = await api(`/v1/datasets/${String(dataset.body.id)}/uploads`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: ndjson(),
    });
    expect(accepted.status).toBe(202);
    return { datasetId: String(dataset.body.id), uploadId: String(accepted.body.id) };
  };

  it('fails an upload for good once its process died twice in it, instead of recovering it forever', async () => {
    await start();
    const { uploadId } = await createUpload();
    let kills = 0;
    // The run's jailed converter makes `out/` in its work folder — the upload's own, or that of the
    // spare child started as the upload arrived: a kill after that lands inside the job. The folders
    // are cleared between runs so a stale one is not taken for a new run.
    const spares = join(dataDir, 'jail-spares');
    const converting = () =>
      existsSync(join(dataDir, 'work', uploadId, 'out')) ||
      (existsSync(spares) && readdirSync(spares).some((spare) => existsSync(join(spares, spare, 'work', 'out'))));
    while (kills < 2) {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !converting()) await new Promise((resolve) => setTimeout(resolve, 2));
      expect(converting()).toBe(true);
      kura!.child.kill('SIGKILL');
      await kura!.exited;
      await rm(join(dataDir, 'work', uploadId), { recursive: true, force: true });
      await rm(spares, { recursive: true, force: true });
      kills++;
      await start();
    }
    const deadline = Date.now() + 30_000;
    let upload: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      upload = (await api(`/v1/uploads/${uploadId}`)).body;
      if (upload.status === 'published' || upload.status === 'failed') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(upload).toMatchObject({ status: 'failed', errors: [expect.objectContaining({ code: 'INGEST_CRASHED' })] });
    expect(String((upload.errors as Array<{ message: string }>)[0]!.message)).toContain('died 2 times');
    kura!.child.kill('SIGINT');
    await kura!.exited;
  });

  it('publishes the upload exactly once however often the process is killed', async () => {
    // Deaths are allowed here beyond the default 2: this test is about exactly-once, not giving up.
    await start({ KURA_JOB_MAX_DEATHS: '20' });
    const robot = await api('/v1/robots', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'r', robotType: 'r', controlFrequencyHz: 10, actionSpace: 'other' }),
    });
    const dataset = await api('/v1/datasets', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'crash', robotId: robot.body.id, access: 'private' }),
    });
    const datasetId = String(dataset.body.id);
    const accepted = await api(`/v1/datasets/${datasetId}/uploads`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: ndjson(),
    });
    expect(accepted.status).toBe(202);
    const uploadId = String(accepted.body.id);

    let killsDuringProcessing = 0;
    for (const delayMs of [0, 150, 400, 700, 1000]) {
      const deadline = Date.now() + 20_000;
      let status = '';
      while (Date.now() < deadline) {
        status = String((await api(`/v1/uploads/${uploadId}`)).body.status);
        if (status !== 'received') break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      if (status === 'published') break;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (String((await api(`/v1/uploads/${uploadId}`)).body.status) === 'processing') killsDuringProcessing++;
      kura!.child.kill('SIGKILL');
      await kura!.exited;
      await start({ KURA_JOB_MAX_DEATHS: '20' });
    }
    console.log(`crash test: killed ${killsDuringProcessing} times during processing`);
    expect(killsDuringProcessing).toBeGreaterThanOrEqual(2);

    const deadline = Date.now() + 60_000;
    let upload: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      upload = (await api(`/v1/uploads/${uploadId}`)).body;
      if (upload.status === 'published' || upload.status === 'failed') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(upload).toMatchObject({ status: 'published', episodeCount: EPISODES, stepCount: EPISODES * STEPS, version: 1 });

    const versions = (await api(`/v1/datasets/${datasetId}/versions`)).body.items!;
    expect(versions.map((version) => version.version)).toEqual([1]);
    const episodes = (await api(`/v1/datasets/${datasetId}/episodes?limit=500`)).body.items!;
    expect(episodes.map((episode) => episode.episodeIndex)).toEqual(Array.from({ length: EPISODES }, (_, index) => index));
    expect(episodes.every((episode) => episode.length === STEPS)).toBe(true);

    // Every shard file is one the version references, whole (its checksum matches), and no other exists.
    expect(await expectShardsAsListed(dataDir, datasetId, 1)).toBeGreaterThan(3);
  }, 240_000); // five restarts (each waits up to 20 s) and a minute to publish: more than the default 60 s on a loaded machine
});

describe('crash safety of ingest in services mode (SIGKILL of a worker)', () => {
  let scratch: string;
  let dataDir: string;
  let baseUrl: string;
  let apiProcess: KuraProcess;
  let database: { url: string; drop: () => Promise<void> };
  const workers: KuraProcess[] = [];
  const adminKey = `kura_${'w'.repeat(43)}`;
  let environment: Record<string, string>;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kura-crash-services-'));
    dataDir = join(scratch, 'data');
    database = await createTestDatabase();
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    // Filesystem blobs shared by the processes of this machine; a short job lock so that the job of
    // a killed worker comes back quickly.
    environment = servicesEnvironment({
      databaseUrl: database.url,
      dataDir,
      adminKey,
      extra: { KURA_SHARD_BYTES: String(256 * 1024), KURA_JOB_LOCK_MS: '1000' },
    });
    apiProcess = startKuraProcess('api', { ...environment, PORT: String(port), HOST: '127.0.0.1' });
    await waitForHealthy(baseUrl, apiProcess);
  });
  afterAll(async () => {
    for (const kura of [...workers, apiProcess])
      if (kura.child.exitCode === null && kura.child.signalCode === null) kura.child.kill('SIGKILL');
    await database.drop();
    await rm(scratch, { recursive: true, force: true });
  });

  const startWorker = async () => {
    const worker = await startWorkerProcess(environment, 20_000);
    workers.push(worker);
    return worker;
  };
  const api = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${adminKey}`, ...(init.headers ?? {}) },
    });
    return (await response.json()) as Record<string, unknown> & { items?: Array<Record<string, unknown>> };
  };

  it('finishes the upload exactly once on another worker after the first is killed mid-conversion', async () => {
    const robot = await api('/v1/robots', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'r', robotType: 'r', controlFrequencyHz: 10, actionSpace: 'other' }),
    });
    const dataset = await api('/v1/datasets', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'crash-services', robotId: robot.id, access: 'private' }),
    });
    const datasetId = String(dataset.id);
    const first = await startWorker();
    const accepted = await api(`/v1/datasets/${datasetId}/uploads`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: ndjson(),
    });
    const uploadId = String(accepted.id);

    const deadline = Date.now() + 20_000;
    while (String((await api(`/v1/uploads/${uploadId}`)).status) !== 'processing') {
      if (Date.now() > deadline) throw new Error('the upload never started processing');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // Kill while the conversion runs (it takes over a second for this upload).
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(String((await api(`/v1/uploads/${uploadId}`)).status)).toBe('processing');
    first.child.kill('SIGKILL');
    await first.exited;

    await startWorker();
    let upload: Record<string, unknown> = {};
    const finish = Date.now() + 60_000;
    while (Date.now() < finish) {
      upload = await api(`/v1/uploads/${uploadId}`);
      if (upload.status === 'published' || upload.status === 'failed') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(upload).toMatchObject({ status: 'published', episodeCount: EPISODES, stepCount: EPISODES * STEPS, version: 1 });
    const episodes = (await api(`/v1/datasets/${datasetId}/episodes?limit=500`)).items!;
    expect(episodes.map((episode) => episode.episodeIndex)).toEqual(Array.from({ length: EPISODES }, (_, index) => index));
    await expectShardsAsListed(dataDir, datasetId, 1);
  });
});
