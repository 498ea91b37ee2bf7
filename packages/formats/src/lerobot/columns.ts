import type { ParquetRow } from 'hyparquet';
import { featureNamePattern, featureSchema, stepColumns, type ErrorLocation, type Feature } from '@kura/schema';
import { imageEncoding } from '../image-header.js';
import type { IngestBudget } from '../budget.js';
import { allocateTyped, bytesPerValue, type NumericDtype } from '../typed-arrays.js';
import { ImportError, type ImportIssue, type NumericArray } from '../importer.js';
import { lookup } from '../own-keys.js';
import type { LerobotFeature } from './meta.js';

/**
 * LeRobot columns that become Kura step columns or episode fields rather than features
 * (README.md, "Column mapping"). `episode_index` and `index` are only checked: Kura numbers
 * episodes and steps itself.
 */
export const SPECIAL_COLUMNS = [
  'timestamp',
  'frame_index',
  'episode_index',
  'index',
  'task_index',
  'next.reward',
  'next.done',
  'next.success',
] as const;

/** How one LeRobot feature becomes a Kura feature. */
export type FeaturePlan =
  | { kind: 'tensor'; name: string; column: string; dtype: NumericDtype; shape: number[]; names?: Feature['names'] }
  | { kind: 'image'; name: string; column: string; shape: number[] }
  | { kind: 'video'; name: string; column: string; shape: number[] };

/** LeRobot dtypes Kura stores as they are; float16 is widened to float32 (Kura has no half floats). */
const dtypeMap: Record<string, NumericDtype> = {
  float16: 'float32',
  float32: 'float32',
  float64: 'float64',
  int8: 'int8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  uint16: 'uint16',
  uint32: 'uint32',
  bool: 'bool',
};

/**
 * Plans the Kura features of info.json's `features`: special columns are left out, names are kept
 * (a list, nested list or `{motors: [...]}`) when they agree with the shape, media shapes become
 * `[height, width, channels]`. Features Kura cannot hold (strings, unknown dtypes) are skipped with
 * a warning.
 */
export function planFeatures(
  features: Record<string, LerobotFeature>,
  infoFile: string,
  warn: (issue: ImportIssue) => void,
): FeaturePlan[] {
  const plans: FeaturePlan[] = [];
  const taken = new Map<string, string>();
  for (const [column, feature] of Object.entries(features)) {
    if ((SPECIAL_COLUMNS as readonly string[]).includes(column)) continue;
    const at = { file: infoFile, field: column };
    const name = kuraFeatureName(column);
    if (name === undefined || (stepColumns as readonly string[]).includes(name)) {
      warn({
        code: 'LEROBOT_FEATURE_SKIPPED',
        message: `feature "${column}" has no valid Kura name (or clashes with a Kura step column) and is not imported`,
        location: at,
      });
      continue;
    }
    const clash = taken.get(name);
    if (clash !== undefined)
      throw new ImportError('LEROBOT_INFO_INVALID', `features "${clash}" and "${column}" both map to the Kura name "${name}"`, at);
    taken.set(name, column);

    if (feature.dtype === 'image' || feature.dtype === 'video') {
      const shape = mediaShape(feature);
      if (!shape)
        throw new ImportError(
          'LEROBOT_INFO_INVALID',
          `${feature.dtype} feature "${column}" has shape [${feature.shape.join(', ')}]; expected three dimensions`,
          at,
        );
      plans.push({ kind: feature.dtype, name, column, shape });
      continue;
    }
    const dtype = lookup(dtypeMap, feature.dtype);
    if (!dtype) {
      warn({
        code: 'LEROBOT_FEATURE_SKIPPED',
        message: `feature "${column}" has dtype ${feature.dtype}, which Kura does not import`,
        location: at,
      });
      continue;
    }
    const names = feature.names ?? undefined;
    const withNames = featureSchema.safeParse({ dtype, shape: feature.shape, ...(names !== undefined ? { names } : {}) });
    if (withNames.success) {
      plans.push({
        kind: 'tensor',
        name,
        column,
        dtype,
        shape: feature.shape,
        ...(withNames.data.names ? { names: withNames.data.names } : {}),
      });
      continue;
    }
    const withoutNames = featureSchema.safeParse({ dtype, shape: feature.shape });
    if (!withoutNames.success)
      throw new ImportError('LEROBOT_INFO_INVALID', `feature "${column}": ${withoutNames.error.issues[0]?.message ?? 'invalid'}`, at);
    warn({
      code: 'LEROBOT_NAMES_IGNORED',
      message: `the names of feature "${column}" do not fit its shape [${feature.shape.join(', ')}] and are left out`,
      location: at,
    });
    plans.push({ kind: 'tensor', name, column, dtype, shape: feature.shape });
  }
  return plans;
}

