import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecordBatch } from 'apache-arrow';
import { decodeRgb, imageShape, type DatasetStatsSummary } from '@kura/formats';
import { valuesPerStep, type Feature, type TrainingSourceView } from '@kura/schema';
import { columnValues } from '../slices/batch-values.js';
import type { DecodePlan } from '../slices/slice-reader.js';
import { NpyWriter, type NpyDtype } from './npy-writer.js';
import { StatsThread } from './stats-thread.js';

/** One source of a training set, as meta.json describes it (as the run's record shows it). */
export type TrainingSetSource = TrainingSourceView;

/** What `meta.json` of a training set holds (docs/training.md, "The data folder"). */
export interface TrainingSetMeta {
  format: 'kura.training-set/1';
  steps: number;
  episodes: number;
  features: Record<string, { file: string; dtype: NpyDtype; shape: number[]; names?: Feature['names'] }>;
  /** Per-step files beside the features: episode_index, step_index, timestamp, source_index, task_index. */
  index: Record<string, { file: string; dtype: NpyDtype }>;
  /** task_index → task string (-1 in task_index: no task). */
  tasks: string[];
  sources: TrainingSetSource[];
  /** Per numeric feature, over the whole set: count, min, max, mean, std, quantiles per component. */
  stats: DatasetStatsSummary;
  /** Steps per second, from the first episode's timestamps (median spacing); null with fewer than two steps. */
  fps: number | null;
  robotId: string | null;
}

/** A step the training set cannot hold (an image that does not decode to its feature's shape), with where it is. */
export class TrainingSetError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly location: { datasetId: string; episode: number; step: number; field: string },
  ) {
    super(message);
    this.name = 'TrainingSetError';
  }
}

export interface MaterialiseParams {
  plan: DecodePlan;
  /** The features to write, in the trainer's order: numeric ones, and images (decoded to RGB); the caller refuses others. */
  features: Array<{ name: string; feature: Feature }>;
  /** Position of each source in `sources`, by dataset id. */
  sources: TrainingSetSource[];
  robotId: string | null;
  directory: string;
  /** Checked between episodes: a cancelled run stops writing. */
  signal?: AbortSignal | undefined;
}

const INDEX_FILES = {
  episode_index: { file: 'episode_index.npy', dtype: 'int64' },
  step_index: { file: 'step_index.npy', dtype: 'int32' },
  timestamp: { file: 'timestamp.npy', dtype: 'float64' },
  source_index: { file: 'source_index.npy', dtype: 'int16' },
  task_index: { file: 'task_index.npy', dtype: 'int32' },
} as const satisfies Record<string, { file: string; dtype: NpyDtype }>;

/**
 * Writes a training set as plain NumPy files any Python reads without extra packages: one `.npy`
 * per feature (`[N, …shape]`), the per-step index files, and `meta.json`. Rows stream from the
 * shards to disk episode by episode; memory stays flat whatever the size of the set.
 */
