import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Data,
  type DataType,
  Field,
  Float64,
  Int64,
  List,
  makeData,
  makeVector,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
  type Vector,
} from 'apache-arrow';
import { arrowToParquet } from '../parquet/export.js';
import type { LerobotFeatureStats, NestedNumbers } from './episode-stats.js';
import {
  buildEpisode,
  columnsOf,
  exportPlan,
  infoFeatures,
  KURA_STEP_COLUMNS,
  singleVideoBlob,
  type ExportedEpisode,
  type ExportState,
  type LerobotExportEpisode,
  type LerobotExportParams,
} from './export-episode.js';
import { fileHeader, writeEntry, writeStreamEntry, type Pack } from './tar.js';

/** LeRobot v3.0 path templates (info.json `data_path`, `video_path`), as its `utils.py` names them. */
export const LEROBOT_V3_DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet';
export const LEROBOT_V3_VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4';
const EPISODES_FILE = 'meta/episodes/chunk-000/file-000.parquet';
/** Files per chunk folder (info.json `chunks_size`). */
const FILES_PER_CHUNK = 1000;
const MIB = 1024 * 1024;
/** LeRobot's defaults: a data file rolls over past 100 MB, a video file past 200 MB. */
const DEFAULT_DATA_FILE_BYTES = 100 * MIB;
const VIDEO_FILE_MB = 200;

/** One row of `meta/episodes/…parquet`, kept until the end (a few KB per episode, as v2.1's JSON lines). */
interface EpisodeRow {
  exported: Omit<ExportedEpisode, 'batches' | 'schema'>;
  episodeIndex: number;
  dataFile: number;
  from: number;
  sourceEpisode: string | undefined;
  videos: Map<string, { file: number; fromTimestamp: number; toTimestamp: number }>;
}

/**
 * The v3.0 layout: episodes follow each other in `data/chunk-XXX/file-YYY.parquet` (a file closes past
 * `dataFileBytes`; each is spooled to `scratch` first, since a tar entry's size comes before its
 * bytes), one mp4 per video blob in `videos/<key>/chunk-XXX/file-YYY.mp4` (episodes sharing a blob
 * share the file, each at its `from_timestamp`), then `meta/episodes/chunk-000/file-000.parquet`,
 * `meta/tasks.parquet`, `meta/stats.json` and `meta/info.json`.
 */
