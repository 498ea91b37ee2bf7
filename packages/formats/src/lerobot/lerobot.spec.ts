import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { featureSpecSchema } from '@kura/schema';
import { ImportError, type ImportedEpisode, type ImportIssue } from '../importer.js';
import { sourceFromDirectory } from '../source.js';
import { writableCopy } from '../testing/fixture-copy.js';
import { importAll, type ImportedAll } from '../testing/import-all.js';
import { validateEpisode } from '../validate.js';
import { lerobotImporter } from './import.js';

// The real dataset is YifanTian07/G1-policy-train @ d1d3bb45f16a (MIT), kept byte-for-byte in
// test/fixtures/lerobot_v2.1/unitree_g1: a LeRobot v2.1 Unitree G1 dataset whose metadata lists
// 100 episodes, of which episodes 0, 1, 2 and 29 have parquet files and only 29 has its mp4.
const unitreeG1 = fileURLToPath(new URL('../../../../test/fixtures/lerobot_v2.1/unitree_g1/', import.meta.url));
// Our own small fixtures, written by fixtures/make_fixtures.py.
const v3Small = fileURLToPath(new URL('./fixtures/v3_small/', import.meta.url));
const v20Small = fileURLToPath(new URL('./fixtures/v2_0_small/', import.meta.url));
const badFiles = fileURLToPath(new URL('./fixtures/bad/', import.meta.url));

const CAM_HIGH = 'observation.images.cam_high';
const G1_TASK = 'Pick up the yellow bottle on the table.';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-lerobot-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** The ImportError a piece of work ends with. */
async function failure(work: () => Promise<unknown>): Promise<ImportError> {
  try {
    await work();
  } catch (error) {
    if (error instanceof ImportError) return error;
    throw error;
  }
  throw new Error('expected an ImportError, but nothing failed');
}

/** The ImportError an import of the folder ends with (from open or from reading an episode). */
function importError(folder: string): Promise<ImportError> {
  return failure(() => importFolder(folder));
}

async function editJson(path: string, edit: (value: Record<string, unknown>) => void): Promise<void> {
  const value = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  edit(value);
  await writeFile(path, JSON.stringify(value));
}

function features(info: Record<string, unknown>): Record<string, Record<string, unknown>> {
  return info.features as Record<string, Record<string, unknown>>;
}

function tensor(episode: ImportedEpisode, name: string): ArrayLike<number | bigint> {
  const values = episode.features[name];
  if (values?.kind !== 'tensor') throw new Error(`${name} is not a tensor feature`);
  return values.values;
}

