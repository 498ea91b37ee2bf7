import { readFile } from 'node:fs/promises';
import { featureSpecSchema, type ErrorLocation, type FeatureSpec } from '@kura/schema';
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
import { imageEncoding } from '../image-header.js';
import { imageBytes, imageFrames, kuraFeature, planFeatures, SPECIAL_COLUMNS, tensorValues, type FeaturePlan } from './columns.js';
import {
  codebaseVersion,
  findLayout,
  float,
  formatTemplate,
  INFO_PATH,
  integer,
  readEpisodesJsonl,
  readEpisodesParquet,
  readInfo,
  readTasks,
  type DatasetLayout,
  type EpisodeEntry,
  type LerobotInfo,
} from './meta.js';
import { ParquetReader, withParquet } from './parquet.js';

/** An episode whose data file is in the upload, with where its rows and videos are. */
interface PlannedEpisode {
  entry: EpisodeEntry;
  dataFile: SourceFile;
  /** v3: global row indices `[from, to)` inside a multi-episode file; v2: the whole file. */
  rows?: { from: number; to: number };
  /** Per video feature (LeRobot key): the mp4's path relative to the dataset root and the episode's start time in it. */
  videos: Map<string, { path: string; offset: number }>;
}

/** Everything reading the episodes needs, settled by `open` before the first episode is read. */
interface ImportPlan {
  layout: DatasetLayout;
  info: LerobotInfo;
  features: FeaturePlan[];
  imageEncodings: Map<string, 'jpeg' | 'png' | undefined>;
  tasks: Map<number, string>;
  episodes: PlannedEpisode[];
  /** v3: the smallest `dataset_from_index` of each data file, for files without an `index` column. */
  firstIndexByFile: Map<string, number>;
  budget: IngestBudget;
}

/** info.json larger than this is not a LeRobot info.json (detect reads it whole). */
const MAX_INFO_BYTES = 4 * 1024 * 1024;

/**
 * LeRobot datasets v2.0, v2.1 and v3.0 (`meta/info.json`, `meta/tasks*`, `meta/episodes*`,
 * `data/…parquet`, `videos/…mp4`), optionally wrapped in one top-level folder. The column mapping
 * and every decision about partial uploads are in README.md beside this file.
 */
export const lerobotImporter: Importer = {
  format: 'lerobot',
  looksFor: 'meta/info.json with a codebase_version (at the top or in one top-level folder)',

  async detect(source: ImportSource): Promise<boolean> {
    const info = findLayout(source)?.files.get(INFO_PATH);
    if (!info || info.bytes > MAX_INFO_BYTES) return false;
    try {
      // Any codebase_version counts, so that an unsupported version is reported as such by open().
      return codebaseVersion(JSON.parse(await readFile(info.absolutePath, 'utf8'))) !== undefined;
    } catch {
      return false;
    }
  },

  async open(source: ImportSource, context: ImportContext): Promise<ImportResult> {
    const layout = findLayout(source);
    if (!layout)
      throw new ImportError(
        'LEROBOT_INFO_INVALID',
        `${INFO_PATH} is missing (at the top of the upload or in its single top-level folder)`,
        { file: INFO_PATH },
      );
    const budget = IngestBudget.of(context, source);
    const info = await readInfo(layout, budget);
    let features = planFeatures(info.features, layout.prefix + INFO_PATH, (issue) => context.warn(issue));
    // Before anything reads the data: a dropped camera's missing mp4s are then no error.
    const dropped = settleDroppedFeatures(
      [...features.map((plan) => plan.name), ...Object.keys(info.features).filter((column) => !isSpecialColumn(column))],
      context,
      layout.prefix + INFO_PATH,
    );
    features = features.filter((plan) => !dropped.has(plan.name) && !dropped.has(plan.column));
    const videoKeys = features.filter((plan) => plan.kind === 'video').map((plan) => plan.column);
    if (videoKeys.length > 0 && info.videoPath === null) {
      throw new ImportError('LEROBOT_INFO_INVALID', `info.json declares video features (${videoKeys.join(', ')}) but no video_path`, {
        file: layout.prefix + INFO_PATH,
        field: 'video_path',
      });
    }

    const needsTasks =
      Object.hasOwn(info.features, 'task_index') || layout.files.has(info.version === 'v3.0' ? 'meta/tasks.parquet' : 'meta/tasks.jsonl');
    const tasks = needsTasks ? await readTasks(layout, info.version, budget) : new Map<number, string>();
    const { episodes, firstIndexByFile, listed } = await planEpisodes(layout, info, videoKeys, context, budget);
    warnAboutTotals(info, listed, layout, context);

    const keptVideoKeys = settleVideos(layout, features, episodes, context);
    features = features.filter((plan) => plan.kind !== 'video' || keptVideoKeys.has(plan.column));
    const imageEncodings = await peekImageEncodings(features, episodes, budget);

    const spec: FeatureSpec = Object.fromEntries(features.map((plan) => [plan.name, kuraFeature(plan, imageEncodings.get(plan.column))]));
    const checked = featureSpecSchema.safeParse(spec);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      throw new ImportError(
        'LEROBOT_INFO_INVALID',
        `the feature spec made from info.json is not valid: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`,
        {
          file: layout.prefix + INFO_PATH,
          field: String(issue?.path[0] ?? ''),
        },
      );
    }

    const plan: ImportPlan = { layout, info, features, imageEncodings, tasks, episodes, firstIndexByFile, budget };
    return {
      features: checked.data,
      featuresFile: layout.prefix + INFO_PATH,
      fps: info.fps,
      expectedEpisodes: episodes.length,
      episodes: readEpisodes(plan, context),
    };
  },
};

