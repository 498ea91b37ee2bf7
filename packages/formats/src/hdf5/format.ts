import { noOptions, type FormatRegistration } from '../format.js';
import { hdf5AlohaImporter } from './aloha.js';
import { hdf5RobomimicImporter } from './robomimic.js';

/** ALOHA / ACT recordings (README.md beside this file); no per-upload options yet. */
export const hdf5AlohaFormat = {
  name: 'hdf5-aloha',
  detect: (source) => hdf5AlohaImporter.detect(source),
  importer: hdf5AlohaImporter,
  optionsSchema: noOptions(),
} satisfies FormatRegistration;

/** robomimic / robosuite files (README.md beside this file); no per-upload options yet. */
export const hdf5RobomimicFormat = {
  name: 'hdf5-robomimic',
  detect: (source) => hdf5RobomimicImporter.detect(source),
  importer: hdf5RobomimicImporter,
  optionsSchema: noOptions(),
} satisfies FormatRegistration;
