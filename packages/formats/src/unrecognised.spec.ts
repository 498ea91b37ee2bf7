// FORMAT_UNKNOWN must tell a user what Kura saw and what it looked for: an HDF5 file of a layout no
// importer reads (here ManiSkill's, trajectories as /traj_<n> groups) is named as HDF5, with its top
// level and each layout tried.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeHdf5 } from './hdf5/testing.js';
import { detectFormat } from './registry.js';
import { sourceFromDirectory, sourceFromFiles } from './source.js';
import { unrecognisedFormatError } from './unrecognised.js';

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-unrecognised-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function maniskillFile(path: string): Promise<void> {
  const steps = (width: number) => ({ data: new Float32Array(4 * width), shape: [4, width] });
  await writeHdf5(path, {
    '/traj_0/actions': steps(7),
    '/traj_0/obs/agent/qpos': steps(9),
    '/traj_1/actions': steps(7),
    '/traj_1/obs/agent/qpos': steps(9),
    '/env_states': steps(3),
  });
}

describe('FORMAT_UNKNOWN', () => {
  it('names an HDF5 file of another layout as HDF5, its top-level members, and every layout tried', async () => {
    const path = join(scratch, 'trajectories.h5');
    await maniskillFile(path);
    const source = await sourceFromFiles([{ path: 'trajectories.h5', absolutePath: path }]);
    expect(await detectFormat(source)).toBeUndefined();

    const error = await unrecognisedFormatError(source);
    expect(error.code).toBe('FORMAT_UNKNOWN');
    expect(error.location).toEqual({ file: 'trajectories.h5' });
    expect(error.message).toContain('it is an HDF5 file (trajectories.h5)');
    expect(error.message).toContain('holds at its top level: /env_states (dataset), /traj_0 (group), /traj_1 (group)');
    expect(error.message).toContain('hdf5-aloha: an HDF5 file with an /action dataset and an /observations group');
    expect(error.message).toContain('hdf5-robomimic: an HDF5 file with a /data group holding demo_<n> groups');
    expect(error.details).toMatchObject({
      container: 'HDF5',
      hdf5: {
        file: 'trajectories.h5',
        members: [
          { name: 'env_states', kind: 'dataset' },
          { name: 'traj_0', kind: 'group' },
          { name: 'traj_1', kind: 'group' },
        ],
      },
    });
    const layouts = (error.details as { layouts: Array<{ format: string }> }).layouts.map((layout) => layout.format);
    expect(layouts.sort()).toEqual(['hdf5-aloha', 'hdf5-robomimic', 'kura-ndjson', 'lerobot', 'mcap', 'rlds']);
  });

  it('names the archive and what its files are', async () => {
    const folder = join(scratch, 'archive');
    await mkdir(folder, { recursive: true });
    await maniskillFile(join(folder, 'data', 'trajectories.h5'));
    await writeFile(join(folder, 'data', 'trajectories.json'), '{"env_info": {"env_id": "PickCube-v1"}}');
    await writeFile(join(folder, 'README.md'), 'ManiSkill demonstrations\n');
    const source = await sourceFromDirectory(folder);
    const error = await unrecognisedFormatError(source, 'tar.gz');
    expect(error.message).toContain('it is a tar.gz archive of 3 files (1 text, 1 HDF5, 1 JSON)');
    expect(error.message).toContain('data/trajectories.h5 holds at its top level: /env_states (dataset)');
    expect(error.details).toMatchObject({
      container: 'tar.gz',
      archive: 'tar.gz',
      files: [
        { path: 'README.md', container: 'text' },
        { path: 'data/trajectories.h5', container: 'HDF5' },
        { path: 'data/trajectories.json', container: 'JSON' },
      ],
    });
  });

  it.each([
    ['notes.txt', Buffer.from('just some text, not robot data\n'), 'a text file (notes.txt)'],
    ['table.parquet', Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(16), Buffer.from('PAR1')]), 'a parquet file (table.parquet)'],
    ['steps.jsonl', Buffer.from('{"t": 0}\n{"t": 1}\n'), 'a JSON lines file (steps.jsonl)'],
    ['blob.bin', Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x81, 0x00, 0xc3, 0x28, 0x00, 0x00, 0x00, 0x00]), 'a binary file (blob.bin)'],
  ])('names a single %s by its first bytes', async (name, bytes, description) => {
    const path = join(scratch, name);
    await writeFile(path, bytes);
    const error = await unrecognisedFormatError(await sourceFromFiles([{ path: name, absolutePath: path }]));
    expect(error.message).toContain(`it is ${description}.`);
  });
});
