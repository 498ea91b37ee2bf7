// Uploads converted while they arrive (ConversionChildren.startArriving): the jailed child reads the
// body as the parent writes it, makes the same shards as a conversion of the stored file, and an
// abandoned upload leaves no child and no file behind. Runs the built child (packages/core/dist).
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ImportError } from '@kura/formats';
import { chooseJailLevel } from '@kura/jail';
import { ConversionChildren, type ConversionHandlers, type ConvertedShard } from './jailed-conversion.js';
import { testConversionRequest } from './testing.js';
import { READING_FILE } from './upload-conversion.js';

const level = chooseJailLevel('auto').level;
const limits = { memoryBytes: 1024 * 1024 * 1024, cpuSeconds: 60, wallClockMs: 60_000, fileSizeBytes: 1024 * 1024 * 1024 };

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'kura-arriving-'));
  await chmod(folder, 0o755);
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** ~3 MB of Kura NDJSON: 400 episodes of 10 steps with 32-value states and a task each. */
function ndjson(): Buffer {
  const lines = [];
  for (let episode = 0; episode < 400; episode++)
    for (let step = 0; step < 10; step++)
      lines.push(
        JSON.stringify({
          episode,
          step,
          observation: { state: Array.from({ length: 32 }, (_, index) => Math.sin(episode + step / 7 + index)) },
          action: [step, episode % 3],
          language: `task ${episode % 5}`,
        }),
      );
  return Buffer.from(`${lines.join('\n')}\n`);
}

interface Collected {
  handlers: ConversionHandlers;
  shards: ConvertedShard[];
  formats: string[];
}

function collecting(): Collected {
  const collected: Collected = {
    shards: [],
    formats: [],
    handlers: {
      format: async (format) => void collected.formats.push(format),
      warning: () => undefined,
      progress: async () => undefined,
      shard: async (shard) => void collected.shards.push(shard),
    },
  };
  return collected;
}

/** What a shard is, without where it was written: its bytes' sha256 and its episodes. */
async function contents(shards: ConvertedShard[]) {
  return Promise.all(
    shards.map(async (shard) => ({
      sha256: createHash('sha256')
        .update(await readFile(shard.path))
        .digest('hex'),
      reported: shard.sha256,
      episodes: shard.episodes,
    })),
  );
}

/** Sends `body` in 64 KiB chunks, pausing now and then as a network would. */
async function trickle(body: Buffer, write: (chunk: Buffer) => void, upTo = body.length): Promise<void> {
  for (let offset = 0, sent = 0; offset < upTo; offset += 64 * 1024, sent++) {
    write(body.subarray(offset, Math.min(offset + 64 * 1024, upTo)));
    if (sent % 8 === 7) await sleep(5);
  }
}

