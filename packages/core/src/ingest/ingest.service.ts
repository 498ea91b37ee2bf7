import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import {
  DatasetStatsAccumulator,
  ImportError,
  detectFormat,
  diffFeatureSpecs,
  episodeBytes,
  importerFor,
  renameEpisodeFeatures,
  renameFeatures,
  sourceFromDirectory,
  sourceFromFiles,
  unrecognisedFormatError,
  validateEpisode,
  writeShard,
  type FormatName,
  type ImportIssue,
  type ImportSource,
  type ImportedEpisode,
  type ShardEpisode,
  type WrittenEpisode,
} from '@kura/formats';
import { valuesPerStep, type FeatureSpec } from '@kura/schema';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readJsonBlob, writeJsonBlob } from '../blobs/json-blobs.js';
import type { KuraConfig } from '../config/config.js';
import { DATABASE_URL, KURA_CONFIG, LOGGER } from '../database/database.tokens.js';
import { Prisma, PrismaClient } from '../database/prisma.js';
import { UnrecoverableJobError } from '../jobs/job-queue.js';
import type { Logger } from '../logging/logger.js';
import { detectArchiveKind, extractArchive, type ArchiveKind } from '../uploads/archive.js';
import { UploadsRepository, type UploadRecord } from '../uploads/uploads.repository.js';
import { episodeBucket } from '../datasets/episode-buckets.js';
import { withDatasetLock } from './dataset-lock.js';
import { deleteUnpublishedEpisodes, deleteUnpublishedEpisodesOf, insertEpisodeRows } from './episode-rows.js';

const MAX_WARNINGS = 1000;
const PROGRESS_INTERVAL_MS = 1000;

interface ShardRecord {
  key: string;
  bytes: number;
  sha256: string;
  episodes: number;
}

/**
 * Turns one upload into a published dataset version: materialise the files, pick the importer,
 * check the feature spec, validate and write episodes into Arrow shards, store them and their
 * statistics, write the episode rows (invisible until published), then publish in one short
 * transaction whose size does not depend on the number of episodes. Re-running it after a crash
 * redoes the same work under the same keys, so it completes exactly once.
 */
