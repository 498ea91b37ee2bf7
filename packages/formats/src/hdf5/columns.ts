import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { ErrorLocation, Feature, FeatureSpec } from '@kura/schema';
import { ImportError, type FeatureValues, type NumericArray } from '../importer.js';
import { convertArray, requireNumeric, type DatasetInfo, type Hdf5File, type NumericDtype } from './h5.js';
import { encodeFrame, type Hdf5ImportOptions } from './images.js';

/** A numeric dataset (steps × …) read as one tensor feature. */
export interface TensorColumn {
  kind: 'tensor';
  /** Kura feature name: `action`, `observation.state`. */
  feature: string;
  /** Dataset path below the episode's root, e.g. `observations/qpos` or `obs/robot0_eef_pos`. */
  relativePath: string;
  dtype: NumericDtype;
  /** Shape of one step (a steps-only dataset has `[1]`). */
  stepShape: number[];
  names?: string[];
}

/** A raw uint8 steps × H × W × 3 dataset, encoded frame by frame. */
export interface RawImageColumn {
  kind: 'raw-image';
  feature: string;
  relativePath: string;
  height: number;
  width: number;
}

/** The largest slice of raw frames read from HDF5 at once: bounds memory for high-resolution cameras. */
const imageBatchBytes = 32 * 1024 * 1024;

/** Replaces what Kura feature names cannot hold (`-`, spaces, …) with `_`. */
export function featureSegment(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_]/g, '_');
  return cleaned.length > 0 ? cleaned : '_';
}

/** Joins a root (`/`, `/data/demo_3`) and a relative dataset path into an absolute HDF5 path. */
export function joinPath(root: string, relativePath: string): string {
  return `${root.replace(/\/+$/, '')}/${relativePath}`;
}

/** Plans a tensor column from the first episode's dataset. */
export function planTensor(
  info: DatasetInfo,
  feature: string,
  relativePath: string,
  at: ErrorLocation,
  names?: readonly string[],
): TensorColumn {
  const dtype = requireNumeric(info, at);
  if (info.shape.length === 0) {
    throw new ImportError('EPISODE_SHAPE_MISMATCH', `${info.path} is a scalar; a feature needs one value per step`, {
      ...at,
      field: info.path,
    });
  }
  const stepShape = info.shape.length === 1 ? [1] : info.shape.slice(1);
  const last = stepShape[stepShape.length - 1];
  return { kind: 'tensor', feature, relativePath, dtype, stepShape, ...(names && names.length === last ? { names: [...names] } : {}) };
}

/** Whether a dataset looks like raw camera frames: uint8, steps × H × W × 3. */
export function isRawImage(info: DatasetInfo): boolean {
  return info.dtype === 'uint8' && info.shape.length === 4 && info.shape[3] === 3;
}

/** Plans a raw image column; HDF5_IMAGE_INVALID unless the dataset is uint8 steps × H × W × 3. */
export function planRawImage(info: DatasetInfo, feature: string, relativePath: string, at: ErrorLocation): RawImageColumn {
  requireRawImage(info, at);
  return { kind: 'raw-image', feature, relativePath, height: info.shape[1]!, width: info.shape[2]! };
}

function requireRawImage(info: DatasetInfo, at: ErrorLocation): void {
  if (!isRawImage(info)) {
    throw new ImportError(
      'HDF5_IMAGE_INVALID',
      `${info.path} is ${info.typeName} with shape [${info.shape.join(', ')}]; camera frames must be uint8 [steps, height, width, 3]`,
      { ...at, field: info.path },
    );
  }
}

/** The feature spec entry of a column. */
export function columnFeature(column: TensorColumn | RawImageColumn, encoding: 'png' | 'jpeg'): Feature {
  if (column.kind === 'raw-image') return { dtype: 'image', shape: [column.height, column.width, 3], encoding };
  return { dtype: column.dtype, shape: column.stepShape, ...(column.names ? { names: column.names } : {}) };
}

/** Adds a feature to a spec; two source datasets that clean up to the same Kura name are an error. */
export function addFeature(spec: FeatureSpec, name: string, feature: Feature, sourcePath: string, at: ErrorLocation): void {
  if (Object.hasOwn(spec, name)) {
    throw new ImportError('HDF5_FEATURE_NAME_CLASH', `${sourcePath} maps to feature "${name}", which another dataset already maps to`, {
      ...at,
      field: sourcePath,
    });
  }
  spec[name] = feature;
}