describe(`conversions of arriving uploads (level ${level})`, () => {
  it('reads the upload as it arrives and makes the shards a conversion of the stored file makes', async () => {
    const body = ndjson();
    const stored = join(folder, 'stored.ndjson');
    await writeFile(stored, body);
    const work = join(folder, 'stored-work');
    await mkdir(work);
    const children = new ConversionChildren({ level, limits, root: join(folder, 'spares') });
    try {
      const usual = collecting();
      const usualOutcome = await children.convert(testConversionRequest({ rawPath: stored, work, shardBytes: 256 * 1024 }), usual.handlers);
      expect(usual.shards.length).toBeGreaterThan(3);
      const expected = await contents(usual.shards);

      const { rawPath: _rawPath, work: _work, ...request } = testConversionRequest({ rawPath: '', work: '', shardBytes: 256 * 1024 });
      const arriving = await children.startArriving(request, body.length, 'written');
      expect(arriving).toBeDefined();
      let settled = false;
      void arriving!.result.then(() => (settled = true));
      // Half the body: the child is already reading episodes (it keeps the one it reads in reading.json).
      const half = Math.floor(body.length / 2 / (64 * 1024)) * 64 * 1024;
      await trickle(body.subarray(0, half), (chunk) => arriving!.write(chunk));
      const [spare] = await readdir(join(folder, 'spares'));
      const reading = join(folder, 'spares', spare!, 'work', READING_FILE);
      const episodeRead = async () => {
        try {
          return (JSON.parse(await readFile(reading, 'utf8')) as { episode: number }).episode;
        } catch {
          return undefined; // not written yet
        }
      };
      for (let tries = 0; ((await episodeRead()) ?? 0) < 10 && tries < 1000; tries++) await sleep(10);
      expect(await episodeRead()).toBeGreaterThanOrEqual(10);
      expect(settled).toBe(false);
      await trickle(body.subarray(half), (chunk) => arriving!.write(chunk));
      expect(await arriving!.arrived()).toBe(true);
      // Nothing is handed over before the ingest job asks: then in order, as the usual conversion does.
      const early = collecting();
      let shardsSeen: Awaited<ReturnType<typeof contents>> = [];
      const outcome = await arriving!.replay({
        ...early.handlers,
        // Read before replay() returns: the spare's folder goes with it.
        shard: async (shard) => void (shardsSeen = [...shardsSeen, ...(await contents([shard]))]),
      });
      expect(settled).toBe(true);
      expect(outcome).toEqual(usualOutcome);
      expect(shardsSeen).toEqual(expected);
      expect(shardsSeen.every((shard) => shard.sha256 === shard.reported)).toBe(true);
      expect((await readdir(join(folder, 'spares'))).length).toBeLessThanOrEqual(1); // only the next spare
    } finally {
      await children.close();
    }
    expect(await readdir(join(folder, 'spares'))).toEqual([]);
  });

  it('reads the file the body is stored in when it is shared, and copies nothing', async () => {
    const root = join(folder, 'shared');
    const children = new ConversionChildren({ level, limits, root });
    try {
      const body = ndjson();
      const stored = join(folder, 'being-stored');
      const handle = await open(stored, 'wx');
      const { rawPath: _rawPath, work: _work, ...request } = testConversionRequest({ rawPath: '', work: '' });
      const arriving = await children.startArriving(request, body.length, 'shared');
      await arriving!.share(stored);
      const [spare] = await readdir(root);
      // Chunks handed over besides are not written: the child's file is the stored one.
      let storing = Promise.resolve();
      await trickle(body, (chunk) => {
        arriving!.write(chunk);
        storing = storing.then(async () => void (await handle.write(chunk)));
      });
      await storing;
      await handle.close();
      expect((await stat(join(root, spare!, 'in', 'raw'))).ino).toBe((await stat(stored)).ino);
      expect(await arriving!.arrived()).toBe(true);
      const outcome = await arriving!.replay(collecting().handlers);
      expect(outcome).toMatchObject({ format: 'kura-ndjson', episodes: 400, steps: 4000 });
    } finally {
      await children.close();
    }
  });

  it('ends the child and removes what it wrote when the upload breaks off', async () => {
    const root = join(folder, 'abandoned');
    const children = new ConversionChildren({ level, limits, root });
    try {
      const body = ndjson();
      const { rawPath: _rawPath, work: _work, ...request } = testConversionRequest({ rawPath: '', work: '' });
      const arriving = await children.startArriving(request, body.length, 'written');
      await trickle(body, (chunk) => arriving!.write(chunk), body.length / 2);
      await arriving!.abandon();
      expect(await arriving!.result).toEqual({ error: expect.any(ImportError) });
      // A chunk after the end is ignored, not written into a file that is gone.
      arriving!.write(Buffer.from('{}\n'));
      const left = await readdir(root);
      expect(left.length).toBeLessThanOrEqual(1); // at most the next spare, which holds nothing of this upload
      for (const spare of left) expect(await readdir(join(root, spare, 'in'))).toEqual([]);
    } finally {
      await children.close();
    }
  });

  it('fails as the stored upload would when it is not what it claims to be', async () => {
    const children = new ConversionChildren({ level, limits, root: join(folder, 'invalid') });
    try {
      const body = Buffer.concat([ndjson(), Buffer.from('{"episode": 1, "step": \n')]);
      const { rawPath: _rawPath, work: _work, ...request } = testConversionRequest({ rawPath: '', work: '' });
      const arriving = await children.startArriving(request, body.length, 'written');
      await trickle(body, (chunk) => arriving!.write(chunk));
      await arriving!.arrived();
      const result = await arriving!.result;
      expect(result).toEqual({ error: expect.objectContaining({ code: 'NDJSON_INVALID_JSON' }) });
      await expect(arriving!.replay(collecting().handlers)).rejects.toMatchObject({ code: 'NDJSON_INVALID_JSON' });
    } finally {
      await children.close();
    }
  });
});
