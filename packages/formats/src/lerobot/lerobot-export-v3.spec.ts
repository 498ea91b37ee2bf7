import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FeatureSpec } from '@kura/schema';
import type { ImportedEpisode } from '../importer.js';
import { sourceFromDirectory } from '../source.js';
import { importAll, type ImportedAll } from '../testing/import-all.js';
import {
  expectSameEpisode,
  exportAndReimport,
  kuraEpisodes,
  MTIME,
  strided,
  tensor,
  withDatasetId,
} from '../testing/lerobot-round-trip.js';
import { collectBytes } from '../testing/shard-batches.js';
import { duckdbRows } from '../../../../test/support/duckdb.js';
import { numericStats } from './episode-stats.js';
import { exportLerobotTar } from './export.js';
import { lerobotImporter } from './import.js';

// LeRobot v3.0 export (export-v3.ts): exported, unpacked, read back by Kura's v3 importer and by
// DuckDB. Fixtures from fixtures/make_fixtures.py: v3_small (4 episodes, a video feature whose two
// mp4 files each hold two episodes) and v2_0_small (an image, a [2, 2] feature, rewards, done flags).
const v3Small = fileURLToPath(new URL('./fixtures/v3_small/', import.meta.url));
const v20Small = fileURLToPath(new URL('./fixtures/v2_0_small/', import.meta.url));
const FRONT = 'observation.images.front';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-lerobot-v3-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const duckdb = duckdbRows;

const v3 = { version: 'v3.0' as const };
const spool = () => mkdtemp(join(scratch, 'spool-'));

