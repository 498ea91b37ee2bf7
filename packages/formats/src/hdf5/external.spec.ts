// HDF5 files whose data lives outside the file: an upload must never read a byte of the host (#19).
// fixtures/external/*.hdf5 come from fixtures/external/make_external_fixtures.py (h5py: h5wasm cannot
// write external storage or virtual datasets); the external links are written here with h5wasm. All
// point at canary files under canaryDirectory, made before each import, whose values must never come
// out of an import.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ImportError, type ImportSource } from '../importer.js';
import { sourceFromFiles } from '../source.js';
import { hdf5AlohaImporter } from './aloha.js';
import { loadH5wasm } from './h5.js';
import { writeHdf5 } from './testing.js';

/** Where the committed fixtures point (make_external_fixtures.py's CANARY_DIRECTORY). */
const canaryDirectory = '/tmp/kura-hdf5-canary';
const fixtures = join(import.meta.dirname, 'fixtures', 'external');
const steps = 4;
const joints = 14;
/** Values no robot reports: any of them in an imported value means a host file was read. */
const canaryValues = Float64Array.from({ length: steps * joints }, (_, index) => 7_340_033.25 + index);

let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), `kura-hdf5-external-${randomBytes(4).toString('hex')}-`));
  await mkdir(canaryDirectory, { recursive: true });
  await writeFile(join(canaryDirectory, 'canary.bin'), new Uint8Array(canaryValues.buffer));
  await writeHdf5(join(canaryDirectory, 'canary.h5'), {
    '/qpos': { data: canaryValues, shape: [steps, joints] },
    '/observations/qpos': { data: canaryValues, shape: [steps, joints] },
    '/top': { data: new Uint8Array(steps * 8 * 8 * 3).fill(201), shape: [steps, 8, 8, 3] },
  });
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const action = () => ({ data: Float32Array.from({ length: steps * joints }, (_, index) => index / 100), shape: [steps, joints] });
const ownQpos = () => ({ data: Float32Array.from({ length: steps * joints }, (_, index) => 0.5 + index), shape: [steps, joints] });

/** An ALOHA episode written with h5wasm, with external links added by `link(file)`. */
async function alohaWithLinks(
  name: string,
  datasets: Record<string, { data: Float32Array | Uint8Array; shape: number[] }>,
  links: Array<{ group: string; name: string; file: string; target: string }>,
): Promise<string> {
  const path = join(scratch, name, 'episode_0.hdf5');
  await writeHdf5(path, { '/action': action(), ...datasets });
  const h5wasm = await loadH5wasm();
  const file = new h5wasm.File(path, 'a');
  try {
    for (const link of links) {
      if (file.get(link.group) === null) file.create_group(link.group.slice(1));
      const group = file.get(link.group);
      if (!(group instanceof h5wasm.Group)) throw new Error(`no group ${link.group}`);
      group.create_external_link(link.file, link.target, link.name);
    }
  } finally {
    file.close();
  }
  return path;
}

async function committed(name: string): Promise<string> {
  const path = join(scratch, name.replace(/\.hdf5$/, ''), 'episode_0.hdf5');
  await mkdir(join(path, '..'), { recursive: true });
  await copyFile(join(fixtures, name), path);
  return path;
}

/** Every number an import gives out, and the error it ends with. */
async function importOutcome(source: ImportSource): Promise<{ error: unknown; values: number[] }> {
  const values: number[] = [];
  try {
    const result = await hdf5AlohaImporter.open(source, { warn: () => undefined });
    for await (const episode of result.episodes) {
      for (const feature of Object.values(episode.features)) {
        if (feature.kind === 'tensor' && !(feature.values instanceof BigInt64Array)) values.push(...Array.from(feature.values));
      }
    }
    return { error: undefined, values };
  } catch (error) {
    return { error, values };
  }
}

const relativeCanary = `${'../'.repeat(12)}${canaryDirectory.slice(1)}/canary.h5`;

describe('HDF5 data outside the upload is refused (HDF5_EXTERNAL_REFUSED, naming the path)', () => {
  it.each([
    ['external storage at an absolute path', () => committed('external_storage_absolute.hdf5'), '/observations/qpos', /external file/],
    ['external storage at a relative ../ path', () => committed('external_storage_relative.hdf5'), '/observations/qpos', /external file/],
    ['a virtual dataset', () => committed('virtual_dataset.hdf5'), '/observations/qpos', /virtual dataset/],
    [
      'an external link as /observations/qpos',
      () =>
        alohaWithLinks('link-qpos', {}, [{ group: '/observations', name: 'qpos', file: `${canaryDirectory}/canary.h5`, target: '/qpos' }]),
      '/observations/qpos',
      /external link to \/qpos/,
    ],
    [
      'an external link through a relative ../ path',
      () => alohaWithLinks('link-relative', {}, [{ group: '/observations', name: 'qpos', file: relativeCanary, target: '/qpos' }]),
      '/observations/qpos',
      /external link/,
    ],
    [
      'an external link the importer would not read, in a group it walks',
      () =>
        alohaWithLinks('link-elsewhere', { '/observations/qpos': ownQpos() }, [
          { group: '/observations', name: 'gripper', file: `${canaryDirectory}/canary.h5`, target: '/qpos' },
        ]),
      '/observations/gripper',
      /external link/,
    ],
    [
      'an external link as a camera',
      () =>
        alohaWithLinks('link-camera', { '/observations/qpos': ownQpos() }, [
          { group: '/observations/images', name: 'top', file: `${canaryDirectory}/canary.h5`, target: '/top' },
        ]),
      '/observations/images/top',
      /external link/,
    ],
    [
      'a group that is an external link (/observations)',
      () =>
        alohaWithLinks('link-group', {}, [
          { group: '/', name: 'observations', file: `${canaryDirectory}/canary.h5`, target: '/observations' },
        ]),
      '/observations',
      /external link to \/observations in/,
    ],
  ])('%s', async (_label, make, field, message) => {
    const path = await make();
    const { error, values } = await importOutcome(await sourceFromFiles([{ path: 'episode_0.hdf5', absolutePath: path }]));
    expect(error).toBeInstanceOf(ImportError);
    expect(error).toMatchObject({
      code: 'HDF5_EXTERNAL_REFUSED',
      message: expect.stringMatching(message),
      location: { file: 'episode_0.hdf5', field },
    });
    const canary = new Set(canaryValues);
    expect(values.filter((value) => canary.has(value))).toEqual([]);
  });

  it('still reads a file whose data is all its own (the confinement lets the upload itself be opened)', async () => {
    const path = await alohaWithLinks('own', { '/observations/qpos': ownQpos() }, []);
    const { error, values } = await importOutcome(await sourceFromFiles([{ path: 'episode_0.hdf5', absolutePath: path }]));
    expect(error).toBeUndefined();
    expect(values).toContain(0.5 + 13);
  });
});
