// An ALOHA HDF5 upload whose /observations/qpos stores its data in a host file (HDF5 external storage,
// by absolute and by ../ path) must fail with HDF5_EXTERNAL_REFUSED at that dataset, and no byte of
// the host file may end up anywhere Kura writes (#19: the slice showed the host file's bytes).
// Fixtures: packages/formats/src/hdf5/fixtures/external/make_external_fixtures.py.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset, createRobot, uploadAndWait } from '../../../../test/support/datasets.js';

/** Where the fixtures point (make_external_fixtures.py's CANARY_DIRECTORY). */
const canaryDirectory = '/tmp/kura-hdf5-canary';
/** 4 steps × 14 joints of float64 no robot reports. */
const canary = Buffer.from(Float64Array.from({ length: 4 * 14 }, (_, index) => 7_340_033.25 + index).buffer);
const fixture = (name: string) =>
  fileURLToPath(new URL(`../../../../packages/formats/src/hdf5/fixtures/external/${name}`, import.meta.url));

/** Every file under a folder; a folder removed meanwhile (a failed upload's work folder going away) holds none. */
async function filesUnder(folder: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(path)));
    else if (entry.isFile()) files.push(path);
  }
  return files;
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
    robotId = await createRobot(kura, operator.key, {
      name: 'aloha',
      robotType: 'aloha',
      controlFrequencyHz: 50,
      actionSpace: 'joint_position',
    });
  });
  afterAll(async () => {
    await kura.close();
  });

  it.each(['external_storage_absolute.hdf5', 'external_storage_relative.hdf5'])(
    '%s fails with HDF5_EXTERNAL_REFUSED at /observations/qpos, and the host bytes are nowhere',
    async (name) => {
      const datasetId = await createDataset(kura, operator.key, 'public', robotId);
      const upload = await uploadAndWait(kura, operator.key, datasetId, await readFile(fixture(name)), {
        query: '?fileName=episode_0.hdf5',
        timeoutMs: 30_000,
      });

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
      expect((await kura.request.get(`/v1/datasets/${datasetId}`).set(bearer(operator.key))).body.latestVersion).toBe(0);
      // Not in a shard, a stats file, a log or anything else Kura keeps.
      const pattern = canary.subarray(0, 16);
      for (const file of await filesUnder(kura.dataDir))
        expect({ file, found: (await readFile(file).catch(() => Buffer.alloc(0))).includes(pattern) }).toEqual({ file, found: false });
    },
  );
});
