// The disk fills up under the blob store or the work folder (a small tmpfs mounted there, as root):
// uploads fail STORAGE_FULL with nothing published and nothing of theirs left behind, the server
// stays healthy, and once there is room again the next upload publishes.
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mountTmpfs, restClient, tmpfsUnavailable, unmount, usedBytes, type RestClient } from '../support/faults.js';
import { startKuraProcess, waitForHealthy, type KuraProcess } from '../support/processes.js';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { freePort } from '@kura/core';

const unavailable = tmpfsUnavailable();
if (unavailable) console.warn(`disk-full tests skipped: ${unavailable} (run the tests as root on Linux to include them)`);
const describeWithTmpfs = unavailable ? describe.skip : describe;

const MiB = 1024 * 1024;
/** 50 steps of 32 state numbers an episode (~32 KB of NDJSON), ~7 KB as Arrow. */
function upload(episodes: number): string {
  const lines: string[] = [];
  for (let episode = 0; episode < episodes; episode++)
    for (let step = 0; step < 50; step++) {
      const state = Array.from({ length: 32 }, (_, index) => Math.fround(episode * 0.37 + step / 100 + index * 1.1));
      lines.push(JSON.stringify({ episode, step, observation: { state }, action: [episode, step] }));
    }
  return `${lines.join('\n')}\n`;
}

describeWithTmpfs('a full disk (tmpfs under the data folder)', () => {
  let scratch: string;
  let dataDir: string;
  const mounts: string[] = [];
  let kura: KuraProcess;
  let api: RestClient;
  const adminKey = `kura_${'f'.repeat(43)}`;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kura-disk-full-'));
    await chmod(scratch, 0o755);
    dataDir = join(scratch, 'data');
    // Blobs on 32 MiB; the work folder and the spare children's folders on 3 MiB each (the spare's
    // link into another filesystem fails, so conversions run in work/).
    for (const [folder, bytes] of [
      ['blobs', 32 * MiB],
      ['work', 3 * MiB],
      ['jail-spares', 3 * MiB],
    ] as const) {
      await mountTmpfs(join(dataDir, folder), bytes);
      mounts.push(join(dataDir, folder));
    }
    await chmod(dataDir, 0o755);
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    kura = startKuraProcess('api', { KURA_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', KURA_ADMIN_KEY: adminKey });
    await waitForHealthy(baseUrl, kura, 60_000);
    api = restClient(baseUrl, adminKey);
  });
  afterAll(async () => {
    if (kura && kura.child.exitCode === null) {
      kura.child.kill('SIGINT');
      await kura.exited;
    }
    for (const mount of mounts.reverse()) unmount(mount);
    await rm(scratch, { recursive: true, force: true });
  });

  const healthy = async () => expect((await api.health()).body).toMatchObject({ status: 'ok' });
  const versionsOf = async (datasetId: string) => (await api.call(`/v1/datasets/${datasetId}/versions`)).body.items!;

  it('refuses an upload larger than the blob store has room for with 507 STORAGE_FULL, keeping none of its bytes', async () => {
    const datasetId = await api.dataset('too-big');
    const before = usedBytes(join(dataDir, 'blobs'));
    const reply = await api.upload(datasetId, upload(1100)); // ~35 MB into 32 MiB
    expect(reply.status).toBe(507);
    expect(reply.body.error).toMatchObject({ code: 'STORAGE_FULL' });
    expect(usedBytes(join(dataDir, 'blobs')) - before).toBeLessThan(64 * 1024);
    expect((await api.call(`/v1/datasets/${datasetId}/uploads`)).body.items).toEqual([]);
    await healthy();
  });

  it('fails an upload whose shards do not fit with STORAGE_FULL, publishes nothing, and takes the next one once there is room', async () => {
    const datasetId = await api.dataset('shards-do-not-fit');
    const body = upload(300); // ~2 MB of shards
    // Room for the upload's bytes and 256 KiB more: its shards (~2 MB) cannot follow.
    const filler = join(dataDir, 'blobs', 'filler');
    const free = 32 * MiB - usedBytes(join(dataDir, 'blobs'));
    await writeFile(filler, Buffer.alloc(free - body.length - 256 * 1024));
    const accepted = await api.upload(datasetId, body);
    expect(accepted.status).toBe(202);
    const failed = await api.finished(String(accepted.body.id));
    expect(failed).toMatchObject({ status: 'failed', errors: [expect.objectContaining({ code: 'STORAGE_FULL' })], version: null });
    expect(await versionsOf(datasetId)).toEqual([]);
    // No shard of it stays behind.
    const shards = await readdir(join(dataDir, 'blobs', 'datasets', datasetId, 'shards')).catch(() => []);
    expect(shards).toEqual([]);
    await healthy();

    await rm(filler);
    const again = await api.upload(datasetId, body);
    expect(again.status).toBe(202);
    expect(await api.finished(String(again.body.id))).toMatchObject({ status: 'published', version: 1, episodeCount: 300 });
    expect((await versionsOf(datasetId)).map((version) => version.version)).toEqual([1]);
  });

  it('fails an upload whose conversion fills the work folder with STORAGE_FULL, then converts the next one', async () => {
    const datasetId = await api.dataset('work-folder-full');
    const accepted = await api.upload(datasetId, upload(600)); // ~4 MB of shards into a 3 MiB work folder
    expect(accepted.status).toBe(202);
    const failed = await api.finished(String(accepted.body.id));
    expect(failed).toMatchObject({ status: 'failed', errors: [expect.objectContaining({ code: 'STORAGE_FULL' })] });
    expect(String((failed.errors as Array<{ message: string }>)[0]!.message)).toContain('work folder');
    expect(await versionsOf(datasetId)).toEqual([]);
    // The work folder is cleared just after the upload is marked failed.
    const cleared = Date.now() + 10_000;
    while (usedBytes(join(dataDir, 'work')) >= 64 * 1024 && Date.now() < cleared) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(usedBytes(join(dataDir, 'work'))).toBeLessThan(64 * 1024);
    await healthy();

    const small = await api.upload(datasetId, upload(20));
    expect(await api.finished(String(small.body.id))).toMatchObject({ status: 'published', version: 1, episodeCount: 20 });
  });
});