/**
 * Which listed episodes are in the upload, and where their rows and videos are. An episode whose
 * data file is absent is a LEROBOT_EPISODE_MISSING warning, not a failure: uploads of a sample of a
 * dataset keep the full metadata.
 */
async function planEpisodes(
  layout: DatasetLayout,
  info: LerobotInfo,
  videoKeys: string[],
  context: ImportContext,
  budget: IngestBudget,
): Promise<{ episodes: PlannedEpisode[]; firstIndexByFile: Map<string, number>; listed: ListedTotals }> {
  const episodes: PlannedEpisode[] = [];
  const firstIndexByFile = new Map<string, number>();
  const listed: ListedTotals = {
    episodes: 0,
    frames: 0,
    file: layout.prefix + (info.version === 'v3.0' ? 'meta/episodes/' : 'meta/episodes.jsonl'),
  };
  const count = (entry: EpisodeEntry): void => {
    listed.episodes++;
    listed.frames += entry.length;
  };
  const fill = (template: string, values: Record<string, string | number>, field: string): string =>
    formatTemplate(template, values, field, layout.prefix + INFO_PATH);
  const missing = (entry: EpisodeEntry, dataPath: string): void =>
    context.warn({
      code: 'LEROBOT_EPISODE_MISSING',
      message: `episode ${entry.episodeIndex} is listed in the metadata but ${layout.prefix}${dataPath} is not in the upload; it is skipped`,
      location: { file: layout.prefix + dataPath, episode: entry.episodeIndex },
    });

  if (info.version === 'v3.0') {
    for (const entry of await readEpisodesParquet(layout, videoKeys, budget)) {
      count(entry);
      const dataPath = fill(info.dataPath, { chunk_index: entry.data.chunkIndex, file_index: entry.data.fileIndex }, 'data_path');
      const dataFile = layout.files.get(dataPath);
      if (!dataFile) {
        missing(entry, dataPath);
        continue;
      }
      if (entry.rows.to - entry.rows.from !== entry.length) {
        throw new ImportError(
          'LEROBOT_LENGTH_MISMATCH',
          `episode ${entry.episodeIndex} has length ${entry.length} but rows ${entry.rows.from}..${entry.rows.to} in the episodes metadata`,
          {
            file: dataFile.path,
            episode: entry.episodeIndex,
          },
        );
      }
      firstIndexByFile.set(dataFile.path, Math.min(firstIndexByFile.get(dataFile.path) ?? Infinity, entry.rows.from));
      const videos = new Map(
        Object.entries(entry.videos).map(([key, video]) => [
          key,
          {
            path: fill(info.videoPath ?? '', { video_key: key, chunk_index: video.chunkIndex, file_index: video.fileIndex }, 'video_path'),
            offset: video.fromTimestamp,
          },
        ]),
      );
      episodes.push({ entry, dataFile, rows: entry.rows, videos });
    }
    return { episodes, firstIndexByFile, listed };
  }

  for (const entry of await readEpisodesJsonl(layout, budget)) {
    count(entry);
    const chunk = Math.floor(entry.episodeIndex / info.chunksSize);
    const dataPath = fill(info.dataPath, { episode_chunk: chunk, episode_index: entry.episodeIndex }, 'data_path');
    const dataFile = layout.files.get(dataPath);
    if (!dataFile) {
      missing(entry, dataPath);
      continue;
    }
    const videos = new Map(
      videoKeys.map((key) => [
        key,
        {
          path: fill(info.videoPath ?? '', { episode_chunk: chunk, video_key: key, episode_index: entry.episodeIndex }, 'video_path'),
          offset: 0,
        },
      ]),
    );
    episodes.push({ entry, dataFile, videos });
  }
  return { episodes, firstIndexByFile, listed };
}

