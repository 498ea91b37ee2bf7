import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordBatchReader, Vector, type RecordBatch } from 'apache-arrow';
import type { FeatureSpec } from '@kura/schema';
import { hashShard, MAX_BATCH_STEPS, writeShard, writeShardUnhashed, type ShardEpisode } from './shard-writer.js';

// The hand-laid IPC messages of the shard writer, read back by apache-arrow: every column type a
// shard has, nulls and no nulls, one batch and several per episode. (pyarrow, whose flatbuffers
// verifier is stricter, read and validated the same shards when the encoder was written.)
const features: FeatureSpec = {
  action: { dtype: 'float32', shape: [2] },
  'observation.f64': { dtype: 'float64', shape: [2] },
  'observation.flag': { dtype: 'bool', shape: [3] },
  'observation.i64': { dtype: 'int64', shape: [1] },
  'observation.image': { dtype: 'image', shape: [2, 2, 3], encoding: 'png' },
  'observation.u8': { dtype: 'uint8', shape: [2, 2] },
  'observation.video': { dtype: 'video', shape: [2, 2, 3], encoding: 'mp4' },
};

interface Options {
  task?: string;
  stepTasks?: boolean;
  reward?: boolean;
  discount?: boolean;
  timestamp?: boolean;
  terminal?: boolean;
  success?: boolean;
}

function episode(index: number, length: number, options: Options = {}): ShardEpisode {
  return {
    episodeIndex: 4_000_000_000 + index,
    fps: 10,
    videoBlobs: { 'observation.video': `datasets/d/blobs/${index}.mp4` },
    episode: {
      sourceId: String(index),
      sourceEpisode: String(index),
      file: 'steps.ndjson',
      length,
      ...(options.timestamp ? { timestamp: Float64Array.from({ length }, (_, step) => index + step * 0.05) } : {}),
      ...(options.reward ? { reward: Float32Array.from({ length }, (_, step) => (step % 3 === 0 ? Number.NaN : step)) } : {}),
      ...(options.discount ? { discount: Float32Array.from({ length }, () => 0.5) } : {}),
      ...(options.terminal ? { isTerminal: Uint8Array.from({ length }, (_, step) => (step === length - 2 ? 1 : 0)) } : {}),
      ...(options.success !== undefined ? { success: options.success } : {}),
      ...(options.stepTasks
        ? { stepTasks: Array.from({ length }, (_, step) => (step % 4 === 0 ? '' : `task ${step % 3}`)) }
        : { task: options.task ?? null }),
      features: {
        action: { kind: 'tensor', values: Float32Array.from({ length: 2 * length }, (_, value) => index + value / 8) },
        'observation.f64': { kind: 'tensor', values: Float64Array.from({ length: 2 * length }, (_, value) => -value * 1.5) },
        'observation.flag': { kind: 'tensor', values: Uint8Array.from({ length: 3 * length }, (_, value) => (value % 5 === 0 ? 1 : 0)) },
        'observation.i64': { kind: 'tensor', values: BigInt64Array.from({ length }, (_, step) => BigInt(step) * 10_000_000_000n - 5n) },
        'observation.image': {
          kind: 'image',
          frames: Array.from({ length }, (_, step) => Uint8Array.from({ length: (step % 13) + 1 }, (_, byte) => byte + step)),
        },
        'observation.u8': { kind: 'tensor', values: Uint8Array.from({ length: 4 * length }, (_, value) => value % 256) },
        'observation.video': { kind: 'video', file: 'front.mp4', timestamps: Float64Array.from({ length }, (_, step) => step / 30) },
      },
    },
  };
}

const episodes = [
  episode(0, 1),
  episode(1, 5, { task: 'pick' }),
  episode(2, 2 * MAX_BATCH_STEPS + 500, { stepTasks: true, reward: true, discount: true, timestamp: true }),
  episode(3, 7, { success: true }),
  episode(4, MAX_BATCH_STEPS, { terminal: true, task: 'place' }),
  episode(5, MAX_BATCH_STEPS + 1, { success: false, task: 'pick' }),
  episode(6, 9, { reward: true }),
];

/** What the shard must hold for `step` of an episode, column by column, as apache-arrow reads it. */
function expectedRow(item: ShardEpisode, step: number): Record<string, unknown> {
  const { episode: source } = item;
  const values = (name: string, perStep: number) => {
    const feature = source.features[name]!;
    if (feature.kind !== 'tensor') throw new Error(name);
    const part = feature.values.subarray(step * perStep, (step + 1) * perStep) as ArrayLike<number | bigint>;
    return Array.from(part, (value) => (name === 'observation.flag' ? value === 1 : value));
  };
  const task = source.stepTasks ? source.stepTasks[step] : source.task;
  const reward = source.reward?.[step];
  const video = source.features['observation.video']!;
  const image = source.features['observation.image']!;
  if (video.kind !== 'video' || image.kind !== 'image') throw new Error('fixture');
  return {
    episode_index: BigInt(item.episodeIndex),
    step_index: step,
    timestamp: source.timestamp ? source.timestamp[step] : step / item.fps,
    is_first: step === 0,
    is_last: step === source.length - 1,
    is_terminal: source.isTerminal ? source.isTerminal[step] === 1 : step === source.length - 1 && source.success === true,
    reward: reward === undefined || Number.isNaN(reward) ? null : reward,
    discount: source.discount ? source.discount[step] : null,
    language_instruction: task ? task : null,
    action: values('action', 2),
    'observation.f64': values('observation.f64', 2),
    'observation.flag': values('observation.flag', 3),
    'observation.i64': values('observation.i64', 1),
    'observation.image': Array.from(image.frames[step]!),
    'observation.u8': values('observation.u8', 4),
    'observation.video': { blob: item.videoBlobs!['observation.video'], timestamp_s: video.timestamps[step] },
  };
}

