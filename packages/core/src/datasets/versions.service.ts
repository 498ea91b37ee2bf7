import { Inject, Injectable } from '@nestjs/common';
import type { Page } from '@kura/schema';
import type { Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readJsonBlob } from '../blobs/json-blobs.js';
import { AppError } from '../errors/app-error.js';
import { EpisodesRepository } from '../episodes/episodes.repository.js';
import { DatasetsService } from './datasets.service.js';
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
  length: number;
  task: string | null;
  success: boolean | null;
  uploadId: string;
  version: number;
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
  ) {}

  async list(principal: Principal, datasetId: string, query: { limit: number; cursor?: string | undefined }): Promise<Page<VersionView>> {
    await this.datasets.findVisible(principal, datasetId);
    const after = decodeNumberCursor(query.cursor);
    const rows = await this.versions.list({ datasetId, afterVersion: after, take: query.limit + 1 });
    return toPage(rows, query.limit, toVersionView, (row) => row.version);
  }

  /** A version's episodes by index; the latest version when none is named. */
  async listEpisodes(
    principal: Principal,
    datasetId: string,
    query: { version?: number | undefined; limit: number; cursor?: string | undefined },
  ): Promise<Page<EpisodeView>> {
    const version = await this.resolve(principal, datasetId, query.version);
    const after = decodeNumberCursor(query.cursor);
    const rows = await this.episodes.list({ datasetId, version: version.version, afterIndex: after, take: query.limit + 1 });
    return toPage(
      rows,
      query.limit,
      (row) => ({
        episodeIndex: row.episodeIndex,
        length: row.length,
        task: row.task,
        success: row.success,
        uploadId: row.uploadId,
        version: row.version,
      }),
      (row) => row.episodeIndex,
    );
  }

  /** The per-feature statistics of a version (the latest when none is named). */
  async stats(principal: Principal, datasetId: string, requested: number | undefined): Promise<{ version: number; features: unknown }> {
    const version = await this.resolve(principal, datasetId, requested);
    return { version: version.version, features: await readJsonBlob(this.blobs, version.statsKey) };
  }

  private async resolve(principal: Principal, datasetId: string, requested: number | undefined): Promise<DatasetVersionRecord> {
    const dataset = await this.datasets.findVisible(principal, datasetId);
    const number = requested ?? dataset.latestVersion;
    const version = number > 0 ? await this.versions.find(datasetId, number) : null;
    if (!version) throw versionNotFound(datasetId, requested);
    return version;
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