@Injectable()
export class IngestService implements OnApplicationBootstrap {
  constructor(
    @Inject(PrismaClient) private readonly prisma: PrismaClient,
    private readonly uploads: UploadsRepository,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(DATABASE_URL) private readonly databaseUrl: string,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Work folders of uploads that are finished (left by a process that died before cleaning up) are removed at start. */
  async onApplicationBootstrap(): Promise<void> {
    const root = join(this.config.dataDir, 'work');
    const names = await readdir(root).catch(() => [] as string[]);
    if (names.length === 0) return;
    const unfinished = new Set(
      (
        await this.prisma.upload.findMany({
          where: { id: { in: names }, status: { in: ['uploading', 'received', 'processing'] } },
          select: { id: true },
        })
      ).map((upload) => upload.id),
    );
    for (const name of names) if (!unfinished.has(name)) await rm(join(root, name), { recursive: true, force: true });
  }

  async ingest(uploadId: string, attempt: { attempt: number; maxAttempts: number }): Promise<void> {
    const upload = await this.uploads.findById(uploadId);
    if (!upload) throw new UnrecoverableJobError(`upload ${uploadId} does not exist`);
    if (upload.status === 'published' || upload.status === 'failed') return;
    // Under the data folder, so the filesystem store can take shards over by renaming them.
    const work = join(this.config.dataDir, 'work', uploadId);
    const warnings: ImportIssue[] = [];
    let droppedWarnings = 0;
    const warn = (issue: ImportIssue) => {
      if (warnings.length < MAX_WARNINGS) warnings.push(issue);
      else droppedWarnings++;
    };
    // Where the time goes, in the "upload published" log line.
    const timings: Record<string, number> = {};
    let phaseStart = Date.now();
    const phase = (name: string) => {
      timings[`${name}Ms`] = Date.now() - phaseStart;
      phaseStart = Date.now();
    };
    try {
      await rm(work, { recursive: true, force: true });
      await mkdir(join(work, 'files'), { recursive: true });
      const source = await this.materialise(upload, work);
      phase('materialise');
      const format = await this.chooseFormat(upload, source);
      await this.uploads.markProcessing(upload.id, format);
      const opened = await importerFor(format).open(source, { warn, dropFeatures: upload.dropFeatures });
      const featureMap = upload.featureMap ?? {};
      const features = renameFeatures(opened.features, featureMap);
      await withDatasetLock(this.databaseUrl, upload.datasetId, async () => {
        const dataset = await this.prisma.dataset.findUniqueOrThrow({
          where: { id: upload.datasetId },
          select: {
            id: true,
            features: true,
            latestVersion: true,
            episodeCount: true,
            stepCount: true,
            robot: { select: { controlFrequencyHz: true, robotType: true, actionSpace: true, id: true } },
          },
        });
        const datasetFeatures = dataset.features as FeatureSpec | null;
        if (datasetFeatures) {
          const differences = diffFeatureSpecs(datasetFeatures, features);
          if (differences.length > 0) {
            throw new ImportError(
              'SCHEMA_MISMATCH',
              `the upload's features differ from the dataset's: ${differences.map((entry) => `${entry.feature} (dataset: ${entry.expected}, upload: ${entry.actual})`).join('; ')}`,
              { field: differences.map((entry) => entry.feature).join(',') },
            );
          }
        }
        phase('open');
        await deleteUnpublishedEpisodes(this.prisma, { datasetId: dataset.id, latestVersion: dataset.latestVersion });
        const version = dataset.latestVersion + 1;
        const fps = opened.fps ?? dataset.robot.controlFrequencyHz;
        const result = await this.convert({
          upload,
          work,
          features,
          fps,
          firstIndex: dataset.episodeCount,
          episodes: opened.episodes,
          expected: opened.expectedEpisodes,
          featureMap,
          source,
        });
        phase('convert');
        if (droppedWarnings > 0)
          warnings.push({ code: 'WARNINGS_TRUNCATED', message: `${droppedWarnings} more warnings were not kept`, location: {} });
        await this.publish({
          upload,
          dataset: { ...dataset, features: datasetFeatures },
          features,
          version,
          fps,
          result,
          warnings,
          format,
        });
        phase('publish');
        this.logger.info(
          { uploadId, datasetId: upload.datasetId, version, episodes: result.episodes.length, steps: result.steps, ...timings },
          'upload published',
        );
      });
    } catch (error) {
      if (error instanceof ImportError) {
        await this.fail(upload, [error.toIssue()], warnings);
        throw new UnrecoverableJobError(`${error.code}: ${error.message}`);
      }
      if (attempt.attempt >= attempt.maxAttempts) {
        await this.fail(
          upload,
          [{ code: 'INGEST_FAILED', message: `the upload could not be processed: ${(error as Error).message}`, location: {} }],
          warnings,
        );
      }
      throw error;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /**
   * The upload's files on local disk: an archive extracted, or the single file under its name. With
   * the filesystem store the stored bytes are read in place rather than copied out first.
   */
  private async materialise(upload: UploadRecord, work: string): Promise<ImportSource & { archive?: ArchiveKind }> {
    let rawPath = await this.blobs.localPath?.({ key: upload.blobKey });
    if (!rawPath) {
      rawPath = join(work, 'raw');
      await pipeline(await this.blobs.get({ key: upload.blobKey }), createWriteStream(rawPath));
    }
    const handle = await open(rawPath, 'r');
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(512), 0, 512, 0).finally(() => handle.close());
    const kind = detectArchiveKind(buffer.subarray(0, bytesRead));
    if (kind) {
      await extractArchive({ file: rawPath, kind, destination: join(work, 'files'), limits: this.config.uploads.archive });
      return { ...(await sourceFromDirectory(join(work, 'files'))), archive: kind };
    }
    return sourceFromFiles([{ path: safeFileName(upload.fileName), absolutePath: rawPath }]);
  }

  private async chooseFormat(upload: UploadRecord, source: ImportSource & { archive?: ArchiveKind }): Promise<FormatName> {
    const detected = await detectFormat(source);
    const requested = upload.requestedFormat as FormatName | null;
    if (requested) {
      // A wrong flag is reported when the upload clearly is another format; otherwise the requested
      // importer gets to say precisely what is wrong with it.
      if (detected && detected !== requested && !(await importerFor(requested).detect(source))) {
        throw new ImportError('FORMAT_MISMATCH', `the upload does not look like ${requested}; it looks like ${detected}`, {
          file: source.files[0]?.path,
        });
      }
      return requested;
    }
    if (!detected) throw await unrecognisedFormatError(source, source.archive);
    return detected;
  }

  private async convert(params: {
    upload: UploadRecord;
    work: string;
    features: FeatureSpec;
    fps: number;
    firstIndex: number;
    episodes: AsyncIterable<ImportedEpisode>;
    expected: number | undefined;
    featureMap: Record<string, string>;
    source: { files: Array<{ path: string; absolutePath: string }> };
  }): Promise<{
    shards: ShardRecord[];
    episodes: Array<WrittenEpisode & { episode: Omit<ImportedEpisode, 'features'>; shardKey: string }>;
    steps: number;
    stats: DatasetStatsAccumulator;
  }> {
    const { upload, features } = params;
    const stats = new DatasetStatsAccumulator();
    const shards: ShardRecord[] = [];
    const written: Array<WrittenEpisode & { episode: Omit<ImportedEpisode, 'features'>; shardKey: string }> = [];
    const videoBlobs = new Map<string, string>();
    let buffered: ShardEpisode[] = [];
    let bufferedBytes = 0;
    let steps = 0;
    let count = 0;
    let lastProgress = Date.now();

    const flush = async () => {
      if (buffered.length === 0) return;
      const shardNumber = shards.length;
      const path = join(params.work, `shard-${shardNumber}.arrow`);
      const result = await writeShard({ path, features, episodes: buffered });
      // Keyed by upload and number: a re-run after a crash overwrites the same objects.
      const key = `datasets/${upload.datasetId}/shards/${upload.id}-${String(shardNumber).padStart(4, '0')}.arrow`;
      if (this.blobs.adoptFile) await this.blobs.adoptFile({ key, path });
      else {
        await this.blobs.put({ key, body: createReadStream(path), contentType: 'application/vnd.apache.arrow.file' });
        await rm(path);
      }
      shards.push({ key, bytes: result.bytes, sha256: result.sha256, episodes: buffered.length });
      result.episodes.forEach((episode, position) => {
        // Keep what publishing needs, not the step data: memory stays bounded by the shard budget.
        written.push({ ...episode, episode: withoutFeatures(buffered[position]!.episode), shardKey: key });
      });
      buffered = [];
      bufferedBytes = 0;
    };

    for await (const raw of params.episodes) {
      const episode = renameEpisodeFeatures(raw, params.featureMap);
      validateEpisode(episode, features);
      addEpisodeStats(stats, episode, features);
      const blobs: Record<string, string> = {};
      for (const [name, values] of Object.entries(episode.features)) {
        if (values.kind !== 'video') continue;
        blobs[name] = await this.storeVideo({ upload, file: values.file, source: params.source, cache: videoBlobs });
      }
      buffered.push({ episodeIndex: params.firstIndex + count, episode, fps: params.fps, videoBlobs: blobs });
      bufferedBytes += episodeBytes(episode);
      steps += episode.length;
      count++;
      // Episodes are held in memory up to this many bytes, then written as one shard.
      if (bufferedBytes >= this.config.uploads.shardBytes) await flush();
      if (Date.now() - lastProgress > PROGRESS_INTERVAL_MS) {
        lastProgress = Date.now();
        const progress = params.expected ? Math.min(0.95, (count / params.expected) * 0.95) : 0.5;
        await this.uploads.setProgress(upload.id, progress);
      }
    }
    await flush();
    if (count === 0) throw new ImportError('NO_EPISODES', 'the upload holds no episodes', {});
    return { shards, episodes: written, steps, stats };
  }

  /** Keeps a video file of the upload as a blob, once per file, named by its content. */
  private async storeVideo(params: {
    upload: UploadRecord;
    file: string;
    source: { files: Array<{ path: string; absolutePath: string }> };
    cache: Map<string, string>;
  }): Promise<string> {
    const cached = params.cache.get(params.file);
    if (cached) return cached;
    const file = params.source.files.find((candidate) => candidate.path === params.file);
    if (!file) throw new ImportError('VIDEO_MISSING', `the video ${params.file} is not in the upload`, { file: params.file });
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file.absolutePath)) hash.update(chunk as Buffer);
    const extension = basename(file.path).includes('.') ? basename(file.path).split('.').pop() : 'bin';
    const key = `datasets/${params.upload.datasetId}/blobs/${hash.digest('hex')}.${extension}`;
    if (!(await this.blobs.head({ key })))
      await this.blobs.put({ key, body: createReadStream(file.absolutePath), contentType: 'video/mp4' });
    params.cache.set(params.file, key);
    return key;
  }