describe('lerobot importer: LeRobot v2.1 (unitree_g1, YifanTian07/G1-policy-train, MIT)', () => {
  let imported: ImportedAll;
  beforeAll(async () => {
    imported = await importFolder(unitreeG1);
  });

  it('is detected, also inside a single top-level folder', async () => {
    expect(await lerobotImporter.detect(await sourceFromDirectory(unitreeG1))).toBe(true);
    expect(await lerobotImporter.detect(await sourceFromDirectory(join(unitreeG1, '..')))).toBe(true);
  });

  it('imports the four present episodes with their lengths', () => {
    expect(imported.episodes.map((episode) => episode.length)).toEqual([479, 393, 343, 221]);
    expect(imported.episodes.map((episode) => episode.sourceIndex)).toEqual([0, 1, 2, 29]);
    expect(imported.episodes.map((episode) => episode.sourceId)).toEqual([
      'episode_000000',
      'episode_000001',
      'episode_000002',
      'episode_000029',
    ]);
    // The source's own ids, kept with the renumbered episodes.
    expect(imported.episodes.map((episode) => episode.sourceEpisode)).toEqual(['0', '1', '2', '29']);
    expect(imported.episodes[3]!.file).toBe('data/chunk-000/episode_000029.parquet');
    expect(imported.result.expectedEpisodes).toBe(4);
    expect(imported.result.fps).toBe(30);
  });

  it('warns once for each listed episode whose parquet is absent', () => {
    const missing = imported.warnings.filter((warning) => warning.code === 'LEROBOT_EPISODE_MISSING');
    expect(missing).toHaveLength(96);
    const expected = Array.from({ length: 100 }, (_, index) => index).filter((index) => ![0, 1, 2, 29].includes(index));
    expect(missing.map((warning) => warning.location.episode)).toEqual(expected);
    expect(missing[0]!.location).toEqual({ file: 'data/chunk-000/episode_000003.parquet', episode: 3 });
  });

  it('keeps state and action as float32 vectors of 26 with their names', () => {
    for (const episode of imported.episodes) {
      for (const name of ['observation.state', 'action']) {
        const values = tensor(episode, name);
        expect(values).toBeInstanceOf(Float32Array);
        expect(values.length).toBe(episode.length * 26);
      }
    }
    // Episode 29, step 0, as pyarrow reads it.
    const state29 = tensor(imported.episodes[3]!, 'observation.state');
    expect(state29[0]).toBe(Math.fround(-0.7794180512428284));
    expect(state29[3]).toBe(Math.fround(1.2256985902786255));
    expect(tensor(imported.episodes[3]!, 'action')[0]).toBe(Math.fround(-0.7719124555587769));
    const spec = imported.result.features;
    expect(featureSpecSchema.safeParse(spec).success).toBe(true);
    // info.json gives the 26 joint names as a nested list; they pass through as they are.
    expect(spec['observation.state']).toEqual({
      dtype: 'float32',
      shape: [26],
      names: [expect.arrayContaining(['kLeftShoulderPitch', 'kRightHandThumbRotation'])],
    });
    expect(spec.action!.names).toEqual(spec['observation.state']!.names);
    for (const special of ['timestamp', 'frame_index', 'episode_index', 'index', 'task_index']) expect(spec).not.toHaveProperty(special);
  });

  it('maps timestamp and task_index', () => {
    for (const episode of imported.episodes) {
      expect(episode.timestamp).toBeInstanceOf(Float64Array);
      expect(episode.timestamp).toHaveLength(episode.length);
      expect(episode.timestamp![0]).toBe(0);
      expect(episode.timestamp![30]).toBeCloseTo(1, 5);
      expect(episode.task).toBe(G1_TASK);
      expect(episode.stepTasks).toBeUndefined();
    }
  });

  it('leaves out the camera whose mp4 only episode 29 has, warning for episodes 0, 1 and 2', () => {
    expect(imported.result.features).not.toHaveProperty(CAM_HIGH);
    const videoWarnings = imported.warnings.filter((warning) => warning.code === 'LEROBOT_VIDEO_MISSING');
    expect(videoWarnings.map((warning) => warning.location)).toEqual(
      [0, 1, 2].map((episode) => ({
        file: `videos/chunk-000/${CAM_HIGH}/episode_${String(episode).padStart(6, '0')}.mp4`,
        episode,
        field: CAM_HIGH,
      })),
    );
    for (const episode of imported.episodes) expect(Object.keys(episode.features).sort()).toEqual(['action', 'observation.state']);
  });

  it('yields episodes that pass the package validator', () => {
    for (const episode of imported.episodes) expect(() => validateEpisode(episode, imported.result.features)).not.toThrow();
  });

  it('references the mp4 of episode 29, with one timestamp per step, when the upload is episode 29 alone', async () => {
    const folder = await writableCopy(unitreeG1, scratch);
    for (const episode of [0, 1, 2]) await rm(join(folder, `data/chunk-000/episode_00000${episode}.parquet`));
    const { result, episodes, warnings } = await importFolder(folder);
    expect(result.features[CAM_HIGH]).toEqual({ dtype: 'video', shape: [480, 640, 3], encoding: 'mp4' });
    expect(episodes).toHaveLength(1);
    const video = episodes[0]!.features[CAM_HIGH];
    expect(video?.kind).toBe('video');
    if (video?.kind !== 'video') return;
    expect(video.file).toBe(`videos/chunk-000/${CAM_HIGH}/episode_000029.mp4`);
    expect(video.timestamps).toHaveLength(221);
    expect(video.timestamps[0]).toBe(0);
    expect(video.timestamps[220]).toBeCloseTo(220 / 30, 4);
    expect(warnings.filter((warning) => warning.code === 'LEROBOT_EPISODE_MISSING')).toHaveLength(99);
    expect(warnings.filter((warning) => warning.code === 'LEROBOT_VIDEO_MISSING')).toHaveLength(0);
    expect(() => validateEpisode(episodes[0]!, result.features)).not.toThrow();
  });

  it('reads a dataset wrapped in one top-level folder, keeping upload paths in locations', async () => {
    const parent = join(scratch, `wrapped-${Math.random().toString(36).slice(2, 8)}`);
    await mkdir(parent);
    const folder = await writableCopy(unitreeG1, scratch);
    const wrapped = join(parent, 'unitree_g1');
    await cp(folder, wrapped, { recursive: true });
    await rm(join(wrapped, 'data/chunk-000/episode_000000.parquet'));
    await rm(join(wrapped, 'data/chunk-000/episode_000001.parquet'));
    const { episodes, warnings } = await importFolder(parent);
    expect(episodes.map((episode) => episode.sourceIndex)).toEqual([2, 29]);
    expect(episodes[0]!.file).toBe('unitree_g1/data/chunk-000/episode_000002.parquet');
    expect(warnings[0]!.location).toEqual({ file: 'unitree_g1/data/chunk-000/episode_000000.parquet', episode: 0 });
  });
});

