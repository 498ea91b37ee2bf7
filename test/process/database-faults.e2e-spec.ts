// Embedded mode supervises its own Postgres: when the postmaster dies (SIGKILL by pid, mid-ingest),
// Kura starts it again on the same port and data and carries on. Meanwhile /health says degraded
// (503) and requests answer 503 DATABASE_UNAVAILABLE, never a 500 or a dead process; every
// interrupted ingest still publishes exactly once, with versions contiguous. A backend that cannot
// exit (stopped) does not keep the new postmaster from starting: Kura stops what is left of the old one.
import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { restClient, sleep, type Reply, type RestClient } from '../support/faults.js';
import { startScratchApi, type KuraProcess } from '../support/processes.js';
import { rm } from 'node:fs/promises';

const EPISODES = 300;
const STEPS = 20;

function ndjson(offset: number): string {
  const lines: string[] = [];
  for (let episode = 0; episode < EPISODES; episode++)
    for (let step = 0; step < STEPS; step++)
      lines.push(
        JSON.stringify({ episode, step, observation: { state: [offset + episode, step, 1, 2, 3, 4, 5, 6] }, action: [episode, step] }),
      );
  return `${lines.join('\n')}\n`;
}

describe('embedded Postgres killed under load (supervised by the api)', () => {
  let scratch: string;
  let kura: KuraProcess;
  let api: RestClient;
  const adminKey = `kura_${'d'.repeat(43)}`;

  beforeAll(async () => {
    const started = await startScratchApi('pg-faults', adminKey);
    ({ scratch, kura } = started);
    api = restClient(started.baseUrl, adminKey);
  });
  afterAll(async () => {
    if (kura.child.exitCode === null) {
      kura.child.kill('SIGINT');
      await kura.exited;
    }
    await rm(scratch, { recursive: true, force: true });
  });

  const postmasterPid = async () => Number((await readFile(join(scratch, 'data', 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);

  it('restarts a killed postmaster, says degraded meanwhile, and publishes every interrupted upload exactly once', async () => {
    const datasetId = await api.dataset('postmaster-killed');
    const uploads: string[] = [];
    const seen = { degraded: 0, unavailable: 0, other: [] as Reply[], downMs: [] as number[] };
    // Killed at three moments of an ingest: as it is queued, while it converts, and around publishing.
    for (const [round, delayMs] of [0, 400, 900].entries()) {
      const accepted = await api.upload(datasetId, ndjson(round * 1000));
      expect(accepted.status).toBe(202);
      uploads.push(String(accepted.body.id));
      await sleep(delayMs);
      const pid = await postmasterPid();
      process.kill(pid, 'SIGKILL');
      const killedAt = Date.now();
      // Until Postgres answers again: health and a read, as fast as they come back.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [health, read] = await Promise.all([api.health(), api.call(`/v1/uploads/${uploads.at(-1)}`)]);
        if (health.status === 503 && health.body.status === 'degraded') seen.degraded++;
        for (const reply of [read]) {
          if (reply.status === 503 && reply.body.error?.code === 'DATABASE_UNAVAILABLE') seen.unavailable++;
          else if (reply.status !== 200) seen.other.push(reply);
        }
        if (health.status === 200 && (await postmasterPid()) !== pid) {
          seen.downMs.push(Date.now() - killedAt);
          break;
        }
        // Past the deadline, what the api logged says why (a start refused, a backend that lingered).
        if (Date.now() >= deadline)
          throw new Error(`Postgres was not back 30 s after kill ${round + 1}; the api logged:\n${lastLines(kura.output(), 60)}`);
        await sleep(10);
      }
      expect(kura.child.exitCode).toBeNull();
    }
    console.log(
      `postmaster kills: healthy again after ${seen.downMs.join(', ')} ms; degraded seen ${seen.degraded} times, DATABASE_UNAVAILABLE ${seen.unavailable} times`,
    );
    expect(seen.other).toEqual([]);
    expect(seen.degraded).toBeGreaterThan(0);

    for (const id of uploads) expect(await api.finished(id)).toMatchObject({ status: 'published', episodeCount: EPISODES });
    const versions = (await api.call(`/v1/datasets/${datasetId}/versions`)).body.items!;
    expect(versions.map((version) => version.version).sort()).toEqual([1, 2, 3]);
    expect(new Set(versions.map((version) => version.uploadId))).toEqual(new Set(uploads));
    // Every episode once: indices 0..899, each upload's in one block.
    const episodes = await api.episodes(datasetId);
    expect(episodes.map((episode) => episode.episodeIndex)).toEqual(Array.from({ length: 3 * EPISODES }, (_, index) => index));
    for (const [block, version] of [...versions].sort((a, b) => Number(a.version) - Number(b.version)).entries())
      expect(new Set(episodes.slice(block * EPISODES, (block + 1) * EPISODES).map((episode) => episode.version))).toEqual(
        new Set([version.version]),
      );
    expect((await api.health()).body).toMatchObject({ status: 'ok' });
  }, 180_000);

  it('a backend of the killed postmaster that cannot exit does not keep Postgres down', async () => {
    // Stopped processes cannot notice that their postmaster died, and they hold the old shared memory
    // that a new postmaster refuses to start beside: on a loaded machine slow backends do the same.
    const pid = await postmasterPid();
    const directory = await realpath(join(scratch, 'data', 'pg'));
    const backends: number[] = [];
    for (const entry of await readdir('/proc')) {
      const candidate = Number(entry);
      if (!Number.isInteger(candidate) || candidate === pid) continue;
      if ((await readlink(`/proc/${candidate}/cwd`).catch(() => '')) === directory) backends.push(candidate);
    }
    expect(backends.length).toBeGreaterThan(0);
    for (const backend of backends) process.kill(backend, 'SIGSTOP');
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    for (;;) {
      const health = await api.health();
      if (health.status === 200 && (await postmasterPid()) !== pid) break;
      if (Date.now() - killedAt > 30_000)
        throw new Error(`Postgres was not back 30 s after the kill; the api logged:\n${lastLines(kura.output(), 60)}`);
      await sleep(20);
    }
    console.log(`postmaster killed beside stopped backends: healthy again after ${Date.now() - killedAt} ms`);
    for (const backend of backends) expect(await isGone(backend)).toBe(true);
    // The log is written asynchronously: the line may arrive after the health check.
    for (let waited = 0; !kura.output().includes('stopped backends of the ended postmaster') && waited < 5000; waited += 50)
      await sleep(50);
    expect(kura.output()).toContain('stopped backends of the ended postmaster');
    const datasetId = await api.dataset('after-a-stuck-backend');
    const accepted = await api.upload(datasetId, ndjson(0));
    expect(await api.finished(String(accepted.body.id))).toMatchObject({ status: 'published', episodeCount: EPISODES });
  }, 120_000);
});

/** Whether a process has ended (a zombie nobody has reaped yet has). */
const isGone = async (pid: number) => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
};

/** The last `count` lines of a log. */
const lastLines = (text: string, count: number) => text.trimEnd().split('\n').slice(-count).join('\n');