/** How many episodes and frames the episodes metadata lists (present in the upload or not). */
interface ListedTotals {
  episodes: number;
  frames: number;
  /** The episodes metadata, for messages. */
  file: string;
}

/**
 * info.json's total_episodes and total_frames against the episodes metadata: a stale info.json
 * (a recording that went on, or was cut, after info.json was written) imports, with a warning each.
 */
function warnAboutTotals(info: LerobotInfo, listed: ListedTotals, layout: DatasetLayout, context: ImportContext): void {
  const checks = [
    { field: 'total_episodes', declared: info.totalEpisodes, found: listed.episodes, what: 'episodes' },
    { field: 'total_frames', declared: info.totalFrames, found: listed.frames, what: 'frames in all' },
  ];
  for (const { field, declared, found, what } of checks) {
    if (declared === undefined || declared === found) continue;
    context.warn({
      code: 'LEROBOT_INFO_MISMATCH',
      message: `${layout.prefix}${INFO_PATH} says ${field} = ${declared}, but ${listed.file} lists ${found} ${what}; the episodes metadata and the data are what is imported`,
      location: { file: layout.prefix + INFO_PATH, field },
      details: { field, declared, found },
    });
  }
}

/**
 * Decides each video feature from the file listing (README.md, "Missing videos"): kept when every
 * imported episode has its mp4; an error when none has (the videos were not uploaded); otherwise
 * left out of the feature spec — Kura needs every feature on every step — with a
 * LEROBOT_VIDEO_MISSING warning per episode lacking its file.
 */
function settleVideos(layout: DatasetLayout, features: FeaturePlan[], episodes: PlannedEpisode[], context: ImportContext): Set<string> {
  const kept = new Set<string>();
  for (const plan of features) {
    if (plan.kind !== 'video') continue;
    const lacking = episodes.filter((episode) => !layout.files.has(episode.videos.get(plan.column)?.path ?? ''));
    if (lacking.length === 0) {
      kept.add(plan.column);
      continue;
    }
    const where = (episode: PlannedEpisode): ErrorLocation => ({
      file: layout.prefix + (episode.videos.get(plan.column)?.path ?? ''),
      episode: episode.entry.episodeIndex,
      field: plan.column,
    });
    if (lacking.length === episodes.length) {
      const first = lacking[0]!;
      throw new ImportError(
        'LEROBOT_VIDEO_MISSING',
        `video feature ${plan.column} has no video file in the upload (the first expected is ${where(first).file})`,
        where(first),
      );
    }
    for (const episode of lacking) {
      context.warn({
        code: 'LEROBOT_VIDEO_MISSING',
        message: `${where(episode).file} is not in the upload; ${plan.column} is left out of the import because not every episode has its video`,
        location: where(episode),
      });
    }
  }
  return kept;
}