export async function writeDatasetV3(pack: Pack, params: LerobotExportParams, scratch: string): Promise<void> {
  const folder = params.folder ? `${params.folder}/` : '';
  const header = (name: string, size: number) => fileHeader(folder + name, size, params.mtime);
  const limit = params.dataFileBytes ?? DEFAULT_DATA_FILE_BYTES;
  const plan = exportPlan(params.features);
  const videoKeys = plan.filter((feature) => feature.kind === 'video').map((feature) => feature.name);
  const state: ExportState = { tasks: new Map(), totalFrames: 0 };
  const rows: EpisodeRow[] = [];
  const stats = new StatsAggregate();
  /** Per video key: the file each blob went to. */
  const videoFiles = new Map<string, Map<string, number>>(videoKeys.map((key) => [key, new Map()]));

  const episodes: AsyncIterator<LerobotExportEpisode> | Iterator<LerobotExportEpisode> = asyncIterator(params.episodes);
  type Pending = { episode: LerobotExportEpisode; batches: RecordBatch[]; exported: ExportedEpisode };
  const next = async (): Promise<Pending | undefined> => {
    for (;;) {
      const step: IteratorResult<LerobotExportEpisode> = await episodes.next();
      if (step.done) return undefined;
      const episode = step.value;
      const batches = episode.batches.filter((batch) => batch.numRows > 0);
      // LeRobot has no empty episodes; skipping keeps the numbering contiguous.
      if (batches.length === 0) continue;
      const exported = buildEpisode({ batches, plan, episodeIndex: rows.length, firstIndex: state.totalFrames, state });
      return { episode, batches, exported };
    }
  };

  const addVideos = async ({ batches, exported }: Pending, episodeIndex: number) => {
    const placed: EpisodeRow['videos'] = new Map();
    for (const key of videoKeys) {
      const blobKey = singleVideoBlob(batches, key, episodeIndex);
      const files = videoFiles.get(key)!;
      let file = files.get(blobKey);
      if (file === undefined) {
        files.set(blobKey, (file = files.size));
        const video = await params.openVideo(blobKey);
        await writeStreamEntry(pack, header(fillV3Path(LEROBOT_V3_VIDEO_PATH, file, key), video.bytes), video.stream, blobKey);
      }
      // LeRobot decodes a frame at from_timestamp + its parquet timestamp: the offset of the episode in the file.
      const first = columnsOf(batches[0]!);
      const frameTime = Number(first.get(key)!.vector.getChildAt(1)?.get(0) ?? 0);
      const stepTime = Number(first.get(KURA_STEP_COLUMNS.timestamp)!.vector.get(0));
      const fromTimestamp = frameTime - Math.fround(stepTime);
      placed.set(key, { file, fromTimestamp, toTimestamp: fromTimestamp + exported.length / params.fps });
    }
    return placed;
  };

  let pending = await next();
  for (let dataFile = 0; pending; dataFile++) {
    const path = join(scratch, `data-${dataFile}.parquet`);
    const handle = await open(path, 'w');
    let bytes = 0;
    // The parquet writer emits a row group at a time, so the file's size lags: the Arrow size of the rows fed in counts too.
    let fed = 0;
    try {
      const schema = pending.exported.schema;
      // Episodes go into this file until it holds about `limit` bytes; one episode at least.
      const fileBatches = async function* (): AsyncGenerator<RecordBatch> {
        do {
          const current: Pending = pending!;
          const episodeIndex = rows.length;
          const videos = await addVideos(current, episodeIndex);
          const { batches: _, schema: __, ...exported } = current.exported;
          rows.push({ exported, episodeIndex, dataFile, from: state.totalFrames, sourceEpisode: current.episode.sourceEpisode, videos });
          stats.add(exported.stats);
          state.totalFrames += exported.length;
          for (const batch of current.exported.batches) fed += batch.data.byteLength;
          yield* current.exported.batches;
          pending = await next();
        } while (pending && Math.max(bytes, fed) < limit);
      };
      for await (const chunk of arrowToParquet({ schema, batches: fileBatches() })) {
        await handle.write(chunk);
        bytes += chunk.byteLength;
      }
      await handle.close();
      await writeStreamEntry(pack, header(fillV3Path(LEROBOT_V3_DATA_PATH, dataFile), bytes), createReadStream(path), path);
    } finally {
      await handle.close().catch(() => undefined);
      await rm(path, { force: true });
    }
  }

  const episodesParquet = await parquetBytes(episodesTable(rows, videoKeys));
  const tasksParquet = await parquetBytes(tasksTable(state.tasks));
  const statsJson = Buffer.from(JSON.stringify(stats.result(), null, 4));
  const info = Buffer.from(
    JSON.stringify(
      {
        codebase_version: 'v3.0',
        robot_type: params.robotType,
        total_episodes: rows.length,
        total_frames: state.totalFrames,
        total_tasks: state.tasks.size,
        chunks_size: FILES_PER_CHUNK,
        data_files_size_in_mb: Math.max(1, Math.round(limit / MIB)),
        video_files_size_in_mb: VIDEO_FILE_MB,
        fps: params.fps,
        splits: { train: `0:${rows.length}` },
        data_path: LEROBOT_V3_DATA_PATH,
        video_path: videoKeys.length > 0 ? LEROBOT_V3_VIDEO_PATH : null,
        features: infoFeatures(params, plan, state),
      },
      null,
      4,
    ),
  );
  const entries: Array<[string, Uint8Array]> = [
    [EPISODES_FILE, episodesParquet],
    ['meta/tasks.parquet', tasksParquet],
    ['meta/stats.json', statsJson],
    ['meta/info.json', info],
  ];
  for (const [name, bytes] of entries) await writeEntry(pack, header(name, bytes.byteLength), bytes);
}

/** A v3 path: the file's chunk folder and its number within it. */
function fillV3Path(template: string, file: number, videoKey = ''): string {
  return template
    .replace('{video_key}', videoKey)
    .replace('{chunk_index:03d}', String(Math.floor(file / FILES_PER_CHUNK)).padStart(3, '0'))
    .replace('{file_index:03d}', String(file % FILES_PER_CHUNK).padStart(3, '0'));
}

