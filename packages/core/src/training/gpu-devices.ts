import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The device nodes a run needs for its GPUs, and how many GPUs that is. */
export interface GpuDevices {
  paths: string[];
  count: number;
}

/** Nodes every CUDA process opens besides its GPUs' own; the first is required, the rest where the driver made them. */
const SHARED_NODES = ['nvidiactl', 'nvidia-uvm', 'nvidia-uvm-tools', 'nvidia-modeset'];

/**
 * The NVIDIA device nodes for `KURA_TRAINING_GPUS` (`all`: every `/dev/nvidia<N>` there is), checked
 * at start so that a machine without them says so at once instead of failing each run. The driver's
 * libraries come with `/usr`, which the jail mounts read-only.
 */
export function gpuDevices(setting: 'all' | number[], devDirectory = '/dev'): GpuDevices | undefined {
  if (setting !== 'all' && setting.length === 0) return undefined;
  const names = new Set(readdirSync(devDirectory));
  const present = [...names]
    .filter((name) => /^nvidia\d+$/.test(name))
    .map((name) => Number(name.slice('nvidia'.length)))
    .sort((a, b) => a - b);
  const chosen = setting === 'all' ? present : setting;
  const missing = chosen.filter((number) => !present.includes(number));
  if (chosen.length === 0 || missing.length > 0 || !names.has('nvidiactl'))
    throw new Error(
      `KURA_TRAINING_GPUS=${setting === 'all' ? 'all' : setting.join(',')}: ${devDirectory} has ` +
        (present.length === 0 ? 'no NVIDIA GPU (no nvidia<N> device)' : `GPUs ${present.join(', ')}`) +
        (names.has('nvidiactl') ? '' : ' and no nvidiactl') +
        '; install the NVIDIA driver, or set KURA_TRAINING_GPUS=none',
    );
  return {
    paths: [
      ...chosen.map((number) => join(devDirectory, `nvidia${number}`)),
      ...SHARED_NODES.filter((name) => names.has(name)).map((name) => join(devDirectory, name)),
    ],
    count: chosen.length,
  };
}