describe('lerobot importer: LeRobot v3.0 (fixtures/v3_small)', () => {
  let imported: ImportedAll;
  beforeAll(async () => {
    imported = await importFolder(v3Small);
  });
  const video = (episode: ImportedEpisode) => {
    const values = episode.features['observation.images.front'];
    if (values?.kind !== 'video') throw new Error('no video');
    return values;
  };

  it('imports each episode from its row range of the multi-episode data files', () => {
    expect(imported.warnings).toEqual([]);
    expect(imported.episodes.map((episode) => [episode.sourceIndex, episode.length])).toEqual([
      [0, 4],
      [1, 3],
      [2, 5],
      [3, 2],
    ]);
    expect(imported.episodes.map((episode) => episode.file)).toEqual([
      'data/chunk-000/file-000.parquet',
      'data/chunk-000/file-000.parquet',
      'data/chunk-000/file-000.parquet',
      'data/chunk-000/file-001.parquet',
    ]);
    for (const episode of imported.episodes) {
      const e = episode.sourceIndex!;
      const state = Array.from(tensor(episode, 'observation.state'), Number);
      const action = Array.from(tensor(episode, 'action'), Number);
      expect(state).toEqual(Array.from({ length: episode.length }, (_, s) => [10 * e + s, 0.5 * s, -e]).flat());
      expect(action).toEqual(state.map((value) => value + 0.25));
      expect(Array.from(episode.timestamp!)).toEqual(Array.from({ length: episode.length }, (_, s) => Math.fround(s / 10)));
    }
  });

  it('reads tasks.parquet (text in __index_level_0__) and keeps per-step tasks when they change', () => {
    expect(imported.episodes.map((episode) => episode.task ?? null)).toEqual([
      'pick up the cube',
      null,
      'place the cube in the bin',
      'pick up the cube',
    ]);
    expect(imported.episodes[1]!.stepTasks).toEqual(['pick up the cube', 'pick up the cube', 'place the cube in the bin']);
  });

  it('maps next.reward and next.done', () => {
    const last = (episode: ImportedEpisode) => episode.length - 1;
    for (const episode of imported.episodes) {
      expect(Array.from(episode.reward!)).toEqual(Array.from({ length: episode.length }, (_, s) => (s === last(episode) ? 1 : 0)));
      expect(Array.from(episode.isTerminal!)).toEqual(Array.from({ length: episode.length }, (_, s) => (s === last(episode) ? 1 : 0)));
      expect(episode.success).toBeUndefined();
    }
  });

  it('points video features at the chunk mp4, shifting timestamps by from_timestamp', () => {
    expect(imported.result.features['observation.images.front']).toEqual({ dtype: 'video', shape: [48, 64, 3], encoding: 'mp4' });
    expect(imported.result.features['observation.state']).toEqual({
      dtype: 'float32',
      shape: [3],
      names: { motors: ['shoulder', 'elbow', 'gripper'] },
    });
    const files = imported.episodes.map((episode) => video(episode).file);
    expect(files).toEqual([0, 0, 1, 1].map((file) => `videos/observation.images.front/chunk-000/file-00${file}.mp4`));
    const offsets = [0, 0.4, 0, 0.5];
    imported.episodes.forEach((episode, position) => {
      const times = video(episode).timestamps;
      expect(times).toHaveLength(episode.length);
      times.forEach((time, step) => expect(time).toBeCloseTo(offsets[position]! + step / 10, 6));
    });
  });

  it('yields episodes that pass the package validator', () => {
    for (const episode of imported.episodes) expect(() => validateEpisode(episode, imported.result.features)).not.toThrow();
  });

  it('warns for the episodes of a data file that is absent', async () => {
    const folder = await writableCopy(v3Small, scratch);
    await rm(join(folder, 'data/chunk-000/file-001.parquet'));
    const { episodes, warnings } = await importFolder(folder);
    expect(episodes.map((episode) => episode.sourceIndex)).toEqual([0, 1, 2]);
    expect(warnings).toEqual([
      expect.objectContaining({ code: 'LEROBOT_EPISODE_MISSING', location: { file: 'data/chunk-000/file-001.parquet', episode: 3 } }),
    ]);
  });

  it('leaves a video feature out, with warnings, when some imported episodes lack its file', async () => {
    const folder = await writableCopy(v3Small, scratch);
    await rm(join(folder, 'videos/observation.images.front/chunk-000/file-001.mp4'));
    const { result, episodes, warnings } = await importFolder(folder);
    expect(result.features).not.toHaveProperty('observation.images.front');
    expect(episodes).toHaveLength(4);
    expect(warnings.map((warning) => [warning.code, warning.location])).toEqual(
      [2, 3].map((episode) => [
        'LEROBOT_VIDEO_MISSING',
        { file: 'videos/observation.images.front/chunk-000/file-001.mp4', episode, field: 'observation.images.front' },
      ]),
    );
  });
});

