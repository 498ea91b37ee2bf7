import { Injectable } from '@nestjs/common';
import type { Page, VersionView } from '@kura/schema';
import type { Principal } from '../auth/principal.js';
import { versionNotFound } from './datasets.errors.js';
import { DatasetsService, type DatasetReach } from './datasets.service.js';
import { VersionsRepository, type DatasetVersionRecord } from './versions.repository.js';
import { decodeNumberCursor, toPage } from '../common/pagination.js';

/** Published versions of a dataset. */
@Injectable()
export class VersionsService {
  constructor(
    private readonly datasets: DatasetsService,
    private readonly versions: VersionsRepository,
  ) {}

  async list(principal: Principal, datasetId: string, query: { limit: number; cursor?: string | undefined }): Promise<Page<VersionView>> {
    await this.datasets.findVisible(principal, datasetId);
    const after = decodeNumberCursor(query.cursor);
    const rows = await this.versions.list({ datasetId, afterVersion: after, take: query.limit + 1 });
    return toPage(rows, query.limit, toVersionView, (row) => row.version);
  }

  /** The dataset as the caller may reach it and the named version (the latest when none is named). */
  async resolve(
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
