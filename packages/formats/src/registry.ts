import { hdf5AlohaImporter } from './hdf5/aloha.js';
import { hdf5RobomimicImporter } from './hdf5/robomimic.js';
import type { FormatName, Importer, ImportSource } from './importer.js';
import { lerobotImporter } from './lerobot/import.js';
import { kuraNdjsonImporter } from './ndjson/import.js';
import { rldsImporter } from './rlds/import.js';

/** Every importer, in detection order (most specific first). Adding a format is one line here. */
export const importers: readonly Importer[] = [lerobotImporter, rldsImporter, hdf5AlohaImporter, hdf5RobomimicImporter, kuraNdjsonImporter];

export function importerFor(format: FormatName): Importer {
  const importer = importers.find((candidate) => candidate.format === format);
  if (!importer) throw new Error(`no importer for ${format}`);
  return importer;
}

/** The first format whose importer recognises the source, or undefined. */
export async function detectFormat(source: ImportSource): Promise<FormatName | undefined> {
  for (const importer of importers) if (await importer.detect(source)) return importer.format;
  return undefined;
}