describe('LeRobot v3.0 export of v3_small (video files shared by episodes)', () => {
  let imported: ImportedAll;
  let exported: Awaited<ReturnType<typeof exportAndReimport>>;
  let spoolFolder: string;
  const videoFile = (episode: ImportedEpisode) => {
    const video = episode.features[FRONT];
    if (video?.kind !== 'video') throw new Error('no video');
    return video.file;
  };
  beforeAll(async () => {
    imported = await importAll(lerobotImporter, await sourceFromDirectory(v3Small), { validate: true });
    // Each mp4 of the fixture becomes one blob, as Kura's ingest stores it; episodes 0, 1 share one, 2, 3 the other.
    const { episodes } = await kuraEpisodes(imported, { videoBlobs: (episode) => ({ [FRONT]: `blobs/${videoFile(episode)}` }) });
    spoolFolder = await spool();
    exported = await exportAndReimport(scratch, {
      ...v3,
      scratch: spoolFolder,
      features: imported.features,
      fps: 10,
      robotType: 'kura_test_arm',
      folder: 'arm',
      episodes: episodes.map((episode, position) => ({ ...episode, sourceEpisode: String(position) })),
      openVideo: async (blobKey) => {
        const path = join(v3Small, blobKey.replace(/^blobs\//, ''));
        return { bytes: (await stat(path)).size, stream: createReadStream(path) };
      },
    });
  });

  it('lays the dataset out as LeRobot v3.0: one data file, one mp4 per source file, parquet metadata', async () => {
    expect(exported.names.sort()).toEqual([
      'arm/data/chunk-000/file-000.parquet',
      'arm/meta/episodes/chunk-000/file-000.parquet',
      'arm/meta/info.json',
      'arm/meta/stats.json',
      'arm/meta/tasks.parquet',
      `arm/videos/${FRONT}/chunk-000/file-000.mp4`,
      `arm/videos/${FRONT}/chunk-000/file-001.mp4`,
    ]);
    expect(exported.info).toMatchObject({
      codebase_version: 'v3.0',
      robot_type: 'kura_test_arm',
      total_episodes: 4,
      total_frames: 14,
      total_tasks: 2,
      chunks_size: 1000,
      data_files_size_in_mb: 100,
      fps: 10,
      splits: { train: '0:4' },
      data_path: 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet',
      video_path: 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4',
    });
    for (const file of ['file-000', 'file-001']) {
      const copied = await readFile(join(exported.dataset, `videos/${FRONT}/chunk-000/${file}.mp4`));
      expect(copied.equals(await readFile(join(v3Small, `videos/${FRONT}/chunk-000/${file}.mp4`)))).toBe(true);
    }
    // The spooled data file is gone once it is in the tar.
    expect(await readdir(spoolFolder)).toEqual([]);
  });

  it("re-imports with Kura's v3 importer to the same rows, each episode at its place in the shared mp4", () => {
    const { reimported } = exported;
    expect(reimported.warnings).toEqual([]);
    expect(reimported.features).toEqual(imported.features);
    expect(reimported.episodes).toHaveLength(4);
    reimported.episodes.forEach((episode, index) => {
      const original = imported.episodes[index]!;
      expectSameEpisode(episode, original, imported.features);
      const [video, source] = [episode.features[FRONT], original.features[FRONT]];
      if (video?.kind !== 'video' || source?.kind !== 'video') throw new Error('no video');
      expect(video.file).toBe(`arm/${source.file}`);
      // from_timestamp carried over: frame times in the file as the source had them (float32 step times + offset).
      Array.from(video.timestamps).forEach((time, step) => expect(time).toBeCloseTo(source.timestamps[step]!, 6));
    });
  });

  it('writes episodes metadata, tasks and stats that DuckDB reads as LeRobot lays them out', async () => {
    const episodes = await duckdb(
      `SELECT episode_index, tasks, length, "data/chunk_index", "data/file_index", dataset_from_index, dataset_to_index,
              "videos/${FRONT}/file_index" AS video_file, round("videos/${FRONT}/from_timestamp", 4) AS from_ts,
              round("videos/${FRONT}/to_timestamp", 4) AS to_ts, source_episode, "stats/observation.state/count" AS count
       FROM read_parquet('${join(exported.dataset, 'meta/episodes/chunk-000/file-000.parquet')}') ORDER BY episode_index`,
    );
    expect(episodes).toEqual([
      { ...row(0, ['pick up the cube'], 4, 0, 4, 0, 0, 0.4), source_episode: '0', count: [4n] },
      { ...row(1, ['pick up the cube', 'place the cube in the bin'], 3, 4, 7, 0, 0.4, 0.7), source_episode: '1', count: [3n] },
      { ...row(2, ['place the cube in the bin'], 5, 7, 12, 1, 0, 0.5), source_episode: '2', count: [5n] },
      { ...row(3, ['pick up the cube'], 2, 12, 14, 1, 0.5, 0.7), source_episode: '3', count: [2n] },
    ]);
    const tasks = await duckdb(`SELECT task_index, task FROM read_parquet('${join(exported.dataset, 'meta/tasks.parquet')}')`);
    expect(tasks).toEqual([
      { task_index: 0n, task: 'pick up the cube' },
      { task_index: 1n, task: 'place the cube in the bin' },
    ]);
    // pandas reads the task text back as the frame's index, named `task`, as LeRobot's save_episode_tasks writes it.
    const [pandas] = await duckdb(
      `SELECT decode(value) AS value FROM parquet_kv_metadata('${join(exported.dataset, 'meta/tasks.parquet')}') WHERE decode(key) = 'pandas'`,
    );
    expect(JSON.parse(pandas!.value as string)).toMatchObject({ index_columns: ['task'] });
    const data = await duckdb(
      `SELECT count(*) AS frames, min("index") AS first, max("index") AS last, count(DISTINCT episode_index) AS episodes
       FROM read_parquet('${join(exported.dataset, 'data/*/*.parquet')}')`,
    );
    expect(data).toEqual([{ frames: 14n, first: 0n, last: 13n, episodes: 4n }]);
  });

  it('aggregates stats.json over every frame, as LeRobot combines its episodes', async () => {
    const stats = JSON.parse(await readFile(join(exported.dataset, 'meta/stats.json'), 'utf8')) as Record<
      string,
      { min: number[]; max: number[]; mean: number[]; std: number[]; count: number[] }
    >;
    const all = imported.episodes.flatMap((episode) => tensor(episode, 'observation.state'));
    const direct = numericStats(all, 14, [3])!;
    const state = stats['observation.state']!;
    expect(state.count).toEqual([14]);
    // JSON has no −0: compare as numbers.
    const plain = (values: unknown) => (values as number[]).map((value) => value + 0);
    expect(state.min).toEqual(plain(direct.min));
    expect(state.max).toEqual(plain(direct.max));
    state.mean.forEach((value, index) => expect(value).toBeCloseTo((direct.mean as number[])[index]!, 10));
    state.std.forEach((value, index) => expect(value).toBeCloseTo((direct.std as number[])[index]!, 10));
    expect(stats.frame_index).toMatchObject({ min: [0], max: [4], count: [14] });
    expect(stats[FRONT]).toBeUndefined();
  });
});

function row(episode: number, tasks: string[], length: number, from: number, to: number, videoFile: number, fromTs: number, toTs: number) {
  return {
    episode_index: BigInt(episode),
    tasks,
    length: BigInt(length),
    'data/chunk_index': 0n,
    'data/file_index': 0n,
    dataset_from_index: BigInt(from),
    dataset_to_index: BigInt(to),
    video_file: BigInt(videoFile),
    from_ts: fromTs,
    to_ts: toTs,
  };
}

describe('LeRobot v3.0 export of v2_0_small (images, a [2, 2] feature, rewards) in small data files', () => {
  let imported: ImportedAll;
  beforeAll(async () => {
    imported = await importAll(lerobotImporter, await sourceFromDirectory(v20Small), { validate: true });
  });

  it('starts a data file per episode when a file may hold 1 byte, and reads back the same', async () => {
    const { episodes } = await kuraEpisodes(imported, { firstIndex: 12 });
    const exported = await exportAndReimport(scratch, {
      ...v3,
      scratch: await spool(),
      dataFileBytes: 1,
      features: imported.features,
      fps: 5,
      robotType: 'kura_test_gripper',
      episodes,
    });
    expect(exported.names.filter((name) => name.startsWith('data/')).sort()).toEqual([
      'data/chunk-000/file-000.parquet',
      'data/chunk-000/file-001.parquet',
    ]);
    expect(exported.reimported.warnings).toEqual([]);
    expect(exported.reimported.features).toEqual(imported.features);
    exported.reimported.episodes.forEach((episode, index) => expectSameEpisode(episode, imported.episodes[index]!, imported.features));
    const rows = await duckdb(
      `SELECT episode_index, "data/file_index" AS file, dataset_from_index AS first, kura_episode_index,
              "stats/observation.images.wrist/mean" AS image_mean
       FROM read_parquet('${join(exported.dataset, 'meta/episodes/chunk-000/file-000.parquet')}') ORDER BY episode_index`,
    );
    expect(rows.map(({ image_mean: _, ...rest }) => rest)).toEqual([
      { episode_index: 0n, file: 0n, first: 0n, kura_episode_index: 12n },
      { episode_index: 1n, file: 1n, first: 3n, kura_episode_index: 13n },
    ]);
    // Image stats keep LeRobot's [3, 1, 1] shape in the episodes table.
    expect((rows[0]!.image_mean as number[][][]).map((channel) => [channel.length, channel[0]!.length])).toEqual([
      [1, 1],
      [1, 1],
      [1, 1],
    ]);
    const index = await duckdb(
      `SELECT list("index" ORDER BY "index") AS ids FROM read_parquet('${join(exported.dataset, 'data/*/*.parquet')}')`,
    );
    expect(index[0]!.ids).toEqual([0n, 1n, 2n, 3n, 4n, 5n, 6n]);
  });

  it('exports a strided, projected multi-dataset slice with its origins, and the same bytes twice', async () => {
    const { episodes } = await kuraEpisodes(imported, { firstIndex: 3 });
    const columns = ['episode_index', 'step_index', 'timestamp', 'language_instruction', 'observation.images.wrist', 'observation.state'];
    const sliced = () =>
      episodes.map(({ batches }, position) => ({
        batches: batches.map((batch) => withDatasetId(strided(batch, 2, columns), position === 0 ? 'ds_first' : 'ds_second')),
      }));
    const features: FeatureSpec = {
      'observation.images.wrist': imported.features['observation.images.wrist']!,
      'observation.state': imported.features['observation.state']!,
    };
    const params = { ...v3, features, fps: 2.5, robotType: 'kura_test_gripper' };
    const exported = await exportAndReimport(scratch, { ...params, scratch: await spool(), episodes: sliced() });
    expect(exported.info).toMatchObject({ fps: 2.5, total_frames: 4, total_episodes: 2 });
    expect(exported.reimported.episodes.map((episode) => [episode.length, episode.task])).toEqual([
      [2, 'open the drawer'],
      [2, 'close the drawer'],
    ]);
    const origins = await duckdb(
      `SELECT kura_episode_index, kura_dataset_id FROM read_parquet('${join(exported.dataset, 'meta/episodes/chunk-000/file-000.parquet')}')`,
    );
    expect(origins).toEqual([
      { kura_episode_index: 3n, kura_dataset_id: 'ds_first' },
      { kura_episode_index: 4n, kura_dataset_id: 'ds_second' },
    ]);
    const again = await collectBytes(
      exportLerobotTar({
        ...params,
        scratch: await spool(),
        episodes: sliced(),
        mtime: MTIME,
        openVideo: () => Promise.reject(new Error('none')),
      }),
    );
    expect(again.equals(exported.tar)).toBe(true);
  });

  it('leaves no spooled file behind when the reader stops early', async () => {
    const { episodes } = await kuraEpisodes(imported);
    const folder = await spool();
    const chunks = exportLerobotTar({
      ...v3,
      scratch: folder,
      features: imported.features,
      fps: 5,
      robotType: 'r',
      episodes,
      mtime: MTIME,
      openVideo: () => Promise.reject(new Error('no videos')),
    });
    for await (const chunk of chunks) {
      expect(chunk.byteLength).toBeGreaterThan(0);
      break;
    }
    expect(await readdir(folder)).toEqual([]);
  });

  it('needs a scratch folder', () => {
    expect(() =>
      exportLerobotTar({
        ...v3,
        features: {},
        fps: 5,
        robotType: 'r',
        episodes: [],
        mtime: MTIME,
        openVideo: () => Promise.reject(new Error('none')),
      }),
    ).toThrow('scratch');
  });
});
