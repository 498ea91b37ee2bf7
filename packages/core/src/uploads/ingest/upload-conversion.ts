import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  DatasetStatsAccumulator,
  ImportError,
  arrivedBytes,
  arrivingFile,
  IngestBudget,
  StatsError,
  checkFeatureSpec,
  detectFormat,
  diffFeatureSpecs,
  episodeBytes,
  formatRegistration,
  optionsPath,
  parseFormatOptions,
  renameEpisodeFeatures,
  renameFeatures,
  sourceFromDirectory,
  sourceFromFiles,
  validateEpisode,
  ShardBuilder,
  type DatasetStatsJson,
  type FormatName,
  type ImportIssue,
  type ImportSource,
  type ImportedEpisode,
  type IngestLimits,
  type WrittenEpisode,
  unrecognisedFormatError,
} from '@kura/formats';
import { valuesPerStep, type ErrorLocation, type FeatureSpec } from '@kura/schema';
import { detectArchiveKind, extractArchive, type ArchiveKind, type ArchiveLimits } from '../../common/archive.js';
import { ShardHashThread } from './shard-hash-thread.js';

/**
 * Everything the jailed child needs to turn one upload into shards: plain JSON, since it crosses a
 * process boundary. Paths are the host's (the jail mounts them at the same place).
 */
export interface ConversionRequest {
  datasetId: string;
  /** The uploaded bytes (read-only in the jail). */
  rawPath: string;
  /**
   * Set when rawPath is still being received and will hold `bytes` bytes: a Kura NDJSON upload is
   * then converted as it arrives, any other once all of it is there.
   */
  arriving?: { bytes: number };
  /** The upload's file name, already safe for a local path. */
  fileName: string;
  /** The upload's work folder (writable in the jail): `files/` for an extracted archive, `out/` for shards. */
  work: string;
  requestedFormat: FormatName | null;
  featureMap: Record<string, string>;
  dropFeatures: string[];
  /** The upload's options for its format (`{}` for none); checked by the format's options schema again here. */
  options: Record<string, unknown>;
  /** The dataset's features, when it has some: the upload must have the same. */
  datasetFeatures: FeatureSpec | null;
  /** The dataset's next episode index. */
  firstIndex: number;
  /** Frames per second when the source does not say (the robot's control frequency). */
  defaultFps: number;
  shardBytes: number;
  archiveLimits: Partial<ArchiveLimits>;
  /** What the upload may decode (the defaults where absent). */
  ingestLimits?: Partial<IngestLimits>;
}

/**
 * Most episodes a shard takes, whatever their bytes. The parent writes a shard's episode rows while
 * the next one converts, so only the last shard's rows wait after the conversion: for 100,000
 * five-step episodes (2 shards by bytes) that was 40,000 rows, ~0.6 s. It also bounds a shard's
 * footer and the message that lists its episodes.
 */
const MAX_SHARD_EPISODES = 10_000;

/** What publishing keeps of an episode: its row's facts, none of its step data (JSON-safe, unlike typed arrays). */
export interface EpisodeSummary {
  sourceId: string;
  sourceEpisode: string;
  file: string;
  length: number;
  /** The episode's task, or the first step task when it has one per step. */
  task: string | null;
  success: boolean | null;
  metadata: Record<string, unknown> | null;
}

/** An episode as publishing needs it: where it is in its shard and what it is. */
export type ConvertedEpisode = WrittenEpisode & { episode: EpisodeSummary };

/**
 * File of the work folder where the child keeps the location of the episode it is reading (JSON
 * `{ file, episode }`, space-padded), for the parent to locate a crash; see ingest-child.ts.
 */
export const READING_FILE = 'reading.json';

/** What the child tells the parent, in order. */
export type ConversionMessage =
  | { type: 'format'; format: FormatName }
  | { type: 'opened'; features: FeatureSpec; fps: number; expectedEpisodes: number | null }
  | { type: 'warning'; issue: ImportIssue }
  /** The episode being read now: progress, and the location of a crash (also in READING_FILE). */
  | { type: 'episode'; count: number; file: string; sourceId: string }
  /** A shard written into `out/`. */
  | ({ type: 'shard' } & ConvertedShard)
  | { type: 'done'; steps: number; episodes: number; stats: DatasetStatsJson }
  | { type: 'failed'; issue: ImportIssue; coded: boolean };

