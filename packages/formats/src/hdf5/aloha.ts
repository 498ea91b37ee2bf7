import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { ErrorLocation, Feature, FeatureSpec } from '@kura/schema';
import {
  ImportError,
  type FeatureValues,
  type ImportContext,
  type ImportedEpisode,
  type Importer,
  type ImportResult,
  type ImportSource,
  type SourceFile,
} from '../importer.js';
import { IngestBudget } from '../budget.js';
import { settleDroppedFeatures } from '../drop-features.js';
import {
  addFeature,
  checkColumn,
  checkLength,
  columnFeature,
  featureSegment,
  isRawImage,
  planRawImage,
  planTensor,
  readColumn,
  toFloat64,
  type RawImageColumn,
  type TensorColumn,
} from './columns.js';
import { type Hdf5File, hasHdf5Signature, hdf5Candidates, requireNumeric, withHdf5File, type DatasetInfo } from './h5.js';
import { isJpeg, jpegDimensions, unpaddedLength, type Hdf5ImportOptions } from './images.js';
import { UnmappedDatasets } from './unmapped.js';

/** Camera frames stored as zero-padded JPEG bytes, one row per step (ALOHA's `compress` mode). */
interface PaddedJpegColumn {
  kind: 'padded-jpeg';
  feature: string;
  relativePath: string;
  height: number;
  width: number;
  channels: number;
}

type AlohaColumn = TensorColumn | RawImageColumn | PaddedJpegColumn;

interface AlohaPlan {
  features: FeatureSpec;
  columns: AlohaColumn[];
  /** Absolute paths of the features dropFeatures leaves out: not read, not warned about. */
  droppedPaths: ReadonlySet<string>;
}

/** ALOHA's 14 joints: 6 arm joints and a gripper per side, left first (as in ACT's constants and LeRobot's ALOHA datasets). */
const alohaJointNames = ['left', 'right'].flatMap((side) =>
  ['waist', 'shoulder', 'elbow', 'forearm_roll', 'wrist_angle', 'wrist_rotate', 'gripper'].map((joint) => `${side}_${joint}`),
);

/** The datasets with fixed Kura names; everything else under /observations becomes `observation.<name>`. */
const knownVectors: ReadonlyArray<{ path: string; feature: string; required: boolean; names?: readonly string[] }> = [
  { path: 'action', feature: 'action', required: true, names: alohaJointNames },
  // Mobile ALOHA's base velocities (linear, angular).
  { path: 'base_action', feature: 'action.base', required: false, names: ['linear', 'angular'] },
  { path: 'observations/qpos', feature: 'observation.state', required: true, names: alohaJointNames },
  { path: 'observations/qvel', feature: 'observation.velocity', required: false, names: alohaJointNames },
  { path: 'observations/effort', feature: 'observation.effort', required: false, names: alohaJointNames },
];
const knownObservations = new Set(['qpos', 'qvel', 'effort', 'images']);
/** Root attributes that some recorders use for the task text. */
const taskAttributes = ['task', 'language_instruction', 'instruction'];
/** Root attributes larger than this (as JSON) are left out of the episode metadata. */
const maxAttributeJson = 10_000;

/** Creates the `hdf5-aloha` importer with the given image options (see {@link Hdf5ImportOptions}). */
export function createHdf5AlohaImporter(options: Hdf5ImportOptions = {}): Importer {
  return {
    format: 'hdf5-aloha',
    looksFor: 'an HDF5 file with an /action dataset and an /observations group (holding qpos)',

    async detect(source: ImportSource): Promise<boolean> {
      const first = hdf5Candidates(source.files)[0];
      if (!first || !(await hasHdf5Signature(first.absolutePath))) return false;
      try {
        return await withHdf5File(first, (hdf5) => hdf5.hasDataset('/action', {}) && hdf5.isGroup('/observations', {}));
      } catch {
        // A damaged file is not recognised; with ?format=hdf5-aloha it gets HDF5_INVALID.
        return false;
      }
    },

    async open(source: ImportSource, context: ImportContext): Promise<ImportResult> {
      const files = hdf5Candidates(source.files);
      const first = files[0];
      if (!first) throw new ImportError('HDF5_DATASET_MISSING', 'the upload holds no .hdf5 / .h5 file', {});
      const budget = IngestBudget.of(context, source);
      const plan = await withHdf5File(first, (hdf5) => planAloha(hdf5, at(first), options, context), budget);
      return {
        features: plan.features,
        featuresFile: first.path,
        expectedEpisodes: files.length,
        episodes: readEpisodes(files, plan, options, context, budget),
      };
    },
  };
}

