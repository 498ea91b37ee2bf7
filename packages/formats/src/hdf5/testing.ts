import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { loadH5wasm } from './h5.js';

/** The arrays `writeHdf5` can store as datasets. */
export type WritableData = Float32Array | Float64Array | Uint8Array | Int32Array;

/**
 * Writes an HDF5 file with h5wasm, for tests that need a layout no committed fixture has: datasets
 * by absolute path (groups made on the way), attributes by object path (`/` for the root; strings
 * are written as HDF5 strings, as h5py writes Python str attributes).
 */
export async function writeHdf5(
  path: string,
  datasets: Record<string, { data: WritableData; shape: number[] }>,
  attributes: Record<string, Record<string, string | number>> = {},
): Promise<void> {
  const h5wasm = await loadH5wasm();
  await mkdir(dirname(path), { recursive: true });
  const file = new h5wasm.File(path, 'w');
  try {
    const ensureGroup = (groupPath: string): void => {
      const parts = groupPath.split('/').filter((part) => part.length > 0);
      for (let depth = 1; depth <= parts.length; depth++) {
        const prefix = parts.slice(0, depth).join('/');
        if (file.get(prefix) === null) file.create_group(prefix);
      }
    };
    for (const [datasetPath, { data, shape }] of Object.entries(datasets)) {
      ensureGroup(datasetPath.slice(0, datasetPath.lastIndexOf('/')));
      file.create_dataset({ name: datasetPath.slice(1), data, shape });
    }
    for (const [objectPath, values] of Object.entries(attributes)) {
      ensureGroup(objectPath);
      const target = objectPath === '/' ? file : file.get(objectPath.slice(1));
      if (!(target instanceof h5wasm.Group)) throw new Error(`no group ${objectPath}`);
      for (const [name, value] of Object.entries(values)) target.create_attribute(name, value);
    }
  } finally {
    file.close();
  }
}