function rowOf(batch: RecordBatch, row: number): Record<string, unknown> {
  // Lists read back as vectors and structs as rows; compare them as arrays and plain objects.
  const plain = (value: unknown): unknown => {
    if (value instanceof Uint8Array) return Array.from(value);
    if (value instanceof Vector) return Array.from(value.toArray() as ArrayLike<unknown>);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value));
    return value;
  };
  return Object.fromEntries(batch.schema.fields.map((field) => [field.name, plain(batch.getChild(field.name)!.get(row))]));
}

describe('writeShard (hand-encoded record batches)', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'kura-shard-encoder-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('writes a file apache-arrow reads back value for value, with each episode a checksummed byte range of its batches', async () => {
    const path = join(folder, 'shard.arrow');
    const written = await writeShard({ path, features, episodes });
    const bytes = await readFile(path);
    expect(written.bytes).toBe(bytes.length);
    expect(written.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));

    const reader = RecordBatchReader.from(bytes).open();
    const batches = [...reader];
    expect(batches.length).toBe(episodes.reduce((sum, item) => sum + Math.ceil(item.episode.length / MAX_BATCH_STEPS), 0));
    let batchIndex = 0;
    for (const [position, item] of episodes.entries()) {
      const range = written.episodes[position]!;
      expect(range).toMatchObject({ episodeIndex: item.episodeIndex, batchStart: batchIndex });
      expect(
        createHash('sha256')
          .update(bytes.subarray(range.byteOffset, range.byteOffset + range.byteLength))
          .digest('hex'),
      ).toBe(range.checksum);
      let step = 0;
      for (const batch of batches.slice(range.batchStart, range.batchStart + range.batchCount)) {
        expect(batch.numRows).toBe(Math.min(MAX_BATCH_STEPS, item.episode.length - step));
        for (let row = 0; row < batch.numRows; row++, step++) {
          // Every 97th step of the long ones, and all of the short ones.
          if (step % 97 === 0 || item.episode.length < 20) expect(rowOf(batch, row)).toEqual(expectedRow(item, step));
        }
      }
      expect(step).toBe(item.episode.length);
      batchIndex += range.batchCount;
    }
    // Null counts travel in the field nodes: a reader trusts them.
    const long = batches[written.episodes[2]!.batchStart]!;
    expect(long.getChild('reward')!.nullCount).toBe(Math.ceil(MAX_BATCH_STEPS / 3));
    expect(long.getChild('language_instruction')!.nullCount).toBe(MAX_BATCH_STEPS / 4);
    expect(batches[0]!.getChild('discount')!.nullCount).toBe(1);
    expect(batches[0]!.getChild('language_instruction')!.nullCount).toBe(1);
  });

  it('writes the same bytes unhashed, and hashShard then gives the same hashes, episodes across 1 MiB reads included', async () => {
    // Long episodes of ~1.3 MB and more, so that episode ranges start and end inside hashShard's reads.
    const items = [...episodes, episode(7, 12_000, { reward: true }), episode(8, 3), episode(9, 30_000, { timestamp: true })];
    const hashedPath = join(folder, 'hashed.arrow');
    const unhashedPath = join(folder, 'unhashed.arrow');
    const hashed = await writeShard({ path: hashedPath, features, episodes: items });
    const unhashed = await writeShardUnhashed({ path: unhashedPath, features, episodes: items });
    expect((await readFile(unhashedPath)).equals(await readFile(hashedPath))).toBe(true);
    expect(hashed.bytes).toBeGreaterThan(3 * 1024 * 1024);
    expect(unhashed.episodes).toEqual(hashed.episodes.map(({ checksum: _checksum, ...range }) => range));
    expect(await hashShard(unhashedPath, unhashed.episodes)).toEqual({
      sha256: hashed.sha256,
      checksums: hashed.episodes.map((range) => range.checksum),
    });
  });

  it('hashShard refuses a file that ends inside an episode', async () => {
    const path = join(folder, 'cut.arrow');
    const written = await writeShardUnhashed({ path, features, episodes });
    const last = written.episodes.at(-1)!;
    await writeFile(path, (await readFile(path)).subarray(0, last.byteOffset + 10));
    await expect(hashShard(path, written.episodes)).rejects.toThrow(`ends before the byte range of its episode ${last.episodeIndex}`);
  });
});