function asyncIterator<T>(source: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> | Iterator<T> {
  return Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
}

async function parquetBytes(table: { schema: Schema; batch: RecordBatch }): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of arrowToParquet({ schema: table.schema, batches: [table.batch] })) parts.push(chunk);
  return Buffer.concat(parts);
}

/** A table of named columns (Arrow vectors of equal length). */
function tableOf(columns: Array<[string, Vector]>, metadata = new Map<string, string>()): { schema: Schema; batch: RecordBatch } {
  const fields = columns.map(([name, vector]) => new Field(name, vector.type as DataType, true));
  const length = columns[0]?.[1].length ?? 0;
  const children: Data[] = columns.map(([, vector]) => vector.data[0] as Data);
  const schema = new Schema(fields, metadata);
  return { schema, batch: new RecordBatch(schema, makeData({ type: new Struct(fields), length, nullCount: 0, children })) };
}

const int64s = (values: number[]) =>
  makeVector(makeData({ type: new Int64(), length: values.length, data: BigInt64Array.from(values, (value) => BigInt(value)) }));
const float64s = (values: number[]) =>
  makeVector(makeData({ type: new Float64(), length: values.length, data: Float64Array.from(values) }));

/** `meta/episodes/chunk-000/file-000.parquet`: the columns LeRobot's `_save_episode_metadata` writes, plus Kura's origin columns. */
function episodesTable(rows: EpisodeRow[], videoKeys: string[]) {
  const column = <T>(value: (row: EpisodeRow) => T) => rows.map(value);
  const columns: Array<[string, Vector]> = [
    ['episode_index', int64s(column((row) => row.episodeIndex))],
    [
      'tasks',
      vectorFromArray(
        column((row) => row.exported.tasks),
        new List(new Field('item', new Utf8(), true)),
      ),
    ],
    ['length', int64s(column((row) => row.exported.length))],
    ['data/chunk_index', int64s(column((row) => Math.floor(row.dataFile / FILES_PER_CHUNK)))],
    ['data/file_index', int64s(column((row) => row.dataFile % FILES_PER_CHUNK))],
    ['dataset_from_index', int64s(column((row) => row.from))],
    ['dataset_to_index', int64s(column((row) => row.from + row.exported.length))],
  ];
  for (const key of videoKeys) {
    const video = (row: EpisodeRow) => row.videos.get(key)!;
    columns.push(
      [`videos/${key}/chunk_index`, int64s(column((row) => Math.floor(video(row).file / FILES_PER_CHUNK)))],
      [`videos/${key}/file_index`, int64s(column((row) => video(row).file % FILES_PER_CHUNK))],
      [`videos/${key}/from_timestamp`, float64s(column((row) => video(row).fromTimestamp))],
      [`videos/${key}/to_timestamp`, float64s(column((row) => video(row).toTimestamp))],
    );
  }
  columns.push(
    ['meta/episodes/chunk_index', int64s(column(() => 0))],
    ['meta/episodes/file_index', int64s(column(() => 0))],
    ['kura_episode_index', int64s(column((row) => row.exported.origin.episodeIndex))],
  );
  if (rows.some((row) => row.exported.origin.datasetId !== undefined))
    columns.push([
      'kura_dataset_id',
      vectorFromArray(
        column((row) => row.exported.origin.datasetId ?? null),
        new Utf8(),
      ),
    ]);
  if (rows.some((row) => row.sourceEpisode !== undefined))
    columns.push([
      'source_episode',
      vectorFromArray(
        column((row) => row.sourceEpisode ?? null),
        new Utf8(),
      ),
    ]);
  // Per-episode statistics as LeRobot flattens them (`stats/<feature>/<stat>`), shaped like the feature.
  const statNames = ['min', 'max', 'mean', 'std', 'count'] as const;
  const statFeatures = new Map<string, LerobotFeatureStats>();
  for (const row of rows)
    for (const [name, stat] of Object.entries(row.exported.stats)) if (!statFeatures.has(name)) statFeatures.set(name, stat);
  for (const [name, example] of statFeatures)
    for (const stat of statNames) {
      const type = nestedListType(example[stat], stat === 'count' ? new Int64() : new Float64());
      const values = column((row) => {
        const value = row.exported.stats[name]?.[stat];
        return value === undefined ? null : stat === 'count' ? value.map((count) => BigInt(count as number)) : value;
      });
      columns.push([`stats/${name}/${stat}`, vectorFromArray(values, type)]);
    }
  return tableOf(columns);
}