/**
 * Imports ALOHA / ACT recordings (`hdf5-aloha`): one episode per `episode_<n>.hdf5` file, in
 * numeric order. Raw frames are stored as PNG; see `hdf5/README.md` for the mapping.
 */
export const hdf5AlohaImporter: Importer = createHdf5AlohaImporter();

function at(file: SourceFile): ErrorLocation {
  return { file: file.path, episode: episodeId(file) };
}

/** `episode_3` for `episode_3.hdf5`, `insertion/episode_3` for a file in a folder. */
function episodeId(file: SourceFile): string {
  return file.path.replace(/\.[^./]*$/, '');
}

function episodeNumber(file: SourceFile): number | undefined {
  const match = /(?:^|\/)episode_(\d+)\.[^./]*$/.exec(file.path);
  return match ? Number(match[1]) : undefined;
}

/**
 * Decides the features from the first episode file (metadata and the first JPEG header only).
 * Features dropFeatures names are settled before their columns are planned: they are never read.
 */
function planAloha(hdf5: Hdf5File, location: ErrorLocation, options: Hdf5ImportOptions, context: ImportContext): AlohaPlan {
  const candidates: Array<{ feature: string; path: string; plan: () => AlohaColumn }> = [];
  for (const known of knownVectors) {
    const path = `/${known.path}`;
    if (!hdf5.hasDataset(path, location)) {
      if (known.required)
        throw new ImportError('HDF5_DATASET_MISSING', `${hdf5.sourcePath}: ${path} is missing`, { ...location, field: path });
      continue;
    }
    candidates.push({
      feature: known.feature,
      path,
      plan: () => planTensor(hdf5.inspect(path, location), known.feature, known.path, location, known.names),
    });
  }
  for (const name of hdf5.keys('/observations', location)) {
    const path = `/observations/${name}`;
    // Nested groups other than images have no ALOHA meaning; they are left out with a warning (README).
    if (knownObservations.has(name) || !hdf5.hasDataset(path, location)) continue;
    const feature = `observation.${featureSegment(name)}`;
    candidates.push({ feature, path, plan: () => planTensor(hdf5.inspect(path, location), feature, `observations/${name}`, location) });
  }
  for (const camera of hdf5.keys('/observations/images', location)) {
    const path = `/observations/images/${camera}`;
    const feature = `observation.images.${featureSegment(camera)}`;
    const relativePath = `observations/images/${camera}`;
    candidates.push({
      feature,
      path,
      plan: () => {
        const info = hdf5.inspect(path, location);
        return isPaddedJpeg(info)
          ? planPaddedJpeg(hdf5, info, feature, relativePath, location)
          : planRawImage(info, feature, relativePath, location);
      },
    });
  }

  const dropped = settleDroppedFeatures(
    candidates.map((candidate) => candidate.feature),
    context,
    hdf5.sourcePath,
  );
  const features: FeatureSpec = {};
  const columns: AlohaColumn[] = [];
  const droppedPaths = new Set<string>();
  for (const candidate of candidates) {
    if (dropped.has(candidate.feature)) {
      droppedPaths.add(candidate.path);
      continue;
    }
    const column = candidate.plan();
    const feature: Feature =
      column.kind === 'padded-jpeg'
        ? { dtype: 'image', shape: [column.height, column.width, column.channels], encoding: 'jpeg' }
        : columnFeature(column, options.imageEncoding ?? 'png');
    addFeature(features, column.feature, feature, candidate.path, location);
    columns.push(column);
  }
  return { features, columns, droppedPaths };
}

/** A uint8 steps × bytes dataset: encoded frames padded to a common length. */
function isPaddedJpeg(info: DatasetInfo): boolean {
  return !isRawImage(info) && info.dtype === 'uint8' && info.shape.length === 2;
}

function planPaddedJpeg(
  hdf5: Hdf5File,
  info: DatasetInfo,
  feature: string,
  relativePath: string,
  location: ErrorLocation,
): PaddedJpegColumn {
  if ((info.shape[0] ?? 0) === 0) {
    throw new ImportError('EMPTY_EPISODE', `${info.path} has no frames`, { ...location, field: info.path });
  }
  const firstRow = hdf5.readUint8Rows(info, 0, 1, location);
  const dimensions = jpegDimensions(firstRow);
  if (!dimensions) {
    throw new ImportError('HDF5_IMAGE_INVALID', `${info.path} holds ${info.shape[1]} bytes per step that are not a JPEG image`, {
      ...location,
      field: info.path,
      step: 0,
    });
  }
  return { kind: 'padded-jpeg', feature, relativePath, ...dimensions };
}