  private async publish(params: {
    upload: UploadRecord;
    dataset: {
      id: string;
      features: FeatureSpec | null;
      latestVersion: number;
      episodeCount: number;
      stepCount: bigint;
      robot: { id: string; robotType: string; actionSpace: string; controlFrequencyHz: number };
    };
    features: FeatureSpec;
    version: number;
    fps: number;
    result: Awaited<ReturnType<IngestService['convert']>>;
    warnings: ImportIssue[];
    format: FormatName;
  }): Promise<void> {
    const { upload, dataset, version, result } = params;
    const prefix = `datasets/${dataset.id}/versions/${version}`;
    const previous =
      dataset.latestVersion > 0
        ? await this.prisma.datasetVersion.findUnique({
            where: { datasetId_version: { datasetId: dataset.id, version: dataset.latestVersion } },
          })
        : null;

    // Statistics of version N+1 = those of N merged with this upload's (never recomputed from scratch).
    const stats = result.stats;
    if (previous) stats.merge(DatasetStatsAccumulator.fromJSON(await readJsonBlob(this.blobs, previous.sketchKey)));
    const previousManifest = previous
      ? ((await readJsonBlob(this.blobs, previous.manifestKey)) as { shards: ShardRecord[] })
      : { shards: [] };
    const episodeCount = dataset.episodeCount + result.episodes.length;
    const stepCount = Number(dataset.stepCount) + result.steps;
    const manifest = {
      format: 'kura/1',
      datasetId: dataset.id,
      version,
      createdFromUpload: upload.id,
      features: dataset.features ?? params.features,
      embodiment: {
        robotId: dataset.robot.id,
        robotType: dataset.robot.robotType,
        actionSpace: dataset.robot.actionSpace,
        controlFrequencyHz: dataset.robot.controlFrequencyHz,
      },
      fps: params.fps,
      episodeCount,
      stepCount,
      shards: [...previousManifest.shards, ...result.shards],
    };
    const manifestKey = `${prefix}/manifest.json`;
    const statsKey = `${prefix}/stats.json`;
    const sketchKey = `${prefix}/stats.sketch.json`;
    await writeJsonBlob(this.blobs, manifestKey, manifest);
    await writeJsonBlob(this.blobs, statsKey, stats.summary());
    await writeJsonBlob(this.blobs, sketchKey, stats.toJSON());

    // The rows first, in bulk and outside the transaction: until the version is published they are
    // not read, and a crash here leaves rows the next ingest of the dataset removes.
    await insertEpisodeRows(this.prisma, {
      datasetId: dataset.id,
      version,
      uploadId: upload.id,
      rows: result.episodes.map((written) => ({
        episodeIndex: written.episodeIndex,
        sourceEpisode: written.episode.sourceEpisode,
        length: written.episode.length,
        task: written.episode.task ?? written.episode.stepTasks?.find((task) => task !== '') ?? null,
        success: written.episode.success ?? null,
        shardKey: written.shardKey,
        batchStart: written.batchStart,
        batchCount: written.batchCount,
        byteOffset: written.byteOffset,
        byteLength: written.byteLength,
        checksum: written.checksum,
        metadata: written.episode.metadata ?? null,
        bucket: episodeBucket(dataset.id, written.episodeIndex),
      })),
    });
    // Publishing: three rows, whatever the number of episodes.
    await this.prisma.$transaction([
      this.prisma.datasetVersion.create({
        data: {
          datasetId: dataset.id,
          version,
          episodeCount,
          stepCount: BigInt(stepCount),
          uploadId: upload.id,
          manifestKey,
          statsKey,
          sketchKey,
        },
        select: { version: true },
      }),
      // Only from the version this ingest started from (the advisory lock makes it so; this checks it).
      this.prisma.dataset.update({
        where: { id: dataset.id, latestVersion: dataset.latestVersion },
        data: {
          latestVersion: version,
          episodeCount,
          stepCount: BigInt(stepCount),
          ...(dataset.features ? {} : { features: params.features }),
        },
        select: { id: true },
      }),
      this.prisma.upload.update({
        where: { id: upload.id },
        data: {
          status: 'published',
          progress: 1,
          format: params.format,
          episodeCount: result.episodes.length,
          stepCount: BigInt(result.steps),
          version,
          warnings: params.warnings as unknown as Prisma.InputJsonValue,
          errors: [],
          finishedAt: new Date(),
        },
        select: { id: true },
      }),
    ]);
  }

