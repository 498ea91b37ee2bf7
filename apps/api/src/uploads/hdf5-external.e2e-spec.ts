// An ALOHA HDF5 upload whose /observations/qpos stores its data in a host file (HDF5 external storage,
// by absolute and by ../ path) must fail with HDF5_EXTERNAL_REFUSED at that dataset, and no byte of
// the host file may end up anywhere Kura writes (#19: the slice showed the host file's bytes).
// Fixtures: packages/formats/src/hdf5/fixtures/external/make_external_fixtures.py.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';

/** Where the fixtures point (make_external_fixtures.py's CANARY_DIRECTORY). */
const canaryDirectory = '/tmp/kura-hdf5-canary';
/** 4 steps × 14 joints of float64 no robot reports. */
const canary = Buffer.from(Float64Array.from({ length: 4 * 14 }, (_, index) => 7_340_033.25 + index).buffer);
const fixture = (name: string) =>
  fileURLToPath(new URL(`../../../../packages/formats/src/hdf5/fixtures/external/${name}`, import.meta.url));

/** Every file under a folder. */
async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe('HDF5 uploads that point outside themselves', () => {
  let kura: TestApp;
  let operator: { key: string };
  let robotId: string;

  beforeAll(async () => {
    await mkdir(canaryDirectory, { recursive: true });
    await writeFile(join(canaryDirectory, 'canary.bin'), canary);
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    robotId = (
      await kura.request
        .post('/v1/robots')
        .set(bearer(operator.key))
        .send({ name: 'aloha', robotType: 'aloha', controlFrequencyHz: 50, actionSpace: 'joint_position' })
    ).body.id;
  });
  afterAll(async () => {
    await kura.close();
  });

  it.each(['external_storage_absolute.hdf5', 'external_storage_relative.hdf5'])(
    '%s fails with HDF5_EXTERNAL_REFUSED at /observations/qpos, and the host bytes are nowhere',
    async (name) => {
      const dataset = await kura.request
        .post('/v1/datasets')
        .set(bearer(operator.key))
        .send({ name: `external-${name}-${Date.now()}`, robotId, access: 'public' });
      const accepted = await kura.request
        .post(`/v1/datasets/${dataset.body.id}/uploads?fileName=episode_0.hdf5`)
        .set(bearer(operator.key))
        .set('Content-Type', 'application/octet-stream')
        .send(await readFile(fixture(name)));
      expect(accepted.status).toBe(202);
      const upload = await eventually(async () => {
        const response = await kura.request.get(`/v1/uploads/${accepted.body.id}`).set(bearer(operator.key));
        return ['published', 'failed'].includes(response.body.status) ? response.body : undefined;
      }, 30_000);

      expect(upload).toMatchObject({
        status: 'failed',
        errors: [
          {
            code: 'HDF5_EXTERNAL_REFUSED',
            location: { file: 'episode_0.hdf5', episode: 'episode_0', field: '/observations/qpos' },
          },
        ],
      });
      expect(upload.errors[0].message).toMatch(/external file .*canary\.bin/);
      expect((await kura.request.get(`/v1/datasets/${dataset.body.id}`).set(bearer(operator.key))).body.latestVersion).toBe(0);
      // Not in a shard, a stats file, a log or anything else Kura keeps.
      const pattern = canary.subarray(0, 16);
      for (const file of await filesUnder(kura.dataDir))
        expect({ file, found: (await readFile(file)).includes(pattern) }).toEqual({ file, found: false });
    },
  );
});