describe('lerobot importer: LeRobot v2.0 (fixtures/v2_0_small)', () => {
  let imported: ImportedAll;
  beforeAll(async () => {
    imported = await importFolder(v20Small);
  });

  it('imports the present episodes and warns for the absent one', () => {
    expect(imported.episodes.map((episode) => [episode.sourceIndex, episode.length])).toEqual([
      [0, 3],
      [1, 4],
    ]);
    expect(imported.warnings).toEqual([
      expect.objectContaining({ code: 'LEROBOT_EPISODE_MISSING', location: { file: 'data/chunk-000/episode_000002.parquet', episode: 2 } }),
    ]);
    expect(imported.episodes.map((episode) => episode.task)).toEqual(['open the drawer', 'close the drawer']);
  });

  it('keeps embedded images as PNG bytes and the spec says so', () => {
    expect(imported.result.features['observation.images.wrist']).toEqual({ dtype: 'image', shape: [2, 3, 3], encoding: 'png' });
    for (const episode of imported.episodes) {
      const images = episode.features['observation.images.wrist'];
      expect(images?.kind).toBe('image');
      if (images?.kind !== 'image') return;
      expect(images.frames).toHaveLength(episode.length);
      for (const frame of images.frames) expect(Array.from(frame.subarray(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
    }
  });

  it('flattens a [2, 2] float64 feature row-major and passes names through', () => {
    const pose = tensor(imported.episodes[1]!, 'observation.pose');
    expect(pose).toBeInstanceOf(Float64Array);
    // Episode 1, step 2: [[1 + 2, 1], [2, -2 / 4]].
    expect(Array.from(pose).slice(8, 12)).toEqual([3, 1, 2, -0.5]);
    expect(imported.result.features['observation.pose']).toEqual({
      dtype: 'float64',
      shape: [2, 2],
      names: [
        ['left', 'right'],
        ['u', 'v'],
      ],
    });
    expect(imported.result.features.action).toEqual({ dtype: 'float32', shape: [2], names: { motors: ['x', 'y'] } });
  });

  it('maps next.reward, next.done and next.success (success when any step succeeded)', () => {
    const [first, second] = imported.episodes;
    expect(Array.from(first!.reward!)).toEqual([0, 1, 2]);
    expect(Array.from(first!.isTerminal!)).toEqual([0, 0, 1]);
    expect(first!.success).toBe(true);
    expect(second!.success).toBe(false);
  });

  it('yields episodes that pass the package validator', () => {
    for (const episode of imported.episodes) expect(() => validateEpisode(episode, imported.result.features)).not.toThrow();
  });
});

describe('lerobot importer: detection', () => {
  it('does not claim a source without meta/info.json or with one that has no codebase_version', async () => {
    const folder = join(scratch, `other-${Math.random().toString(36).slice(2, 8)}`);
    await mkdir(join(folder, 'meta'), { recursive: true });
    await writeFile(join(folder, 'data.ndjson'), '{"step": 0}\n');
    expect(await lerobotImporter.detect(await sourceFromDirectory(folder))).toBe(false);
    await writeFile(join(folder, 'meta/info.json'), '{"fps": 30}');
    expect(await lerobotImporter.detect(await sourceFromDirectory(folder))).toBe(false);
  });
});

describe('lerobot importer: bad inputs', () => {
  it('PARQUET_INVALID for a truncated data file, naming the file and episode', async () => {
    const folder = await writableCopy(v20Small, scratch);
    const path = join(folder, 'data/chunk-000/episode_000001.parquet');
    await truncate(path, 2000);
    const error = await importError(folder);
    expect(error.code).toBe('PARQUET_INVALID');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000001.parquet', episode: 1 });
  });

  it('PARQUET_INVALID for a truncated data file of the real dataset', async () => {
    const folder = await writableCopy(unitreeG1, scratch);
    await truncate(join(folder, 'data/chunk-000/episode_000002.parquet'), 40_000);
    const error = await importError(folder);
    expect(error.code).toBe('PARQUET_INVALID');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000002.parquet', episode: 2 });
  });

  it('PARQUET_INVALID for a data file whose pages are overwritten (footer intact)', async () => {
    const folder = await writableCopy(unitreeG1, scratch);
    const path = join(folder, 'data/chunk-000/episode_000029.parquet');
    const bytes = await readFile(path);
    bytes.fill(0xab, 200, 20_000);
    await writeFile(path, bytes);
    const error = await importError(folder);
    expect(error.code).toBe('PARQUET_INVALID');
    // The page headers are read before the rows: the column whose page is damaged is named.
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000029.parquet', episode: 29, field: 'observation.state' });
  });

  it('LEROBOT_INFO_INVALID for an info.json that is not JSON', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await writeFile(join(folder, 'meta/info.json'), '{"codebase_version": "v2.0", "fps": ');
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_INFO_INVALID');
    expect(error.location).toEqual({ file: 'meta/info.json' });
  });

  it('LEROBOT_INFO_INVALID naming the field when info.json lacks fps', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await editJson(join(folder, 'meta/info.json'), (info) => delete info.fps);
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_INFO_INVALID');
    expect(error.location).toEqual({ file: 'meta/info.json', field: 'fps' });
  });

  it('LEROBOT_UNSUPPORTED_VERSION for codebase_version v1.6 (still detected as LeRobot)', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await editJson(join(folder, 'meta/info.json'), (info) => (info.codebase_version = 'v1.6'));
    expect(await lerobotImporter.detect(await sourceFromDirectory(folder))).toBe(true);
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_UNSUPPORTED_VERSION');
    expect(error.location).toEqual({ file: 'meta/info.json', field: 'codebase_version' });
  });

  it('LEROBOT_COLUMN_MISSING when a declared feature has no column', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await editJson(
      join(folder, 'meta/info.json'),
      (info) => (features(info)['observation.extra'] = { dtype: 'float32', shape: [1], names: null }),
    );
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_COLUMN_MISSING');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000000.parquet', episode: 0, field: 'observation.extra' });
  });

  it('LEROBOT_FRAME_INDEX_INVALID at the step where frame_index skips', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await copyFile(join(badFiles, 'frame_index_gap.parquet'), join(folder, 'data/chunk-000/episode_000000.parquet'));
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_FRAME_INDEX_INVALID');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000000.parquet', episode: 0, step: 2, field: 'frame_index' });
  });

  it('LEROBOT_TASK_UNKNOWN for a task_index the tasks file does not list', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await writeFile(join(folder, 'meta/tasks.jsonl'), '{"task_index": 0, "task": "open the drawer"}\n');
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_TASK_UNKNOWN');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000001.parquet', episode: 1, step: 0, field: 'task_index' });
  });

  it('EPISODE_SHAPE_MISMATCH when a feature has another shape than info.json says', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await editJson(join(folder, 'meta/info.json'), (info) => (features(info)['observation.pose']!.shape = [2, 3]));
    const warnings: ImportIssue[] = [];
    const result = await lerobotImporter.open(await sourceFromDirectory(folder), { warn: (issue) => warnings.push(issue) });
    // The names no longer fit [2, 3] either: they are dropped with a warning.
    expect(warnings).toContainEqual(
      expect.objectContaining({ code: 'LEROBOT_NAMES_IGNORED', location: { file: 'meta/info.json', field: 'observation.pose' } }),
    );
    const error = await failure(async () => {
      for await (const episode of result.episodes) void episode;
    });
    expect(error.code).toBe('EPISODE_SHAPE_MISMATCH');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000000.parquet', episode: 0, step: 0, field: 'observation.pose' });
  });

  it('EPISODE_SHAPE_MISMATCH on the real dataset when info.json claims 27 joints', async () => {
    const folder = await writableCopy(unitreeG1, scratch);
    await editJson(join(folder, 'meta/info.json'), (info) => {
      const state = features(info)['observation.state']!;
      state.shape = [27];
      state.names = null;
    });
    const error = await importError(folder);
    expect(error.code).toBe('EPISODE_SHAPE_MISMATCH');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000000.parquet', episode: 0, step: 0, field: 'observation.state' });
  });

  it('LEROBOT_META_MISSING when the tasks file is absent (v2 and v3)', async () => {
    const v2 = await writableCopy(v20Small, scratch);
    await rm(join(v2, 'meta/tasks.jsonl'));
    const v2Error = await importError(v2);
    expect(v2Error.code).toBe('LEROBOT_META_MISSING');
    expect(v2Error.location).toEqual({ file: 'meta/tasks.jsonl' });

    const v3 = await writableCopy(v3Small, scratch);
    await rm(join(v3, 'meta/tasks.parquet'));
    const v3Error = await importError(v3);
    expect(v3Error.code).toBe('LEROBOT_META_MISSING');
    expect(v3Error.location).toEqual({ file: 'meta/tasks.parquet' });
  });

  it('LEROBOT_META_MISSING when the episodes metadata is absent', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await rm(join(folder, 'meta/episodes.jsonl'));
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_META_MISSING');
    expect(error.location).toEqual({ file: 'meta/episodes.jsonl' });
  });

  it('INVALID_UTF8 for task text that is not UTF-8, in tasks.jsonl (with the line) and tasks.parquet', async () => {
    const v2 = await writableCopy(v20Small, scratch);
    await writeFile(
      join(v2, 'meta/tasks.jsonl'),
      Buffer.concat([
        Buffer.from('{"task_index": 0, "task": "open"}\n{"task_index": 1, "task": "cl'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('ose"}\n'),
      ]),
    );
    const v2Error = await importError(v2);
    expect(v2Error.code).toBe('INVALID_UTF8');
    expect(v2Error.location).toEqual({ file: 'meta/tasks.jsonl', line: 2 });

    const v3 = await writableCopy(v3Small, scratch);
    await copyFile(join(badFiles, 'tasks_invalid_utf8.parquet'), join(v3, 'meta/tasks.parquet'));
    const v3Error = await importError(v3);
    expect(v3Error.code).toBe('INVALID_UTF8');
    expect(v3Error.location).toEqual({ file: 'meta/tasks.parquet', field: '__index_level_0__' });
  });

  it('LEROBOT_VIDEO_MISSING when no imported episode has the video of a video feature', async () => {
    const folder = await writableCopy(unitreeG1, scratch);
    await rm(join(folder, `videos/chunk-000/${CAM_HIGH}/episode_000029.mp4`));
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_VIDEO_MISSING');
    expect(error.location).toEqual({ file: `videos/chunk-000/${CAM_HIGH}/episode_000000.mp4`, episode: 0, field: CAM_HIGH });
  });

  it('LEROBOT_LENGTH_MISMATCH when the data has another number of rows than the metadata says', async () => {
    const folder = await writableCopy(v20Small, scratch);
    const lines = (await readFile(join(folder, 'meta/episodes.jsonl'), 'utf8')).replace('"length": 3', '"length": 5');
    await writeFile(join(folder, 'meta/episodes.jsonl'), lines);
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_LENGTH_MISMATCH');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000000.parquet', episode: 0 });
  });

  it('LEROBOT_META_INVALID with the line for a malformed episodes.jsonl line', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await writeFile(join(folder, 'meta/episodes.jsonl'), '{"episode_index": 0, "length": 3}\n{"episode_index": "one"}\n');
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_META_INVALID');
    expect(error.location).toEqual({ file: 'meta/episodes.jsonl', line: 2 });
  });

  it('LEROBOT_INFO_INVALID for a data_path template with an unknown placeholder', async () => {
    const folder = await writableCopy(v3Small, scratch);
    await editJson(
      join(folder, 'meta/info.json'),
      (info) => (info.data_path = 'data/chunk-{episode_chunk:03d}/file-{file_index:03d}.parquet'),
    );
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_INFO_INVALID');
    expect(error.location).toEqual({ file: 'meta/info.json', field: 'data_path' });
  });

  it('LEROBOT_INFO_INVALID when the upload has no meta/info.json', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await rm(join(folder, 'meta/info.json'));
    expect(await lerobotImporter.detect(await sourceFromDirectory(folder))).toBe(false);
    const error = await importError(folder);
    expect(error.code).toBe('LEROBOT_INFO_INVALID');
    expect(error.location).toEqual({ file: 'meta/info.json' });
  });
});

const importFolder = async (folder: string) => importAll(lerobotImporter, await sourceFromDirectory(folder));
