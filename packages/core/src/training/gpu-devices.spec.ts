import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { gpuDevices } from './gpu-devices.js';

describe('GPUs given to training runs (KURA_TRAINING_GPUS)', () => {
  let dev: string | undefined;
  afterEach(async () => {
    if (dev) await rm(dev, { recursive: true, force: true });
  });
  /** A stand-in for /dev holding the named nodes (plain files: only their names are read). */
  async function devWith(...names: string[]): Promise<string> {
    dev = await mkdtemp(join(tmpdir(), 'kura-dev-'));
    for (const name of names) await writeFile(join(dev, name), '');
    return dev;
  }

  it('gives none by default, whatever the machine has', () => {
    expect(gpuDevices([])).toBeUndefined();
  });

  it('binds the chosen GPUs and the shared nodes the driver made', async () => {
    const folder = await devWith('nvidia0', 'nvidia1', 'nvidia2', 'nvidiactl', 'nvidia-uvm', 'null');
    expect(gpuDevices('all', folder)).toEqual({
      paths: ['nvidia0', 'nvidia1', 'nvidia2', 'nvidiactl', 'nvidia-uvm'].map((name) => join(folder, name)),
      count: 3,
    });
    expect(gpuDevices([2], folder)).toEqual({ paths: ['nvidia2', 'nvidiactl', 'nvidia-uvm'].map((name) => join(folder, name)), count: 1 });
  });

  it('refuses at start a GPU the machine does not have, or a driver without its control node', async () => {
    expect(() => gpuDevices('all', '/dev')).toThrow(/KURA_TRAINING_GPUS=all: \/dev has no NVIDIA GPU .*KURA_TRAINING_GPUS=none/);
    const folder = await devWith('nvidia0', 'nvidiactl');
    expect(() => gpuDevices([0, 3], folder)).toThrow(/KURA_TRAINING_GPUS=0,3: .* has GPUs 0;/);
    await rm(join(folder, 'nvidiactl'));
    expect(() => gpuDevices([0], folder)).toThrow(/and no nvidiactl/);
  });
});