/**
 * Checks an episode's dataset against the plan made from the first episode (present, same dtype
 * family, same per-step shape, `length` steps) and returns its metadata.
 */
export function checkColumn(
  hdf5: Hdf5File,
  root: string,
  column: TensorColumn | RawImageColumn,
  length: number,
  at: ErrorLocation,
): DatasetInfo {
  const info = hdf5.inspect(joinPath(root, column.relativePath), at);
  const field = { ...at, field: info.path };
  if (column.kind === 'raw-image') {
    requireRawImage(info, at);
    if (info.shape[1] !== column.height || info.shape[2] !== column.width) {
      throw new ImportError(
        'EPISODE_SHAPE_MISMATCH',
        `${info.path} has ${info.shape[2]}×${info.shape[1]} frames; the first episode's are ${column.width}×${column.height}`,
        field,
      );
    }
  } else {
    requireNumeric(info, at);
    const stepShape = info.shape.length <= 1 ? [1] : info.shape.slice(1);
    if (info.shape.length === 0 || stepShape.join(',') !== column.stepShape.join(',')) {
      throw new ImportError(
        'EPISODE_SHAPE_MISMATCH',
        `${info.path} has steps of shape [${stepShape.join(', ')}]; the first episode's are [${column.stepShape.join(', ')}] (feature ${column.feature})`,
        field,
      );
    }
  }
  checkLength(info, length, at);
  return info;
}

/** EPISODE_SHAPE_MISMATCH unless the dataset has `length` steps on its first axis. */
export function checkLength(info: DatasetInfo, length: number, at: ErrorLocation, anchor = 'the action'): void {
  const steps = info.shape[0];
  if (steps !== length) {
    throw new ImportError('EPISODE_SHAPE_MISMATCH', `${info.path} has ${steps ?? 0} steps but ${anchor} has ${length}`, {
      ...at,
      field: info.path,
    });
  }
}

/** Reads one planned column of an episode (after checkColumn). */
export async function readColumn(
  hdf5: Hdf5File,
  info: DatasetInfo,
  column: TensorColumn | RawImageColumn,
  length: number,
  options: Hdf5ImportOptions,
  at: ErrorLocation,
): Promise<FeatureValues> {
  if (column.kind === 'tensor') return { kind: 'tensor', values: convertArray(hdf5.readNumeric(info, at), column.dtype) };
  return { kind: 'image', frames: await readRawFrames(hdf5, info, column, length, options, at) };
}

/**
 * Reads raw frames a batch at a time and encodes each, so only encoded frames accumulate. Encoding
 * is synchronous JavaScript (~0.15 s for a 640×480 frame), so it lets the event loop run between
 * frames: a worker must keep renewing its job lock while a long episode is encoded.
 */
async function readRawFrames(
  hdf5: Hdf5File,
  info: DatasetInfo,
  column: RawImageColumn,
  length: number,
  options: Hdf5ImportOptions,
  at: ErrorLocation,
): Promise<Uint8Array[]> {
  const frameBytes = column.height * column.width * 3;
  const batch = Math.max(1, Math.floor(imageBatchBytes / frameBytes));
  // Frames are read a batch at a time; whether they all fit the budget is known before the first.
  hdf5.checkRowsAhead(info, length, at);
  const frames: Uint8Array[] = [];
  for (let start = 0; start < length; start += batch) {
    const end = Math.min(length, start + batch);
    const rows = hdf5.readUint8Rows(info, start, end, at);
    for (let step = start; step < end; step++) {
      const offset = (step - start) * frameBytes;
      frames.push(encodeFrame(rows.subarray(offset, offset + frameBytes), column.height, column.width, options));
      await yieldToEventLoop();
    }
  }
  return frames;
}

/** Numbers of any numeric array as float64 (bigints converted). */
export function toFloat64(values: NumericArray): Float64Array {
  const result = new Float64Array(values.length);
  for (let index = 0; index < values.length; index++) result[index] = Number(values[index]!);
  return result;
}

/** One value per step from a steps-long dataset (rewards, dones), as float32 or 0/1 bytes. */
export function readPerStep(hdf5: Hdf5File, info: DatasetInfo, length: number, at: ErrorLocation): NumericArray {
  if (info.shape.length > 2 || (info.shape.length === 2 && info.shape[1] !== 1)) {
    throw new ImportError('EPISODE_SHAPE_MISMATCH', `${info.path} has shape [${info.shape.join(', ')}]; expected one value per step`, {
      ...at,
      field: info.path,
    });
  }
  checkLength(info, length, at);
  return hdf5.readNumeric(info, at);
}
