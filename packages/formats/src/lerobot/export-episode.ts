import type { Readable } from 'node:stream';
import {
  Binary,
  Bool,
  DataType,
  Field,
  FixedSizeList,
  Float32,
  Int64,
  makeData,
  makeVector,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
  type Data,
  type Vector,
} from 'apache-arrow';
import { isNumericDtype, type Feature, type FeatureSpec } from '@kura/schema';
import { arrowTypeName, typeOf } from '../arrow-type.js';
import { ExportError } from '../export-error.js';
import { imageEncoding } from '../image-header.js';
import { imageStats, numericStats, type LerobotFeatureStats } from './episode-stats.js';

// What LeRobot v2.1 and v3.0 exports share: the parameters, the feature plan, an episode's LeRobot
// columns and statistics, and info.json's `features`. The layouts differ only in files (export.ts,
// export-v3.ts).

/** One episode to export: its record batches in Kura's schema (or a projection of it), steps in order. */
export interface LerobotExportEpisode {
  batches: readonly RecordBatch[];
  /** The episode's id in the data it was uploaded from; `source_episode` in the episodes metadata. */
  sourceEpisode?: string;
}

/** What `exportLerobotTar` needs. */
export interface LerobotExportParams {
  /** Feature specs of the feature columns to export (other feature columns of the batches are left out). */
  features: FeatureSpec;
  /** Frames per second of the exported steps (for a step-strided slice: the source rate / stride). */
  fps: number;
  /** info.json `robot_type`. */
  robotType: string;
  /**
   * The episodes in export order; they become episodes 0…N−1. Each batch has `episode_index`,
   * `step_index`, `timestamp` and the exported features, optionally `reward`, `is_terminal`,
   * `language_instruction` and a leading `dataset_id`.
   */
  episodes: AsyncIterable<LerobotExportEpisode> | Iterable<LerobotExportEpisode>;
  /** The mp4 of a video feature, by the blob key its frames point to. `bytes` must be its exact size. */
  openVideo(blobKey: string): Promise<{ bytes: number; stream: Readable }>;
  /** Modification time of every tar entry (fixed, so the same export gives the same bytes). */
  mtime: Date;
  /** A folder to put the dataset in inside the tar (`my_dataset` → `my_dataset/meta/info.json`); default: the top. */
  folder?: string;
  /** The LeRobot codebase version to write (default v2.1; slice downloads ask for v3.0 as `lerobot`). */
  version?: 'v2.1' | 'v3.0';
  /** v3.0: a folder where data files are spooled before they go into the tar (a tar entry's size comes first). */
  scratch?: string;
  /** v3.0: a data file is closed, and the next begun, once it holds this many bytes (LeRobot's `data_files_size_in_mb`, default 100 MB). */
  dataFileBytes?: number;
}

/** Columns of a Kura batch that map to LeRobot's own columns rather than features. */
export const KURA_STEP_COLUMNS = {
  episode: 'episode_index',
  step: 'step_index',
  timestamp: 'timestamp',
  reward: 'reward',
  terminal: 'is_terminal',
  task: 'language_instruction',
  dataset: 'dataset_id',
} as const;

/** What the metadata needs from every episode, gathered while the episodes stream by. */
export interface ExportState {
  tasks: Map<string, number>;
  totalFrames: number;
  /** Present step columns, fixed by the first episode so every parquet file has the same columns. */
  hasReward?: boolean;
  hasTerminal?: boolean;
}

// --------------------------------------------------------------------------------------- features

export type FeaturePlan =
  | { kind: 'numeric'; name: string; feature: Feature }
  | { kind: 'image'; name: string; feature: Feature }
  | { kind: 'video'; name: string; feature: Feature }
  | { kind: 'string'; name: string; feature: Feature };

export function exportPlan(features: FeatureSpec): FeaturePlan[] {
  return Object.entries(features).map(([name, feature]): FeaturePlan => {
    const dtype = feature.dtype;
    return isNumericDtype(dtype) ? { kind: 'numeric', name, feature } : { kind: dtype, name, feature };
  });
}