  /** Marks the upload failed and removes what it wrote: nothing of a failed upload stays behind. */
  private async fail(upload: UploadRecord, errors: ImportIssue[], warnings: ImportIssue[]): Promise<void> {
    await this.uploads.markFailed(upload.id, errors, warnings);
    await deleteUnpublishedEpisodesOf(this.prisma, upload.id);
    for await (const blob of this.blobs.list({ prefix: `datasets/${upload.datasetId}/shards/${upload.id}-` }))
      await this.blobs.delete({ key: blob.key });
  }
}

function withoutFeatures(episode: ImportedEpisode): Omit<ImportedEpisode, 'features'> {
  const copy: Partial<ImportedEpisode> = { ...episode };
  delete copy.features;
  return copy as Omit<ImportedEpisode, 'features'>;
}

function addEpisodeStats(stats: DatasetStatsAccumulator, episode: ImportedEpisode, features: FeatureSpec): void {
  for (const [name, values] of Object.entries(episode.features)) {
    const feature = features[name]!;
    if (values.kind === 'tensor') stats.numeric(name, valuesPerStep(feature)).addColumn(values.values, episode.length);
    else stats.addMediaFrames(name, episode.length);
  }
}

/** A file name safe to use on local disk, keeping the extension importers may look at. */
function safeFileName(name: string | null): string {
  const cleaned = basename(name ?? 'upload').replace(/[^A-Za-z0-9._-]/g, '_');
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? 'upload' : cleaned;
}
