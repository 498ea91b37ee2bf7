import type { ErrorLocation } from '@kura/schema';
import type { ImportContext } from '../importer.js';
import { IssueTally } from '../issue-tally.js';
import { joinPath } from './columns.js';
import type { Hdf5File } from './h5.js';

/** Every dataset below `root`, as paths relative to it (`obs/robot0_eef_pos`), depth first in HDF5's name order. */
export function datasetsBelow(hdf5: Hdf5File, root: string, at: ErrorLocation): string[] {
  const found: string[] = [];
  const walk = (relative: string): void => {
    const path = relative === '' ? root : joinPath(root, relative);
    for (const name of hdf5.keys(path, at)) {
      const child = relative === '' ? name : `${relative}/${name}`;
      if (hdf5.isGroup(joinPath(root, child), at)) walk(child);
      else if (hdf5.hasDataset(joinPath(root, child), at)) found.push(child);
    }
  };
  walk('');
  return found;
}

/**
 * Datasets of an episode that Kura does not import, counted across episodes and reported once per
 * name when the import ends (HDF5_DATASET_IGNORED): a dataset every demo carries is one warning
 * saying in how many demos it was, not one warning per demo.
 */
export class UnmappedDatasets {
  private readonly tally = new IssueTally();

  /**
   * Notes the datasets below `root` that `isImported` rejects. `why` explains, per relative path,
   * why it is left out (shown once, with the first episode's path as location).
   */
  note(params: {
    hdf5: Hdf5File;
    root: string;
    at: ErrorLocation;
    isImported: (relativePath: string) => boolean;
    why: (relativePath: string) => string;
  }): void {
    const { hdf5, root, at } = params;
    for (const relativePath of datasetsBelow(hdf5, root, at)) {
      if (params.isImported(relativePath)) continue;
      const path = joinPath(root, relativePath);
      this.tally.note(relativePath, () => ({
        code: 'HDF5_DATASET_IGNORED',
        message: `${path} is not imported: ${params.why(relativePath)}`,
        location: { ...at, field: path },
      }));
    }
  }

  /** Sends the warnings; `total` episodes were read, each called a `unit` (`demos`, `episodes`). */
  flush(context: ImportContext, total: number, unit: string): void {
    this.tally.flush(context, total, unit);
  }
}
