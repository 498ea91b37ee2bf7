/**
 * The formats Kura can import, in detection order (most specific first): the one list the API's
 * `?format=`, the CLI's `--format` help, the docs and @kura/formats' registry all read. Adding a
 * format is one entry here and one registration in its folder of packages/formats (whose registry
 * is typed against this list, so the two cannot disagree).
 */
export const formatNames = ['mcap', 'lerobot', 'rlds', 'hdf5-aloha', 'hdf5-robomimic', 'kura-ndjson'] as const;
export type FormatName = (typeof formatNames)[number];

/** Each format in a few words, for help texts (`kura upload --help`). */
export const formatDescriptions: { readonly [Name in FormatName]: string } = {
  mcap: 'ROS 2 bags (MCAP), with a topic mapping',
  lerobot: 'LeRobot v2.0/v2.1/v3.0 dataset folder',
  rlds: 'RLDS / Open X-Embodiment TFRecords',
  'hdf5-aloha': 'ALOHA / ACT episode_<n>.hdf5 files',
  'hdf5-robomimic': 'robomimic / robosuite HDF5 file',
  'kura-ndjson': 'Kura NDJSON, one step per line',
};