/** A shard written into `out/`, with the videos its episodes are the first to use. */
export interface ConvertedShard {
  number: number;
  path: string;
  bytes: number;
  sha256: string;
  episodes: ConvertedEpisode[];
  videos: VideoFile[];
  /** The upload's last shard: no other follows it. */
  last: boolean;
}

/** A video file of the upload, kept as a blob under a key named by its content. */
export interface VideoFile {
  absolutePath: string;
  key: string;
}

/**
 * Runs inside the jail: extract, choose the format, open, check the features against the dataset's,
 * validate each episode, gather statistics and write Arrow shards into `out/`. Everything it learns
 * goes to `report`; it touches no database, blob store or network.
 */
export async function convertUpload(request: ConversionRequest, report: (message: ConversionMessage) => void): Promise<void> {
  const source = await materialise(request);
  if (!request.arriving || !source.files.some((file) => file.arriving)) {
    const done = await convertSource(request, source, await chooseFormat(request.requestedFormat, source), report);
    return report({ type: 'done', ...done });
  }
  // Read as it arrives, the upload is checked against the formats' detectors once all of it is
  // there, success or not: one that is not Kura NDJSON fails FORMAT_MISMATCH, as it would have.
  const { bytes } = request.arriving;
  const checkWhole = async () => {
    await arrivedBytes(request.rawPath, bytes);
    await chooseFormat(request.requestedFormat, await sourceFromFiles([{ path: request.fileName, absolutePath: request.rawPath }]));
  };
  let done: Awaited<ReturnType<typeof convertSource>>;
  try {
    done = await convertSource(request, source, 'kura-ndjson', report);
  } catch (error) {
    if (error instanceof ImportError) await checkWhole();
    throw error;
  }
  await checkWhole();
  report({ type: 'done', ...done });
}

