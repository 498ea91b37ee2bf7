/*
 * Reading a TFDS `features.json` (the JSON form of tensorflow_datasets' FeaturesDict proto) into a flat
 * list of leaves keyed like the Example's features: `steps/observation/image_0`, `episode_metadata/file_path`.
 */

/** One leaf of a TFDS feature tree. */
export type TfdsLeaf =
  /** A Tensor / Scalar / ClassLabel: numbers (or byte strings when dtype is `string`). `-1` marks an unknown dimension. */
  | { type: 'tensor'; path: string; dtype: string; shape: number[]; encoded: boolean; description?: string }
  /** An Image: one encoded image per value. */
  | { type: 'image'; path: string; shape: number[]; encoding?: 'jpeg' | 'png'; description?: string }
  /** A Text: UTF-8 byte strings. */
  | { type: 'text'; path: string; description?: string }
  /** Something this importer does not map (Video, Audio, nested Dataset, BBox…). */
  | { type: 'unsupported'; path: string; pythonClassName: string; description?: string };

/** The leaves of a features.json, or a reason it cannot be read. */
export type TfdsFeaturesResult = { ok: true; leaves: Map<string, TfdsLeaf> } | { ok: false; problem: string };

/** Parses the text of a features.json. */
export function parseTfdsFeatures(text: string): TfdsFeaturesResult {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (error) {
    return { ok: false, problem: `not JSON (${error instanceof Error ? error.message : String(error)})` };
  }
  const leaves = new Map<string, TfdsLeaf>();
  const problem = walk(root, '', leaves);
  if (problem !== undefined) return { ok: false, problem };
  if (![...leaves.keys()].some((path) => path.startsWith('steps/'))) return { ok: false, problem: 'it declares no `steps` features' };
  return { ok: true, leaves };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function join(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}/${name}`;
}

/** Adds the leaves under `node` (a feature) at `path`; returns a problem description when the tree is malformed. */
function walk(node: unknown, path: string, leaves: Map<string, TfdsLeaf>): string | undefined {
  if (!isRecord(node)) return `${path || 'the root'} is not an object`;
  const pythonClassName = typeof node.pythonClassName === 'string' ? node.pythonClassName : '';
  const description = typeof node.description === 'string' && node.description !== '' ? node.description : undefined;
  const withDescription = <T extends TfdsLeaf>(leaf: T): T => (description === undefined ? leaf : { ...leaf, description });

  if (isRecord(node.featuresDict)) {
    const features = node.featuresDict.features;
    if (!isRecord(features)) return `${path || 'the root'}: featuresDict has no features`;
    for (const [name, child] of Object.entries(features)) {
      const problem = walk(child, join(path, name), leaves);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  // RLDS's steps: a Dataset (or Sequence) of step dicts, flattened into the episode as `steps/...`.
  if (isRecord(node.sequence) && path === 'steps') return walk(node.sequence.feature, path, leaves);
  if (isRecord(node.tensor)) {
    const shape = readShape(node.tensor.shape);
    if (shape === undefined) return `${path}: unreadable tensor shape`;
    const dtype = typeof node.tensor.dtype === 'string' ? node.tensor.dtype : 'float32';
    const encoding = node.tensor.encoding;
    leaves.set(path, withDescription({ type: 'tensor', path, dtype, shape, encoded: encoding !== undefined && encoding !== 'none' }));
    return undefined;
  }
  if (isRecord(node.image)) {
    const shape = readShape(node.image.shape) ?? [-1, -1, -1];
    const format = node.image.encodingFormat;
    const encoding = format === 'jpeg' || format === 'png' ? format : undefined;
    leaves.set(path, withDescription({ type: 'image', path, shape, ...(encoding ? { encoding } : {}) }));
    return undefined;
  }
  if (isRecord(node.text) || pythonClassName.endsWith('.Text')) {
    leaves.set(path, withDescription({ type: 'text', path }));
    return undefined;
  }
  if (isRecord(node.classLabel)) {
    leaves.set(path, withDescription({ type: 'tensor', path, dtype: 'int64', shape: [], encoded: false }));
    return undefined;
  }
  leaves.set(path, withDescription({ type: 'unsupported', path, pythonClassName: pythonClassName || 'unknown' }));
  return undefined;
}

/** `{ dimensions: ["64", "64", "3"] }` → [64, 64, 3]; `{}` → [] (a scalar). */
function readShape(shape: unknown): number[] | undefined {
  if (shape === undefined) return [];
  if (!isRecord(shape)) return undefined;
  const dimensions = shape.dimensions ?? [];
  if (!Array.isArray(dimensions)) return undefined;
  const result: number[] = [];
  for (const dimension of dimensions) {
    const value = typeof dimension === 'string' || typeof dimension === 'number' ? Number(dimension) : Number.NaN;
    if (!Number.isInteger(value) || value < -1) return undefined;
    result.push(value);
  }
  return result;
}

/** Expected episode count from a dataset_info.json for the given TFRecord file names, or undefined when unsure. */
export function expectedEpisodesFromDatasetInfo(text: string, fileNames: string[]): number | undefined {
  let info: unknown;
  try {
    info = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(info) || typeof info.name !== 'string' || !Array.isArray(info.splits)) return undefined;
  const shardLengths = new Map<string, unknown[]>();
  for (const split of info.splits) {
    if (isRecord(split) && typeof split.name === 'string' && Array.isArray(split.shardLengths))
      shardLengths.set(split.name, split.shardLengths);
  }
  let total = 0;
  for (const fileName of fileNames) {
    // TFDS names shards `{DATASET}-{SPLIT}.tfrecord-{SHARD_X_OF_Y}`, e.g. bridge_dataset-train.tfrecord-00000-of-00001.
    const match = /^(.+)-([^-.]+)\.tfrecord-(\d+)-of-(\d+)$/.exec(fileName);
    if (!match || match[1] !== info.name) return undefined;
    const lengths = shardLengths.get(match[2] ?? '');
    const length = Number(lengths?.[Number(match[3])]);
    if (lengths?.length !== Number(match[4]) || !Number.isSafeInteger(length)) return undefined;
    total += length;
  }
  return total;
}