export async function materialiseTrainingSet(params: MaterialiseParams): Promise<TrainingSetMeta> {
  await mkdir(params.directory, { recursive: true, mode: 0o755 });
  const writers = new Map<string, NpyWriter>();
  const stats = StatsThread.start();
  const mediaFrames = new Map<string, number>();
  const sourcePosition = new Map(params.sources.map((source, position) => [source.datasetId, position]));
  let tasks: string[] = [];
  let steps = 0;
  let episodes = 0;
  let fps: number | null = null;
  try {
    for (const [name, index] of Object.entries(INDEX_FILES))
      writers.set(name, await NpyWriter.create(join(params.directory, index.file), index.dtype, []));
    const featureFiles: TrainingSetMeta['features'] = {};
    for (const { name, feature } of params.features) {
      const image = feature.dtype === 'image';
      // Images are handed over decoded, as 8-bit RGB: [N, height, width, 3].
      const dtype = image ? 'uint8' : (feature.dtype as NpyDtype);
      const shape = image ? [feature.shape[0]!, feature.shape[1]!, 3] : feature.shape;
      const file = `${name}.npy`;
      featureFiles[name] = { file, dtype, shape, ...(feature.names ? { names: feature.names } : {}) };
      // Statistics are taken from the rows as they are written, on a thread of their own.
      const size = valuesPerStep(feature);
      const onFlush = image ? undefined : (rows: Uint8Array) => stats.add(name, size, dtype, rows);
      writers.set(name, await NpyWriter.create(join(params.directory, file), dtype, shape, onFlush));
    }
    for await (const { item, batches } of params.plan.episodes()) {
      if (params.signal?.aborted) throw params.signal.reason;
      episodes++;
      const source = sourcePosition.get(item.source.datasetId) ?? -1;
      for (const batch of batches) {
        const rows = batch.numRows;
        steps += rows;
        await writers.get('episode_index')!.append(toBigInt64(columnValues(batch, 'episode_index', rows, 1)));
        await writers.get('step_index')!.append(toInt32(columnValues(batch, 'step_index', rows, 1)));
        const timestamps = toFloat64(columnValues(batch, 'timestamp', rows, 1));
        fps ??= estimateFps(timestamps);
        await writers.get('timestamp')!.append(timestamps);
        await writers.get('source_index')!.append(new Int16Array(rows).fill(source));
        const taskColumn = batch.getChild('language_instruction');
        const taskIndex = new Int32Array(rows).fill(-1);
        if (taskColumn) {
          const data = taskColumn.data[0]!;
          if (tasks.length === 0 && data.dictionary) tasks = [...data.dictionary].map((task) => String(task));
          for (let row = 0; row < rows; row++)
            if (taskColumn.isValid(row)) taskIndex[row] = (data.values as Int32Array)[data.offset + row]!;
        }
        await writers.get('task_index')!.append(taskIndex);
        for (const { name, feature } of params.features) {
          if (feature.dtype === 'image') {
            await appendImages(writers.get(name)!, batch, name, feature, item.source.datasetId);
            mediaFrames.set(name, (mediaFrames.get(name) ?? 0) + rows);
            continue;
          }
          await writers.get(name)!.append(columnValues(batch, name, rows, valuesPerStep(feature), true));
        }
      }
    }
    for (const writer of writers.values()) await writer.close();
    writers.clear();
    const summary = await stats.finish();
    for (const [name, frames] of mediaFrames) summary.addMediaFrames(name, frames);
    const meta: TrainingSetMeta = {
      format: 'kura.training-set/1',
      steps,
      episodes,
      features: featureFiles,
      index: INDEX_FILES,
      tasks,
      sources: params.sources,
      stats: summary.summary(),
      fps,
      robotId: params.robotId,
    };
    await writeFile(join(params.directory, 'meta.json'), JSON.stringify(meta, null, 2), { mode: 0o644 });
    return meta;
  } catch (error) {
    for (const writer of writers.values()) await writer.abandon();
    await stats.stop();
    await rm(params.directory, { recursive: true, force: true });
    throw error;
  }
}

const toBigInt64 = (values: ArrayBufferView): BigInt64Array =>
  values instanceof BigInt64Array ? values : BigInt64Array.from(Array.from(values as Int32Array, (value) => BigInt(value)));
const toInt32 = (values: ArrayBufferView): Int32Array => (values instanceof Int32Array ? values : Int32Array.from(values as Int32Array));
const toFloat64 = (values: ArrayBufferView): Float64Array =>
  values instanceof Float64Array ? values : Float64Array.from(values as Float64Array);

/** Steps per second from the median spacing of timestamps (seconds), or null when it cannot be told. */
function estimateFps(timestamps: Float64Array): number | null {
  if (timestamps.length < 2) return null;
  const gaps = Array.from(timestamps.subarray(1), (time, index) => time - timestamps[index]!).sort((a, b) => a - b);
  const median = gaps[gaps.length >> 1]!;
  return median > 0 ? Math.round((1 / median) * 1000) / 1000 : null;
}

/** Decodes a batch's frames of an image feature to RGB and appends them; a frame of another size is refused. */
async function appendImages(writer: NpyWriter, batch: RecordBatch, name: string, feature: Feature, datasetId: string): Promise<void> {
  const column = batch.getChild(name)!;
  const [height, width] = feature.shape as [number, number];
  for (let row = 0; row < batch.numRows; row++) {
    const bytes = column.get(row) as Uint8Array;
    const where = () => ({
      datasetId,
      episode: Number(batch.getChild('episode_index')!.get(row)),
      step: Number(batch.getChild('step_index')!.get(row)),
      field: name,
    });
    const header = imageShape(bytes);
    // The header first: a frame is decoded only when it is the size its feature says.
    const decoded = header && header[0] === height && header[1] === width ? decodeRgb(bytes) : undefined;
    if (!decoded || decoded.width !== width || decoded.height !== height)
      throw new TrainingSetError(
        'TRAINING_IMAGE_UNREADABLE',
        `a frame of ${name} is not a ${width}×${height} image Kura can decode (${header ? `${header[1]}×${header[0]}` : 'no image header'})`,
        where(),
      );
    await writer.append(decoded.rgb);
  }
}
