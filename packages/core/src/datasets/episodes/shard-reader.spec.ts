import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeShard, type ShardEpisode } from '@kura/formats';
import type { FeatureSpec } from '@kura/schema';
import { FilesystemBlobStore } from '../../blobs/filesystem-blob-store.js';
import type { EpisodesRepository, EpisodeRecord } from './episodes.repository.js';
import { ShardReader, episodeSpans } from './shard-reader.js';

const features: FeatureSpec = { 'observation.state': { dtype: 'float32', shape: [2] } };
// Episode 2 is longer than a record batch holds: two batches.
const lengths = [5, 3, 1_500, 4, 6];
const state = (episode: number, step: number, component: number) => episode * 10_000 + step * 2 + component;

function shardEpisodes(): ShardEpisode[] {
  return lengths.map((length, episode) => ({
    episodeIndex: episode,
    fps: 10,
    episode: {
      sourceId: `episode ${episode}`,
      sourceEpisode: String(episode),
      file: 'test',
      length,
      task: `task ${episode % 2}`,
      features: {
        'observation.state': { kind: 'tensor', values: Float32Array.from({ length: length * 2 }, (_, i) => state(episode, i >> 1, i & 1)) },
      },
    },
  }));
}

const shardKey = 'datasets/ds_test/shards/000001.arrow';
let scratch: string;
let blobs: FilesystemBlobStore;
let records: EpisodeRecord[];
let reader: ShardReader;

/** Flips one byte of the stored shard. */
async function flip(offset: bigint): Promise<void> {
  const file = await open(join(scratch, 'blobs', shardKey), 'r+');
  const byte = Buffer.alloc(1);
  await file.read(byte, 0, 1, Number(offset));
  byte[0] = byte[0]! ^ 0xff;
  await file.write(byte, 0, 1, Number(offset));
  await file.close();
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-shard-reader-'));
  blobs = new FilesystemBlobStore({ directory: join(scratch, 'blobs') });
  const path = join(scratch, 'shard.arrow');
  const written = await writeShard({ path, features, episodes: shardEpisodes() });
  await blobs.adoptFile({ key: shardKey, path });
  records = written.episodes.map((episode, index) => ({
    ...episode,
    version: 1,
    uploadId: 'upl_test',
    sourceEpisode: String(index),
    length: lengths[index]!,
    task: null,
    success: null,
    shardKey,
    byteOffset: BigInt(episode.byteOffset),
    byteLength: BigInt(episode.byteLength),
    bucket: 0,
  }));
  // The reader asks the repository only where a shard's first batch is.
  const episodes = { firstBatchOffset: async () => records[0]!.byteOffset } as unknown as EpisodesRepository;
  reader = new ShardReader(blobs, episodes);
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const states = (batches: Awaited<ReturnType<ShardReader['decode']>>) =>
  batches.flatMap((batch) =>
    Array.from({ length: batch.numRows }, (_, row) => Array.from(batch.getChild('observation.state')!.get(row) as Float32Array)),
  );

describe('reading episodes out of a shard', () => {
  it('reads a span in one go and deals each episode its own batches, skipping the episodes between', async () => {
    const decoded = await reader.decodeSpan([records[0]!, records[2]!, records[4]!]);
    expect(decoded.map((batches) => batches.length)).toEqual([1, 2, 1]);
    for (const [position, episode] of [0, 2, 4].entries())
      expect(states(decoded[position]!)).toEqual(
        Array.from({ length: lengths[episode]! }, (_, step) => [state(episode, step, 0), state(episode, step, 1)]),
      );
    expect(states(await reader.decode(records[3]!))).toEqual(states((await reader.decodeSpan([records[3]!]))[0]!));
  });

  it('refuses an episode whose bytes changed (SHARD_CORRUPT, naming it), not one it skips over', async () => {
    await flip(records[1]!.byteOffset + records[1]!.byteLength - 1n);
    await expect(reader.decodeSpan([records[0]!, records[2]!])).resolves.toHaveLength(2);
    await expect(reader.decodeSpan([records[0]!, records[1]!, records[2]!])).rejects.toMatchObject({
      code: 'SHARD_CORRUPT',
      details: { episode: 1 },
    });
    await flip(records[1]!.byteOffset + records[1]!.byteLength - 1n);
    await expect(reader.decodeSpan([records[0]!, records[1]!, records[2]!])).resolves.toHaveLength(3);
  });

  it('groups episodes into spans by shard, gap and size', async () => {
    const at = (shard: string, offset: number, length: number) =>
      ({ shardKey: shard, byteOffset: BigInt(offset), byteLength: BigInt(length) }) as EpisodeRecord;
    const items = [
      at('a', 0, 10),
      at('a', 10, 10),
      at('a', 25, 10),
      at('a', 100, 10),
      at('b', 110, 10),
      at('b', 120, 50),
      at('b', 170, 10),
    ];
    const spans = async (limits: { spanLimit: number; gapLimit: number }) => {
      const result: number[][] = [];
      const generator = async function* () {
        yield* items;
      };
      for await (const span of episodeSpans(generator(), (item) => item, limits)) result.push(span.map((item) => items.indexOf(item)));
      return result;
    };
    expect(await spans({ spanLimit: 1000, gapLimit: 0 })).toEqual([[0, 1], [2], [3], [4, 5, 6]]);
    expect(await spans({ spanLimit: 1000, gapLimit: 5 })).toEqual([[0, 1, 2], [3], [4, 5, 6]]);
    expect(await spans({ spanLimit: 60, gapLimit: 100 })).toEqual([[0, 1, 2], [3], [4, 5], [6]]);
  });
});