/** The Kura feature of a plan (image encoding as found in the data; videos are mp4 files). */
export function kuraFeature(plan: FeaturePlan, imageEncoding?: 'jpeg' | 'png'): Feature {
  switch (plan.kind) {
    case 'tensor':
      return { dtype: plan.dtype, shape: plan.shape, ...(plan.names ? { names: plan.names } : {}) };
    case 'image':
      return { dtype: 'image', shape: plan.shape, ...(imageEncoding ? { encoding: imageEncoding } : {}) };
    case 'video':
      return { dtype: 'video', shape: plan.shape, encoding: 'mp4' };
  }
}

/**
 * LeRobot keys are already dotted words (`observation.images.top`); other characters become `_`.
 * Undefined when even that is not a Kura feature name.
 */
export function kuraFeatureName(column: string): string | undefined {
  if (featureNamePattern.test(column)) return column;
  const cleaned = column.replace(/[^A-Za-z0-9_.]/g, '_');
  return featureNamePattern.test(cleaned) ? cleaned : undefined;
}

/**
 * `[height, width, channels]`. LeRobot's media `names` label the axes (`["height", "width",
 * "channel"]`, older sets `["channels", "height", "width"]`), so a leading channel axis is moved last.
 */
function mediaShape(feature: LerobotFeature): number[] | undefined {
  if (feature.shape.length !== 3 || feature.shape.some((dimension) => dimension < 1)) return undefined;
  const [first = 0, second = 0, third = 0] = feature.shape;
  const axisNames = Array.isArray(feature.names) ? feature.names.map((name) => (typeof name === 'string' ? name.toLowerCase() : '')) : [];
  const channelsFirst =
    axisNames.length === 3 ? /^(c|channels?)$/.test(axisNames[0]!) : [1, 3, 4].includes(first) && ![1, 3, 4].includes(third);
  return channelsFirst ? [second, third, first] : [first, second, third];
}

// ------------------------------------------------------------------------------ values of an episode

/** Where an episode's rows came from, for error locations. */
export interface RowsOrigin {
  file: string;
  episode: number;
}

/** One feature's values over the rows of an episode, in the typed array of its dtype. */
export function tensorValues(
  rows: ParquetRow[],
  plan: Extract<FeaturePlan, { kind: 'tensor' }>,
  origin: RowsOrigin,
  budget: IngestBudget,
): NumericArray {
  const perStep = plan.shape.reduce((product, dimension) => product * dimension, 1);
  // info.json's shape, not the rows, sizes the array: checked before it is allocated.
  budget.checkTensor(
    rows.length * perStep * bytesPerValue(plan.dtype),
    { ...origin, field: plan.column },
    `${plan.column} of episode ${origin.episode}`,
  );
  const values = allocateTyped(plan.dtype, rows.length * perStep);
  const store = storer(values, plan.dtype);
  rows.forEach((row, step) => {
    const at: ErrorLocation = { file: origin.file, episode: origin.episode, step, field: plan.column };
    const components: unknown[] = [];
    const cell: unknown = row[plan.column];
    // A string or a record where numbers belong is a wrong value, not a wrong shape.
    if (typeof cell === 'string' || (cell !== null && typeof cell === 'object' && !Array.isArray(cell) && !ArrayBuffer.isView(cell))) {
      throw new ImportError(
        'LEROBOT_VALUE_INVALID',
        `${plan.column} of episode ${origin.episode} at step ${step} holds ${describeValue(cell)}, not ${plan.dtype} values`,
        at,
      );
    }
    if (!flatten(cell, plan.shape, components)) {
      throw new ImportError(
        'EPISODE_SHAPE_MISMATCH',
        `${plan.column} of episode ${origin.episode} at step ${step} has shape [${shapeOf(cell).join(', ')}]; info.json declares [${plan.shape.join(', ')}]`,
        at,
      );
    }
    components.forEach((component, offset) => {
      if (!store(step * perStep + offset, component)) {
        throw new ImportError(
          'LEROBOT_VALUE_INVALID',
          `${plan.column} of episode ${origin.episode} at step ${step} holds ${describeValue(component)}, not a ${plan.dtype} value`,
          at,
        );
      }
    });
  });
  return values;
}