/** Converts the upload's files with the importer of `format`; returns what the 'done' message says. */
async function convertSource(
  request: ConversionRequest,
  source: ImportSource,
  format: FormatName,
  report: (message: ConversionMessage) => void,
): Promise<{ steps: number; episodes: number; stats: DatasetStatsJson }> {
  report({ type: 'format', format });
  const options = parseFormatOptions(format, request.options);
  if (!options.success) {
    // The API checks options against the requested format; this catches options stored before the
    // format's schema changed (an upload queued across an upgrade).
    const issue = options.error.issues[0]!;
    throw new ImportError('UPLOAD_OPTIONS_INVALID', `the upload's options do not fit ${format}: ${optionsPath(issue)}: ${issue.message}`, {
      field: optionsPath(issue),
    });
  }
  const budget = IngestBudget.forSource(source, request.ingestLimits);
  const opened = await formatRegistration(format).importer.open(source, {
    options: options.data,
    warn: (issue) => report({ type: 'warning', issue }),
    dropFeatures: request.dropFeatures,
    budget,
  });
  const features = renameFeatures(opened.features, request.featureMap);
  // The limits dataset creation holds a spec to hold for uploads too (after renaming, as published).
  checkFeatureSpec(features, opened.featuresFile !== undefined ? { file: opened.featuresFile } : {});
  if (request.datasetFeatures) {
    const differences = diffFeatureSpecs(request.datasetFeatures, features);
    if (differences.length > 0) {
      throw new ImportError(
        'SCHEMA_MISMATCH',
        `the upload's features differ from the dataset's: ${differences.map((entry) => `${entry.feature} (dataset: ${entry.expected}, upload: ${entry.actual})`).join('; ')}`,
        { field: differences.map((entry) => entry.feature).join(',') },
      );
    }
  }
  const fps = opened.fps ?? request.defaultFps;
  report({ type: 'opened', features, fps, expectedEpisodes: opened.expectedEpisodes ?? null });

  const out = join(request.work, 'out');
  await mkdir(out, { recursive: true });
  const stats = new DatasetStatsAccumulator();
  const videoKeys = new Map<string, string>();
  let newVideos: VideoFile[] = [];
  // The shard being made: its episodes encoded as they come, and what the parent is told of each.
  let shardEpisodes = new ShardBuilder(features);
  let summaries: EpisodeSummary[] = [];
  let bufferedBytes = 0;
  let shardNumber = 0;
  let steps = 0;
  let count = 0;

  // Shards are written while the next one is made (the file system's thread copies 32 MiB while
  // this one parses on: the wait was a fifth of a conversion beside an upload being received),
  // hashed on a thread, and reported in order once hashed. One shard is written at a time.
  const hashing = new ShardHashThread();
  let writing: Promise<unknown> = Promise.resolve();
  let reported = Promise.resolve();
  const flush = async (last: boolean) => {
    if (shardEpisodes.episodeCount === 0) return;
    await writing;
    const path = join(out, `shard-${shardNumber}.arrow`);
    const written = shardEpisodes.write(path);
    const hashed = written.then((file) => hashing.hash(path, file.episodes));
    // Awaited below; marked handled now so a failure meanwhile is not an unhandled rejection.
    hashed.catch(() => undefined);
    writing = written;
    const shardSummaries = summaries;
    const videos = newVideos;
    const number = shardNumber;
    reported = reported.then(async () => {
      const file = await written;
      const { sha256, checksums } = await hashed;
      // Fields named, not spread: 10,000 of these per shard.
      const episodes = file.episodes.map((range, position): ConvertedEpisode => ({
        episodeIndex: range.episodeIndex,
        batchStart: range.batchStart,
        batchCount: range.batchCount,
        byteOffset: range.byteOffset,
        byteLength: range.byteLength,
        checksum: checksums[position]!,
        episode: shardSummaries[position]!,
      }));
      report({ type: 'shard', number, path, bytes: file.bytes, videos, last, sha256, episodes });
    });
    reported.catch(() => undefined);
    // A shard much larger than shardBytes holds a very large episode: not kept beside the next one.
    if (bufferedBytes > 2 * request.shardBytes) await writing;
    shardNumber++;
    shardEpisodes = new ShardBuilder(features);
    summaries = [];
    bufferedBytes = 0;
    newVideos = [];
  };

  try {
    for await (const raw of opened.episodes) {
      report({ type: 'episode', count, file: raw.file, sourceId: raw.sourceId });
      // Encoded episodes are held in memory up to this many bytes (or episodes), then written as
      // one shard: once the next episode is there, so the shard after the loop is always the last.
      if (bufferedBytes >= request.shardBytes || shardEpisodes.episodeCount >= MAX_SHARD_EPISODES) await flush(false);
      const episode = renameEpisodeFeatures(raw, request.featureMap);
      validateEpisode(episode, features);
      const bytes = episodeBytes(episode);
      const where = { file: episode.file, episode: episode.sourceId };
      budget.settleEpisode({ bytes, steps: episode.length }, where);
      addEpisodeStats(stats, episode, features, where);
      const videoBlobs: Record<string, string> = {};
      for (const [name, values] of Object.entries(episode.features)) {
        if (values.kind !== 'video') continue;
        let key = videoKeys.get(values.file);
        if (!key) {
          const file = source.files.find((candidate) => candidate.path === values.file);
          if (!file) throw new ImportError('VIDEO_MISSING', `the video ${values.file} is not in the upload`, { file: values.file });
          key = await videoKey(request.datasetId, file.path, file.absolutePath);
          videoKeys.set(values.file, key);
          newVideos.push({ absolutePath: file.absolutePath, key });
        }
        videoBlobs[name] = key;
      }
      shardEpisodes.add({ episodeIndex: request.firstIndex + count, episode, fps, videoBlobs });
      summaries.push(summarise(episode));
      bufferedBytes += bytes;
      steps += episode.length;
      count++;
    }
    await flush(true);
    await reported;
  } finally {
    await hashing.close();
  }
  if (count === 0) throw new ImportError('NO_EPISODES', 'the upload holds no episodes', {});
  return { steps, episodes: count, stats: stats.toJSON() };
}

