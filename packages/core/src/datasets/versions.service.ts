import { Inject, Injectable } from '@nestjs/common';
import type { Page } from '@kura/schema';
import type { Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readJsonBlob } from '../blobs/json-blobs.js';
import { AppError } from '../errors/app-error.js';
import { EpisodesRepository } from '../episodes/episodes.repository.js';
import { DatasetsService } from './datasets.service.js';
import { VersionsRepository, type DatasetVersionRecord } from './versions.repository.js';

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
    const after = query.cursor === undefined ? undefined : decodeNumberCursor(query.cursor);
    const rows = await this.versions.list({ datasetId, afterVersion: after, take: query.limit + 1 });
    return numberPage(rows, query.limit, (row) => row.version, toVersionView);
  }

  /** A version's episodes by index; the latest version when none is named. */
  async listEpisodes(
    principal: Principal,
    datasetId: string,
    query: { version?: number | undefined; limit: number; cursor?: string | undefined },
  ): Promise<Page<EpisodeView>> {
    const version = await this.resolve(principal, datasetId, query.version);
    const after = query.cursor === undefined ? undefined : decodeNumberCursor(query.cursor);
    const rows = await this.episodes.list({ datasetId, version: version.version, afterIndex: after, take: query.limit + 1 });
    return numberPage(
      rows,
      query.limit,
      (row) => row.episodeIndex,
      (row) => ({
        episodeIndex: row.episodeIndex,
        length: row.length,
        task: row.task,
        success: row.success,
        uploadId: row.uploadId,
        version: row.version,
      }),
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

function decodeNumberCursor(cursor: string): number {
  const value = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!Number.isInteger(value) || value < 0)
    throw new AppError({
      code: 'INVALID_CURSOR',
      kind: 'invalid',
      message: 'cursor is not one this server issued',
      location: { field: 'cursor' },
    });
  return value;
}

function numberPage<Row, Item>(rows: Row[], limit: number, keyOf: (row: Row) => number, toItem: (row: Row) => Item): Page<Item> {
  const pageRows = rows.slice(0, limit);
  const last = pageRows[pageRows.length - 1];
  return {
    items: pageRows.map(toItem),
    nextCursor: rows.length > limit && last !== undefined ? Buffer.from(String(keyOf(last))).toString('base64url') : null,
  };
}