/** The encoding (JPEG or PNG) of each image feature, from its first frame, so the spec says it before any episode is read. */
async function peekImageEncodings(
  features: FeaturePlan[],
  episodes: PlannedEpisode[],
  budget: IngestBudget,
): Promise<Map<string, 'jpeg' | 'png' | undefined>> {
  const encodings = new Map<string, 'jpeg' | 'png' | undefined>();
  const images = features.filter((plan) => plan.kind === 'image');
  const first = episodes[0];
  if (images.length === 0 || !first) return encodings;
  await withParquet(
    first.dataFile,
    { episode: first.entry.episodeIndex },
    async (reader) => {
      for (const plan of images) {
        // A missing column is reported with its episode when the episode is read.
        if (!reader.columns.has(plan.column) || reader.numRows === 0) continue;
        const [row] = await reader.read({ columns: [plan.column], rowStart: 0, rowEnd: 1 });
        const bytes = imageBytes(row?.[plan.column]);
        encodings.set(plan.column, bytes ? imageEncoding(bytes) : undefined);
      }
    },
    budget,
  );
  return encodings;
}

/** The episodes, one at a time; a v3 data file stays open while consecutive episodes read from it. */
async function* readEpisodes(plan: ImportPlan, context: ImportContext): AsyncGenerator<ImportedEpisode> {
  let current: { reader: ParquetReader; firstIndex: number } | undefined;
  const warnedColumns = new Set<string>();
  try {
    for (const episode of plan.episodes) {
      if (current?.reader.file.path !== episode.dataFile.path) {
        await current?.reader.close();
        current = undefined;
        const reader = await ParquetReader.open(episode.dataFile, { episode: episode.entry.episodeIndex }, plan.budget);
        current = { reader, firstIndex: 0 };
        warnAboutStoredDtypes(plan, reader, warnedColumns, context);
        if (episode.rows) current.firstIndex = await firstRowIndex(reader, plan.firstIndexByFile.get(episode.dataFile.path) ?? 0);
      }
      yield await readEpisode(plan, episode, current.reader, current.firstIndex);
    }
  } finally {
    await current?.reader.close();
  }
}

/**
 * A feature whose parquet column stores another type than info.json declares (float64 declared
 * float32, say) is read as declared — as LeRobot itself reads it — with one warning per column.
 */
function warnAboutStoredDtypes(plan: ImportPlan, reader: ParquetReader, warned: Set<string>, context: ImportContext): void {
  for (const feature of plan.features) {
    if (feature.kind !== 'tensor' || warned.has(feature.column)) continue;
    const declared = plan.info.features[feature.column]?.dtype;
    const stored = reader.storedDtype(feature.column);
    if (declared === undefined || stored === undefined || declared === stored) continue;
    warned.add(feature.column);
    const rounded = stored === 'float64' && feature.dtype === 'float32' ? ', so they are rounded to float32' : '';
    context.warn({
      code: 'LEROBOT_DTYPE_MISMATCH',
      message: `${feature.column} is declared ${declared} in ${plan.layout.prefix}${INFO_PATH}, but ${reader.file.path} stores ${stored} values; they are imported as ${feature.dtype}, as info.json says${rounded}`,
      location: { file: reader.file.path, field: feature.column },
      details: { field: feature.column, declared, found: stored },
    });
  }
}

/**
 * The global `index` of a v3 data file's first row: `dataset_from_index` counts rows across all
 * data files, so an episode's rows in its file start at `from - firstIndex`. Files without an
 * `index` column fall back to the smallest `dataset_from_index` listed for the file.
 */
async function firstRowIndex(reader: ParquetReader, fallback: number): Promise<number> {
  if (!reader.columns.has('index') || reader.numRows === 0) return fallback;
  const [row] = await reader.read({ columns: ['index'], rowStart: 0, rowEnd: 1 });
  return integer(row?.index) ?? fallback;
}

