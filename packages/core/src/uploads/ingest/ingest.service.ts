import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DatasetStatsAccumulator, ImportError, type FormatName, type ImportIssue } from '@kura/formats';
import type { JailLevelChoice } from '@kura/jail';
import { isFinishedUpload, type FeatureSpec } from '@kura/schema';
import { BLOB_STORE, type BlobStore } from '../../blobs/blob-store.js';
import { readJsonBlob, writeJsonBlob } from '../../blobs/json-blobs.js';
import type { KuraConfig } from '../../config/config.js';
import { DATABASE_URL, JAIL_LEVEL, KURA_CONFIG, LOGGER } from '../../database/database.tokens.js';
import { UnrecoverableJobError } from '../../jobs/job-queue.js';
import { outageOf } from '../../errors/outages.js';
import type { Logger } from '../../logging/logger.js';
import { UploadsRepository, type UploadRecord } from '../uploads.repository.js';
import { episodeBucket } from '../../datasets/episode-buckets.js';
import { DatasetsRepository, type DatasetForNewVersion } from '../../datasets/datasets.repository.js';
import { EpisodesRepository, type NewEpisodeRow } from '../../datasets/episodes/episodes.repository.js';
import { VersionsRepository } from '../../datasets/versions.repository.js';
import { ConversionChildren, type ConversionHandlers } from './jailed-conversion.js';
import type { ArrivingConversion } from './arriving-conversion.js';
import type { ConversionRequest, ConvertedEpisode } from './upload-conversion.js';
import { withDatasetLock } from './dataset-lock.js';
import { isProcessAlive } from '../../common/processes.js';

const MAX_WARNINGS = 1000;

/**
 * Uploads converted while they arrive at once, at most: more would be children started for uploads
 * into the same dataset, of which only the first can be kept (the others start from its end).
 */
const MAX_ARRIVING = 2;

/** What an upload is, as its conversion needs it (the upload's record, or the request still arriving). */
export type UploadToConvert = Pick<
  UploadRecord,
  'id' | 'datasetId' | 'fileName' | 'requestedFormat' | 'featureMap' | 'dropFeatures' | 'options'
>;

/** A conversion started as the upload arrived, with the dataset it started from. */
interface Arriving {
  conversion: ArrivingConversion;
  from: Pick<ConversionRequest, 'firstIndex' | 'datasetFeatures' | 'defaultFps'>;
  /** Gives the conversion up if no ingest job claims it (a job run by another process, a crash between). */
  unclaimed?: NodeJS.Timeout;
}

/** What the upload's receiver does with an arriving conversion (UploadsService.store). */
export interface ArrivingBody {
  /** The local file the body is being stored in, before its first byte (a store that writes one): the child reads it there. */
  share(path: string): Promise<void>;
  /** Each chunk of the body, in order (for a store that writes no local file). */
  write(chunk: Buffer): void;
  /** The body is stored and the upload recorded: its ingest job may take the conversion over. */
  arrived(): Promise<void>;
  /** The body broke off or was refused: the conversion is dropped. */
  abandon(): Promise<void>;
}

