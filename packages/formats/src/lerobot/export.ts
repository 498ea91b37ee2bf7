import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
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
import tarStream, { type Headers as TarHeaders, type Pack } from 'tar-stream';
import { isNumericDtype, type Feature, type FeatureSpec } from '@kura/schema';
import { arrowTypeName, typeOf } from '../arrow-type.js';
import { ExportError } from '../export-error.js';
import { imageEncoding } from '../image-header.js';
import { arrowToParquet } from '../parquet/export.js';
import { imageStats, numericStats, type LerobotFeatureStats } from './episode-stats.js';

/** LeRobot v2.x path templates (info.json `data_path`, `video_path`); the importer fills the same ones. */
export const LEROBOT_DATA_PATH = 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet';
export const LEROBOT_VIDEO_PATH = 'videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4';
/** Episodes per chunk folder. */
export const LEROBOT_CHUNKS_SIZE = 1000;

/** One episode to export: its record batches in Kura's schema (or a projection of it), steps in order. */
export interface LerobotExportEpisode {
  batches: readonly RecordBatch[];
  /** The episode's id in the data it was uploaded from; `source_episode` in `meta/episodes.jsonl`. */
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
}

/** Columns of a Kura batch that map to LeRobot's own columns rather than features. */
const KURA_STEP_COLUMNS = {
  episode: 'episode_index',
  step: 'step_index',
  timestamp: 'timestamp',
  reward: 'reward',
  terminal: 'is_terminal',
  task: 'language_instruction',
  dataset: 'dataset_id',
} as const;

/**
 * Writes Kura episodes as a LeRobot v2.1 dataset in a `.tar` stream: `data/chunk-XXX/episode_XXXXXX.parquet`
 * and `videos/chunk-XXX/<key>/episode_XXXXXX.mp4` per episode, then `meta/info.json`,
 * `meta/episodes.jsonl`, `meta/tasks.jsonl` and `meta/episodes_stats.jsonl` at the end (tasks and
 * totals are known only then). The mapping is in README.md beside this file ("Export").
 *
 * Memory: one episode (its batches, its parquet file, its statistics) plus one line of
 * metadata per episode. The same input gives the same bytes. Errors are ExportError:
 * `LEROBOT_EXPORT_COLUMN_MISSING`, `LEROBOT_EXPORT_VIDEO_SPLIT`, `LEROBOT_EXPORT_VIDEO_SIZE`.
 */
export function exportLerobotTar(params: LerobotExportParams): AsyncIterable<Uint8Array> {
  if (!(params.fps > 0)) throw new RangeError(`fps must be positive, not ${params.fps}`);
  if (Number.isNaN(params.mtime.getTime())) throw new RangeError('mtime is not a valid date');
  // One plain name: nothing that could climb out of the extraction folder or hide the dataset.
  if (params.folder !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(params.folder))
    throw new RangeError(`folder must be one plain folder name, not ${JSON.stringify(params.folder)}`);
  return streamTar(params);
}

async function* streamTar(params: LerobotExportParams): AsyncGenerator<Uint8Array> {
  const pack = tarStream.pack();
  let failure: unknown;
  // The entries are written while the tar is read: tar-stream holds back each entry until its bytes
  // have been read, so the producer never runs more than one entry ahead.
  const producing = writeDataset(pack, params).then(
    () => pack.finalize(),
    (error: unknown) => {
      failure = error;
      pack.destroy(error instanceof Error ? error : new Error(String(error)));
    },
  );
  try {
    for await (const chunk of pack) yield chunk;
  } catch (error) {
    // The pack ends with the producer's error; rethrow that error itself (an ExportError keeps its code).
    throw failure ?? error;
  } finally {
    // A consumer that stops early: end the pack so the producer's pending write fails and it stops.
    if (!pack.destroyed) pack.destroy();
    await producing;
  }
}

/** Everything the metadata files need, gathered while the episodes stream by. */
interface ExportState {
  tasks: Map<string, number>;
  totalFrames: number;
  episodeLines: string[];
  statsLines: string[];
  /** Present step columns, fixed by the first episode so every parquet file has the same columns. */
  hasReward?: boolean;
  hasTerminal?: boolean;
}

