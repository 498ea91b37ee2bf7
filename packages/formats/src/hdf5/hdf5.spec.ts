// Fixtures: written by fixtures/make_fixtures.py (h5py), which documents the formula behind every
// value checked here. Variants that need other layouts are written at test time with h5wasm.
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decode as decodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { ImportError, type FeatureValues, type Importer, type ImportSource } from '../importer.js';
import { sourceFromDirectory, sourceFromFiles } from '../source.js';
import { importAll } from '../testing/import-all.js';
import { createHdf5AlohaImporter, hdf5AlohaImporter } from './aloha.js';
import { loadH5wasm } from './h5.js';
import { hdf5RobomimicImporter } from './robomimic.js';
import { writeHdf5, type WritableData } from './testing.js';

const fixtures = join(import.meta.dirname, 'fixtures');
const bad = join(fixtures, 'bad');
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), `kura-hdf5-${randomBytes(4).toString('hex')}-`));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** The ImportError an import fails with (and the episodes read before it). */
async function importError(importer: Importer, source: ImportSource): Promise<{ error: ImportError; episodesBefore: number }> {
  let episodesBefore = 0;
  try {
    const result = await importer.open(source, { warn: () => undefined });
    for await (const episode of result.episodes) {
      expect(episode.length).toBeGreaterThan(0);
      episodesBefore++;
    }
  } catch (error) {
    if (error instanceof ImportError) return { error, episodesBefore };
    throw error;
  }
  throw new Error('the import succeeded');
}

function fileSource(absolutePath: string, path = absolutePath.split('/').pop() ?? 'data.hdf5'): Promise<ImportSource> {
  return sourceFromFiles([{ path, absolutePath }]);
}

function tensor(values: FeatureValues | undefined): ArrayLike<number> {
  if (values?.kind !== 'tensor' || values.values instanceof BigInt64Array) throw new Error('expected a numeric tensor');
  return values.values;
}

function frames(values: FeatureValues | undefined): Uint8Array[] {
  if (values?.kind !== 'image') throw new Error('expected images');
  return values.frames;
}

