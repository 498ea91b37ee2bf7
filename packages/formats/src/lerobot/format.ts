import { noOptions, type FormatRegistration } from '../format.js';
import { lerobotImporter } from './import.js';

/** LeRobot datasets (README.md beside this file); no per-upload options yet. */
export const lerobotFormat = {
  name: 'lerobot',
  detect: (source) => lerobotImporter.detect(source),
  importer: lerobotImporter,
  optionsSchema: noOptions(),
} satisfies FormatRegistration;