/** Spare children's folders are named `<pid>-<n>`: those of processes that are gone are removed at start. */
async function removeSparesOfEndedProcesses(root: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const pid = Number(name.split('-')[0]);
    // This process's own (other apps in one test process) and those of live processes stay.
    if (Number.isInteger(pid) && pid > 0 && (pid === process.pid || isProcessAlive(pid))) continue;
    await rm(join(root, name), { recursive: true, force: true });
  }
}

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
export class IngestService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly children: ConversionChildren;
  /** Conversions started as their upload arrived, by upload id, until its ingest job takes them. */
  private readonly arriving = new Map<string, Arriving>();

  constructor(
    private readonly uploads: UploadsRepository,
    private readonly datasets: DatasetsRepository,
    private readonly versions: VersionsRepository,
    private readonly episodes: EpisodesRepository,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(DATABASE_URL) private readonly databaseUrl: string,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(JAIL_LEVEL) jail: JailLevelChoice,
  ) {
    this.children = new ConversionChildren({
      level: jail.level,
      limits: {
        memoryBytes: config.sandbox.ingest.memoryBytes,
        cpuSeconds: config.sandbox.ingest.timeoutSeconds,
        wallClockMs: config.sandbox.ingest.timeoutSeconds * 1000,
        fileSizeBytes: config.uploads.archive.maxExpandedBytes,
      },
      root: join(config.dataDir, 'jail-spares'),
    });
  }

  /**
   * Gets a jailed child ready for an upload this process is about to convert (called as its bytes
   * start to arrive), so that loading the importers overlaps with receiving them.
   */
  prepareForUpload(): void {
    if (!this.config.jobs.runInThisProcess) return;
    this.children.prepare().catch((error: unknown) => this.logger.warn({ err: error }, 'could not start a spare ingest child'));
  }

  /**
   * Starts converting a Kura NDJSON upload while its body arrives (undefined when it cannot): the
   * body's bytes go to a jailed child as they are stored, so parsing overlaps receiving. The ingest
   * job keeps the result when the dataset is still where it was when the upload began (no other
   * upload published meanwhile); otherwise it converts the stored upload as usual. Only where this
   * process runs the ingest (an in-process queue), and only for a body of declared size.
   */
  async receiveArriving(upload: UploadToConvert, bytes: number | undefined): Promise<ArrivingBody | undefined> {
    if (this.config.queue.kind !== 'in-process' || upload.requestedFormat !== 'kura-ndjson' || !bytes) return undefined;
    if (this.arriving.size >= MAX_ARRIVING) return undefined;
    let request: ReturnType<IngestService['conversionRequest']>;
    let conversion: ArrivingConversion | undefined;
    try {
      request = this.conversionRequest(upload, await this.datasets.findForNewVersion(upload.datasetId));
      // The filesystem store writes the body to a local file it shares (BlobStore.put's onLocalFile).
      conversion = await this.children.startArriving(request, bytes, this.blobs.kind === 'filesystem' ? 'shared' : 'written');
    } catch (error) {
      // Only a head start lost: the upload is stored and converted as usual.
      this.logger.warn({ err: error, uploadId: upload.id }, 'could not start converting the upload as it arrives');
      return undefined;
    }
    if (!conversion) return undefined;
    const arriving: Arriving = { conversion, from: request };
    this.arriving.set(upload.id, arriving);
    const drop = async () => {
      if (this.arriving.get(upload.id) === arriving) this.arriving.delete(upload.id);
      clearTimeout(arriving.unclaimed);
      await conversion.abandon();
    };
    return {
      share: (path) => conversion.share(path),
      write: (chunk) => conversion.write(chunk),
      arrived: async () => {
        if (!(await conversion.arrived())) return drop();
        arriving.unclaimed = setTimeout(() => void drop(), this.config.sandbox.ingest.timeoutSeconds * 1000);
        arriving.unclaimed.unref();
      },
      abandon: drop,
    };
  }

  async onApplicationShutdown(): Promise<void> {
    for (const [id, { conversion, unclaimed }] of this.arriving) {
      this.arriving.delete(id);
      clearTimeout(unclaimed);
      await conversion.abandon();
    }
    await this.children.close();
  }

  /** Work folders of uploads that are finished (left by a process that died before cleaning up) are removed at start. */
  async onApplicationBootstrap(): Promise<void> {
    await removeSparesOfEndedProcesses(join(this.config.dataDir, 'jail-spares'));
    const root = join(this.config.dataDir, 'work');
    const names = await readdir(root).catch(() => [] as string[]);
    if (names.length === 0) return;
    const unfinished = new Set(await this.uploads.findUnfinishedAmong(names));
    for (const name of names) if (!unfinished.has(name)) await rm(join(root, name), { recursive: true, force: true });
  }

  async ingest(uploadId: string): Promise<void> {
    const upload = await this.uploads.findById(uploadId);
    if (!upload) throw new UnrecoverableJobError(`upload ${uploadId} does not exist`);
    if (isFinishedUpload(upload.status)) return;
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
    const arriving = this.arriving.get(uploadId);
    this.arriving.delete(uploadId);
    clearTimeout(arriving?.unclaimed);
    try {
      await rm(work, { recursive: true, force: true });
      await mkdir(work, { recursive: true });
      // An upload converted as it arrived is read from disk only if that conversion is not kept.
      let rawPath = arriving ? undefined : await this.rawUploadPath(upload, work);
      phase('materialise');
      await withDatasetLock(this.databaseUrl, upload.datasetId, async () => {
        const dataset = await this.datasets.findForNewVersion(upload.datasetId);
        await this.episodes.deleteUnpublished({ datasetId: dataset.id, latestVersion: dataset.latestVersion });
        const version = dataset.latestVersion + 1;
        const early = arriving && this.keepsArriving(arriving, upload, dataset) ? arriving.conversion : undefined;
        if (arriving && !early) await arriving.conversion.abandon();
        let result: Awaited<ReturnType<IngestService['convert']>>;
        try {
          rawPath ??= early ? undefined : await this.rawUploadPath(upload, work);
          result = await this.convert({ upload, work, rawPath, early, dataset, version, warn });
        } catch (error) {
          // The conversion made as the upload arrived failed: what it handed over goes, and the stored
          // upload is converted as any other, so that the error an upload fails with is the usual one's.
          if (!early || !(error instanceof ImportError)) throw error;
          this.logger.info({ uploadId, code: error.code }, 'the conversion made as the upload arrived failed; converting it again');
          await this.removeWritten(upload);
          warnings.length = 0;
          droppedWarnings = 0;
          result = await this.convert({
            upload,
            work,
            rawPath: await this.rawUploadPath(upload, work),
            early: undefined,
            dataset,
            version,
            warn,
          });
        }
        phase(early ? 'convertedWhileArriving' : 'convert');
        if (droppedWarnings > 0)
          warnings.push({ code: 'WARNINGS_TRUNCATED', message: `${droppedWarnings} more warnings were not kept`, location: {} });
        await this.publish({
          upload,
          dataset,
          features: result.features,
          version,
          fps: result.fps,
          result,
          warnings,
          format: result.format,
        });
        phase('publish');
        this.logger.info(
          { uploadId, datasetId: upload.datasetId, version, episodes: result.episodeCount, steps: result.steps, ...timings },
          'upload published',
        );
      });
    } catch (caught) {
      // A full disk (the blob store's, or the work folder's as the child reports it) fails the
      // upload at once: waiting would hold its partial files. Other errors are retried (JobsService
      // waits out outages), and the last one fails the upload in gaveUp().
      const error =
        outageOf(caught) === 'disk'
          ? new ImportError('STORAGE_FULL', `the server ran out of disk space while importing this upload: ${(caught as Error).message}`)
          : caught;
      if (error instanceof ImportError) {
        await this.fail(upload, [error.toIssue()], warnings);
        // Out of space, the upload's own bytes go too: it cannot be retried, and they hold the disk.
        if (error.code === 'STORAGE_FULL') await this.blobs.delete({ key: upload.blobKey });
        throw new UnrecoverableJobError(`${error.code}: ${error.message}`);
      }
      throw error;
    } finally {
      await arriving?.conversion.abandon(); // a no-op once it was replayed
      await rm(work, { recursive: true, force: true });
    }
  }

  /**
   * Whether the conversion started as the upload arrived can stand for this one: it started from the
   * dataset as it is now (no other upload published meanwhile). Whether it succeeds is seen as it goes.
   */
  private keepsArriving(arriving: Arriving, upload: UploadRecord, dataset: DatasetForNewVersion): boolean {
    const now = this.conversionRequest(upload, dataset);
    const same =
      arriving.from.firstIndex === now.firstIndex &&
      arriving.from.defaultFps === now.defaultFps &&
      JSON.stringify(arriving.from.datasetFeatures) === JSON.stringify(now.datasetFeatures);
    if (!same) this.logger.info({ uploadId: upload.id }, 'the dataset moved while the upload arrived; converting it again');
    return same;
  }

  /** What a jailed child needs to convert `upload` into `dataset`'s next version. */
  private conversionRequest(
    upload: UploadToConvert,
    dataset: Pick<DatasetForNewVersion, 'features' | 'episodeCount' | 'robot'>,
  ): Omit<ConversionRequest, 'rawPath' | 'work'> {
    return {
      datasetId: upload.datasetId,
      fileName: safeFileName(upload.fileName),
      requestedFormat: upload.requestedFormat as FormatName | null,
      featureMap: upload.featureMap ?? {},
      dropFeatures: upload.dropFeatures,
      options: upload.options ?? {},
      datasetFeatures: dataset.features,
      firstIndex: dataset.episodeCount,
      defaultFps: dataset.robot.controlFrequencyHz,
      shardBytes: this.config.uploads.shardBytes,
      archiveLimits: this.config.uploads.archive,
      ingestLimits: this.config.uploads.ingestLimits,
    };
  }

  /**
   * Where the uploaded bytes are on local disk: read in place with the filesystem store, else
   * downloaded into the work folder first (the jail reads local files only).
   */
  private async rawUploadPath(upload: UploadRecord, work: string): Promise<string> {
    const inPlace = await this.blobs.localPath?.({ key: upload.blobKey });
    if (inPlace) return inPlace;
    const rawPath = join(work, 'raw');
    await pipeline(await this.blobs.get({ key: upload.blobKey }), createWriteStream(rawPath));
    return rawPath;
  }

  /**
   * Reads the upload into shards in a jailed child (jailed-conversion.ts) and takes each shard, and
   * each video it uses, into the blob store as it comes.
   */
  private async convert(params: {
    upload: UploadRecord;
    work: string;
    /** The stored upload on local disk; unset when `early` is kept instead. */
    rawPath: string | undefined;
    /** A conversion made as the upload arrived, kept: its results are taken over as if made now. */
    early: ArrivingConversion | undefined;
    dataset: DatasetForNewVersion;
    /** The version the upload will be published as: its episode rows are written with it, unpublished. */
    version: number;
    warn: (issue: ImportIssue) => void;
  }): Promise<{
    format: FormatName;
    features: FeatureSpec;
    fps: number;
    shards: ShardRecord[];
    episodeCount: number;
    /** The planner statistics were refreshed during the conversion: publishing need not. */
    analyzed: boolean;
    steps: number;
    stats: DatasetStatsAccumulator;
  }> {
    const { upload } = params;
    const shards: ShardRecord[] = [];
    let episodeCount = 0;
    let analyzed = false;
    const handlers: ConversionHandlers = {
      format: (format) => this.uploads.markProcessing(upload.id, format),
      warning: params.warn,
      progress: (count, expected) => this.uploads.setProgress(upload.id, expected ? Math.min(0.95, (count / expected) * 0.95) : 0.5),
      shard: async (shard) => {
        for (const video of shard.videos)
          if (!(await this.blobs.head({ key: video.key })))
            await this.blobs.put({ key: video.key, body: createReadStream(video.absolutePath), contentType: 'video/mp4' });
        // Keyed by upload and number: a re-run after a crash overwrites the same objects.
        const key = `datasets/${upload.datasetId}/shards/${upload.id}-${String(shard.number).padStart(4, '0')}.arrow`;
        if (this.blobs.adoptFile) await this.blobs.adoptFile({ key, path: shard.path });
        else {
          await this.blobs.put({ key, body: createReadStream(shard.path), contentType: 'application/vnd.apache.arrow.file' });
          await rm(shard.path);
        }
        shards.push({ key, bytes: shard.bytes, sha256: shard.sha256, episodes: shard.episodes.length });
        // Its episode rows now, while the child converts the next shard; invisible until the
        // version is published, and removed if the upload fails (or by the next attempt).
        const inserted = this.episodes.insertUnpublished({
          datasetId: upload.datasetId,
          version: params.version,
          uploadId: upload.id,
          rows: shard.episodes.map((episode) => episodeRow(upload.datasetId, key, episode)),
        });
        // The planner statistics publishing needs, taken while the last shard's rows go in (Postgres
        // has a core for each) from the upload's rows before them, when those are most of its rows:
        // the statistics then count this dataset's episodes to within that last shard.
        if (shard.last && episodeCount >= shard.episodes.length && this.episodes.analyzeDue(episodeCount)) {
          await Promise.all([inserted, this.episodes.analyze()]);
          analyzed = true;
        } else await inserted;
        episodeCount += shard.episodes.length;
      },
    };
    const outcome = params.early
      ? await params.early.replay(handlers)
      : await this.children.convert(
          { ...this.conversionRequest(upload, params.dataset), rawPath: params.rawPath!, work: params.work },
          handlers,
        );
    return {
      format: outcome.format,
      features: outcome.features,
      fps: outcome.fps,
      shards,
      episodeCount,
      analyzed,
      steps: outcome.steps,
      stats: DatasetStatsAccumulator.fromJSON(outcome.stats),
    };
  }

  private async publish(params: {
    upload: UploadRecord;
    dataset: DatasetForNewVersion;
    features: FeatureSpec;
    version: number;
    fps: number;
    result: Awaited<ReturnType<IngestService['convert']>>;
    warnings: ImportIssue[];
    format: FormatName;
  }): Promise<void> {
    const { upload, dataset, version, result } = params;
    const prefix = `datasets/${dataset.id}/versions/${version}`;
    const previous = dataset.latestVersion > 0 ? await this.versions.findBlobKeys(dataset.id, dataset.latestVersion) : null;

    // Statistics of version N+1 = those of N merged with this upload's (never recomputed from scratch).
    const stats = result.stats;
    if (previous) stats.merge(DatasetStatsAccumulator.fromJSON(await readJsonBlob(this.blobs, previous.sketchKey)));
    const previousManifest = previous
      ? ((await readJsonBlob(this.blobs, previous.manifestKey)) as { shards: ShardRecord[] })
      : { shards: [] };
    const episodeCount = dataset.episodeCount + result.episodeCount;
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

    // The episode rows in bulk, then the version in one short transaction (see VersionsRepository.publish).
    await this.versions.publish({
      datasetId: dataset.id,
      fromVersion: dataset.latestVersion,
      version,
      episodeCount,
      stepCount,
      manifestKey,
      statsKey,
      sketchKey,
      features: dataset.features ? undefined : params.features,
      episodes: [],
      insertedEpisodes: result.episodeCount,
      analyzed: result.analyzed,
      upload: {
        id: upload.id,
        format: params.format,
        episodeCount: result.episodeCount,
        stepCount: result.steps,
        warnings: params.warnings,
      },
    });
  }

  /** Fails an upload whose last attempt failed (`message`: why). */
  async gaveUp(uploadId: string, message: string): Promise<void> {
    const upload = await this.uploads.findById(uploadId);
    if (!upload || isFinishedUpload(upload.status)) return;
    await this.fail(upload, [{ code: 'INGEST_FAILED', message: `the upload could not be processed: ${message}`, location: {} }], []);
  }

  /** Fails an upload whose processing process died `deaths` times: it is not tried again. */
  async abandon(uploadId: string, deaths: number): Promise<void> {
    const upload = await this.uploads.findById(uploadId);
    if (!upload || isFinishedUpload(upload.status)) return;
    const message = `the process importing this upload died ${deaths} times (killed or out of memory); it is not tried again`;
    await this.fail(upload, [{ code: 'INGEST_CRASHED', message, location: {} }], []);
    await rm(join(this.config.dataDir, 'work', uploadId), { recursive: true, force: true });
  }

  /** Marks the upload failed and removes what it wrote: nothing of a failed upload stays behind. */
  private async fail(upload: UploadRecord, errors: ImportIssue[], warnings: ImportIssue[]): Promise<void> {
    await this.uploads.markFailed(upload.id, errors, warnings);
    await this.removeWritten(upload);
  }

  /** Removes the episode rows and shards the upload's conversion wrote (none of it is published). */
  private async removeWritten(upload: UploadRecord): Promise<void> {
    await this.episodes.deleteUnpublishedOf(upload.id);
    for await (const blob of this.blobs.list({ prefix: `datasets/${upload.datasetId}/shards/${upload.id}-` }))
      await this.blobs.delete({ key: blob.key });
  }
}

/** A file name safe to use on local disk, keeping the extension importers may look at. */
function safeFileName(name: string | null): string {
  const cleaned = basename(name ?? 'upload').replace(/[^A-Za-z0-9._-]/g, '_');
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? 'upload' : cleaned;
}

/** The row of an episode of a shard, as publishing makes it visible. */
function episodeRow(datasetId: string, shardKey: string, written: ConvertedEpisode): NewEpisodeRow {
  return {
    episodeIndex: written.episodeIndex,
    sourceEpisode: written.episode.sourceEpisode,
    length: written.episode.length,
    task: written.episode.task,
    success: written.episode.success,
    shardKey,
    batchStart: written.batchStart,
    batchCount: written.batchCount,
    byteOffset: written.byteOffset,
    byteLength: written.byteLength,
    checksum: written.checksum,
    metadata: written.episode.metadata,
    bucket: episodeBucket(datasetId, written.episodeIndex),
  };
}