/** ALOHA pixel formula of make_fixtures.py. */
function alohaPixel(episode: number, step: number, y: number, x: number, channel: number): number {
  return (7 * step + 3 * y + 5 * x + 50 * channel + 11 * episode) % 256;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Reads whole datasets of a fixture with h5wasm (to build variants of it). */
async function readFixture(path: string, datasets: string[]): Promise<Record<string, { data: WritableData; shape: number[] }>> {
  const h5wasm = await loadH5wasm();
  const file = new h5wasm.File(path, 'r');
  try {
    const result: Record<string, { data: WritableData; shape: number[] }> = {};
    for (const name of datasets) {
      const dataset = file.get(name);
      if (!(dataset instanceof h5wasm.Dataset)) throw new Error(`no dataset ${name}`);
      const value = dataset.value;
      if (!(value instanceof Float32Array || value instanceof Uint8Array)) throw new Error(`unexpected type of ${name}`);
      result[name] = { data: value, shape: dataset.shape ?? [] };
    }
    return result;
  } finally {
    file.close();
  }
}

describe('hdf5-aloha', () => {
  it('detects ALOHA files and not robomimic ones', async () => {
    const aloha = await sourceFromDirectory(join(fixtures, 'aloha_raw'));
    const robomimic = await sourceFromDirectory(join(fixtures, 'robomimic'));
    expect(await hdf5AlohaImporter.detect(aloha)).toBe(true);
    expect(await hdf5AlohaImporter.detect(robomimic)).toBe(false);
    expect(await hdf5RobomimicImporter.detect(aloha)).toBe(false);
  });

  it('imports raw episodes: every value, and PNG frames that decode to the recorded pixels', async () => {
    const imported = await importAll(hdf5AlohaImporter, await sourceFromDirectory(join(fixtures, 'aloha_raw')), { validate: true });

    expect(Object.keys(imported.features).sort()).toEqual([
      'action',
      'observation.effort',
      'observation.images.top',
      'observation.state',
      'observation.velocity',
    ]);
    expect(imported.features['observation.images.top']).toEqual({ dtype: 'image', shape: [24, 32, 3], encoding: 'png' });
    expect(imported.features.action).toMatchObject({ dtype: 'float32', shape: [14] });
    const joints = ['waist', 'shoulder', 'elbow', 'forearm_roll', 'wrist_angle', 'wrist_rotate', 'gripper'];
    expect(imported.features.action?.names).toEqual([
      ...joints.map((joint) => `left_${joint}`),
      ...joints.map((joint) => `right_${joint}`),
    ]);
    expect(imported.expectedEpisodes).toBe(2);
    expect(imported.fps).toBeUndefined();
    expect(imported.warnings).toEqual([]);

    expect(imported.episodes.map((episode) => [episode.sourceId, episode.sourceIndex, episode.length, episode.file])).toEqual([
      ['episode_0', 0, 20, 'episode_0.hdf5'],
      ['episode_1', 1, 15, 'episode_1.hdf5'],
    ]);
    expect(imported.episodes.map((episode) => episode.sourceEpisode)).toEqual(['episode_0.hdf5', 'episode_1.hdf5']);
    imported.episodes.forEach((episode, episodeNumber) => {
      expect(episode.timestamp).toBeUndefined();
      expect(episode.isTerminal).toBeUndefined();
      expect(episode.reward).toBeUndefined();
      expect(episode.task).toBeNull();
      expect(episode.metadata).toEqual({ attributes: { sim: true } });

      const action = tensor(episode.features.action);
      const qpos = tensor(episode.features['observation.state']);
      const qvel = tensor(episode.features['observation.velocity']);
      const effort = tensor(episode.features['observation.effort']);
      expect(episode.features.action?.kind === 'tensor' && episode.features.action.values).toBeInstanceOf(Float32Array);
      for (const [step, joint] of [
        [0, 0],
        [3, 7],
        [episode.length - 1, 13],
      ] as const) {
        const index = step * 14 + joint;
        expect(action[index]).toBe(Math.fround(100 * episodeNumber + step + joint / 100));
        expect(qpos[index]).toBe(Math.fround(100 * episodeNumber + step + joint / 100 + 0.5));
        expect(qvel[index]).toBe(Math.fround(-(step + joint / 100)));
        expect(effort[index]).toBe(step * joint);
      }

      const images = frames(episode.features['observation.images.top']);
      expect(images).toHaveLength(episode.length);
      for (const step of [0, 1, episode.length - 1]) {
        const decoded = decodePng(images[step]!);
        expect([decoded.width, decoded.height, decoded.channels, decoded.depth]).toEqual([32, 24, 3, 8]);
        const expected = new Uint8Array(24 * 32 * 3);
        for (let y = 0; y < 24; y++)
          for (let x = 0; x < 32; x++)
            for (let channel = 0; channel < 3; channel++)
              expected[(y * 32 + x) * 3 + channel] = alohaPixel(episodeNumber, step, y, x, channel);
        expect(Buffer.from(decoded.data).equals(Buffer.from(expected))).toBe(true);
      }
    });
  });

  it('orders episode files numerically, not by name', async () => {
    const folder = join(scratch, 'numeric-order');
    await mkdir(folder);
    for (const name of ['episode_10.hdf5', 'episode_9.hdf5', 'episode_2.hdf5'])
      await copyFile(join(fixtures, 'aloha_raw', 'episode_1.hdf5'), join(folder, name));
    await writeFile(join(folder, 'notes.txt'), 'not an episode');
    const imported = await importAll(hdf5AlohaImporter, await sourceFromDirectory(folder), { validate: true });
    expect(imported.episodes.map((episode) => [episode.sourceId, episode.sourceIndex])).toEqual([
      ['episode_2', 2],
      ['episode_9', 9],
      ['episode_10', 10],
    ]);
  });

  it('warns about datasets that only later episodes have, and leaves them out', async () => {
    const folder = join(scratch, 'extra-dataset');
    const vectors = (steps: number): { data: Float32Array; shape: number[] } => ({
      data: new Float32Array(steps * 14).fill(1),
      shape: [steps, 14],
    });
    await writeHdf5(join(folder, 'episode_0.hdf5'), { '/action': vectors(3), '/observations/qpos': vectors(3) });
    await writeHdf5(join(folder, 'episode_1.hdf5'), {
      '/action': vectors(4),
      '/observations/qpos': vectors(4),
      '/observations/qvel': vectors(4),
    });
    const imported = await importAll(hdf5AlohaImporter, await sourceFromDirectory(folder), { validate: true });
    expect(Object.keys(imported.features).sort()).toEqual(['action', 'observation.state']);
    expect(imported.episodes.map((episode) => episode.length)).toEqual([3, 4]);
    expect(imported.warnings.map((warning) => [warning.code, warning.location])).toEqual([
      ['HDF5_DATASET_IGNORED', { file: 'episode_1.hdf5', episode: 'episode_1', field: '/observations/qvel' }],
    ]);
  });

  it('encodes raw frames as JPEG when asked', async () => {
    const importer = createHdf5AlohaImporter({ imageEncoding: 'jpeg', jpegQuality: 95 });
    const imported = await importAll(importer, await fileSource(join(fixtures, 'aloha_raw', 'episode_0.hdf5')), { validate: true });
    expect(imported.features['observation.images.top']).toEqual({ dtype: 'image', shape: [24, 32, 3], encoding: 'jpeg' });
    const frame = frames(imported.episodes[0]?.features['observation.images.top'])[5]!;
    const decoded = jpeg.decode(frame, { useTArray: true, formatAsRGBA: false });
    expect([decoded.width, decoded.height]).toEqual([32, 24]);
    let error = 0;
    for (let y = 0; y < 24; y++)
      for (let x = 0; x < 32; x++)
        for (let channel = 0; channel < 3; channel++)
          error += Math.abs(decoded.data[(y * 32 + x) * 3 + channel]! - alohaPixel(0, 5, y, x, channel));
    // Lossy, but close: a mean error of a few levels.
    expect(error / (24 * 32 * 3)).toBeLessThan(8);
  });

  it('keeps compressed frames as the exact JPEG bytes, cut at compress_len', async () => {
    const imported = await importAll(hdf5AlohaImporter, await sourceFromDirectory(join(fixtures, 'aloha_compressed')), { validate: true });
    const manifest = JSON.parse(await readFile(join(fixtures, 'aloha_compressed', 'episode_0.frames.json'), 'utf8')) as Record<
      string,
      Array<{ bytes: number; sha256: string }>
    >;

    expect(imported.features['observation.images.top']).toEqual({ dtype: 'image', shape: [24, 32, 3], encoding: 'jpeg' });
    expect(imported.features['observation.images.left_wrist']).toEqual({ dtype: 'image', shape: [16, 20, 3], encoding: 'jpeg' });
    const [episode] = imported.episodes;
    expect(episode?.length).toBe(10);
    expect(episode?.metadata).toEqual({ attributes: { sim: false, compress: true } });
    for (const camera of ['top', 'left_wrist']) {
      const imported = frames(episode?.features[`observation.images.${camera}`]);
      expect(imported.map((frame) => ({ bytes: frame.length, sha256: sha256(frame) }))).toEqual(manifest[camera]);
    }
    expect(tensor(episode?.features.action)[14 * 9 + 2]).toBe(Math.fround(9.02));
  });

  it('cuts padded JPEG rows at the end of the image when compress_len is absent', async () => {
    const original = join(fixtures, 'aloha_compressed', 'episode_0.hdf5');
    const copy = await readFixture(original, ['/action', '/observations/qpos', '/observations/images/top']);
    const path = join(scratch, 'no-compress-len', 'episode_0.hdf5');
    await writeHdf5(path, copy, { '/': { compress: 1 } });
    const imported = await importAll(hdf5AlohaImporter, await sourceFromDirectory(dirname(path)), { validate: true });
    const manifest = JSON.parse(await readFile(original.replace('.hdf5', '.frames.json'), 'utf8')) as Record<
      string,
      Array<{ bytes: number; sha256: string }>
    >;
    expect(Object.keys(imported.features).sort()).toEqual(['action', 'observation.images.top', 'observation.state']);
    expect(
      frames(imported.episodes[0]?.features['observation.images.top']).map((frame) => ({ bytes: frame.length, sha256: sha256(frame) })),
    ).toEqual(manifest.top);
  });
});

describe('hdf5-robomimic', () => {
  it('detects robomimic files', async () => {
    expect(await hdf5RobomimicImporter.detect(await sourceFromDirectory(join(fixtures, 'robomimic')))).toBe(true);
  });

  it('imports demos in numeric order with actions, rewards, dones, states, observations and masks', async () => {
    const imported = await importAll(hdf5RobomimicImporter, await sourceFromDirectory(join(fixtures, 'robomimic')), { validate: true });

    expect(imported.features).toEqual({
      action: { dtype: 'float64', shape: [7] },
      'observation.sim_state': { dtype: 'float64', shape: [9] },
      'observation.robot0_eef_pos': { dtype: 'float64', shape: [3] },
      'observation.images.agentview_image': { dtype: 'image', shape: [8, 10, 3], encoding: 'png' },
    });
    expect(imported.fps).toBe(20);
    expect(imported.expectedEpisodes).toBe(3);
    expect(imported.episodes.map((episode) => [episode.sourceId, episode.sourceIndex, episode.length, episode.metadata])).toEqual([
      ['demo_0', 0, 12, { masks: ['train'] }],
      ['demo_2', 2, 15, { masks: ['valid'] }],
      ['demo_10', 10, 9, { masks: ['train'] }],
    ]);
    expect(imported.episodes.map((episode) => episode.sourceEpisode)).toEqual(['demo_0', 'demo_2', 'demo_10']);

    for (const episode of imported.episodes) {
      const demo = episode.sourceIndex ?? -1;
      const last = episode.length - 1;
      expect(episode.task).toBe('Lift');
      expect(episode.timestamp).toBeUndefined();
      expect(Array.from(episode.reward ?? [])).toEqual(Array.from({ length: episode.length }, (_, step) => (step === last ? 1 : 0)));
      expect(Array.from(episode.isTerminal ?? [])).toEqual(Array.from({ length: episode.length }, (_, step) => (step === last ? 1 : 0)));
      const actions = tensor(episode.features.action);
      expect(actions[0]).toBe(demo);
      expect(actions[3 * 7 + 4]).toBe(demo + 3 / 10 + 4 / 1000);
      expect(actions[last * 7 + 6]).toBe(demo + last / 10 + 6 / 1000);
      expect(tensor(episode.features['observation.sim_state'])[last * 9 + 8]).toBe(demo * 1000 + last * 10 + 8);
      expect(tensor(episode.features['observation.robot0_eef_pos'])[2 * 3 + 1]).toBe(2 + 1 / 10 + demo);

      const images = frames(episode.features['observation.images.agentview_image']);
      expect(images).toHaveLength(episode.length);
      const decoded = decodePng(images[last]!);
      expect([decoded.width, decoded.height, decoded.channels]).toEqual([10, 8, 3]);
      for (const [y, x, channel] of [
        [0, 0, 0],
        [7, 9, 2],
        [3, 4, 1],
      ] as const) {
        expect(decoded.data[(y * 10 + x) * 3 + channel]).toBe((last + 2 * y + 3 * x + 40 * channel + demo) % 256);
      }
    }
  });

  it('takes the task from LIBERO problem_info, images from *_rgb observations, and warns about a wrong num_samples', async () => {
    const path = join(scratch, 'libero.hdf5');
    const steps = 3;
    await writeHdf5(
      path,
      {
        '/data/demo_1/actions': { data: Float32Array.from({ length: steps * 7 }, (_, index) => index), shape: [steps, 7] },
        '/data/demo_1/obs/agentview_rgb': { data: new Uint8Array(steps * 4 * 6 * 3).fill(200), shape: [steps, 4, 6, 3] },
        '/data/demo_1/obs/joint_states': { data: new Float64Array(steps * 7).fill(0.25), shape: [steps, 7] },
      },
      {
        '/data': {
          problem_info: JSON.stringify({ language_instruction: 'put the bowl on the plate' }),
          env_args: JSON.stringify({ env_name: 'Libero' }),
        },
        // Disagrees with the 3 steps of actions: a warning, the data wins.
        '/data/demo_1': { num_samples: 5 },
      },
    );
    const imported = await importAll(hdf5RobomimicImporter, await fileSource(path), { validate: true });
    expect(imported.features['observation.images.agentview_rgb']).toEqual({ dtype: 'image', shape: [4, 6, 3], encoding: 'png' });
    expect(imported.features['observation.joint_states']).toEqual({ dtype: 'float64', shape: [7] });
    const [episode] = imported.episodes;
    expect(episode?.task).toBe('put the bowl on the plate');
    expect(imported.warnings.map((warning) => [warning.code, warning.location])).toEqual([
      ['HDF5_ATTRIBUTE_MISMATCH', { file: 'libero.hdf5', episode: 'demo_1', field: '/data/demo_1/actions' }],
    ]);
    expect(episode?.metadata).toBeUndefined();
    expect(episode?.reward).toBeUndefined();
    expect(tensor(episode?.features.action)[20]).toBe(20);
    expect(Array.from(decodePng(frames(episode?.features['observation.images.agentview_rgb'])[2]!).data.slice(0, 3))).toEqual([
      200, 200, 200,
    ]);
  });
});

describe('hdf5 bad inputs', () => {
  const expectError = async (
    importer: Importer,
    source: ImportSource,
    code: string,
    location: Record<string, unknown>,
    episodesBefore = 0,
  ): Promise<ImportError> => {
    const result = await importError(importer, source);
    expect({ code: result.error.code, location: result.error.location, episodesBefore: result.episodesBefore }).toEqual({
      code,
      location,
      episodesBefore,
    });
    return result.error;
  };

  it('rejects a file that is not HDF5, and does not detect it', async () => {
    const path = join(scratch, 'episode_0.hdf5');
    await writeFile(path, 'time,x\n0,1\n');
    const source = await fileSource(path);
    expect(await hdf5AlohaImporter.detect(source)).toBe(false);
    expect(await hdf5RobomimicImporter.detect(source)).toBe(false);
    await expectError(hdf5AlohaImporter, source, 'HDF5_INVALID', { file: 'episode_0.hdf5' });
  });

  it('rejects an empty file', async () => {
    const path = join(scratch, 'empty.hdf5');
    await writeFile(path, new Uint8Array(0));
    await expectError(hdf5RobomimicImporter, await fileSource(path), 'HDF5_INVALID', { file: 'empty.hdf5' });
  });

  it('rejects a truncated file', async () => {
    const bytes = await readFile(join(fixtures, 'robomimic', 'low_dim_and_image.hdf5'));
    const path = join(scratch, 'truncated.hdf5');
    await writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const source = await fileSource(path);
    expect(await hdf5RobomimicImporter.detect(source)).toBe(false);
    const error = await expectError(hdf5RobomimicImporter, source, 'HDF5_INVALID', { file: 'truncated.hdf5' });
    expect(error.message).toMatch(/truncated/);
  });

  it('rejects a truncated second episode after importing the first', async () => {
    const folder = join(scratch, 'second-truncated');
    await mkdir(folder);
    await copyFile(join(fixtures, 'aloha_raw', 'episode_0.hdf5'), join(folder, 'episode_0.hdf5'));
    const bytes = await readFile(join(fixtures, 'aloha_raw', 'episode_1.hdf5'));
    await writeFile(join(folder, 'episode_1.hdf5'), bytes.subarray(0, 8));
    await expectError(hdf5AlohaImporter, await sourceFromDirectory(folder), 'HDF5_INVALID', { file: 'episode_1.hdf5' }, 1);
  });

  it('rejects an upload without an HDF5 file', async () => {
    const folder = join(scratch, 'no-hdf5');
    await mkdir(folder);
    await writeFile(join(folder, 'a.txt'), 'a');
    await writeFile(join(folder, 'b.txt'), 'b');
    await expectError(hdf5AlohaImporter, await sourceFromDirectory(folder), 'HDF5_DATASET_MISSING', {});
  });

  it('rejects an ALOHA file without /action', async () => {
    await expectError(hdf5AlohaImporter, await sourceFromDirectory(join(bad, 'aloha_missing_action')), 'HDF5_DATASET_MISSING', {
      file: 'episode_0.hdf5',
      episode: 'episode_0',
      field: '/action',
    });
  });

  it('rejects datasets of one episode with different lengths', async () => {
    await expectError(hdf5AlohaImporter, await sourceFromDirectory(join(bad, 'aloha_length_mismatch')), 'EPISODE_SHAPE_MISMATCH', {
      file: 'episode_0.hdf5',
      episode: 'episode_0',
      field: '/observations/qvel',
    });
  });

  it('rejects camera frames that are not H×W×3 uint8', async () => {
    for (const folder of ['aloha_bad_image_shape', 'aloha_float_image']) {
      await expectError(hdf5AlohaImporter, await sourceFromDirectory(join(bad, folder)), 'HDF5_IMAGE_INVALID', {
        file: 'episode_0.hdf5',
        episode: 'episode_0',
        field: '/observations/images/top',
      });
    }
  });

  it('rejects strings and half floats where numbers are expected', async () => {
    await expectError(hdf5AlohaImporter, await sourceFromDirectory(join(bad, 'aloha_string_dataset')), 'HDF5_DTYPE_UNSUPPORTED', {
      file: 'episode_0.hdf5',
      episode: 'episode_0',
      field: '/observations/qpos',
    });
    await expectError(hdf5AlohaImporter, await sourceFromDirectory(join(bad, 'aloha_float16')), 'HDF5_DTYPE_UNSUPPORTED', {
      file: 'episode_0.hdf5',
      episode: 'episode_0',
      field: '/action',
    });
  });

  it('names the compression filter it cannot decode', async () => {
    const error = await expectError(hdf5AlohaImporter, await sourceFromDirectory(join(bad, 'aloha_lzf')), 'HDF5_FILTER_UNSUPPORTED', {
      file: 'episode_0.hdf5',
      episode: 'episode_0',
      field: '/observations/qpos',
    });
    expect(error.message).toContain('lzf');
  });

  it('rejects a second episode whose dimensions differ from the first', async () => {
    await expectError(
      hdf5AlohaImporter,
      await sourceFromDirectory(join(bad, 'aloha_dims_mismatch')),
      'EPISODE_SHAPE_MISMATCH',
      { file: 'episode_1.hdf5', episode: 'episode_1', field: '/action' },
      1,
    );
  });

  it('rejects a second episode that lacks a dataset the first has', async () => {
    await expectError(
      hdf5AlohaImporter,
      await sourceFromDirectory(join(bad, 'aloha_second_missing_qvel')),
      'HDF5_DATASET_MISSING',
      { file: 'episode_1.hdf5', episode: 'episode_1', field: '/observations/qvel' },
      1,
    );
  });

  it('rejects a compress_len beyond the padded row', async () => {
    await expectError(hdf5AlohaImporter, await sourceFromDirectory(join(bad, 'aloha_compress_len_too_large')), 'HDF5_IMAGE_INVALID', {
      file: 'episode_0.hdf5',
      episode: 'episode_0',
      field: '/compress_len',
      step: 3,
    });
  });

  it('rejects a compress_len that matches no camera', async () => {
    const original = join(fixtures, 'aloha_compressed', 'episode_0.hdf5');
    const copy = await readFixture(original, ['/action', '/observations/qpos', '/observations/images/top', '/compress_len']);
    const lengths = copy['/compress_len']!;
    // One byte short at step 4 in every row: still in range, but no longer the JPEG's length.
    const shortened = Float32Array.from(lengths.data, (value, index) => (index % 10 === 4 ? value - 1 : value));
    const path = join(scratch, 'wrong-compress-len', 'episode_0.hdf5');
    await writeHdf5(path, { ...copy, '/compress_len': { data: shortened, shape: lengths.shape } }, { '/': { compress: 1 } });
    await expectError(hdf5AlohaImporter, await sourceFromDirectory(dirname(path)), 'HDF5_IMAGE_INVALID', {
      file: 'episode_0.hdf5',
      episode: 'episode_0',
      field: '/compress_len',
      step: 4,
    });
  });

  it('rejects compressed rows that are not JPEG', async () => {
    await expectError(hdf5AlohaImporter, await sourceFromDirectory(join(bad, 'aloha_compressed_not_jpeg')), 'HDF5_IMAGE_INVALID', {
      file: 'episode_0.hdf5',
      episode: 'episode_0',
      field: '/observations/images/top',
      step: 0,
    });
  });

  it('rejects a robomimic demo without actions', async () => {
    await expectError(
      hdf5RobomimicImporter,
      await fileSource(join(bad, 'robomimic_missing_actions.hdf5')),
      'HDF5_DATASET_MISSING',
      { file: 'robomimic_missing_actions.hdf5', episode: 'demo_2', field: '/data/demo_2/actions' },
      1,
    );
  });

  it('rejects robomimic rewards of the wrong length', async () => {
    await expectError(
      hdf5RobomimicImporter,
      await fileSource(join(bad, 'robomimic_rewards_short.hdf5')),
      'EPISODE_SHAPE_MISMATCH',
      { file: 'robomimic_rewards_short.hdf5', episode: 'demo_10', field: '/data/demo_10/rewards' },
      2,
    );
  });

  it('rejects a robomimic image observation without colour channels', async () => {
    await expectError(hdf5RobomimicImporter, await fileSource(join(bad, 'robomimic_gray_image.hdf5')), 'HDF5_IMAGE_INVALID', {
      file: 'robomimic_gray_image.hdf5',
      episode: 'demo_0',
      field: '/data/demo_0/obs/agentview_image',
    });
  });

  it('rejects a robomimic file without demos, and does not detect it', async () => {
    const source = await fileSource(join(bad, 'robomimic_no_demos.hdf5'));
    expect(await hdf5RobomimicImporter.detect(source)).toBe(false);
    await expectError(hdf5RobomimicImporter, source, 'HDF5_DATASET_MISSING', { file: 'robomimic_no_demos.hdf5', field: '/data' });
  });
});