/** info.json `features`: each exported feature, the step columns the first episode settled, and LeRobot's own columns. */
export function infoFeatures(params: LerobotExportParams, plan: FeaturePlan[], state: ExportState): Record<string, unknown> {
  const scalar = (dtype: string) => ({ dtype, shape: [1], names: null });
  const mediaNames = ['height', 'width', 'channel'];
  const features: Record<string, unknown> = {};
  for (const { kind, name, feature } of plan) {
    switch (kind) {
      case 'numeric':
        features[name] = { dtype: feature.dtype, shape: feature.shape.length ? feature.shape : [1], names: feature.names ?? null };
        break;
      case 'image':
        features[name] = { dtype: 'image', shape: feature.shape, names: mediaNames };
        break;
      case 'video': {
        const [height, width, channels] = feature.shape;
        // Codec and pixel format are not recorded in Kura, so only what the spec says is given.
        features[name] = {
          dtype: 'video',
          shape: feature.shape,
          names: mediaNames,
          info: {
            'video.height': height,
            'video.width': width,
            'video.channels': channels,
            'video.fps': params.fps,
            'video.is_depth_map': false,
            has_audio: false,
          },
        };
        break;
      }
      case 'string':
        features[name] = scalar('string');
        break;
    }
  }
  if (state.hasReward) features['next.reward'] = scalar('float32');
  if (state.hasTerminal) features['next.done'] = scalar('bool');
  features.timestamp = scalar('float32');
  for (const name of ['frame_index', 'episode_index', 'index', 'task_index']) features[name] = scalar('int64');
  return features;
}

// ---------------------------------------------------------------------------------------- episode

export interface ExportedEpisode {
  schema: Schema;
  batches: RecordBatch[];
  length: number;
  tasks: string[];
  origin: { episodeIndex: number; datasetId?: string };
  stats: Record<string, LerobotFeatureStats>;
}

/** The columns of a batch by name. */
export function columnsOf(batch: RecordBatch): Map<string, { field: Field; data: Data; vector: Vector }> {
  return new Map(
    batch.schema.fields.map((field, index) => [field.name, { field, data: batch.data.children[index]!, vector: batch.getChildAt(index)! }]),
  );
}

/**
 * An episode's LeRobot batches: Kura's feature data is reused where LeRobot stores the same thing
 * (numeric lists, image bytes, reward, terminal flags); frame_index, episode_index, index,
 * task_index and the float32 timestamp are new columns.
 */
export function buildEpisode(params: {
  batches: RecordBatch[];
  plan: FeaturePlan[];
  episodeIndex: number;
  firstIndex: number;
  state: ExportState;
}): ExportedEpisode {
  const { batches, plan, episodeIndex, firstIndex, state } = params;
  const first = columnsOf(batches[0]!);
  for (const name of [
    KURA_STEP_COLUMNS.episode,
    KURA_STEP_COLUMNS.step,
    KURA_STEP_COLUMNS.timestamp,
    ...plan.map((feature) => feature.name),
  ]) {
    if (!first.has(name))
      throw new ExportError(
        'LEROBOT_EXPORT_COLUMN_MISSING',
        `the batches of episode ${episodeIndex} (in export order) have no column ${name}`,
      );
  }
  for (const feature of plan) checkFeatureColumn(feature, typeOf(first.get(feature.name)!.field));
  state.hasReward ??= first.has(KURA_STEP_COLUMNS.reward);
  state.hasTerminal ??= first.has(KURA_STEP_COLUMNS.terminal);

  // Every column nullable, list elements too, as HF datasets writes LeRobot's files: pyarrow then reads
  // the image struct with exactly the type of HF's `Image` feature, so `datasets` decodes it as an image.
  const fields: Field[] = [];
  const hfFeatures: Record<string, unknown> = {};
  const addColumn = (name: string, type: DataType, hfFeature: unknown) => {
    fields.push(new Field(name, type, true));
    if (hfFeature !== undefined) hfFeatures[name] = hfFeature;
  };
  for (const { kind, name, feature } of plan) {
    if (kind === 'numeric') addColumn(name, lerobotNumericType(typeOf(first.get(name)!.field), feature.shape), hfNumericFeature(feature));
    else if (kind === 'image') addColumn(name, imageStructType(), { _type: 'Image' });
    else if (kind === 'string') addColumn(name, new Utf8(), { dtype: 'string', _type: 'Value' });
  }
  if (state.hasReward) addColumn('next.reward', new Float32(), { dtype: 'float32', _type: 'Value' });
  if (state.hasTerminal) addColumn('next.done', new Bool(), { dtype: 'bool', _type: 'Value' });
  addColumn('timestamp', new Float32(), { dtype: 'float32', _type: 'Value' });
  for (const name of ['frame_index', 'episode_index', 'index', 'task_index'])
    addColumn(name, new Int64(), { dtype: 'int64', _type: 'Value' });
  // The `huggingface` metadata names each column's HF feature, as LeRobot's own files carry it.
  const schema = new Schema(fields, new Map([['huggingface', JSON.stringify({ info: { features: hfFeatures } })]]));

  const episodeTasks = new Map<string, true>();
  const exportedBatches: RecordBatch[] = [];
  let frame = 0;
  for (const batch of batches) {
    const columns = columnsOf(batch);
    const rows = batch.numRows;
    const column = (name: string): { field: Field; data: Data; vector: Vector } => {
      const found = columns.get(name);
      if (!found)
        throw new ExportError(
          'LEROBOT_EXPORT_COLUMN_MISSING',
          `a batch of episode ${episodeIndex} (in export order) has no column ${name}`,
        );
      return found;
    };
    const children: Data[] = [];
    for (const { kind, name, feature } of plan) {
      if (kind === 'numeric') children.push(lerobotNumericData(column(name).data, feature.shape));
      else if (kind === 'image') children.push(imageStructData(column(name).data, frame, feature));
      else if (kind === 'string') children.push(column(name).data);
    }
    if (state.hasReward) children.push(column(KURA_STEP_COLUMNS.reward).data);
    if (state.hasTerminal) children.push(column(KURA_STEP_COLUMNS.terminal).data);
    const timestamps = column(KURA_STEP_COLUMNS.timestamp).vector;
    children.push(
      makeData({ type: new Float32(), length: rows, data: Float32Array.from({ length: rows }, (_, row) => Number(timestamps.get(row))) }),
    );
    const int64 = (value: (row: number) => number) =>
      makeData({ type: new Int64(), length: rows, data: BigInt64Array.from({ length: rows }, (_, row) => BigInt(value(row))) });
    children.push(int64((row) => frame + row));
    children.push(int64(() => episodeIndex));
    children.push(int64((row) => firstIndex + frame + row));
    const instructions = columns.get(KURA_STEP_COLUMNS.task)?.vector;
    children.push(
      int64((row) => {
        // LeRobot needs a task on every frame: a step without an instruction gets the empty task.
        const text: unknown = instructions?.get(row);
        const task = typeof text === 'string' ? text : '';
        episodeTasks.set(task, true);
        let taskIndex = state.tasks.get(task);
        if (taskIndex === undefined) state.tasks.set(task, (taskIndex = state.tasks.size));
        return taskIndex;
      }),
    );
    exportedBatches.push(new RecordBatch(schema, makeData({ type: new Struct(fields), length: rows, nullCount: 0, children })));
    frame += rows;
  }

  const datasetId: unknown = first.get(KURA_STEP_COLUMNS.dataset)?.vector.get(0);
  return {
    schema,
    batches: exportedBatches,
    length: frame,
    tasks: [...episodeTasks.keys()],
    origin: {
      episodeIndex: Number(first.get(KURA_STEP_COLUMNS.episode)!.vector.get(0)),
      ...(typeof datasetId === 'string' ? { datasetId } : {}),
    },
    stats: episodeStats(plan, exportedBatches, schema),
  };
}

