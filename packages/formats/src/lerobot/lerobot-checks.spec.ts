// What a LeRobot dataset says about itself against what it holds (info.json totals and dtypes), and
// leaving named features out (dropFeatures), on copies of our own fixtures (fixtures/make_fixtures.py)
// edited the way the real datasets were wrong: a stale total_frames, float64 columns declared float32,
// cameras declared but never committed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImportError } from '../importer.js';
import { sourceFromDirectory } from '../source.js';
import { writableCopy } from '../testing/fixture-copy.js';
import { importAll } from '../testing/import-all.js';
import { lerobotImporter } from './import.js';

// v2.0: episodes 0 and 1 present (3 and 4 steps) of 3 listed (12 frames); observation.pose is float64 [2, 2].
const v20Small = fileURLToPath(new URL('./fixtures/v2_0_small/', import.meta.url));
// v3.0: 4 episodes in two data files, with the camera observation.images.front as mp4 files.
const v3Small = fileURLToPath(new URL('./fixtures/v3_small/', import.meta.url));

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-lerobot-checks-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function editInfo(folder: string, edit: (info: { features: Record<string, { dtype: string }> } & Record<string, unknown>) => void) {
  const path = join(folder, 'meta', 'info.json');
  const info = JSON.parse(await readFile(path, 'utf8')) as { features: Record<string, { dtype: string }> } & Record<string, unknown>;
  edit(info);
  await writeFile(path, JSON.stringify(info));
}

async function importError(work: () => Promise<unknown>): Promise<ImportError> {
  try {
    await work();
  } catch (error) {
    if (error instanceof ImportError) return error;
    throw error;
  }
  throw new Error('the import succeeded');
}

describe('lerobot importer: info.json against the data', () => {
  it('warns when total_episodes and total_frames disagree with the episodes metadata, naming both values', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await editInfo(folder, (info) => {
      info.total_episodes = 40;
      info.total_frames = 14983;
    });
    const imported = await importAll(lerobotImporter, await sourceFromDirectory(folder), { validate: true });
    expect(imported.episodes.map((episode) => episode.length)).toEqual([3, 4]);
    const mismatches = imported.warnings.filter((warning) => warning.code === 'LEROBOT_INFO_MISMATCH');
    expect(mismatches.map((warning) => [warning.location, warning.details])).toEqual([
      [
        { file: 'meta/info.json', field: 'total_episodes' },
        { field: 'total_episodes', declared: 40, found: 3 },
      ],
      [
        { file: 'meta/info.json', field: 'total_frames' },
        { field: 'total_frames', declared: 14983, found: 12 },
      ],
    ]);
    expect(mismatches[1]?.message).toContain('total_frames = 14983');
    expect(mismatches[1]?.message).toContain('12 frames');
  });

  it('is silent when the totals agree (the fixture as written)', async () => {
    const imported = await importAll(lerobotImporter, await sourceFromDirectory(v20Small));
    expect(imported.warnings.filter((warning) => warning.code === 'LEROBOT_INFO_MISMATCH')).toEqual([]);
    expect(imported.warnings.filter((warning) => warning.code === 'LEROBOT_DTYPE_MISMATCH')).toEqual([]);
  });

  it('warns once per column stored as float64 but declared float32, and reads it as declared', async () => {
    const folder = await writableCopy(v20Small, scratch);
    await editInfo(folder, (info) => {
      info.features['observation.pose']!.dtype = 'float32';
    });
    const imported = await importAll(lerobotImporter, await sourceFromDirectory(folder), { validate: true });
    const mismatches = imported.warnings.filter((warning) => warning.code === 'LEROBOT_DTYPE_MISMATCH');
    // Two data files, one warning.
    expect(mismatches.map((warning) => [warning.location, warning.details])).toEqual([
      [
        { file: 'data/chunk-000/episode_000000.parquet', field: 'observation.pose' },
        { field: 'observation.pose', declared: 'float32', found: 'float64' },
      ],
    ]);
    expect(mismatches[0]?.message).toContain('rounded to float32');
    expect(imported.features['observation.pose']).toMatchObject({ dtype: 'float32', shape: [2, 2] });
    const pose = imported.episodes[0]?.features['observation.pose'];
    expect(pose?.kind === 'tensor' && pose.values instanceof Float32Array).toBe(true);
  });
});

describe('lerobot importer: dropFeatures', () => {
  it('imports a dataset whose camera was never committed once the camera is dropped, saying so', async () => {
    const folder = await writableCopy(v3Small, scratch);
    await rm(join(folder, 'videos'), { recursive: true });
    const source = await sourceFromDirectory(folder);
    expect((await importError(() => importAll(lerobotImporter, source))).code).toBe('LEROBOT_VIDEO_MISSING');

    const imported = await importAll(lerobotImporter, source, { validate: true, dropFeatures: ['observation.images.front'] });
    expect(imported.features).not.toHaveProperty('observation.images.front');
    expect(Object.keys(imported.features).sort()).toEqual(['action', 'observation.state']);
    expect(imported.episodes).toHaveLength(4);
    expect(imported.warnings).toEqual([
      {
        code: 'FEATURE_DROPPED',
        message: expect.stringContaining('"observation.images.front" is left out'),
        location: { file: 'meta/info.json', field: 'observation.images.front' },
      },
    ]);
  });

  it('refuses a name the dataset does not have, with the field dropFeatures and the names it has', async () => {
    const error = await importError(async () =>
      importAll(lerobotImporter, await sourceFromDirectory(v3Small), { dropFeatures: ['observation.images.wrist'] }),
    );
    expect([error.code, error.location]).toEqual(['DROP_FEATURES_UNKNOWN', { file: 'meta/info.json', field: 'dropFeatures' }]);
    expect(error.details).toEqual({
      unknown: ['observation.images.wrist'],
      available: ['action', 'observation.images.front', 'observation.state'],
    });
  });
});
