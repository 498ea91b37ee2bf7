// Each format's fixture, uploaded over HTTP as an operator would (a folder as .tar.gz), imports with
// the expected counts; hostile archives fail with their code.
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOfFolder, tarGzWithEntry } from '../../../../test/support/archives.js';
import { createDataset, createRobot, uploadAndWait } from '../../../../test/support/datasets.js';

const fixture = (path: string) => fileURLToPath(new URL(`../../../../test/fixtures/${path}`, import.meta.url));

describe('importing each format over HTTP', () => {
  let kura: TestApp;
  let operator: { key: string };
  let robotId: string;

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    robotId = await createRobot(kura, operator.key, {
      name: 'arm',
      robotType: 'widowx',
      controlFrequencyHz: 5,
      actionSpace: 'eef_delta_pose',
    });
  });
  afterAll(async () => {
    await kura.close();
  });

  const ingest = async (body: Buffer, query = '') => {
    const datasetId = await createDataset(kura, operator.key, 'public', robotId);
    const upload = await uploadAndWait(kura, operator.key, datasetId, body, { query });
    return { datasetId, upload };
  };

  // octo-models/octo tests/debug_dataset (MIT): 25 BridgeData V2 episodes of 10 steps, 4 cameras.
  it('imports the RLDS bridge_debug fixture: 25 episodes × 10 steps, detected without ?format', async () => {
    const { datasetId, upload } = await ingest(await tarGzOfFolder(fixture('rlds/bridge_debug'), 'bridge_dataset'));
    expect(upload).toMatchObject({ status: 'published', format: 'rlds', episodeCount: 25, stepCount: 250 });
    const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body;
    expect(Object.entries(dataset.features).filter(([, feature]) => (feature as { dtype: string }).dtype === 'image')).toHaveLength(4);
    expect(dataset.features.action).toMatchObject({ dtype: 'float32', shape: [7] });
    const stats = (await kura.request.get(`/v1/datasets/${datasetId}/stats`)).body.features;
    expect(stats.action.count).toBe(250);
  });

  // YifanTian07/G1-policy-train (MIT): LeRobot v2.1, episodes 0, 1, 2 and 29 of 100 present.
  it('imports the LeRobot v2.1 unitree_g1 fixture: 4 episodes (479 + 393 + 343 + 221 steps), the 96 absent ones as warnings', async () => {
    const { datasetId, upload } = await ingest(await tarGzOfFolder(fixture('lerobot_v2.1/unitree_g1'), 'unitree_g1'));
    expect(upload).toMatchObject({ status: 'published', format: 'lerobot', episodeCount: 4, stepCount: 479 + 393 + 343 + 221 });
    expect(upload.warnings.filter((warning: { code: string }) => warning.code === 'LEROBOT_EPISODE_MISSING')).toHaveLength(96);
    const episodes = (await kura.request.get(`/v1/datasets/${datasetId}/episodes`)).body.items;
    expect(episodes.map((episode: { length: number }) => episode.length)).toEqual([479, 393, 343, 221]);
    const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body;
    expect(dataset.features['observation.state']).toMatchObject({ dtype: 'float32', shape: [26] });
  });

  // Written by packages/formats/src/hdf5/fixtures/make_fixtures.py.
  const hdf5Fixture = (path: string) => fileURLToPath(new URL(`../../../../packages/formats/src/hdf5/fixtures/${path}`, import.meta.url));

  it('imports ALOHA HDF5 episodes (a folder of episode_N.hdf5), encoding raw camera frames as PNG', async () => {
    const { datasetId, upload } = await ingest(await tarGzOfFolder(hdf5Fixture('aloha_raw')));
    expect(upload).toMatchObject({ status: 'published', format: 'hdf5-aloha', episodeCount: 2 });
    const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body;
    const images = Object.values(dataset.features).filter((feature) => (feature as { dtype: string }).dtype === 'image');
    expect(images).toEqual([expect.objectContaining({ encoding: 'png' })]);
  });

  it('imports a robomimic HDF5 file sent as a single file with ?format', async () => {
    const { readFile, readdir } = await import('node:fs/promises');
    const folder = hdf5Fixture('robomimic');
    const file = (await readdir(folder)).find((name) => name.endsWith('.hdf5'))!;
    const { upload } = await ingest(await readFile(`${folder}/${file}`), `?format=hdf5-robomimic&fileName=${file}`);
    expect(upload).toMatchObject({ status: 'published', format: 'hdf5-robomimic', episodeCount: 3 });
  });

  // Broken HDF5 inputs written by make_fixtures.py: each fails over HTTP with its code and the file, publishing nothing.
  it.each([
    ['aloha_missing_action', 'HDF5_DATASET_MISSING'],
    ['aloha_length_mismatch', 'EPISODE_SHAPE_MISMATCH'],
    ['aloha_bad_image_shape', 'HDF5_IMAGE_INVALID'],
    ['aloha_float_image', 'HDF5_IMAGE_INVALID'],
    ['aloha_string_dataset', 'HDF5_DTYPE_UNSUPPORTED'],
    ['aloha_float16', 'HDF5_DTYPE_UNSUPPORTED'],
    ['aloha_lzf', 'HDF5_FILTER_UNSUPPORTED'],
    ['aloha_dims_mismatch', 'EPISODE_SHAPE_MISMATCH'],
    ['aloha_second_missing_qvel', 'HDF5_DATASET_MISSING'],
    ['aloha_compress_len_too_large', 'HDF5_IMAGE_INVALID'],
    ['aloha_compressed_not_jpeg', 'HDF5_IMAGE_INVALID'],
    ['robomimic_missing_actions.hdf5', 'HDF5_DATASET_MISSING'],
    ['robomimic_rewards_short.hdf5', 'EPISODE_SHAPE_MISMATCH'],
    ['robomimic_gray_image.hdf5', 'HDF5_IMAGE_INVALID'],
    ['robomimic_no_demos.hdf5', 'HDF5_DATASET_MISSING'],
  ])('fails the broken HDF5 input %s with %s', async (name, code) => {
    const { readFile } = await import('node:fs/promises');
    const path = hdf5Fixture(`bad/${name}`);
    const { datasetId, upload } = name.endsWith('.hdf5')
      ? await ingest(await readFile(path), `?format=hdf5-robomimic&fileName=${name}`)
      : await ingest(await tarGzOfFolder(path), '?format=hdf5-aloha');
    expect(upload.status).toBe('failed');
    expect(upload.errors).toEqual([expect.objectContaining({ code, location: expect.objectContaining({ file: expect.any(String) }) })]);
    const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body;
    expect([dataset.latestVersion, dataset.episodeCount]).toEqual([0, 0]);
  });

  it.each([
    ['a path that climbs out of the folder', () => tarGzWithEntry({ name: '../../etc/evil' }), 'ARCHIVE_PATH_TRAVERSAL'],
    ['a symbolic link', () => tarGzWithEntry({ name: 'link', type: 'symlink', linkname: '/etc/passwd' }), 'ARCHIVE_LINK_REFUSED'],
    ['a truncated gzip', async () => (await tarGzOfFolder(fixture('rlds/bridge_debug'))).subarray(0, 5000), 'ARCHIVE_CORRUPT'],
    ['a compression bomb', () => tarGzWithEntry({ name: 'zeros.bin' }, Buffer.alloc(64 * 1024 * 1024)), 'ARCHIVE_TOO_LARGE'],
    ['gzip that holds no tar', async () => gzipSync(Buffer.from('not a tar archive at all, just text '.repeat(100))), 'ARCHIVE_CORRUPT'],
  ])('fails an archive with %s', async (_name, makeBody, code) => {
    const { upload } = await ingest(await makeBody());
    expect(upload.status).toBe('failed');
    expect(upload.errors[0].code).toBe(code);
  });
});
