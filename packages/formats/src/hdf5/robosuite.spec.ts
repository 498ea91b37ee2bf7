// Files shaped like robosuite's own demonstrations (collect_human_demonstrations.py: /data with
// `env` and `env_info` attributes, demo_<n> groups numbered from 1 holding states and actions; the
// uploaded one also had joint_torques) and variants, written at test time with h5wasm.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ImportError, type FeatureValues, type ImportSource } from '../importer.js';
import { sourceFromDirectory, sourceFromFiles } from '../source.js';
import { importAll } from '../testing/import-all.js';
import { hdf5AlohaImporter } from './aloha.js';
import { hdf5RobomimicImporter } from './robomimic.js';
import { writeHdf5, type WritableData } from './testing.js';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), `kura-robosuite-${randomBytes(4).toString('hex')}-`));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const fileSource = (absolutePath: string): Promise<ImportSource> =>
  sourceFromFiles([{ path: absolutePath.split('/').pop() ?? 'demo.hdf5', absolutePath }]);

/** steps × width float64 values, `value(step, component)`. */
const matrix = (steps: number, width: number, value: (step: number, component: number) => number = () => 0.5) => ({
  data: Float64Array.from({ length: steps * width }, (_, index) => value(Math.floor(index / width), index % width)),
  shape: [steps, width],
});

/** A robosuite demo file: demos demo_1…demo_n with states, actions (−0.0 in the gripper) and joint_torques. */
async function robosuiteFile(name: string, attributes: Record<string, string | number>, demos = 2): Promise<string> {
  const path = join(scratch, name);
  const datasets: Record<string, { data: WritableData; shape: number[] }> = {};
  for (let demo = 1; demo <= demos; demo++) {
    const steps = 3 + demo;
    datasets[`/data/demo_${demo}/states`] = matrix(steps, 5);
    // robosuite writes −0.0 where a controller output is a negated zero; the gripper column alternates 0.0 / −0.0.
    datasets[`/data/demo_${demo}/actions`] = matrix(steps, 7, (step, component) => (component === 6 ? (step % 2 === 0 ? 0 : -0) : step));
    datasets[`/data/demo_${demo}/joint_torques`] = matrix(steps, 7);
  }
  const demoAttributes = Object.fromEntries(
    Array.from({ length: demos }, (_, index) => [`/data/demo_${index + 1}`, { model_file: '<mujoco model="base"/>' }]),
  );
  await writeHdf5(path, datasets, { '/data': { date: '12-06-2026', repository_version: '1.4.1', ...attributes }, ...demoAttributes });
  return path;
}

