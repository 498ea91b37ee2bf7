// A worker SIGKILLed in every phase of an ingest, 20 runs in a loop (services mode, filesystem
// blobs): right after the upload is acknowledged (received), while its work folder is being set up
// and read (unpacking), while shards are written (converting), and after the version's manifest is
// written but before it is published (publishing). A new worker takes the job over each time; every
// upload is published exactly once, versions stay contiguous, and no shard is left unreferenced.
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase } from '../support/database.js';
import { expectShardsAsListed, restClient, sleep, type RestClient } from '../support/faults.js';
import { servicesEnvironment, startApiProcess, startWorker, type KuraProcess } from '../support/processes.js';

const RUNS = 20;
const EPISODES = 60;
const STEPS = 30;
const phases = ['received', 'unpacking', 'converting', 'publishing'] as const;
type Phase = (typeof phases)[number];

function ndjson(run: number): string {
  const lines: string[] = [];
  for (let episode = 0; episode < EPISODES; episode++)
    for (let step = 0; step < STEPS; step++)
      lines.push(
        JSON.stringify({
          episode,
          step,
          observation: { state: Array.from({ length: 16 }, (_, index) => run * 1000 + episode + step / 100 + index) },
          action: [run, episode, step],
        }),
      );
  return `${lines.join('\n')}\n`;
}

describe('a worker SIGKILLed in every phase of an ingest, 20 times', () => {
  let scratch: string;
  let dataDir: string;
  let database: { url: string; drop: () => Promise<void> };
  let environment: Record<string, string>;
  let apiProcess: KuraProcess;
  let worker: KuraProcess;
  const killed: KuraProcess[] = [];
  let api: RestClient;
  const adminKey = `kura_${'k'.repeat(43)}`;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kura-kill-phases-'));
    dataDir = join(scratch, 'data');
    database = await createTestDatabase();
    // A killed worker's job is taken back within about a second.
    environment = servicesEnvironment({ databaseUrl: database.url, dataDir, adminKey, extra: { KURA_JOB_LOCK_MS: '1000' } });
    const started = await startApiProcess(environment);
    apiProcess = started.kura;
    api = restClient(started.baseUrl, adminKey);
    worker = await startWorker(environment);
  }, 120_000);
  afterAll(async () => {
    for (const kura of [worker, apiProcess, ...killed])
      if (kura && kura.child.exitCode === null && kura.child.signalCode === null) kura.child.kill('SIGKILL');
    await database.drop();
    await rm(scratch, { recursive: true, force: true });
  });

  /** Whether an ingest of `uploadId` has reached `phase` (as its files show it) and not gone past publishing. */
  const reached = (phase: Exclude<Phase, 'received'>, uploadId: string, manifest: string): boolean => {
    const work = join(dataDir, 'work', uploadId);
    const spares = join(dataDir, 'jail-spares');
    const converting =
      existsSync(join(work, 'out')) ||
      (existsSync(spares) && readdirSync(spares).some((spare) => existsSync(join(spares, spare, 'work', 'out'))));
    if (phase === 'unpacking') return existsSync(work) && !converting;
    if (phase === 'converting') return converting && !existsSync(manifest);
    return existsSync(manifest);
  };

  it('publishes every upload exactly once, with contiguous versions and no stray shard', async () => {
    const datasetId = await api.dataset('killed-in-every-phase');
    const uploads: string[] = [];
    const hits: Record<Phase, number> = { received: 0, unpacking: 0, converting: 0, publishing: 0 };
    const started = Date.now();
    for (let run = 0; run < RUNS; run++) {
      const phase = phases[run % phases.length]!;
      const version = run + 1;
      const manifest = join(dataDir, 'blobs', 'datasets', datasetId, 'versions', String(version), 'manifest.json');
      const accepted = await api.upload(datasetId, ndjson(run));
      expect(accepted.status).toBe(202);
      const uploadId = String(accepted.body.id);
      uploads.push(uploadId);
      if (phase !== 'received') {
        const deadline = Date.now() + 20_000;
        while (!reached(phase, uploadId, manifest) && Date.now() < deadline) await sleep(1);
      }
      // Published already (the phase was missed)? Then this run killed nothing inside the ingest.
      const published = existsSync(manifest) && (await api.call(`/v1/uploads/${uploadId}`)).body.status === 'published';
      worker.child.kill('SIGKILL');
      await worker.exited;
      killed.push(worker);
      if (!published) hits[phase]++;
      worker = await startWorker(environment);
      expect(await api.finished(uploadId, 60_000)).toMatchObject({ status: 'published', version, episodeCount: EPISODES });
    }
    const seconds = Math.round((Date.now() - started) / 1000);
    console.log(`worker kills by phase: ${JSON.stringify(hits)}; ${RUNS} runs in ${seconds} s`);
    // Each phase was hit in most of its runs (a run that finds its phase already over kills an idle worker).
    for (const phase of phases) expect(hits[phase]).toBeGreaterThanOrEqual(3);

    const versions = (await api.call(`/v1/datasets/${datasetId}/versions?limit=100`)).body.items!;
    expect(versions.map((version) => Number(version.version)).sort((a, b) => a - b)).toEqual(uploads.map((_, index) => index + 1));
    const episodes = await api.episodes(datasetId);
    expect(episodes.map((episode) => episode.episodeIndex)).toEqual(Array.from({ length: RUNS * EPISODES }, (_, index) => index));
    // Every shard on disk is one the last version lists, whole.
    await expectShardsAsListed(dataDir, datasetId, RUNS);
  }, 600_000);
});