async function readEpisode(plan: ImportPlan, episode: PlannedEpisode, reader: ParquetReader, firstIndex: number): Promise<ImportedEpisode> {
  const { entry, dataFile } = episode;
  const episodeIndex = entry.episodeIndex;
  const origin = { file: dataFile.path, episode: episodeIndex };

  const rowStart = episode.rows ? episode.rows.from - firstIndex : 0;
  const rowEnd = episode.rows ? episode.rows.to - firstIndex : reader.numRows;
  if (rowStart < 0 || rowEnd > reader.numRows || rowStart > rowEnd) {
    throw new ImportError(
      'LEROBOT_ROW_RANGE_INVALID',
      `episode ${episodeIndex} should be rows ${rowStart}..${rowEnd} of ${dataFile.path}, which has ${reader.numRows} rows`,
      origin,
    );
  }
  if (rowEnd - rowStart !== entry.length) {
    throw new ImportError(
      'LEROBOT_LENGTH_MISMATCH',
      `episode ${episodeIndex} has ${rowEnd - rowStart} rows in ${dataFile.path} but length ${entry.length} in the metadata`,
      origin,
    );
  }

  const hasTaskColumn = Object.hasOwn(plan.info.features, 'task_index');
  const required = [
    'frame_index',
    'timestamp',
    ...(hasTaskColumn ? ['task_index'] : []),
    ...plan.features.filter((feature) => feature.kind !== 'video').map((feature) => feature.column),
  ];
  for (const column of required) {
    if (!reader.columns.has(column))
      throw new ImportError('LEROBOT_COLUMN_MISSING', `${dataFile.path} has no column ${column}`, { ...origin, field: column });
  }
  const optional = ['episode_index', 'next.reward', 'next.done', 'next.success'].filter((column) => reader.columns.has(column));
  // The rows come from metadata (num_rows, the episodes' lengths) a small file can set to millions.
  plan.budget.reserveSteps(rowEnd - rowStart, origin);
  const rows = await reader.read({ columns: [...required, ...optional], rowStart, rowEnd, location: { episode: episodeIndex } });

  const timestamp = new Float64Array(rows.length);
  rows.forEach((row, step) => {
    const at = { ...origin, step };
    if (row.episode_index !== undefined && integer(row.episode_index) !== episodeIndex) {
      throw new ImportError(
        'LEROBOT_EPISODE_INDEX_MISMATCH',
        `step ${step} of episode ${episodeIndex} in ${dataFile.path} has episode_index ${String(row.episode_index)}`,
        {
          ...at,
          field: 'episode_index',
        },
      );
    }
    if (integer(row.frame_index) !== step) {
      throw new ImportError(
        'LEROBOT_FRAME_INDEX_INVALID',
        `episode ${episodeIndex} has frame_index ${String(row.frame_index)} at step ${step}; frame_index must run 0..${rows.length - 1} in order`,
        {
          ...at,
          field: 'frame_index',
        },
      );
    }
    const time = float(row.timestamp);
    if (time === undefined)
      throw new ImportError('LEROBOT_VALUE_INVALID', `episode ${episodeIndex} has no numeric timestamp at step ${step}`, {
        ...at,
        field: 'timestamp',
      });
    timestamp[step] = time;
  });

  const features: Record<string, FeatureValues> = {};
  for (const feature of plan.features) {
    switch (feature.kind) {
      case 'tensor':
        features[feature.name] = { kind: 'tensor', values: tensorValues(rows, feature, origin, plan.budget) };
        break;
      case 'image':
        features[feature.name] = { kind: 'image', frames: imageFrames(rows, feature, plan.imageEncodings.get(feature.column), origin) };
        break;
      case 'video': {
        const video = episode.videos.get(feature.column);
        const file = video ? plan.layout.files.get(video.path) : undefined;
        if (!video || !file) {
          // settleVideos keeps a video feature only when every episode has its file; this guards a source that changed since.
          throw new ImportError(
            'LEROBOT_VIDEO_MISSING',
            `the video of ${feature.column} for episode ${episodeIndex} is not in the upload`,
            { ...origin, field: feature.column },
          );
        }
        // v3 packs episodes into one mp4: the episode's frames start at from_timestamp.
        features[feature.name] = { kind: 'video', file: file.path, timestamps: timestamp.map((time) => time + video.offset) };
        break;
      }
    }
  }

  return {
    sourceId: `episode_${String(episodeIndex).padStart(6, '0')}`,
    sourceEpisode: String(episodeIndex),
    file: dataFile.path,
    sourceIndex: episodeIndex,
    length: rows.length,
    timestamp,
    ...taskFields(rows, plan.tasks, hasTaskColumn, entry, origin),
    ...outcomeFields(rows, optional, origin),
    features,
  };
}

