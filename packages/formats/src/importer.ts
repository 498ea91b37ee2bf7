import type { FeatureSpec, FormatName, NumericTypedArray } from '@kura/schema';
import type { IngestBudget } from './budget.js';
import type { ImportIssue } from './import-error.js';

export { ImportError, type ImportIssue } from './import-error.js';

/** The formats Kura can import (API.md: `?format=`), in detection order: the list lives in @kura/schema. */
export { formatNames, type FormatName } from '@kura/schema';

/** One file of an upload, on local disk (the ingest job materialises uploads into a temporary folder). */
export interface SourceFile {
  /** Path inside the upload, `/`-separated, no leading slash: `meta/info.json`, `episode_0.hdf5`. */
  path: string;
  /** Where to read it. */
  absolutePath: string;
  /** Its size; of a file still arriving, the size it will have. */
  bytes: number;
  /**
   * Set while the file is still being received (an upload converted as it arrives): readers that go
   * from its start to its end read it through this. Only the Kura NDJSON importer is handed such files.
   */
  arriving?: ArrivingFile;
}

/** A file being written as it is read: its chunks, from the start, waiting for bytes not yet there, to its final size. */
export interface ArrivingFile {
  chunks(chunkBytes: number): AsyncIterable<Buffer>;
}

/**
 * What an importer reads: the files of one upload. A single uploaded file is a source of one file
 * named after the upload (e.g. `data.ndjson`); an archive is the files it held.
 */
export interface ImportSource {
  files: SourceFile[];
}

/** Typed arrays an importer may hand over for numeric features (row-major, `length × prod(shape)` values). */
export type NumericArray = NumericTypedArray;

/** The values of one feature over all steps of an episode. */
export type FeatureValues =
  /** Numbers: `values.length === episode.length × prod(spec.shape)`; the array type matches spec.dtype (float32 → Float32Array, bool → Uint8Array of 0/1, int64 → BigInt64Array…). */
  | { kind: 'tensor'; values: NumericArray }
  /** One encoded image (JPEG or PNG bytes, as in the spec's `encoding`) per step. */
  | { kind: 'image'; frames: Uint8Array[] }
  /** A video file of the upload (kept as is, never decoded) and, per step, the time of its frame in seconds. */
  | { kind: 'video'; file: string; timestamps: Float64Array };

/**
 * One episode in column form. Feature names are Kura's (`observation.state`, `action`,
 * `observation.images.top`), mapped from the source's names as the format's README says.
 */
export interface ImportedEpisode {
  /** How the source names this episode, for messages: `episode_000029`, `demo_3`, `record 12`. */
  sourceId: string;
  /**
   * The source's own id of the episode, kept with it and shown to users so that a renumbered episode
   * can be traced back: LeRobot's episode_index (`29`), robomimic's group (`demo_7`), ALOHA's file
   * (`episode_3.hdf5`), an RLDS record (`<tfrecord file>#12`), an NDJSON `episode` value.
   */
  sourceEpisode: string;
  /** The source file the episode came from (for error locations). */
  file: string;
  /** The episode's index in the source, when it has one (LeRobot episode_index, RLDS record number). */
  sourceIndex?: number;
  /** Number of steps. */
  length: number;
  /** Seconds from the episode's start, one per step. When absent Kura uses step / control frequency. */
  timestamp?: Float64Array;
  /** One per step; NaN where the source has no value. Absent when the source has no rewards. */
  reward?: Float32Array;
  discount?: Float32Array;
  /** One per step, 0 or 1 (RLDS is_terminal; LeRobot next.done on the last step…). Absent: only a successful last step is terminal. */
  isTerminal?: Uint8Array;
  /** The task (language instruction): one for the whole episode, or one per step. */
  task?: string | null;
  stepTasks?: string[];
  /** Whether the episode succeeded, when the source says. */
  success?: boolean | null;
  /** Anything else the source knows about the episode (RLDS episode_metadata, robomimic masks…), JSON-serialisable. */
  metadata?: Record<string, unknown>;
  features: Record<string, FeatureValues>;
}

/** What an importer found in a source. */
export interface ImportResult {
  /** The feature spec of the episodes (Kura names), complete before the first episode is read. */
  features: FeatureSpec;
  /** The file the feature spec was read from (info.json, the first HDF5 or TFRecord file…), for error locations. */
  featuresFile?: string;
  /** Frames per second of the recording, when the source says (LeRobot fps); else the robot's control frequency is used. */
  fps?: number;
  /** How many episodes to expect, when known, for progress. */
  expectedEpisodes?: number;
  /** The episodes, read one at a time (memory must not grow with the number of episodes). */
  episodes: AsyncIterable<ImportedEpisode>;
}

export interface ImportContext<Options = Record<string, unknown>> {
  /**
   * The upload's options (`?options=`), already parsed by the format's `optionsSchema` (so defaults
   * are filled in). Absent when an importer is used on its own.
   */
  options?: Options;
  /** Reports something worth knowing that does not stop the import (e.g. an episode listed in metadata but absent). */
  warn(issue: ImportIssue): void;
  /**
   * Features to leave out, named as the importer names them (before any featureMap): they are not
   * read at all, so their files may be absent. The importer settles them with `settleDroppedFeatures`.
   */
  dropFeatures?: readonly string[];
  /**
   * The upload's resource budget (budget.ts): importers reserve declared sizes and lengths before
   * they allocate. Absent when an importer is used on its own; it then takes the default limits.
   */
  budget?: IngestBudget;
}

/** Reading one format. Registered by its format's registration (`<format>/format.ts`), listed in registry.ts. */
export interface Importer<Options = Record<string, unknown>> {
  readonly format: FormatName;
  /** What `detect` looks for, in words, for FORMAT_UNKNOWN (`an /action dataset and an /observations group`). */
  readonly looksFor: string;
  /** Whether the source looks like this format (file names, magic bytes); cheap, reads little. */
  detect(source: ImportSource): Promise<boolean>;
  /** Opens the source. Throws ImportError for data that cannot be imported. */
  open(source: ImportSource, context: ImportContext<Options>): Promise<ImportResult>;
}

/** Finds a file of the source by exact path. */
export function findFile(source: ImportSource, path: string): SourceFile | undefined {
  return source.files.find((file) => file.path === path);
}