/** The list type of a nested array of numbers (`[[1], [2]]` → List<List<T>>). */
function nestedListType(example: NestedNumbers | [number], leaf: DataType): DataType {
  let depth = 0;
  for (let value: unknown = example; Array.isArray(value); value = value[0]) depth++;
  let type = leaf;
  for (let level = 0; level < depth; level++) type = new List(new Field('item', type, true));
  return type;
}

/**
 * `meta/tasks.parquet` as pandas writes LeRobot's tasks DataFrame: a `task_index` column and the task
 * text as the index (named `task`), which the `pandas` footer metadata declares so `pd.read_parquet`
 * gives the index back.
 */
function tasksTable(tasks: Map<string, number>) {
  const pandas = {
    index_columns: ['task'],
    column_indexes: [{ name: null, field_name: null, pandas_type: 'unicode', numpy_type: 'object', metadata: { encoding: 'UTF-8' } }],
    columns: [
      { name: 'task_index', field_name: 'task_index', pandas_type: 'int64', numpy_type: 'int64', metadata: null },
      { name: 'task', field_name: 'task', pandas_type: 'unicode', numpy_type: 'object', metadata: null },
    ],
    creator: { library: 'kura', version: '0.1.0' },
    pandas_version: '2.2.3',
  };
  return tableOf(
    [
      ['task_index', int64s([...tasks.values()])],
      ['task', vectorFromArray([...tasks.keys()], new Utf8())],
    ],
    new Map([['pandas', JSON.stringify(pandas)]]),
  );
}

/**
 * `meta/stats.json`: every feature's statistics over all episodes, combined from the episodes' own as
 * LeRobot's `aggregate_stats` does (min of mins, max of maxes, count-weighted mean, pooled variance),
 * one running total per feature so memory does not grow with the episodes.
 */
class StatsAggregate {
  private readonly totals = new Map<
    string,
    { shape: NestedNumbers; min: number[]; max: number[]; mean: number[]; m2: number[]; count: number }
  >();

  add(stats: Record<string, LerobotFeatureStats>): void {
    for (const [name, stat] of Object.entries(stats)) {
      const count = stat.count[0];
      const [min, max, mean, std] = [stat.min, stat.max, stat.mean, stat.std].map(flatten) as [number[], number[], number[], number[]];
      const total = this.totals.get(name);
      if (!total) {
        this.totals.set(name, { shape: stat.mean, min, max, mean, m2: std.map((value) => value * value * count), count });
        continue;
      }
      const combined = total.count + count;
      for (let index = 0; index < mean.length; index++) {
        // Chan et al.'s pairwise combination: the same result as LeRobot's pooled variance, without keeping every episode.
        const delta = mean[index]! - total.mean[index]!;
        total.min[index] = Math.min(total.min[index]!, min[index]!);
        total.max[index] = Math.max(total.max[index]!, max[index]!);
        total.mean[index] = total.mean[index]! + (delta * count) / combined;
        total.m2[index] = total.m2[index]! + std[index]! ** 2 * count + (delta * delta * total.count * count) / combined;
      }
      total.count = combined;
    }
  }

  result(): Record<string, LerobotFeatureStats> {
    return Object.fromEntries(
      [...this.totals].map(([name, total]) => [
        name,
        {
          min: reshape(total.min, total.shape),
          max: reshape(total.max, total.shape),
          mean: reshape(total.mean, total.shape),
          std: reshape(
            total.m2.map((m2) => Math.sqrt(m2 / total.count)),
            total.shape,
          ),
          count: [total.count],
        },
      ]),
    );
  }
}

const flatten = (value: NestedNumbers): number[] => (value as unknown[]).flat(Infinity) as number[];

function reshape(values: number[], like: NestedNumbers): NestedNumbers {
  let at = 0;
  const build = (shape: unknown): unknown => (Array.isArray(shape) ? shape.map(build) : values[at++]);
  return build(like) as NestedNumbers;
}
