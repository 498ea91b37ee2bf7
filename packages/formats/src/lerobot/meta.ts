import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { IngestBudget } from '../budget.js';
import { ImportError, type ImportSource, type SourceFile } from '../importer.js';
import { readLines } from '../ndjson/lines.js';
import { InvalidUtf8Text, withParquet } from './parquet.js';

/** The LeRobot codebase versions this importer reads. */
export const supportedVersions = ['v2.0', 'v2.1', 'v3.0'] as const;
export type LerobotVersion = (typeof supportedVersions)[number];

export const INFO_PATH = 'meta/info.json';

/**
 * The files of a LeRobot dataset, keyed by their path under the dataset root. `prefix` is the single
 * top-level folder an archive may wrap the dataset in (`unitree_g1/`), or `''`.
 */
export interface DatasetLayout {
  prefix: string;
  files: ReadonlyMap<string, SourceFile>;
}

/**
 * Finds the dataset root: `meta/info.json` at the top, or inside exactly one top-level folder
 * (archives of a dataset usually hold its folder). Files outside the root are ignored.
 */
export function findLayout(source: ImportSource): DatasetLayout | undefined {
  let prefix: string | undefined;
  if (source.files.some((file) => file.path === INFO_PATH)) prefix = '';
  else {
    const nested = source.files.filter((file) => /^[^/]+\/meta\/info\.json$/.test(file.path));
    if (nested.length === 1) prefix = nested[0]!.path.slice(0, -INFO_PATH.length);
  }
  if (prefix === undefined) return undefined;
  const files = new Map<string, SourceFile>();
  for (const file of source.files) if (file.path.startsWith(prefix)) files.set(file.path.slice(prefix.length), file);
  return { prefix, files };
}

/** A feature of info.json as LeRobot writes it. */
export interface LerobotFeature {
  dtype: string;
  shape: number[];
  names?: unknown;
}

/** The parts of `meta/info.json` the importer uses. */
export interface LerobotInfo {
  version: LerobotVersion;
  fps: number;
  robotType?: string;
  /** Episodes per chunk folder (v2: `episode_chunk = episode_index / chunks_size`). */
  chunksSize: number;
  dataPath: string;
  videoPath: string | null;
  features: Record<string, LerobotFeature>;
  /** What info.json says the whole dataset holds, when it says (checked against meta/episodes, only warned about). */
  totalEpisodes?: number;
  totalFrames?: number;
}

const lerobotFeatureSchema = z.looseObject({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  names: z.unknown().optional(),
});

const infoSchema = z.object({
  fps: z.number().positive(),
  robot_type: z.string().nullish(),
  chunks_size: z.number().int().positive().optional(),
  data_path: z.string().min(1),
  video_path: z.string().min(1).nullish(),
  // Only compared with meta/episodes, so a value of the wrong type is ignored rather than refused.
  total_episodes: z.unknown().optional(),
  total_frames: z.unknown().optional(),
  features: z.record(z.string(), lerobotFeatureSchema),
});