async function* readEpisodes(
  files: SourceFile[],
  plan: AlohaPlan,
  options: Hdf5ImportOptions,
  context: ImportContext,
  budget: IngestBudget,
): AsyncGenerator<ImportedEpisode> {
  const unmapped = new UnmappedDatasets();
  for (const file of files) {
    // The file is closed before the episode is handed on: no handle is held while the caller works.
    yield await withHdf5File(file, (hdf5) => readEpisode(hdf5, file, plan, options, unmapped, budget), budget);
  }
  unmapped.flush(context, files.length, 'episodes');
}

async function readEpisode(
  hdf5: Hdf5File,
  file: SourceFile,
  plan: AlohaPlan,
  options: Hdf5ImportOptions,
  unmapped: UnmappedDatasets,
  budget: IngestBudget,
): Promise<ImportedEpisode> {
  const location = at(file);
  const action = hdf5.inspect('/action', location);
  const length = action.shape[0] ?? 0;
  if (action.shape.length === 0 || length === 0)
    throw new ImportError('EMPTY_EPISODE', `${file.path}: /action has no steps`, { ...location, field: '/action' });
  // A chunked dataset may declare millions of steps it never stores: the length counts before any read.
  budget.reserveSteps(length, { ...location, field: '/action' });

  noteUnmappedDatasets(hdf5, plan, location, unmapped);
  const features: Record<string, FeatureValues> = {};
  let lengths: CompressedLengths | undefined;
  for (const column of plan.columns) {
    if (column.kind === 'padded-jpeg') {
      lengths ??= readCompressedLengths(hdf5, length, location);
      features[column.feature] = { kind: 'image', frames: await readPaddedJpegs(hdf5, column, length, lengths, location) };
      continue;
    }
    const info = checkColumn(hdf5, '/', column, length, location);
    features[column.feature] = await readColumn(hdf5, info, column, length, options, location);
  }

  const attributes = rootAttributes(hdf5, location);
  const task = taskAttributes
    .map((name) => attributes[name])
    .find((value): value is string => typeof value === 'string' && value.length > 0);
  const sourceIndex = episodeNumber(file);
  return {
    sourceId: episodeId(file),
    sourceEpisode: file.path,
    file: file.path,
    ...(sourceIndex !== undefined ? { sourceIndex } : {}),
    length,
    task: task ?? null,
    metadata: { attributes },
    features,
  };
}

/** The root attributes (`sim`, `compress`, …) as JSON values (h5py booleans read back as true/false). */
function rootAttributes(hdf5: Hdf5File, location: ErrorLocation): Record<string, unknown> {
  // fromEntries keeps every name as an own key, `__proto__` included.
  return Object.fromEntries(
    Object.entries(hdf5.attributes('/', location)).filter(([, value]) => (jsonLength(value) ?? Infinity) <= maxAttributeJson),
  );
}

/** The length of a value as JSON; undefined for what JSON cannot hold (an unreadable type, a bigint). */
function jsonLength(value: unknown): number | undefined {
  try {
    return JSON.stringify(value)?.length;
  } catch {
    return undefined;
  }
}

/**
 * Datasets of the episode that are not imported, for one HDF5_DATASET_IGNORED warning per path at
 * the end: those a later episode has beyond the first one's, and those outside the ALOHA layout
 * (a `/joint_torques`, a nested group under `/observations`).
 */
function noteUnmappedDatasets(hdf5: Hdf5File, plan: AlohaPlan, location: ErrorLocation, unmapped: UnmappedDatasets): void {
  const imported = new Set(['action', 'compress_len', ...plan.columns.map((column) => column.relativePath)]);
  unmapped.note({
    hdf5,
    root: '/',
    at: location,
    isImported: (path) => imported.has(path) || plan.droppedPaths.has(`/${path}`),
    why: (path) =>
      /^observations\/(images\/)?[^/]+$/.test(path)
        ? 'the first episode has no such dataset, and features are decided from the first episode'
        : 'Kura maps /action, /base_action, /observations/<name> and /observations/images/<camera> (hdf5/README.md)',
  });
}

/** `/compress_len`: per recorded camera, the byte length of each step's JPEG; absent in some recordings. */
interface CompressedLengths {
  info?: DatasetInfo;
  /** rows × steps, row-major. */
  values?: Float64Array;
  rows: number;
}

function readCompressedLengths(hdf5: Hdf5File, length: number, location: ErrorLocation): CompressedLengths {
  if (!hdf5.hasDataset('/compress_len', location)) return { rows: 0 };
  const info = hdf5.inspect('/compress_len', location);
  requireNumeric(info, location);
  if (info.shape.length !== 2) {
    throw new ImportError('EPISODE_SHAPE_MISMATCH', `/compress_len has shape [${info.shape.join(', ')}]; expected [cameras, steps]`, {
      ...location,
      field: info.path,
    });
  }
  checkLength({ ...info, shape: info.shape.slice(1) }, length, location);
  const values = toFloat64(hdf5.readNumeric(info, location));
  return { info, values, rows: info.shape[0] ?? 0 };
}

