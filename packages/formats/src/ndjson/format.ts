import { noOptions, type FormatRegistration } from '../format.js';
import { kuraNdjsonImporter } from './import.js';

/** Kura NDJSON (docs/ndjson.md); it takes no per-upload options. */
export const kuraNdjsonFormat = {
  name: 'kura-ndjson',
  detect: (source) => kuraNdjsonImporter.detect(source),
  importer: kuraNdjsonImporter,
  optionsSchema: noOptions(),
} satisfies FormatRegistration;