async function writeDataset(pack: Pack, params: LerobotExportParams): Promise<void> {
  const folder = params.folder ? `${params.folder}/` : '';
  const plan = exportPlan(params.features);
  const state: ExportState = { tasks: new Map(), totalFrames: 0, episodeLines: [], statsLines: [] };
  const header = (name: string, size: number): TarHeaders => ({
    name: folder + name,
    size,
    mode: 0o644,
    mtime: params.mtime,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    type: 'file',
  });

  let episodeIndex = 0;
  for await (const episode of params.episodes) {
    const batches = episode.batches.filter((batch) => batch.numRows > 0);
    // LeRobot has no empty episodes; skipping keeps the numbering contiguous.
    if (batches.length === 0) continue;
    const chunk = Math.floor(episodeIndex / LEROBOT_CHUNKS_SIZE);
    const exported = buildEpisode({ batches, plan, episodeIndex, firstIndex: state.totalFrames, state });
    const parquet = await concat(arrowToParquet({ schema: exported.schema, batches: exported.batches }));
    await writeEntry(pack, header(fillPath(LEROBOT_DATA_PATH, { chunk, episodeIndex }), parquet.byteLength), parquet);

    for (const { name } of plan.filter((feature) => feature.kind === 'video')) {
      const blobKey = singleVideoBlob(batches, name, episodeIndex);
      const video = await params.openVideo(blobKey);
      await writeStreamEntry(
        pack,
        header(fillPath(LEROBOT_VIDEO_PATH, { chunk, episodeIndex, videoKey: name }), video.bytes),
        video.stream,
        blobKey,
      );
    }

    state.totalFrames += exported.length;
    state.episodeLines.push(
      JSON.stringify({
        episode_index: episodeIndex,
        tasks: exported.tasks,
        length: exported.length,
        kura_episode_index: exported.origin.episodeIndex,
        ...(exported.origin.datasetId !== undefined ? { kura_dataset_id: exported.origin.datasetId } : {}),
        ...(episode.sourceEpisode !== undefined ? { source_episode: episode.sourceEpisode } : {}),
      }),
    );
    state.statsLines.push(JSON.stringify({ episode_index: episodeIndex, stats: exported.stats }));
    episodeIndex++;
  }

  const jsonLines = (lines: string[]) => Buffer.from(lines.map((line) => `${line}\n`).join(''));
  const info = Buffer.from(JSON.stringify(infoJson(params, plan, state, episodeIndex), null, 4));
  const tasks = jsonLines([...state.tasks].map(([task, taskIndex]) => JSON.stringify({ task_index: taskIndex, task })));
  const entries: Array<[string, Buffer]> = [
    ['meta/info.json', info],
    ['meta/episodes.jsonl', jsonLines(state.episodeLines)],
    ['meta/tasks.jsonl', tasks],
    ['meta/episodes_stats.jsonl', jsonLines(state.statsLines)],
  ];
  for (const [name, bytes] of entries) await writeEntry(pack, header(name, bytes.byteLength), bytes);
}

// --------------------------------------------------------------------------------------- features

type FeaturePlan =
  | { kind: 'numeric'; name: string; feature: Feature }
  | { kind: 'image'; name: string; feature: Feature }
  | { kind: 'video'; name: string; feature: Feature }
  | { kind: 'string'; name: string; feature: Feature };

function exportPlan(features: FeatureSpec): FeaturePlan[] {
  return Object.entries(features).map(([name, feature]): FeaturePlan => {
    const dtype = feature.dtype;
    return isNumericDtype(dtype) ? { kind: 'numeric', name, feature } : { kind: dtype, name, feature };
  });
}

function infoJson(params: LerobotExportParams, plan: FeaturePlan[], state: ExportState, episodes: number): Record<string, unknown> {
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
  const videoKeys = plan.filter((feature) => feature.kind === 'video').length;
  return {
    codebase_version: 'v2.1',
    robot_type: params.robotType,
    total_episodes: episodes,
    total_frames: state.totalFrames,
    total_tasks: state.tasks.size,
    total_videos: episodes * videoKeys,
    total_chunks: Math.ceil(episodes / LEROBOT_CHUNKS_SIZE),
    chunks_size: LEROBOT_CHUNKS_SIZE,
    fps: params.fps,
    splits: { train: `0:${episodes}` },
    data_path: LEROBOT_DATA_PATH,
    video_path: videoKeys > 0 ? LEROBOT_VIDEO_PATH : null,
    features,
  };
}