/**
 * LeRobot's layout of a numeric feature: shape `[]`/`[1]` is a plain column (HF `Value`), `[n]` a
 * list (`Sequence`), `[a, b, …]` nested lists (`Array2D`…), all over Kura's flat values.
 */
function lerobotNumericType(kuraType: DataType, shape: readonly number[]): DataType {
  if (!DataType.isFixedSizeList(kuraType))
    throw new ExportError('EXPORT_SCHEMA_MISMATCH', `${arrowTypeName(kuraType)} is not a numeric feature column`);
  const item = typeOf(kuraType.children[0]!);
  if (shape.length === 0 || (shape.length === 1 && shape[0] === 1)) return item;
  return shape.reduceRight<DataType>((inner, dimension) => new FixedSizeList(dimension, new Field('item', inner, true)), item);
}

/** The HF datasets feature LeRobot's `get_hf_features_from_features` gives a numeric feature (undefined past 5 dimensions, which it refuses). */
function hfNumericFeature(feature: Feature): unknown {
  const value = { dtype: feature.dtype, _type: 'Value' };
  const { shape } = feature;
  if (shape.length === 0 || (shape.length === 1 && shape[0] === 1)) return value;
  if (shape.length === 1) return { feature: value, length: shape[0], _type: 'Sequence' };
  return shape.length <= 5 ? { shape, dtype: feature.dtype, _type: `Array${shape.length}D` } : undefined;
}

/** The column of a feature must have the Arrow type Kura stores that kind of feature as (EXPORT_SCHEMA_MISMATCH). */
function checkFeatureColumn({ kind, name, feature }: FeaturePlan, type: DataType): void {
  const components = feature.shape.reduce((product, dimension) => product * dimension, 1);
  const fits =
    kind === 'numeric'
      ? DataType.isFixedSizeList(type) && type.listSize === components
      : kind === 'image'
        ? DataType.isBinary(type)
        : kind === 'video'
          ? DataType.isStruct(type) && type.children[0]?.name === 'blob'
          : DataType.isUtf8(type);
  if (!fits)
    throw new ExportError(
      'EXPORT_SCHEMA_MISMATCH',
      `column ${name} is ${arrowTypeName(type)}, which does not hold a Kura ${feature.dtype} feature of shape [${feature.shape.join(', ')}]`,
    );
}