/** `task` when the episode has one task throughout, `stepTasks` when task_index changes within it. */
function taskFields(
  rows: Array<Record<string, unknown>>,
  tasks: Map<number, string>,
  hasTaskColumn: boolean,
  entry: EpisodeEntry,
  origin: { file: string; episode: number },
): Pick<ImportedEpisode, 'task' | 'stepTasks' | 'metadata'> {
  if (!hasTaskColumn) {
    // No per-step task: the episodes metadata's list is all there is.
    return entry.tasks.length === 1
      ? { task: entry.tasks[0]! }
      : { task: null, ...(entry.tasks.length > 0 ? { metadata: { tasks: entry.tasks } } : {}) };
  }
  const stepTasks = rows.map((row, step) => {
    const taskIndex = integer(row.task_index);
    const text = taskIndex === undefined ? undefined : tasks.get(taskIndex);
    if (text === undefined) {
      throw new ImportError(
        'LEROBOT_TASK_UNKNOWN',
        `episode ${origin.episode} has task_index ${String(row.task_index)} at step ${step}, which the tasks file does not list`,
        {
          ...origin,
          step,
          field: 'task_index',
        },
      );
    }
    return text;
  });
  const first = stepTasks[0];
  return first !== undefined && stepTasks.every((text) => text === first) ? { task: first } : { stepTasks };
}

/** next.reward → reward (NaN where null), next.done → isTerminal, next.success → success (true when any step succeeded). */
function outcomeFields(
  rows: Array<Record<string, unknown>>,
  columns: string[],
  origin: { file: string; episode: number },
): Pick<ImportedEpisode, 'reward' | 'isTerminal' | 'success'> {
  const invalid = (column: string, step: number, what: string): ImportError =>
    new ImportError(
      'LEROBOT_VALUE_INVALID',
      `${column} of episode ${origin.episode} at step ${step} is ${String(rows[step]?.[column])}, not ${what}`,
      { ...origin, step, field: column },
    );
  const flags = (column: string): boolean[] =>
    rows.map((row, step) => {
      const value = asScalar(row[column]);
      if (value === null || value === undefined) return false;
      if (typeof value === 'boolean') return value;
      const number = float(value);
      if (number !== 0 && number !== 1) throw invalid(column, step, 'a boolean');
      return number === 1;
    });

  const fields: Pick<ImportedEpisode, 'reward' | 'isTerminal' | 'success'> = {};
  if (columns.includes('next.reward')) {
    fields.reward = Float32Array.from(rows, (row, step) => {
      const value = asScalar(row['next.reward']);
      if (value === null || value === undefined) return NaN;
      const number = float(value);
      if (number === undefined) throw invalid('next.reward', step, 'a number');
      return number;
    });
  }
  if (columns.includes('next.done')) fields.isTerminal = Uint8Array.from(flags('next.done'), (done) => (done ? 1 : 0));
  if (columns.includes('next.success')) fields.success = flags('next.success').some(Boolean);
  return fields;
}

/** Shape-[1] columns are sometimes stored as one-element lists. */
function asScalar(value: unknown): unknown {
  return Array.isArray(value) && value.length === 1 ? (value[0] as unknown) : value;
}

function isSpecialColumn(column: string): boolean {
  return (SPECIAL_COLUMNS as readonly string[]).includes(column);
}