function fillPath(template: string, values: { chunk: number; episodeIndex: number; videoKey?: string }): string {
  return template
    .replace('{episode_chunk:03d}', String(values.chunk).padStart(3, '0'))
    .replace('{episode_index:06d}', String(values.episodeIndex).padStart(6, '0'))
    .replace('{video_key}', values.videoKey ?? '');
}

// ---------------------------------------------------------------------------------------- episode

interface ExportedEpisode {
  schema: Schema;
  batches: RecordBatch[];
  length: number;
  tasks: string[];
  origin: { episodeIndex: number; datasetId?: string };
  stats: Record<string, LerobotFeatureStats>;
}

/** The columns of a batch by name. */
function columnsOf(batch: RecordBatch): Map<string, { field: Field; data: Data; vector: Vector }> {
  return new Map(
    batch.schema.fields.map((field, index) => [field.name, { field, data: batch.data.children[index]!, vector: batch.getChildAt(index)! }]),
  );
}

/**
 * An episode's LeRobot batches: Kura's feature data is reused where LeRobot stores the same thing
 * (numeric lists, image bytes, reward, terminal flags); frame_index, episode_index, index,
 * task_index and the float32 timestamp are new columns.
 */
function buildEpisode(params: {
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
function singleVideoBlob(batches: RecordBatch[], name: string, episodeIndex: number): string {
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
      `the frames of ${name} in episode ${episodeIndex} (in export order) point to ${blobs.size} video files (${[...blobs].slice(0, 3).join(', ')}); LeRobot v2.1 has one mp4 per episode and camera`,
    );
  }
  return [...blobs][0]!;
}

// ------------------------------------------------------------------------------------------ stats

/** Per-episode statistics of every column LeRobot computes them for (strings and videos are skipped). */
function episodeStats(plan: FeaturePlan[], batches: RecordBatch[], schema: Schema): Record<string, LerobotFeatureStats> {
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

// -------------------------------------------------------------------------------------------- tar

/** Adds an entry from memory; resolves once tar-stream has passed its bytes on (backpressure). */
function writeEntry(pack: Pack, header: TarHeaders, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (error?: Error | null) =>
      error ? reject(error) : resolve(),
    );
  });
}

/** Copies a stream into an entry of the declared size (LEROBOT_EXPORT_VIDEO_SIZE when the stream's length differs). */
async function writeStreamEntry(pack: Pack, header: TarHeaders, stream: Readable, blobKey: string): Promise<void> {
  const size = header.size ?? 0;
  let entry!: Writable;
  const done = new Promise<void>((resolve, reject) => {
    entry = pack.entry(header, (error?: Error | null) => (error ? reject(error) : resolve()));
  });
  // Awaited below; until then a failure (the pack destroyed by a consumer that stopped) must not count as unhandled.
  done.catch(() => undefined);
  // The entry's error reaches us through its callback (`done`); without a listener, streamx would throw it.
  entry.on('error', () => undefined);
  let written = 0;
  try {
    for await (const chunk of stream) {
      const bytes: unknown = chunk;
      if (!(bytes instanceof Uint8Array))
        throw new ExportError('LEROBOT_EXPORT_VIDEO_SIZE', `the stream of video blob ${blobKey} yields ${typeof bytes}, not bytes`);
      written += bytes.byteLength;
      if (written > size) break;
      if (!entry.write(bytes)) await Promise.race([once(entry, 'drain'), done]);
    }
  } catch (error) {
    entry.destroy(error instanceof Error ? error : new Error(String(error)));
    throw error;
  } finally {
    stream.destroy();
  }
  if (written !== size) {
    const error = new ExportError(
      'LEROBOT_EXPORT_VIDEO_SIZE',
      `video blob ${blobKey} holds ${written > size ? 'more than' : 'only'} ${written} bytes; ${size} were announced`,
    );
    entry.destroy(error);
    throw error;
  }
  entry.end();
  await done;
}

async function concat(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
