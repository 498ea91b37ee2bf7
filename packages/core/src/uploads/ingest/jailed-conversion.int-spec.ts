// Conversions in jailed children, with a spare child started ahead (ConversionChildren): the spare
// converts one upload only, reads the upload through a read-only link, and leaves nothing behind.
// Runs the built child (packages/core/dist): `npm test` builds first.
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chooseJailLevel } from '@kura/jail';
import { ConversionChildren, type ConversionHandlers, type ConvertedShard } from './jailed-conversion.js';
import { testConversionRequest } from './testing.js';

const level = chooseJailLevel('auto').level;
const limits = { memoryBytes: 1024 * 1024 * 1024, cpuSeconds: 60, wallClockMs: 60_000, fileSizeBytes: 1024 * 1024 * 1024 };

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'kura-children-'));
  await chmod(folder, 0o755);
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

async function upload(name: string, episodes: number): Promise<{ rawPath: string; work: string }> {
  const work = join(folder, `${name}-work`);
  await mkdir(work);
  const rawPath = join(folder, `${name}.ndjson`);
  const lines = [];
  for (let episode = 0; episode < episodes; episode++)
    for (let step = 0; step < 5; step++)
      lines.push(JSON.stringify({ episode, step, observation: { state: [episode, step] }, action: [step] }));
  await writeFile(rawPath, `${lines.join('\n')}\n`);
  return { rawPath, work };
}

function collecting(): { handlers: ConversionHandlers; shards: ConvertedShard[] } {
  const shards: ConvertedShard[] = [];
  return {
    shards,
    handlers: {
      format: async () => undefined,
      warning: () => undefined,
      progress: async () => undefined,
      shard: async (shard) => void shards.push(shard),
    },
  };
}

const sha256 = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

describe(`conversion children (level ${level})`, () => {
  it('converts in the spare, one upload per child, leaves the upload unchanged and removes the spare’s folder', async () => {
    const root = join(folder, 'spares');
    const children = new ConversionChildren({ level, limits, root });
    try {
      await children.prepare();
      const [spareFolder] = await readdir(root);
      expect(spareFolder).toMatch(new RegExp(`^${process.pid}-\\d+$`));

      const first = await upload('first', 3);
      const before = await sha256(first.rawPath);
      const { handlers, shards } = collecting();
      const outcome = await children.convert(testConversionRequest(first), handlers);
      expect(outcome).toMatchObject({ format: 'kura-ndjson', episodes: 3, steps: 15 });
      // The shards were written in the spare's own folder, which the parent takes them from.
      expect(shards[0]!.path.startsWith(join(root, spareFolder!, 'work'))).toBe(true);
      expect(await sha256(first.rawPath)).toBe(before);

      // The next upload gets a new child and a new folder; the first child's folder is gone.
      const second = await upload('second', 2);
      expect(await children.convert(testConversionRequest(second), collecting().handlers)).toMatchObject({ episodes: 2, steps: 10 });
      expect(await readdir(root)).not.toContain(spareFolder);
    } finally {
      await children.close();
    }
    // Closed: its spare is gone with its folder.
    expect(await readdir(root)).toEqual([]);
  });

  it('converts in a child started at once when there is no spare', async () => {
    const children = new ConversionChildren({ level, limits, root: join(folder, 'no-spare') });
    try {
      const paths = await upload('direct', 1);
      expect(await children.convert(testConversionRequest(paths), collecting().handlers)).toMatchObject({ episodes: 1, steps: 5 });
    } finally {
      await children.close();
    }
  });
});