/**
 * The upload's files: an archive extracted into `files/`, or the single file under its name. An
 * upload still arriving is waited for, unless it is a requested Kura NDJSON file: that one is read as
 * it comes (the only importer that reads its one file from start to end, once).
 */
async function materialise(request: ConversionRequest): Promise<ImportSource & { archive?: ArchiveKind }> {
  if (request.arriving) {
    const { bytes } = request.arriving;
    await arrivedBytes(request.rawPath, Math.min(bytes, ARCHIVE_HEAD_BYTES));
    if (request.requestedFormat === 'kura-ndjson' && !detectArchiveKind(await readHead(request.rawPath)))
      return { files: [{ path: request.fileName, absolutePath: request.rawPath, bytes, arriving: arrivingFile(request.rawPath, bytes) }] };
    await arrivedBytes(request.rawPath, bytes);
  }
  const kind = detectArchiveKind(await readHead(request.rawPath));
  if (kind) {
    const destination = join(request.work, 'files');
    await mkdir(destination, { recursive: true });
    await extractArchive({ file: request.rawPath, kind, destination, limits: request.archiveLimits });
    return { ...(await sourceFromDirectory(destination)), archive: kind };
  }
  return sourceFromFiles([{ path: request.fileName, absolutePath: request.rawPath }]);
}

/** Bytes an archive is recognised by. */
const ARCHIVE_HEAD_BYTES = 512;

async function readHead(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  const { buffer, bytesRead } = await handle.read(Buffer.alloc(ARCHIVE_HEAD_BYTES), 0, ARCHIVE_HEAD_BYTES, 0).finally(() => handle.close());
  return buffer.subarray(0, bytesRead);
}

async function chooseFormat(requested: FormatName | null, source: ImportSource & { archive?: ArchiveKind }): Promise<FormatName> {
  const detected = await detectFormat(source);
  if (requested) {
    // A wrong flag is reported when the upload clearly is another format; otherwise the requested
    // importer gets to say precisely what is wrong with it.
    if (detected && detected !== requested && !(await formatRegistration(requested).detect(source))) {
      throw new ImportError('FORMAT_MISMATCH', `the upload does not look like ${requested}; it looks like ${detected}`, {
        file: source.files[0]?.path,
      });
    }
    return requested;
  }
  if (!detected) throw await unrecognisedFormatError(source, source.archive);
  return detected;
}

async function videoKey(datasetId: string, path: string, absolutePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(absolutePath)) hash.update(chunk as Buffer);
  const extension = basename(path).includes('.') ? basename(path).split('.').pop() : 'bin';
  return `datasets/${datasetId}/blobs/${hash.digest('hex')}.${extension}`;
}

function summarise(episode: ImportedEpisode): EpisodeSummary {
  return {
    sourceId: episode.sourceId,
    sourceEpisode: episode.sourceEpisode,
    file: episode.file,
    length: episode.length,
    task: episode.task ?? episode.stepTasks?.find((task) => task !== '') ?? null,
    success: episode.success ?? null,
    metadata: episode.metadata ?? null,
  };
}

/** Adds the episode to the statistics; what they refuse (a value past ±1e100) is the upload's fault, coded and located. */
function addEpisodeStats(stats: DatasetStatsAccumulator, episode: ImportedEpisode, features: FeatureSpec, where: ErrorLocation): void {
  for (const [name, values] of Object.entries(episode.features)) {
    const feature = features[name]!;
    try {
      if (values.kind === 'tensor') stats.numeric(name, valuesPerStep(feature)).addColumn(values.values, episode.length);
      else stats.addMediaFrames(name, episode.length);
    } catch (error) {
      if (!(error instanceof StatsError)) throw error;
      throw new ImportError(error.code, `feature "${name}": ${error.message}`, { ...where, field: name, ...error.location });
    }
  }
}
