// What an upload reports about its source, over HTTP: HDF5 datasets left out and robosuite's task,
// dropFeatures for cameras that were never committed, FORMAT_UNKNOWN naming what Kura saw, and −0.0
// kept through import and every slice format. Files are made at test time in the shape of the real ones.
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tableFromIPC } from 'apache-arrow';
import { parquetReadObjects } from 'hyparquet';
import { writeHdf5 } from '../../../../packages/formats/src/hdf5/testing.js';
import { bearer, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOfFolder } from '../../../../test/support/archives.js';
import { createDataset as createDatasetOn, createRobot, uploadAndWait, waitForUpload } from '../../../../test/support/datasets.js';

// Our own LeRobot v3.0 fixture (packages/formats/src/lerobot/fixtures/make_fixtures.py): 4 episodes, camera observation.images.front as mp4.
const v3Small = fileURLToPath(new URL('../../../../packages/formats/src/lerobot/fixtures/v3_small/', import.meta.url));

interface Issue {
  code: string;
  message: string;
  location: Record<string, unknown>;
  details?: Record<string, unknown>;
}

interface SettledUpload {
  status: string;
  errors: Issue[];
  warnings: Issue[];
  episodeCount: number;
}

describe('what an upload reports about its source', () => {
  let kura: TestApp;
  let operator: { key: string };
  let robotId: string;
  let scratch: string;

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    scratch = await mkdtemp(join(tmpdir(), 'kura-import-reports-'));
    robotId = await createRobot(kura, operator.key, {
      name: 'panda',
      robotType: 'panda',
      controlFrequencyHz: 20,
      actionSpace: 'eef_delta_pose',
    });
  });
  afterAll(async () => {
    await kura.close();
    await rm(scratch, { recursive: true, force: true });
  });

  const createDataset = () => createDatasetOn(kura, operator.key, 'public', robotId);

  /** Uploads a body and waits for the upload to settle. */
  const ingest = async (datasetId: string, body: Buffer, query = ''): Promise<SettledUpload> =>
    uploadAndWait(kura, operator.key, datasetId, body, { query });
  const settled = async (uploadId: string): Promise<SettledUpload> => waitForUpload(kura, operator.key, uploadId);

  it('names the robosuite dataset it leaves out once for all demos, and takes the task from env_info', async () => {
    const path = join(scratch, 'lift_demo.hdf5');
    const steps = (count: number, width: number) => ({ data: new Float64Array(count * width).fill(0.5), shape: [count, width] });
    await writeHdf5(
      path,
      Object.fromEntries(
        [1, 2, 3].flatMap((demo) => [
          [`/data/demo_${demo}/states`, steps(4, 5)],
          [`/data/demo_${demo}/actions`, steps(4, 7)],
          [`/data/demo_${demo}/joint_torques`, steps(4, 7)],
        ]),
      ),
      { '/data': { env: 'Lift', env_info: JSON.stringify({ env_name: 'Lift', robots: ['Panda'] }) } },
    );
    const datasetId = await createDataset();
    const upload = await ingest(datasetId, await readFile(path), '?fileName=lift_demo.hdf5');
    expect(upload).toMatchObject({ status: 'published', format: 'hdf5-robomimic', episodeCount: 3 });
    expect(upload.warnings).toEqual([
      expect.objectContaining({
        code: 'HDF5_DATASET_IGNORED',
        message: expect.stringContaining('(in 3 of 3 demos'),
        location: { file: 'lift_demo.hdf5', episode: 'demo_1', field: '/data/demo_1/joint_torques' },
      }),
    ]);
    const episodes = (await kura.request.get(`/v1/datasets/${datasetId}/episodes`)).body.items as Array<{ task: string | null }>;
    expect(episodes.map((episode) => episode.task)).toEqual(['Lift', 'Lift', 'Lift']);
  });

  it('says FORMAT_UNKNOWN saw an HDF5 file, what its top level holds and which layouts it tried', async () => {
    const path = join(scratch, 'trajectories.h5');
    await writeHdf5(path, { '/traj_0/actions': { data: new Float32Array(8), shape: [4, 2] } });
    const upload = await ingest(await createDataset(), await readFile(path), '?fileName=trajectories.h5');
    expect(upload.status).toBe('failed');
    const [error] = upload.errors;
    expect(error?.code).toBe('FORMAT_UNKNOWN');
    expect(error?.message).toContain('an HDF5 file (trajectories.h5)');
    expect(error?.message).toContain('/traj_0 (group)');
    expect(error?.message).toContain('hdf5-robomimic: an HDF5 file with a /data group holding demo_<n> groups');
    expect(error?.details).toMatchObject({ container: 'HDF5', hdf5: { members: [{ name: 'traj_0', kind: 'group' }] } });
  });

  describe('dropFeatures', () => {
    let withoutVideos: Buffer;
    beforeAll(async () => {
      // The recording's info.json declares the camera, but no mp4 was committed.
      const folder = join(scratch, 'no-videos');
      await cp(v3Small, folder, { recursive: true });
      await rm(join(folder, 'videos'), { recursive: true, force: true });
      withoutVideos = await tarGzOfFolder(folder, 'so101_recording');
    });

    it('is needed: the camera without its files fails the upload', async () => {
      const upload = await ingest(await createDataset(), withoutVideos);
      expect(upload.errors.map((error) => error.code)).toEqual(['LEROBOT_VIDEO_MISSING']);
    });

    it('leaves named features out (?dropFeatures=a,b) and says so in the warnings', async () => {
      const datasetId = await createDataset();
      const upload = await ingest(datasetId, withoutVideos, '?dropFeatures=observation.images.front');
      expect(upload).toMatchObject({ status: 'published', episodeCount: 4 });
      expect(upload.warnings).toEqual([
        expect.objectContaining({
          code: 'FEATURE_DROPPED',
          location: { file: 'so101_recording/meta/info.json', field: 'observation.images.front' },
        }),
      ]);
      const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body as { features: Record<string, unknown> };
      expect(Object.keys(dataset.features).sort()).toEqual(['action', 'observation.state']);
    });

    it('takes dropFeatures in the body of a resumable upload', async () => {
      const datasetId = await createDataset();
      const { createHash } = await import('node:crypto');
      const started = await kura.request
        .post(`/v1/datasets/${datasetId}/uploads`)
        .set(bearer(operator.key))
        .send({
          multipart: true,
          bytes: withoutVideos.length,
          sha256: createHash('sha256').update(withoutVideos).digest('hex'),
          dropFeatures: ['observation.images.front'],
        });
      expect(started.status).toBe(201);
      const [part] = started.body.parts as Array<{ url: string }>;
      const sent = await kura.request
        .put(part!.url)
        .set(bearer(operator.key))
        .set('Content-Type', 'application/octet-stream')
        .send(withoutVideos);
      expect(sent.status).toBe(200);
      const completed = await kura.request
        .post(`/v1/uploads/${started.body.upload.id}/complete`)
        .set(bearer(operator.key))
        .send({ parts: [{ partNumber: 1, etag: sent.headers.etag }] });
      expect(completed.status).toBe(202);
      const upload = await settled(started.body.upload.id as string);
      expect(upload).toMatchObject({ status: 'published', episodeCount: 4 });
      expect(upload.warnings.map((warning) => warning.code)).toEqual(['FEATURE_DROPPED']);
    });

    it('fails the upload for a name the upload does not have, with DROP_FEATURES_UNKNOWN on the field dropFeatures', async () => {
      const upload = await ingest(await createDataset(), withoutVideos, '?dropFeatures=observation.images.front,observation.images.wrist');
      expect(upload.status).toBe('failed');
      expect(upload.errors).toEqual([
        expect.objectContaining({
          code: 'DROP_FEATURES_UNKNOWN',
          location: { file: 'so101_recording/meta/info.json', field: 'dropFeatures' },
          details: { unknown: ['observation.images.wrist'], available: ['action', 'observation.images.front', 'observation.state'] },
        }),
      ]);
    });

    it('refuses a malformed name before storing anything: 400 VALIDATION_FAILED naming dropFeatures', async () => {
      const response = await kura.request
        .post(`/v1/datasets/${await createDataset()}/uploads?dropFeatures=${encodeURIComponent('observation.images.front,not a name')}`)
        .set(bearer(operator.key))
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.from('{}'));
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(response.body.error.details.issues[0].path).toBe('dropFeatures.1');
    });
  });

  it('keeps −0.0 bit-exact from an upload to the NDJSON, Parquet and Arrow slice downloads', async () => {
    const lines = Array.from(
      { length: 4 },
      (_, step) => `{"episode":0,"step":${step},"observation":{"state":[${step}]},"action":[${step % 2 === 0 ? '0.0' : '-0.0'},1]}`,
    );
    const datasetId = await createDataset();
    const upload = await ingest(datasetId, Buffer.from(`${lines.join('\n')}\n`));
    expect(upload.status).toBe('published');
    const slice = await kura.request
      .post('/v1/slices')
      .set(bearer(kura.adminKey))
      .send({ sources: [{ datasetId }] });
    expect(slice.status).toBe(201);
    const download = async (format: string) => {
      const response = await getBytes(kura, `/v1/slices/${slice.body.id}/data?format=${format}`, bearer(kura.adminKey));
      expect(response.status).toBe(200);
      return response.body;
    };
    const signs = (values: ArrayLike<unknown>) => Array.from(values, (value) => (Object.is(value, -0) ? 'neg' : String(value)));
    const expected = ['0', 'neg', '0', 'neg'];

    const ndjson = (await download('ndjson')).toString('utf8').trimEnd().split('\n');
    expect(ndjson[1]).toContain('"action":[-0.0,1]');
    expect(signs(ndjson.map((line) => (JSON.parse(line) as { action: number[] }).action[0]))).toEqual(expected);

    const parquet = await download('parquet');
    const rows = await parquetReadObjects({
      file: Uint8Array.from(parquet).buffer,
      columns: ['action'],
    });
    expect(signs(rows.map((row) => (row.action as number[])[0]))).toEqual(expected);

    const table = tableFromIPC(await download('arrow'));
    const action = table.getChild('action')!;
    expect(signs(Array.from({ length: action.length }, (_, row) => (action.get(row) as { get(index: number): number }).get(0)))).toEqual(
      expected,
    );
  });
});