/** Reads and checks `meta/info.json` (LEROBOT_INFO_INVALID, LEROBOT_UNSUPPORTED_VERSION). */
export async function readInfo(layout: DatasetLayout, budget: IngestBudget): Promise<LerobotInfo> {
  const file = layout.files.get(INFO_PATH);
  const location = { file: layout.prefix + INFO_PATH };
  if (!file) throw new ImportError('LEROBOT_INFO_INVALID', `${location.file} is missing`, location);
  budget.checkLine(file.bytes, location, location.file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file.absolutePath, 'utf8'));
  } catch (error) {
    throw new ImportError(
      'LEROBOT_INFO_INVALID',
      `${location.file} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
      location,
    );
  }
  const version = codebaseVersion(parsed);
  if (version === undefined) {
    throw new ImportError('LEROBOT_INFO_INVALID', `${location.file} has no codebase_version`, { ...location, field: 'codebase_version' });
  }
  if (!isSupportedVersion(version)) {
    throw new ImportError(
      'LEROBOT_UNSUPPORTED_VERSION',
      `LeRobot codebase_version "${version}" is not supported (supported: ${supportedVersions.join(', ')})`,
      {
        ...location,
        field: 'codebase_version',
      },
    );
  }
  const result = infoSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.map(String).join('.');
    throw new ImportError('LEROBOT_INFO_INVALID', `${location.file}: ${field || 'document'}: ${issue.message}`, { ...location, field });
  }
  const info = result.data;
  return {
    version,
    fps: info.fps,
    ...(info.robot_type ? { robotType: info.robot_type } : {}),
    chunksSize: info.chunks_size ?? 1000,
    dataPath: info.data_path,
    videoPath: info.video_path ?? null,
    features: withProtoFeature(info.features, parsed, location.file),
    ...(integer(info.total_episodes) !== undefined ? { totalEpisodes: integer(info.total_episodes) } : {}),
    ...(integer(info.total_frames) !== undefined ? { totalFrames: integer(info.total_frames) } : {}),
  };
}

/**
 * zod leaves a `__proto__` key out of a record without a word; info.json's feature of that name is
 * put back (as an own key), so that it is skipped with a warning like any name Kura cannot take
 * rather than lost.
 */
function withProtoFeature(features: Record<string, LerobotFeature>, parsed: unknown, file: string): Record<string, LerobotFeature> {
  const raw: unknown =
    typeof parsed === 'object' && parsed !== null ? Object.getOwnPropertyDescriptor(parsed, 'features')?.value : undefined;
  const proto: unknown = typeof raw === 'object' && raw !== null ? Object.getOwnPropertyDescriptor(raw, '__proto__')?.value : undefined;
  if (proto === undefined) return features;
  const feature = lerobotFeatureSchema.safeParse(proto);
  if (!feature.success)
    throw new ImportError('LEROBOT_INFO_INVALID', `${file}: features.__proto__: ${feature.error.issues[0]?.message ?? 'invalid'}`, {
      file,
      field: 'features.__proto__',
    });
  return Object.fromEntries([...Object.entries(features), ['__proto__', feature.data]]);
}

/** The `codebase_version` string of a parsed info.json, if it has one. */
export function codebaseVersion(parsed: unknown): string | undefined {
  if (typeof parsed !== 'object' || parsed === null || !('codebase_version' in parsed)) return undefined;
  const version = parsed.codebase_version;
  return typeof version === 'string' ? version : undefined;
}

function isSupportedVersion(version: string): version is LerobotVersion {
  return (supportedVersions as readonly string[]).includes(version);
}

/**
 * Fills a LeRobot path template (Python format syntax: `{episode_index:06d}`, `{video_key}`).
 * `field` names the info.json entry (in `infoFile`) for the error when a placeholder is unknown.
 */
export function formatTemplate(
  template: string,
  values: Record<string, string | number>,
  field: string,
  infoFile: string = INFO_PATH,
): string {
  return template.replace(/\{([A-Za-z_]+)(?::(0?)(\d*)d)?\}/g, (placeholder, name: string, zero: string, width: string) => {
    const value = Object.hasOwn(values, name) ? values[name] : undefined;
    if (value === undefined)
      throw new ImportError(
        'LEROBOT_INFO_INVALID',
        `${field} "${template}" uses ${placeholder}, which LeRobot ${field} templates do not define`,
        { file: infoFile, field },
      );
    const text = String(value);
    if (width && Number(width) > MAX_TEMPLATE_WIDTH)
      throw new ImportError(
        'LEROBOT_INFO_INVALID',
        `${field} "${template.slice(0, 200)}" pads ${name} to ${width.slice(0, 20)} digits; LeRobot pads to a few (03d, 06d), Kura to at most ${MAX_TEMPLATE_WIDTH}`,
        { file: infoFile, field },
      );
    return width ? text.padStart(Number(width), zero === '0' ? '0' : ' ') : text;
  });
}

/** The widest zero-padding a path template may ask for (`{episode_index:06d}` asks 6). */
const MAX_TEMPLATE_WIDTH = 32;

// ------------------------------------------------------------------------------------------ tasks

/** task_index → task text, from `meta/tasks.jsonl` (v2) or `meta/tasks.parquet` (v3). */
export async function readTasks(layout: DatasetLayout, version: LerobotVersion, budget: IngestBudget): Promise<Map<number, string>> {
  return version === 'v3.0' ? readTasksParquet(layout, budget) : readTasksJsonl(layout, budget);
}

async function readTasksJsonl(layout: DatasetLayout, budget: IngestBudget): Promise<Map<number, string>> {
  const path = 'meta/tasks.jsonl';
  const file = requireMetaFile(layout, path);
  const tasks = new Map<number, string>();
  for await (const { line, value } of jsonLines(file, budget)) {
    const at = { file: file.path, line };
    const entry = z.object({ task_index: z.number().int().nonnegative(), task: z.string() }).safeParse(value);
    if (!entry.success)
      throw new ImportError('LEROBOT_META_INVALID', `${file.path} line ${line} is not {"task_index": <int>, "task": <text>}`, at);
    if (tasks.has(entry.data.task_index))
      throw new ImportError('LEROBOT_META_INVALID', `${file.path} line ${line} repeats task_index ${entry.data.task_index}`, at);
    tasks.set(entry.data.task_index, entry.data.task);
  }
  return tasks;
}

async function readTasksParquet(layout: DatasetLayout, budget: IngestBudget): Promise<Map<number, string>> {
  const file = requireMetaFile(layout, 'meta/tasks.parquet');
  return withParquet(
    file,
    {},
    async (reader) => {
      // pandas writes the DataFrame index (the task text) as a column: `task` when the index is named,
      // `__index_level_0__` when not; its key-value metadata says which.
      const textColumn = ['task', '__index_level_0__', ...pandasIndexColumns(reader.keyValue('pandas'))].find((name) =>
        reader.columns.has(name),
      );
      if (!reader.columns.has('task_index'))
        throw new ImportError('LEROBOT_COLUMN_MISSING', `${file.path} has no task_index column`, { file: file.path, field: 'task_index' });
      if (!textColumn)
        throw new ImportError('LEROBOT_COLUMN_MISSING', `${file.path} has no task text column (task or __index_level_0__)`, {
          file: file.path,
          field: 'task',
        });
      const rows = await reader.read({ columns: ['task_index', textColumn] });
      const tasks = new Map<number, string>();
      rows.forEach((row, rowIndex) => {
        const at = { file: file.path, field: textColumn };
        const text: unknown = row[textColumn];
        if (text instanceof InvalidUtf8Text)
          throw new ImportError('INVALID_UTF8', `${file.path} row ${rowIndex}: the task text is not valid UTF-8`, at);
        const taskIndex = integer(row.task_index);
        if (typeof text !== 'string' || taskIndex === undefined || taskIndex < 0) {
          throw new ImportError('LEROBOT_META_INVALID', `${file.path} row ${rowIndex} has no task text or task_index`, at);
        }
        if (tasks.has(taskIndex))
          throw new ImportError('LEROBOT_META_INVALID', `${file.path} repeats task_index ${taskIndex}`, { ...at, field: 'task_index' });
        tasks.set(taskIndex, text);
      });
      return tasks;
    },
    budget,
  );
}

function pandasIndexColumns(pandasMetadata: string | undefined): string[] {
  if (!pandasMetadata) return [];
  try {
    const parsed = z.object({ index_columns: z.array(z.unknown()) }).safeParse(JSON.parse(pandasMetadata));
    return parsed.success ? parsed.data.index_columns.filter((name): name is string => typeof name === 'string') : [];
  } catch {
    return [];
  }
}

// --------------------------------------------------------------------------------------- episodes

/** One episode as `meta/episodes*` lists it. */
export interface EpisodeEntry {
  episodeIndex: number;
  length: number;
  tasks: string[];
}

/** A v3 episode also says which data file and rows, and which video file and time offset, hold it. */
export interface EpisodeEntryV3 extends EpisodeEntry {
  data: { chunkIndex: number; fileIndex: number };
  /** Global row indices `[from, to)` (the `index` column) of the episode's steps. */
  rows: { from: number; to: number };
  videos: Record<string, { chunkIndex: number; fileIndex: number; fromTimestamp: number }>;
}

/** The episodes of `meta/episodes.jsonl` (v2.x), sorted by index. */
export async function readEpisodesJsonl(layout: DatasetLayout, budget: IngestBudget): Promise<EpisodeEntry[]> {
  const file = requireMetaFile(layout, 'meta/episodes.jsonl');
  const entrySchema = z.looseObject({
    episode_index: z.number().int().nonnegative(),
    length: z.number().int().nonnegative(),
    tasks: z.array(z.string()).optional(),
  });
  const episodes: EpisodeEntry[] = [];
  for await (const { line, value } of jsonLines(file, budget)) {
    const entry = entrySchema.safeParse(value);
    if (!entry.success) {
      throw new ImportError(
        'LEROBOT_META_INVALID',
        `${file.path} line ${line} is not {"episode_index": <int>, "length": <int>, "tasks": [...]}`,
        { file: file.path, line },
      );
    }
    episodes.push({ episodeIndex: entry.data.episode_index, length: entry.data.length, tasks: entry.data.tasks ?? [] });
  }
  return sortUnique(episodes, file.path);
}

/** The episodes of `meta/episodes/chunk-*\/file-*.parquet` (v3.0), sorted by index. Reads only the columns it needs (not the stats). */
export async function readEpisodesParquet(layout: DatasetLayout, videoKeys: string[], budget: IngestBudget): Promise<EpisodeEntryV3[]> {
  const files = [...layout.files.entries()].filter(([path]) => /^meta\/episodes\/.+\.parquet$/.test(path)).map(([, file]) => file);
  if (files.length === 0)
    throw new ImportError('LEROBOT_META_MISSING', `${layout.prefix}meta/episodes/ holds no parquet file`, {
      file: `${layout.prefix}meta/episodes/`,
    });
  const integerColumns = ['episode_index', 'length', 'dataset_from_index', 'dataset_to_index', 'data/chunk_index', 'data/file_index'];
  const videoColumns = videoKeys.flatMap((key) => [
    `videos/${key}/chunk_index`,
    `videos/${key}/file_index`,
    `videos/${key}/from_timestamp`,
  ]);
  const episodes: EpisodeEntryV3[] = [];
  for (const file of files) {
    await withParquet(
      file,
      {},
      async (reader) => {
        for (const column of [...integerColumns, ...videoColumns]) {
          if (!reader.columns.has(column))
            throw new ImportError('LEROBOT_COLUMN_MISSING', `${file.path} has no column ${column}`, { file: file.path, field: column });
        }
        const columns = [...integerColumns, ...videoColumns, ...(reader.columns.has('tasks') ? ['tasks'] : [])];
        for (const row of await reader.read({ columns })) {
          const number = (column: string, kind: 'integer' | 'float' = 'integer'): number => {
            const value = kind === 'integer' ? integer(row[column]) : float(row[column]);
            if (value === undefined) {
              throw new ImportError(
                'LEROBOT_META_INVALID',
                `${file.path}: ${column} is not a number for episode ${String(row.episode_index)}`,
                { file: file.path, field: column },
              );
            }
            return value;
          };
          const episodeIndex = number('episode_index');
          const tasks: unknown = row.tasks;
          if (Array.isArray(tasks) && tasks.some((task) => task instanceof InvalidUtf8Text)) {
            throw new ImportError('INVALID_UTF8', `${file.path}: a task of episode ${episodeIndex} is not valid UTF-8`, {
              file: file.path,
              episode: episodeIndex,
              field: 'tasks',
            });
          }
          episodes.push({
            episodeIndex,
            length: number('length'),
            tasks: Array.isArray(tasks) ? tasks.filter((task): task is string => typeof task === 'string') : [],
            data: { chunkIndex: number('data/chunk_index'), fileIndex: number('data/file_index') },
            rows: { from: number('dataset_from_index'), to: number('dataset_to_index') },
            videos: Object.fromEntries(
              videoKeys.map((key) => [
                key,
                {
                  chunkIndex: number(`videos/${key}/chunk_index`),
                  fileIndex: number(`videos/${key}/file_index`),
                  fromTimestamp: number(`videos/${key}/from_timestamp`, 'float'),
                },
              ]),
            ),
          });
        }
      },
      budget,
    );
  }
  return sortUnique(episodes, `${layout.prefix}meta/episodes/`);
}

function sortUnique<T extends EpisodeEntry>(episodes: T[], file: string): T[] {
  episodes.sort((a, b) => a.episodeIndex - b.episodeIndex);
  episodes.forEach((episode, position) => {
    if (position > 0 && episodes[position - 1]!.episodeIndex === episode.episodeIndex) {
      throw new ImportError('LEROBOT_META_INVALID', `${file} lists episode ${episode.episodeIndex} twice`, {
        file,
        episode: episode.episodeIndex,
      });
    }
  });
  return episodes;
}

// ---------------------------------------------------------------------------------------- helpers

function requireMetaFile(layout: DatasetLayout, path: string): SourceFile {
  const file = layout.files.get(path);
  if (!file) throw new ImportError('LEROBOT_META_MISSING', `${layout.prefix}${path} is missing`, { file: layout.prefix + path });
  return file;
}

/**
 * The JSON value of each non-empty line, read as a stream (episodes.jsonl of a large dataset need not
 * sit in memory as one string). Lines are decoded strictly: bad bytes are INVALID_UTF8 with the line;
 * a line past the budget's `maxLineBytes` is INGEST_LIMIT_EXCEEDED.
 */
export async function* jsonLines(file: SourceFile, budget: IngestBudget): AsyncGenerator<{ line: number; value: unknown }> {
  for await (const { line, text, tooLong, bytes } of readLines(file, budget.limits.maxLineBytes)) {
    const at = { file: file.path, line };
    if (tooLong) budget.checkLine(bytes, at, `${file.path} line ${line}`);
    if (text === undefined) throw new ImportError('INVALID_UTF8', `${file.path} line ${line} is not valid UTF-8`, at);
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new ImportError('LEROBOT_META_INVALID', `${file.path} line ${line} is not valid JSON`, at);
    }
    yield { line, value };
  }
}

/** A parquet integer (INT64 arrives as bigint) as a safe number, else undefined. */
export function integer(value: unknown): number | undefined {
  const number = typeof value === 'bigint' ? Number(value) : value;
  return typeof number === 'number' && Number.isSafeInteger(number) ? number : undefined;
}

/** A parquet number as a finite float, else undefined. */
export function float(value: unknown): number | undefined {
  const number = typeof value === 'bigint' ? Number(value) : value;
  return typeof number === 'number' && Number.isFinite(number) ? number : undefined;
}
