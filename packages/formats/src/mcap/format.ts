import type { FormatRegistration } from '../format.js';
import { mcapImporter } from './import.js';
import { mcapOptionsSchema } from './mapping.js';

/** ROS 2 bags in MCAP (README.md beside this file): `options.mapping` says which topic is which feature. */
export const mcapFormat = {
  name: 'mcap',
  detect: (source) => mcapImporter.detect(source),
  importer: mcapImporter,
  optionsSchema: mcapOptionsSchema,
} satisfies FormatRegistration;