/**
 * The JPEG frames of one camera, each cut to its true length. A padded row ends at its last
 * non-zero byte (JPEGs end with FF D9; the padding is zeros). `/compress_len` lists the lengths per
 * camera in recording order, which HDF5's name order need not follow, so the camera's row is the
 * one whose lengths agree with the frames; none agreeing means the file is inconsistent.
 */
async function readPaddedJpegs(
  hdf5: Hdf5File,
  column: PaddedJpegColumn,
  length: number,
  lengths: CompressedLengths,
  location: ErrorLocation,
): Promise<Uint8Array[]> {
  const info = hdf5.inspect(`/${column.relativePath}`, location);
  const field = { ...location, field: info.path };
  if (!isPaddedJpeg(info)) {
    throw new ImportError(
      'EPISODE_SHAPE_MISMATCH',
      `${info.path} is ${info.typeName} [${info.shape.join(', ')}]; the first episode stores padded JPEG rows [steps, bytes]`,
      field,
    );
  }
  checkLength(info, length, location);
  const rowBytes = info.shape[1] ?? 0;
  checkLengthRange(lengths, rowBytes, location);

  hdf5.checkRowsAhead(info, length, location);
  const frames: Uint8Array[] = [];
  // Rows are small (tens of kB): read a modest batch at a time.
  const batch = Math.max(1, Math.floor((16 * 1024 * 1024) / Math.max(rowBytes, 1)));
  for (let start = 0; start < length; start += batch) {
    const end = Math.min(length, start + batch);
    const rows = hdf5.readUint8Rows(info, start, end, location);
    for (let step = start; step < end; step++) {
      const row = rows.subarray((step - start) * rowBytes, (step - start + 1) * rowBytes);
      // A copy, so the batch buffer is not kept alive by the frame.
      const frame = row.slice(0, unpaddedLength(row));
      const dimensions = jpegDimensions(frame);
      if (!isJpeg(frame) || !dimensions) {
        throw new ImportError('HDF5_IMAGE_INVALID', `${info.path} step ${step} is not a JPEG image`, { ...field, step });
      }
      if (dimensions.height !== column.height || dimensions.width !== column.width || dimensions.channels !== column.channels) {
        throw new ImportError(
          'HDF5_IMAGE_INVALID',
          `${info.path} step ${step} is ${dimensions.width}×${dimensions.height}×${dimensions.channels}; the camera's first frame is ${column.width}×${column.height}×${column.channels}`,
          { ...field, step },
        );
      }
      frames.push(frame);
    }
    await yieldToEventLoop();
  }
  matchLengthRow(frames, lengths, info, location);
  return frames;
}

/** Every compress_len entry must be a whole number of bytes within a padded row. */
function checkLengthRange(lengths: CompressedLengths, rowBytes: number, location: ErrorLocation): void {
  if (!lengths.values || !lengths.info) return;
  const steps = lengths.values.length / Math.max(lengths.rows, 1);
  lengths.values.forEach((value, index) => {
    if (Number.isInteger(value) && value >= 4 && value <= rowBytes) return;
    const row = Math.floor(index / steps);
    const step = index % steps;
    throw new ImportError(
      'HDF5_IMAGE_INVALID',
      `/compress_len[${row}][${step}] is ${value}, outside 4…${rowBytes} (the padded row size of the camera datasets)`,
      { ...location, field: '/compress_len', step },
    );
  });
}

function matchLengthRow(frames: Uint8Array[], lengths: CompressedLengths, info: DatasetInfo, location: ErrorLocation): void {
  const values = lengths.values;
  if (!values || lengths.rows === 0) return;
  const steps = frames.length;
  let closest = { row: 0, firstMismatch: 0, agreeing: -1 };
  for (let row = 0; row < lengths.rows; row++) {
    let agreeing = 0;
    let firstMismatch = -1;
    for (let step = 0; step < steps; step++) {
      if (values[row * steps + step] === frames[step]!.length) agreeing++;
      else if (firstMismatch < 0) firstMismatch = step;
    }
    if (firstMismatch < 0) return;
    if (agreeing > closest.agreeing) closest = { row, firstMismatch, agreeing };
  }
  const step = closest.firstMismatch;
  throw new ImportError(
    'HDF5_IMAGE_INVALID',
    `no row of /compress_len matches the JPEG lengths of ${info.path}: the closest, row ${closest.row}, says ${values[closest.row * steps + step]} bytes at step ${step} where the JPEG has ${frames[step]!.length}`,
    { ...location, field: '/compress_len', step },
  );
}