function tensor(values: FeatureValues | undefined): Float64Array {
  if (values?.kind !== 'tensor' || !(values.values instanceof Float64Array)) throw new Error('expected a float64 tensor');
  return values.values;
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

describe('robosuite demonstrations (hdf5-robomimic)', () => {
  it('takes the task from env_info, warns once about joint_torques for all demos, and keeps −0.0', async () => {
    const path = await robosuiteFile('lift.hdf5', {
      env: 'Lift',
      env_info: JSON.stringify({ env_name: 'Lift', robots: ['Panda'], controller_configs: { type: 'OSC_POSE' } }),
    });
    const imported = await importAll(hdf5RobomimicImporter, await fileSource(path), { validate: true });
    expect(Object.keys(imported.features).sort()).toEqual(['action', 'observation.sim_state']);
    expect(imported.episodes.map((episode) => [episode.sourceId, episode.task])).toEqual([
      ['demo_1', 'Lift'],
      ['demo_2', 'Lift'],
    ]);
    expect(imported.warnings).toEqual([
      {
        code: 'HDF5_DATASET_IGNORED',
        message: expect.stringMatching(/^\/data\/demo_1\/joint_torques is not imported: .*\(in 2 of 2 demos; the location is the first\)$/),
        location: { file: 'lift.hdf5', episode: 'demo_1', field: '/data/demo_1/joint_torques' },
      },
    ]);
    // Step 1's gripper is −0.0 in the file: the same bits, not +0.
    const actions = tensor(imported.episodes[0]?.features.action);
    expect(Object.is(actions[1 * 7 + 6], -0)).toBe(true);
    expect(Object.is(actions[0 * 7 + 6], 0)).toBe(true);
  });

  it('takes the environment name from the env attribute when env_info does not name it', async () => {
    const path = await robosuiteFile('env-only.hdf5', { env: 'PickPlaceCan', env_info: JSON.stringify({ robots: ['Panda'] }) }, 1);
    const imported = await importAll(hdf5RobomimicImporter, await fileSource(path));
    expect(imported.episodes[0]?.task).toBe('PickPlaceCan');
  });

  it('prefers a language instruction to the environment name (env_info, RoboCasa ep_meta)', async () => {
    const path = join(scratch, 'instructed.hdf5');
    await writeHdf5(
      path,
      { '/data/demo_1/actions': matrix(2, 7), '/data/demo_2/actions': matrix(2, 7) },
      {
        '/data': { env: 'Lift', env_info: JSON.stringify({ env_name: 'Lift', language_instruction: 'lift the red cube' }) },
        '/data/demo_2': { ep_meta: JSON.stringify({ lang: 'open the left drawer' }) },
      },
    );
    const imported = await importAll(hdf5RobomimicImporter, await fileSource(path));
    expect(imported.episodes.map((episode) => episode.task)).toEqual(['lift the red cube', 'open the left drawer']);
  });

  it('is silent about next_obs keys that repeat an imported obs key, and names the others', async () => {
    const path = join(scratch, 'next-obs.hdf5');
    const demo = (number: number) => ({
      [`/data/demo_${number}/actions`]: matrix(3, 7),
      [`/data/demo_${number}/obs/robot0_eef_pos`]: matrix(3, 3),
      [`/data/demo_${number}/next_obs/robot0_eef_pos`]: matrix(3, 3),
      [`/data/demo_${number}/next_obs/object`]: matrix(3, 10),
    });
    await writeHdf5(path, { ...demo(0), ...demo(1), ...demo(2), '/data/demo_2/obs/extra_camera_depth': matrix(3, 4) });
    const imported = await importAll(hdf5RobomimicImporter, await fileSource(path));
    expect(imported.warnings.map((warning) => [warning.location.field, warning.message.replace(/^.*\(in /, '(in ')])).toEqual([
      ['/data/demo_0/next_obs/object', '(in 3 of 3 demos; the location is the first)'],
      ['/data/demo_2/obs/extra_camera_depth', '(in 1 of 3 demos; the location is the first)'],
    ]);
  });

  it('leaves out dropFeatures without reading them (a gray camera would fail), saying so', async () => {
    const path = join(scratch, 'gray.hdf5');
    await writeHdf5(path, {
      '/data/demo_0/actions': matrix(2, 7),
      '/data/demo_0/obs/robot0_eef_pos': matrix(2, 3),
      // Not H × W × 3: importing it is HDF5_IMAGE_INVALID.
      '/data/demo_0/obs/agentview_image': { data: new Uint8Array(2 * 4 * 5), shape: [2, 4, 5] },
    });
    const source = await fileSource(path);
    expect((await importError(() => importAll(hdf5RobomimicImporter, source))).code).toBe('HDF5_IMAGE_INVALID');

    const imported = await importAll(hdf5RobomimicImporter, source, {
      validate: true,
      dropFeatures: ['observation.images.agentview_image'],
    });
    expect(Object.keys(imported.features).sort()).toEqual(['action', 'observation.robot0_eef_pos']);
    expect(imported.episodes[0]?.features).not.toHaveProperty('observation.images.agentview_image');
    expect(imported.warnings).toEqual([
      {
        code: 'FEATURE_DROPPED',
        message: expect.stringContaining('"observation.images.agentview_image" is left out'),
        location: { file: 'gray.hdf5', field: 'observation.images.agentview_image' },
      },
    ]);

    const unknown = await importError(() => importAll(hdf5RobomimicImporter, source, { dropFeatures: ['observation.images.wrist'] }));
    expect([unknown.code, unknown.location]).toEqual(['DROP_FEATURES_UNKNOWN', { file: 'gray.hdf5', field: 'dropFeatures' }]);
    expect(unknown.message).toContain('"observation.images.wrist"');
  });
});

describe('datasets an ALOHA file has beyond the layout (hdf5-aloha)', () => {
  const vectors = (steps: number) => ({ data: new Float32Array(steps * 14).fill(0.25), shape: [steps, 14] });

  it('warns once per dataset Kura does not map, naming it and how many episodes had it', async () => {
    const folder = join(scratch, 'aloha-extra');
    for (const [episode, steps] of [
      [0, 3],
      [1, 4],
    ] as const) {
      await writeHdf5(join(folder, `episode_${episode}.hdf5`), {
        '/action': vectors(steps),
        '/observations/qpos': vectors(steps),
        '/joint_torques': vectors(steps),
        '/observations/tactile/left': vectors(steps),
      });
    }
    const imported = await importAll(hdf5AlohaImporter, await sourceFromDirectory(folder), { validate: true });
    expect(Object.keys(imported.features).sort()).toEqual(['action', 'observation.state']);
    expect(imported.warnings.map((warning) => [warning.code, warning.location, warning.message.replace(/^.*\(in /, '(in ')])).toEqual([
      [
        'HDF5_DATASET_IGNORED',
        { file: 'episode_0.hdf5', episode: 'episode_0', field: '/joint_torques' },
        '(in 2 of 2 episodes; the location is the first)',
      ],
      [
        'HDF5_DATASET_IGNORED',
        { file: 'episode_0.hdf5', episode: 'episode_0', field: '/observations/tactile/left' },
        '(in 2 of 2 episodes; the location is the first)',
      ],
    ]);
  });

  it('leaves out a dropped camera and says so, without warning that it is unmapped', async () => {
    const folder = join(scratch, 'aloha-drop');
    await writeHdf5(join(folder, 'episode_0.hdf5'), {
      '/action': vectors(2),
      '/observations/qpos': vectors(2),
      '/observations/images/top': { data: new Uint8Array(2 * 4 * 6 * 3), shape: [2, 4, 6, 3] },
    });
    const imported = await importAll(hdf5AlohaImporter, await sourceFromDirectory(folder), {
      validate: true,
      dropFeatures: ['observation.images.top'],
    });
    expect(Object.keys(imported.features).sort()).toEqual(['action', 'observation.state']);
    expect(imported.warnings.map((warning) => [warning.code, warning.location])).toEqual([
      ['FEATURE_DROPPED', { file: 'episode_0.hdf5', field: 'observation.images.top' }],
    ]);
  });
});
