import { noOptions, type FormatRegistration } from '../format.js';
import { rldsImporter } from './import.js';

/** RLDS / Open X-Embodiment TFRecords (README.md beside this file); no per-upload options yet. */
export const rldsFormat = {
  name: 'rlds',
  detect: (source) => rldsImporter.detect(source),
  importer: rldsImporter,
  optionsSchema: noOptions(),
} satisfies FormatRegistration;