function lerobotNumericData(kura: Data, shape: readonly number[]): Data {
  const values = kura.children[0]!;
  if (shape.length === 0 || (shape.length === 1 && shape[0] === 1)) return values;
  // Innermost dimension first: each level groups `dimension` items of the level below.
  let data = values;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const dimension = shape[axis]!;
    const type = new FixedSizeList(dimension, new Field('item', typeOf(data), true));
    data = makeData({ type, length: data.length / dimension, nullCount: 0, child: data });
  }
  return data;
}

/** HF datasets' `Image` storage: `struct<bytes: binary, path: string>`. */
function imageStructType(): Struct {
  return new Struct([new Field('bytes', new Binary(), true), new Field('path', new Utf8(), true)]);
}

function imageStructData(kura: Data, firstFrame: number, feature: Feature): Data {
  const rows = kura.length;
  const first: unknown = rows > 0 ? makeVector(kura).get(0) : undefined;
  const encoding = feature.encoding ?? (first instanceof Uint8Array ? imageEncoding(first) : undefined);
  const extension = encoding === 'jpeg' ? 'jpg' : 'png';
  // A file name as LeRobot gives embedded frames; readers use the bytes, the name only labels them.
  const paths = vectorFromArray(
    Array.from({ length: rows }, (_, row) => `frame_${String(firstFrame + row).padStart(6, '0')}.${extension}`),
    new Utf8(),
  ).data[0]!;
  return makeData({ type: imageStructType(), length: rows, nullCount: 0, children: [kura, paths] });
}

/** The one blob a video feature's frames point to in this episode (LEROBOT_EXPORT_VIDEO_SPLIT when several). */
export function singleVideoBlob(batches: RecordBatch[], name: string, episodeIndex: number): string {
  const blobs = new Set<string>();
  for (const batch of batches) {
    const blob = columnsOf(batch).get(name)?.vector.getChildAt(0);
    for (let row = 0; row < (blob?.length ?? 0); row++) {
      const key: unknown = blob!.get(row);
      if (typeof key === 'string') blobs.add(key);
    }
  }
  if (blobs.size !== 1) {
    throw new ExportError(
      'LEROBOT_EXPORT_VIDEO_SPLIT',
      `the frames of ${name} in episode ${episodeIndex} (in export order) point to ${blobs.size} video files (${[...blobs].slice(0, 3).join(', ')}); LeRobot has one video file per episode and camera`,
    );
  }
  return [...blobs][0]!;
}

// ------------------------------------------------------------------------------------------ stats

/** Per-episode statistics of every column LeRobot computes them for (strings and videos are skipped). */
export function episodeStats(plan: FeaturePlan[], batches: RecordBatch[], schema: Schema): Record<string, LerobotFeatureStats> {
  const stats: Record<string, LerobotFeatureStats> = {};
  const rows = batches.reduce((total, batch) => total + batch.numRows, 0);
  const shapes = new Map<string, readonly number[]>(plan.map(({ name, feature }) => [name, feature.shape]));
  schema.fields.forEach((field, index) => {
    const kind = plan.find((feature) => feature.name === field.name)?.kind;
    if (kind === 'string') return;
    if (kind === 'image') {
      const frames = batches.flatMap((batch) => {
        const bytes = batch.getChildAt(index)!.getChildAt(0)!;
        return Array.from({ length: batch.numRows }, (_, row) => {
          const frame: unknown = bytes.get(row);
          return frame instanceof Uint8Array ? frame : new Uint8Array();
        });
      });
      const image = imageStats(frames);
      if (image) stats[field.name] = image;
      return;
    }
    const values = new Float64Array(batches.reduce((total, batch) => total + flatLength(batch.data.children[index]!), 0));
    let offset = 0;
    for (const batch of batches) offset = appendNumbers(batch.data.children[index]!, values, offset);
    const result = numericStats(values, rows, shapes.get(field.name) ?? []);
    if (result) stats[field.name] = result;
  });
  return stats;
}

/** Number of leaf values of a (possibly nested) numeric column. */
function flatLength(data: Data): number {
  return DataType.isFixedSizeList(data.type) ? flatLength(data.children[0]!) : data.length;
}

/** Appends a numeric column's leaf values as float64 (null → NaN, bool → 0/1, int64 → nearest double). */
function appendNumbers(data: Data, out: Float64Array, offset: number): number {
  if (DataType.isFixedSizeList(data.type)) return appendNumbers(data.children[0]!, out, offset);
  const vector = makeVector(data);
  for (let index = 0; index < data.length; index++) {
    const value: unknown = vector.get(index);
    out[offset + index] =
      typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : typeof value === 'boolean' ? Number(value) : NaN;
  }
  return offset + data.length;
}