/** One encoded image per step from an image column (HF datasets' struct{bytes, path}). */
export function imageFrames(
  rows: ParquetRow[],
  plan: Extract<FeaturePlan, { kind: 'image' }>,
  encoding: 'jpeg' | 'png' | undefined,
  origin: RowsOrigin,
): Uint8Array[] {
  return rows.map((row, step) => {
    const at: ErrorLocation = { file: origin.file, episode: origin.episode, step, field: plan.column };
    const bytes = imageBytes(row[plan.column]);
    if (!bytes)
      throw new ImportError(
        'LEROBOT_IMAGE_MISSING',
        `${plan.column} of episode ${origin.episode} at step ${step} has no embedded image bytes`,
        at,
      );
    const found = imageEncoding(bytes);
    if (!found || (encoding && found !== encoding)) {
      throw new ImportError(
        'LEROBOT_IMAGE_INVALID',
        `${plan.column} of episode ${origin.episode} at step ${step} is ${found ?? 'neither JPEG nor PNG'}${encoding ? `, not ${encoding}` : ''}`,
        at,
      );
    }
    return bytes;
  });
}

/** The bytes of an image cell: `{ bytes, path }` (or bare bytes). */
export function imageBytes(cell: unknown): Uint8Array | undefined {
  if (cell instanceof Uint8Array) return cell;
  if (typeof cell === 'object' && cell !== null && 'bytes' in cell && cell.bytes instanceof Uint8Array) return cell.bytes;
  return undefined;
}

/** A function that stores one parquet value at an index, or returns false when the value does not fit the dtype. */
function storer(values: NumericArray, dtype: NumericDtype): (index: number, value: unknown) => boolean {
  if (values instanceof BigInt64Array) {
    return (index, value) => {
      if (typeof value === 'bigint') values[index] = value;
      else if (typeof value === 'number' && Number.isInteger(value)) values[index] = BigInt(value);
      else return false;
      return true;
    };
  }
  const integral = dtype !== 'float32' && dtype !== 'float64';
  return (index, value) => {
    let number: number;
    if (typeof value === 'number') number = value;
    else if (typeof value === 'bigint') number = Number(value);
    else if (typeof value === 'boolean') number = value ? 1 : 0;
    else return false;
    if (integral && !Number.isInteger(number)) return false;
    if (dtype === 'bool' && number !== 0 && number !== 1) return false;
    values[index] = number;
    return true;
  };
}

/**
 * Appends the components of a (possibly nested) cell in row-major order; false when its structure
 * is not `shape`. A bare scalar fits a shape of ones (`[1]`), as LeRobot stores shape-[1] features.
 */
function flatten(cell: unknown, shape: readonly number[], out: unknown[]): boolean {
  const list = asList(cell);
  if (shape.length === 0) {
    if (list) return false;
    out.push(cell);
    return true;
  }
  if (!list) {
    if (!shape.every((dimension) => dimension === 1)) return false;
    out.push(cell);
    return true;
  }
  if (list.length !== shape[0]) return false;
  const inner = shape.slice(1);
  return list.every((item) => flatten(item, inner, out));
}

type TypedArray = ArrayBufferView & Iterable<number | bigint>;

function isTypedArray(value: unknown): value is TypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

/** Parquet lists arrive as arrays (or, for some encodings, typed arrays). */
function asList(value: unknown): readonly unknown[] | undefined {
  if (Array.isArray(value)) return value as unknown[]; // parsed boundary: parquet cells are untyped
  if (isTypedArray(value)) return [...value];
  return undefined;
}

function shapeOf(cell: unknown): number[] {
  const shape: number[] = [];
  let list = asList(cell);
  while (list) {
    shape.push(list.length);
    list = list.length > 0 ? asList(list[0]) : undefined;
  }
  return shape;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'no value';
  if (typeof value === 'string') return `the text ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}
