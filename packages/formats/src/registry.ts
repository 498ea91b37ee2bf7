import { formatNames } from '@kura/schema';
import type { FormatRegistration } from './format.js';
import { hdf5AlohaFormat, hdf5RobomimicFormat } from './hdf5/format.js';
import type { FormatName, Importer, ImportSource } from './importer.js';
import { lerobotFormat } from './lerobot/format.js';
import { mcapFormat } from './mcap/format.js';
import { kuraNdjsonFormat } from './ndjson/format.js';
import { rldsFormat } from './rlds/format.js';

export type { FormatRegistration } from './format.js';
export { noOptions, optionsPath } from './format.js';

/**
 * Each format's registration, by name. The names and their order are @kura/schema's `formatNames`
 * (the single list the API, CLI and docs read): this record must have exactly those keys, each
 * holding the registration of that name, or the build fails. Adding a format is one name there and
 * one line here.
 */
const registrations: { readonly [Name in FormatName]: FormatRegistration & { readonly name: Name } } = {
  mcap: mcapFormat,
  lerobot: lerobotFormat,
  rlds: rldsFormat,
  'hdf5-aloha': hdf5AlohaFormat,
  'hdf5-robomimic': hdf5RobomimicFormat,
  'kura-ndjson': kuraNdjsonFormat,
};

/** Every format, in detection order (most specific first): `formatNames`' order. */
export const formats: readonly FormatRegistration[] = formatNames.map((name) => registrations[name]);
for (const [index, format] of formats.entries()) {
  if (format.name !== formatNames[index] || format.importer.format !== format.name)
    throw new Error(`the format registered as ${formatNames[index]} is named ${format.name} (importer ${format.importer.format})`);
}

/** Every importer, in detection order. */
export const importers: readonly Importer[] = formats.map((format) => format.importer);

export function formatRegistration(format: FormatName): FormatRegistration {
  const registration = formats.find((candidate) => candidate.name === format);
  if (!registration) throw new Error(`no format named ${format}`);
  return registration;
}

export function importerFor(format: FormatName): Importer {
  return formatRegistration(format).importer;
}

/**
 * An upload's options checked by its format's `optionsSchema` (absent options are `{}`): the parsed
 * options (defaults filled in), or the issues, each located by `optionsPath`.
 */
export function parseFormatOptions(format: FormatName, options: unknown) {
  return formatRegistration(format).optionsSchema.safeParse(options ?? {});
}

/** The first format that recognises the source, or undefined. */
export async function detectFormat(source: ImportSource): Promise<FormatName | undefined> {
  for (const format of formats) if (await format.detect(source)) return format.name;
  return undefined;
}
