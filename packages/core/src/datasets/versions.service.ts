import { Inject, Injectable } from '@nestjs/common';
import type { EpisodeQuery, Page } from '@kura/schema';
import type { Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readJsonBlob, writeJsonBlob } from '../blobs/json-blobs.js';
import { SliceReader, wholeEpisodesOf } from '../slices/slice-reader.js';
import { sliceStats } from '../slices/slice-stats.js';
import { isHeldOut, SAMPLE_BUCKET_LIMIT } from './episode-buckets.js';
import { AppError } from '../errors/app-error.js';
import { EpisodesRepository } from '../episodes/episodes.repository.js';
import { DatasetsService, type DatasetReach } from './datasets.service.js';
import { VersionsRepository, type DatasetVersionRecord } from './versions.repository.js';
import { decodeNumberCursor, toPage } from '../common/pagination.js';

export interface VersionView {
  version: number;
  episodeCount: number;
  stepCount: number;
  uploadId: string;
  createdAt: string;
}

export interface EpisodeView {
  episodeIndex: number;
  /** The source's own id of the episode: `29` (LeRobot), `demo_7`, `episode_3.hdf5`, `<tfrecord file>#12`, an NDJSON `episode`. */
  sourceEpisode: string;
  length: number;
  task: string | null;
  success: boolean | null;
  uploadId: string;
  version: number;
  /** Kept for evaluation: slices of non-admin keys leave it out. */
  heldOut: boolean;
  /** In the public part of a `sample` dataset. */
  publicSample: boolean;
}

const versionNotFound = (datasetId: string, version: number | undefined) =>
  new AppError({
    code: 'VERSION_NOT_FOUND',
    kind: 'not_found',
    message:
      version === undefined ? `dataset "${datasetId}" has no published version yet` : `dataset "${datasetId}" has no version ${version}`,
    details: { datasetId, ...(version !== undefined ? { version } : {}) },
    location: { field: 'version' },
  });

/** Published versions of a dataset, their episodes and statistics. */
@Injectable()
export class VersionsService {
  constructor(
    private readonly datasets: DatasetsService,
    private readonly versions: VersionsRepository,
    private readonly episodes: EpisodesRepository,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly reader: SliceReader,
  ) {}

  async list(principal: Principal, datasetId: string, query: { limit: number; cursor?: string | undefined }): Promise<Page<VersionView>> {
    await this.datasets.findVisible(principal, datasetId);
    const after = decodeNumberCursor(query.cursor);
    const rows = await this.versions.list({ datasetId, afterVersion: after, take: query.limit + 1 });
    return toPage(rows, query.limit, toVersionView, (row) => row.version);
  }

  /**
   * A version's episodes by index (the latest version when none is named), filtered. Callers
   * without full access to a `sample` dataset see its public part only.
   */
  async listEpisodes(principal: Principal, datasetId: string, query: EpisodeQuery): Promise<Page<EpisodeView>> {
    const { reach, version } = await this.resolve(principal, datasetId, query.version);
    const fallbackIndex = reach.dataset.access === 'sample' ? await this.episodes.sampleFallbackIndex(datasetId) : undefined;
    const rows = await this.episodes.list({
      datasetId,
      version: version.version,
      episodes: query.episodes,
      task: query.task,
      success: query.success,
      minLength: query.minLength,
      maxLength: query.maxLength,
      uploadId: query.uploadId,
      sampleOnly: reach.episodes === 'sample' ? { fallbackIndex } : undefined,
      afterIndex: decodeNumberCursor(query.cursor),
      take: query.limit + 1,
    });
    return toPage(
      rows,
      query.limit,
      (row) => ({
        episodeIndex: row.episodeIndex,
        sourceEpisode: row.sourceEpisode,
        length: row.length,
        task: row.task,
        success: row.success,
        uploadId: row.uploadId,
        version: row.version,
        heldOut: isHeldOut(row.bucket),
        publicSample: reach.dataset.access === 'sample' && (row.bucket < SAMPLE_BUCKET_LIMIT || row.episodeIndex === fallbackIndex),
      }),
      (row) => row.episodeIndex,
    );
  }

  /**
   * The per-feature statistics of a version (the latest when none is named). Callers limited to a
   * `sample` dataset's public part get the statistics of that part, computed from its rows once and
   * kept beside the version's own.
   */
  async stats(
    principal: Principal,
    datasetId: string,
    requested: number | undefined,
  ): Promise<{ version: number; scope: 'all' | 'sample'; features: unknown }> {
    const { reach, version } = await this.resolve(principal, datasetId, requested);
    if (reach.episodes === 'full')
      return { version: version.version, scope: 'all', features: await readJsonBlob(this.blobs, version.statsKey) };
    const key = version.statsKey.replace(/stats\.json$/, 'stats.sample.json');
    if (!(await this.blobs.head({ key }))) {
      const fallbackIndex = await this.episodes.sampleFallbackIndex(datasetId);
      const sample: number[] = [];
      let afterIndex: number | undefined;
      for (;;) {
        const page = await this.episodes.list({
          datasetId,
          version: version.version,
          sampleOnly: { fallbackIndex },
          afterIndex,
          take: 10_000,
        });
        sample.push(...page.map((row) => row.episodeIndex));
        if (page.length < 10_000) break;
        afterIndex = page[page.length - 1]!.episodeIndex;
      }
      const features = reach.dataset.features ?? {};
      const plan = await this.reader.plan(wholeEpisodesOf({ datasetId, version: version.version, features, episodes: sample }), {
        forward: false,
      });
      if (plan.kind !== 'decode') throw new Error('statistics need decoded batches');
      await writeJsonBlob(this.blobs, key, await sliceStats(plan));
    }
    return { version: version.version, scope: 'sample', features: await readJsonBlob(this.blobs, key) };
  }

  private async resolve(
    principal: Principal,
    datasetId: string,
    requested: number | undefined,
  ): Promise<{ reach: DatasetReach; version: DatasetVersionRecord }> {
    const reach = await this.datasets.reach(principal, datasetId);
    const number = requested ?? reach.dataset.latestVersion;
    const version = number > 0 ? await this.versions.find(datasetId, number) : null;
    if (!version) throw versionNotFound(datasetId, requested);
    return { reach, version };
  }
}

function toVersionView(row: DatasetVersionRecord): VersionView {
  return {
    version: row.version,
    episodeCount: row.episodeCount,
    stepCount: Number(row.stepCount),
    uploadId: row.uploadId,
    createdAt: row.createdAt.toISOString(),
  };
}
