import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { decode as decodePng } from 'fast-png';
import type { FeatureSpec } from '@kura/schema';
import { ExportError } from '../export-error.js';
import { sourceFromDirectory, sourceFromFiles } from '../source.js';
import { importAll, type ImportedAll } from '../testing/import-all.js';
import {
  expectSameEpisode,
  exportAndReimport,
  frames,
  kuraEpisodes,
  MTIME,
  strided,
  tensor,
  withDatasetId,
} from '../testing/lerobot-round-trip.js';
import { collectBytes, shardBatches } from '../testing/shard-batches.js';
import { exportLerobotTar } from './export.js';
import { lerobotImporter } from './import.js';

// Our own v2.0 fixture (fixtures/make_fixtures.py): 2 episodes present (3 and 4 steps) with a float32
// [2], a float64 [2, 2] and a float32 [2] {motors} feature, a PNG image, next.reward and next.done.
const v20Small = fileURLToPath(new URL('./fixtures/v2_0_small/', import.meta.url));
// Real LeRobot v2.1 data: YifanTian07/G1-policy-train @ d1d3bb45f16a (MIT), read-only in
// test/fixtures/lerobot_v2.1/unitree_g1; episode 29 is the one with its mp4.
const unitreeG1 = fileURLToPath(new URL('../../../../test/fixtures/lerobot_v2.1/unitree_g1/', import.meta.url));
const CAM_HIGH = 'observation.images.cam_high';
let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-lerobot-export-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** The v2.1 export, unpacked and re-imported, with its JSON-lines metadata. */
async function roundTrip(params: Parameters<typeof exportAndReimport>[1]) {
  const exported = await exportAndReimport(scratch, params);
  const jsonl = async (name: string) =>
    (await readFile(join(exported.dataset, 'meta', name), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return {
    ...exported,
    episodes: await jsonl('episodes.jsonl'),
    tasks: await jsonl('tasks.jsonl'),
    stats: await jsonl('episodes_stats.jsonl'),
  };
}

describe('exportLerobotTar: v2_0_small (images, rewards, done flags, nested shapes)', () => {
  let imported: ImportedAll;
  let exported: Awaited<ReturnType<typeof roundTrip>>;
  beforeAll(async () => {
    imported = await importAll(lerobotImporter, await sourceFromDirectory(v20Small), { validate: true });
    const { episodes } = await kuraEpisodes(imported, { firstIndex: 12 });
    exported = await roundTrip({ features: imported.features, fps: imported.fps!, robotType: 'kura_test_gripper', episodes });
  });

  it('lays the dataset out as LeRobot v2.1, data first and metadata last', () => {
    expect(exported.names).toEqual([
      'data/chunk-000/episode_000000.parquet',
      'data/chunk-000/episode_000001.parquet',
      'meta/info.json',
      'meta/episodes.jsonl',
      'meta/tasks.jsonl',
      'meta/episodes_stats.jsonl',
    ]);
    expect(exported.info).toMatchObject({
      codebase_version: 'v2.1',
      robot_type: 'kura_test_gripper',
      fps: 5,
      total_episodes: 2,
      total_frames: 7,
      total_tasks: 2,
      total_videos: 0,
      total_chunks: 1,
      chunks_size: 1000,
      splits: { train: '0:2' },
      data_path: 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet',
      video_path: null,
    });
    expect(exported.info.features).toEqual({
      action: { dtype: 'float32', shape: [2], names: { motors: ['x', 'y'] } },
      'observation.images.wrist': { dtype: 'image', shape: [2, 3, 3], names: ['height', 'width', 'channel'] },
      'observation.pose': {
        dtype: 'float64',
        shape: [2, 2],
        names: [
          ['left', 'right'],
          ['u', 'v'],
        ],
      },
      'observation.state': { dtype: 'float32', shape: [2], names: ['x', 'y'] },
      'next.reward': { dtype: 'float32', shape: [1], names: null },
      'next.done': { dtype: 'bool', shape: [1], names: null },
      timestamp: { dtype: 'float32', shape: [1], names: null },
      frame_index: { dtype: 'int64', shape: [1], names: null },
      episode_index: { dtype: 'int64', shape: [1], names: null },
      index: { dtype: 'int64', shape: [1], names: null },
      task_index: { dtype: 'int64', shape: [1], names: null },
    });
    expect(exported.episodes).toEqual([
      { episode_index: 0, tasks: ['open the drawer'], length: 3, kura_episode_index: 12 },
      { episode_index: 1, tasks: ['close the drawer'], length: 4, kura_episode_index: 13 },
    ]);
    expect(exported.tasks).toEqual([
      { task_index: 0, task: 'open the drawer' },
      { task_index: 1, task: 'close the drawer' },
    ]);
  });

  it('re-imports to the same features and rows', () => {
    const { reimported } = exported;
    expect(reimported.warnings).toEqual([]);
    expect(reimported.features).toEqual(imported.features);
    expect(reimported.fps).toBe(5);
    expect(reimported.episodes.map((episode) => episode.sourceIndex)).toEqual([0, 1]);
    reimported.episodes.forEach((episode, index) => expectSameEpisode(episode, imported.episodes[index]!, imported.features));
  });

  it('writes parquet columns as LeRobot does: lists, nested lists, image structs, int64 indices', async () => {
    const file = join(exported.dataset, 'data/chunk-000/episode_000001.parquet');
    const rows = await parquetReadObjects({ file: Uint8Array.from(await readFile(file)).buffer, utf8: false });
    // Feature columns in the order of the given feature spec (here the importer's: info.json's order).
    expect(Object.keys(rows[0]!)).toEqual([
      'observation.state',
      'observation.pose',
      'action',
      'observation.images.wrist',
      'next.reward',
      'next.done',
      'timestamp',
      'frame_index',
      'episode_index',
      'index',
      'task_index',
    ]);
    // As HF datasets writes LeRobot's files: every column OPTIONAL, the HF features in `huggingface` metadata.
    const metadata = parquetMetadata(Uint8Array.from(await readFile(file)).buffer);
    expect(
      metadata.schema.slice(1).every((element) => element.repetition_type === (element.name === 'list' ? 'REPEATED' : 'OPTIONAL')),
    ).toBe(true);
    const huggingface = metadata.key_value_metadata?.find((entry) => entry.key === 'huggingface')?.value;
    expect(JSON.parse(huggingface ?? 'null')).toEqual({
      info: {
        features: {
          'observation.state': { feature: { dtype: 'float32', _type: 'Value' }, length: 2, _type: 'Sequence' },
          'observation.pose': { shape: [2, 2], dtype: 'float64', _type: 'Array2D' },
          action: { feature: { dtype: 'float32', _type: 'Value' }, length: 2, _type: 'Sequence' },
          'observation.images.wrist': { _type: 'Image' },
          'next.reward': { dtype: 'float32', _type: 'Value' },
          'next.done': { dtype: 'bool', _type: 'Value' },
          timestamp: { dtype: 'float32', _type: 'Value' },
          frame_index: { dtype: 'int64', _type: 'Value' },
          episode_index: { dtype: 'int64', _type: 'Value' },
          index: { dtype: 'int64', _type: 'Value' },
          task_index: { dtype: 'int64', _type: 'Value' },
        },
      },
    });
    const original = imported.episodes[1]!;
    rows.forEach((row, step) => {
      expect(row.frame_index).toBe(BigInt(step));
      expect(row.episode_index).toBe(1n);
      expect(row.index).toBe(BigInt(3 + step)); // episode 0 has 3 frames
      expect(row.task_index).toBe(1n);
      expect(row['observation.pose']).toEqual([
        tensor(original, 'observation.pose').slice(step * 4, step * 4 + 2),
        tensor(original, 'observation.pose').slice(step * 4 + 2, step * 4 + 4),
      ]);
      expect(row['observation.images.wrist']).toEqual({
        bytes: frames(original, 'observation.images.wrist')[step],
        path: `frame_${String(step).padStart(6, '0')}.png`,
      });
      expect(row['next.done']).toBe(step === 3);
    });
  });

  it('writes per-episode stats as LeRobot v2.1 does', () => {
    const [first] = exported.stats as Array<{ episode_index: number; stats: Record<string, Record<string, unknown>> }>;
    const state = tensor(imported.episodes[0]!, 'observation.state');
    const xs = [state[0]!, state[2]!, state[4]!];
    const mean = (xs[0]! + xs[1]! + xs[2]!) / 3;
    expect(first!.episode_index).toBe(0);
    expect(first!.stats['observation.state']).toMatchObject({
      min: [Math.min(...xs), expect.any(Number)],
      max: [Math.max(...xs), expect.any(Number)],
      count: [3],
    });
    expect((first!.stats['observation.state']!.mean as number[])[0]).toBeCloseTo(mean, 10);
    expect(first!.stats['observation.pose']!.min).toEqual([
      [expect.any(Number), expect.any(Number)],
      [expect.any(Number), expect.any(Number)],
    ]);
    expect(first!.stats.frame_index).toEqual({ min: [0], max: [2], mean: [1], std: [Math.sqrt(2 / 3)], count: [3] });
    // Fewer than 100 frames: all are sampled; 3×2 pixels need no downsampling. Values are in [0, 1], per channel, shape [3, 1, 1].
    const pixels = frames(imported.episodes[0]!, 'observation.images.wrist').map((png) => decodePng(png).data);
    const channel = (index: number) => pixels.flatMap((data) => Array.from(data).filter((_, at) => at % 3 === index));
    const expected = [0, 1, 2].map(channel);
    const image = first!.stats['observation.images.wrist']!;
    expect(image.count).toEqual([3]);
    expect(image.min).toEqual(expected.map((values) => [[Math.min(...values) / 255]]));
    expect(image.max).toEqual(expected.map((values) => [[Math.max(...values) / 255]]));
    (image.mean as number[][][]).forEach((value, index) => {
      const values = expected[index]!;
      expect(value[0]![0]).toBeCloseTo(values.reduce((sum, v) => sum + v, 0) / values.length / 255, 12);
    });
  });

  it('stops cleanly when the reader stops early', async () => {
    const { episodes } = await kuraEpisodes(imported);
    const chunks = exportLerobotTar({
      features: imported.features,
      fps: 5,
      robotType: 'r',
      episodes,
      mtime: MTIME,
      openVideo: () => Promise.reject(new Error('no videos')),
    });
    let read = 0;
    for await (const chunk of chunks) {
      read += chunk.byteLength;
      break;
    }
    expect(read).toBeGreaterThan(0);
  });

  it('gives the same bytes for the same input', async () => {
    const { episodes } = await kuraEpisodes(imported, { firstIndex: 12 });
    const again = await collectBytes(
      exportLerobotTar({
        features: imported.features,
        fps: 5,
        robotType: 'kura_test_gripper',
        episodes,
        mtime: MTIME,
        openVideo: () => Promise.reject(new Error('no videos')),
      }),
    );
    expect(again.equals(exported.tar)).toBe(true);
  });
});

describe('exportLerobotTar: unitree_g1 episode 29 (a video feature; YifanTian07/G1-policy-train, MIT)', () => {
  let imported: ImportedAll;
  let exported: Awaited<ReturnType<typeof roundTrip>>;
  const mp4 = join(unitreeG1, 'videos/chunk-000', CAM_HIGH, 'episode_000029.mp4');
  beforeAll(async () => {
    const files = [
      'meta/info.json',
      'meta/episodes.jsonl',
      'meta/tasks.jsonl',
      'data/chunk-000/episode_000029.parquet',
      `videos/chunk-000/${CAM_HIGH}/episode_000029.mp4`,
    ];
    imported = await importAll(
      lerobotImporter,
      await sourceFromFiles(files.map((path) => ({ path, absolutePath: join(unitreeG1, path) }))),
    );
    const { episodes } = await kuraEpisodes(imported, { firstIndex: 7, videoBlobs: { [CAM_HIGH]: 'blobs/cam-high-29' } });
    exported = await roundTrip({
      features: imported.features,
      fps: 30,
      robotType: 'Unitree_G1_Inspire',
      episodes,
      folder: 'g1_export',
      openVideo: async (blobKey) => {
        expect(blobKey).toBe('blobs/cam-high-29');
        return { bytes: (await stat(mp4)).size, stream: createReadStream(mp4) };
      },
    });
  });

  it('copies the episode mp4 to the v2.1 video path and re-imports the camera', async () => {
    expect(exported.names).toContain(`g1_export/videos/chunk-000/${CAM_HIGH}/episode_000000.mp4`);
    expect(exported.info).toMatchObject({
      total_videos: 1,
      video_path: 'videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4',
    });
    expect((exported.info.features as Record<string, unknown>)[CAM_HIGH]).toEqual({
      dtype: 'video',
      shape: [480, 640, 3],
      names: ['height', 'width', 'channel'],
      info: {
        'video.height': 480,
        'video.width': 640,
        'video.channels': 3,
        'video.fps': 30,
        'video.is_depth_map': false,
        has_audio: false,
      },
    });
    const copied = await readFile(join(exported.dataset, `videos/chunk-000/${CAM_HIGH}/episode_000000.mp4`));
    expect(copied.equals(await readFile(mp4))).toBe(true);

    const [episode] = exported.reimported.episodes;
    expect(exported.reimported.episodes).toHaveLength(1);
    expect(exported.reimported.features).toEqual(imported.features);
    expectSameEpisode(episode!, imported.episodes[0]!, imported.features);
    const video = episode!.features[CAM_HIGH];
    expect(video?.kind === 'video' && video.file).toBe(`g1_export/videos/chunk-000/${CAM_HIGH}/episode_000000.mp4`);
    expect(video?.kind === 'video' && Array.from(video.timestamps)).toEqual(Array.from(imported.episodes[0]!.timestamp!));
    expect(exported.episodes).toEqual([
      { episode_index: 0, tasks: ['Pick up the yellow bottle on the table.'], length: 221, kura_episode_index: 7 },
    ]);
  });

  it('computes the same state and action stats as LeRobot wrote for that episode', async () => {
    const original = (await readFile(join(unitreeG1, 'meta/episodes_stats.jsonl'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { episode_index: number; stats: Record<string, Record<string, number[]>> })
      .find((line) => line.episode_index === 29)!.stats;
    const ours = (exported.stats[0] as { stats: Record<string, Record<string, number[]>> }).stats;
    // LeRobot took timestamp stats from its float64 frame times, Kura from the float32 column: close, not equal.
    expect(ours.timestamp!.max![0]).toBeCloseTo(original.timestamp!.max![0]!, 6);
    for (const name of ['observation.state', 'action', 'frame_index']) {
      expect(ours[name]!.min).toEqual(original[name]!.min);
      expect(ours[name]!.max).toEqual(original[name]!.max);
      expect(ours[name]!.count).toEqual(original[name]!.count);
      ours[name]!.mean!.forEach((value, component) => expect(value).toBeCloseTo(original[name]!.mean![component]!, 5));
      ours[name]!.std!.forEach((value, component) => expect(value).toBeCloseTo(original[name]!.std![component]!, 5));
    }
    // Videos are never decoded, so their stats are left out.
    expect(ours[CAM_HIGH]).toBeUndefined();
  });

  it('refuses an episode whose frames point to two video files', async () => {
    const { episodes } = await kuraEpisodes(imported, { videoBlobs: { [CAM_HIGH]: 'blobs/a' } });
    const { episodes: others } = await kuraEpisodes(imported, { videoBlobs: { [CAM_HIGH]: 'blobs/b' } });
    const mixed = [{ batches: [...episodes[0]!.batches, ...others[0]!.batches] }];
    const failure = await collectBytes(
      exportLerobotTar({
        features: imported.features,
        fps: 30,
        robotType: 'g1',
        episodes: mixed,
        mtime: MTIME,
        openVideo: async () => ({ bytes: 3, stream: Readable.from([Buffer.from('abc')]) }),
      }),
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ExportError);
    expect((failure as ExportError).code).toBe('LEROBOT_EXPORT_VIDEO_SPLIT');
  });

  it('fails with LEROBOT_EXPORT_VIDEO_SIZE when a blob is shorter than announced', async () => {
    const { episodes } = await kuraEpisodes(imported, { videoBlobs: { [CAM_HIGH]: 'blobs/a' } });
    const failure = await collectBytes(
      exportLerobotTar({
        features: imported.features,
        fps: 30,
        robotType: 'g1',
        episodes,
        mtime: MTIME,
        openVideo: async () => ({ bytes: 10, stream: Readable.from([Buffer.from('abc')]) }),
      }),
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ExportError);
    expect((failure as ExportError).code).toBe('LEROBOT_EXPORT_VIDEO_SIZE');
  });
});
describe('exportLerobotTar: a step-strided, projected slice', () => {
  it('exports every other step of some columns and re-imports them', async () => {
    const imported = await importAll(lerobotImporter, await sourceFromDirectory(v20Small), { validate: true });
    const { episodes } = await kuraEpisodes(imported, { firstIndex: 3 });
    const columns = ['episode_index', 'step_index', 'timestamp', 'language_instruction', 'observation.images.wrist', 'observation.state'];
    const sliced = episodes.map(({ batches }, position) => ({
      batches: batches.map((batch) => withDatasetId(strided(batch, 2, columns), position === 0 ? 'ds_first' : 'ds_second')),
    }));
    const features: FeatureSpec = {
      'observation.images.wrist': imported.features['observation.images.wrist']!,
      'observation.state': imported.features['observation.state']!,
    };
    const exported = await roundTrip({ features, fps: 2.5, robotType: 'kura_test_gripper', episodes: sliced });

    expect(exported.info).toMatchObject({ fps: 2.5, total_frames: 4, total_episodes: 2 });
    expect(Object.keys(exported.info.features as object)).toEqual([
      'observation.images.wrist',
      'observation.state',
      'timestamp',
      'frame_index',
      'episode_index',
      'index',
      'task_index',
    ]);
    expect(exported.episodes).toEqual([
      { episode_index: 0, tasks: ['open the drawer'], length: 2, kura_episode_index: 3, kura_dataset_id: 'ds_first' },
      { episode_index: 1, tasks: ['close the drawer'], length: 2, kura_episode_index: 4, kura_dataset_id: 'ds_second' },
    ]);
    const { reimported } = exported;
    expect(reimported.features).toEqual(features);
    reimported.episodes.forEach((episode, position) => {
      const original = imported.episodes[position]!;
      const steps = Array.from({ length: Math.ceil(original.length / 2) }, (_, index) => index * 2);
      expect(episode.length).toBe(steps.length);
      expect(Array.from(episode.timestamp!)).toEqual(steps.map((step) => original.timestamp![step]));
      expect(episode.task).toBe(original.task);
      expect(episode.reward).toBeUndefined();
      expect(tensor(episode, 'observation.state')).toEqual(
        steps.flatMap((step) => tensor(original, 'observation.state').slice(step * 2, step * 2 + 2)),
      );
      expect(frames(episode, 'observation.images.wrist')).toEqual(steps.map((step) => frames(original, 'observation.images.wrist')[step]));
    });
  });

  it('gives steps without an instruction the empty task, which Kura reads back as no task', async () => {
    const imported = await importAll(lerobotImporter, await sourceFromDirectory(v20Small));
    const { episodes } = await kuraEpisodes(imported);
    const columns = ['episode_index', 'step_index', 'timestamp', 'observation.state'];
    const projected = episodes.map(({ batches }) => ({ batches: batches.map((batch) => strided(batch, 1, columns)) }));
    const exported = await roundTrip({
      features: { 'observation.state': imported.features['observation.state']! },
      fps: 5,
      robotType: 'r',
      episodes: projected,
    });
    expect(exported.tasks).toEqual([{ task_index: 0, task: '' }]);
    expect(exported.reimported.episodes.map((episode) => episode.task)).toEqual(['', '']);
    const stored = await shardBatches({
      features: exported.reimported.features,
      episodes: exported.reimported.episodes.map((episode, episodeIndex) => ({ episodeIndex, episode, fps: 5 })),
    });
    for (const batch of stored.batches) expect(batch.getChild('language_instruction')!.nullCount).toBe(batch.numRows);
  });
});
