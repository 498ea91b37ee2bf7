import { Injectable } from '@nestjs/common';
import type { CreateDatasetRequest, DatasetView, GrantView, ListQuery, Page } from '@kura/schema';
import { isAdmin, ownsOrAdmin, requireRole, type Principal } from '../auth/principal.js';
import { KeysRepository } from '../auth/keys.repository.js';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import { RobotsService } from '../robots/robots.service.js';
import { AppError } from '../errors/app-error.js';
import { DatasetReachService, type DatasetReach, type ReadLevel } from './dataset-reach.service.js';
import { GrantsRepository, type GrantRecord } from './grants.repository.js';
import {
  datasetNameTaken,
  datasetNotOwned,
  datasetReferenceNotFound,
  datasetRobotUnknown,
  grantKeyUnknown,
  grantNotFound,
} from './datasets.errors.js';
import { DatasetsRepository, type DatasetRecord, type DatasetVisibility } from './datasets.repository.js';

@Injectable()
export class DatasetsService {
  constructor(
    private readonly datasets: DatasetsRepository,
    private readonly robots: RobotsService,
    private readonly grants: GrantsRepository,
    private readonly keys: KeysRepository,
    private readonly access: DatasetReachService,
  ) {}

  async create(principal: Principal, request: CreateDatasetRequest): Promise<DatasetView> {
    requireRole(principal, ['operator'], 'create datasets');
    try {
      await this.robots.findVisible(principal, request.robotId);
    } catch (error) {
      if (error instanceof AppError && error.code === 'ROBOT_NOT_FOUND') throw datasetRobotUnknown(request.robotId);
      throw error;
    }
    const created = await this.datasets.create({
      id: newId('ds'),
      name: request.name,
      robotId: request.robotId,
      access: request.access,
      license: request.license ?? null,
      description: request.description ?? null,
      features: request.features ?? null,
      ownerKeyId: principal.keyId,
    });
    if (created === 'name-taken') throw datasetNameTaken(request.name);
    return toView(created);
  }

  /** Datasets the caller may see: public and sample ones for everybody, private ones for their owner and admins. */
  async list(principal: Principal, query: ListQuery & { robotId?: string | undefined }): Promise<Page<DatasetView>> {
    const visibility: DatasetVisibility =
      principal.kind === 'anonymous'
        ? { kind: 'open' }
        : isAdmin(principal)
          ? { kind: 'all' }
          : { kind: 'open-owned-or-granted', keyId: principal.keyId };
    const rows = await this.datasets.list({
      afterId: decodeCursor(query.cursor, 'ds'),
      take: query.limit + 1,
      visibility,
      ...(query.robotId ? { robotId: query.robotId } : {}),
    });
    return toPage(rows, query.limit, toView);
  }

  /** The dataset, or DATASET_NOT_FOUND when it does not exist or the caller may not see it (no existence leak). */
  async get(principal: Principal, id: string): Promise<DatasetView> {
    return toView(await this.findVisible(principal, id));
  }

  async findVisible(principal: Principal, id: string): Promise<DatasetRecord> {
    return (await this.reach(principal, id)).dataset;
  }

  /** What of a dataset's episodes the caller may read: see DatasetReachService.reach, the one rule. */
  async reach(principal: Principal, id: string): Promise<DatasetReach> {
    return this.access.reach(principal, id);
  }

  /** `reach` without the dataset's record, from a cache: for access checks on every read. */
  async readLevel(principal: Principal, id: string): Promise<ReadLevel> {
    return this.access.readLevel(principal, id);
  }

  /**
   * `reach` for a dataset named in a request body (a slice source, an evaluation, a session): unknown
   * or invisible is 422 DATASET_NOT_FOUND at `field`, like any unknown id in a body.
   */
  async reachReferenced(principal: Principal, id: string, field: string): Promise<DatasetReach> {
    try {
      return await this.reach(principal, id);
    } catch (error) {
      if (error instanceof AppError && error.code === 'DATASET_NOT_FOUND') {
        throw datasetReferenceNotFound(id, field);
      }
      throw error;
    }
  }

  /** Gives a key full access to a `sample` or `private` dataset; owner or admin only. */
  async grant(principal: Principal, datasetId: string, keyId: string): Promise<GrantView> {
    const dataset = await this.findOwned(principal, datasetId, 'grant access to it');
    const key = await this.keys.findById(keyId);
    if (!key || key.revokedAt) throw grantKeyUnknown(keyId);
    return toGrantView(
      await this.grants.upsert({ datasetId: dataset.id, keyId, grantedBy: principal.kind === 'key' ? principal.keyId : '' }),
    );
  }

  async revokeGrant(principal: Principal, datasetId: string, keyId: string): Promise<void> {
    await this.findOwned(principal, datasetId, 'revoke access to it');
    if (!(await this.grants.delete(datasetId, keyId))) throw grantNotFound(keyId);
  }

  async listGrants(principal: Principal, datasetId: string, query: ListQuery): Promise<Page<GrantView>> {
    await this.findOwned(principal, datasetId, 'list its grants');
    const rows = await this.grants.list({ datasetId, afterKeyId: decodeCursor(query.cursor, 'key'), take: query.limit + 1 });
    return toPage(rows, query.limit, toGrantView, (row) => row.keyId);
  }

  /** The dataset when the caller owns it (or is an admin); 404 when it may not see it, 403 when it only may not change it. */
  async findOwned(principal: Principal, datasetId: string, action: string): Promise<DatasetRecord> {
    requireRole(principal, ['operator', 'developer', 'user'], action);
    const { dataset } = await this.reach(principal, datasetId);
    if (!ownsOrAdmin(principal, dataset.ownerKeyId)) {
      throw datasetNotOwned(datasetId, action);
    }
    return dataset;
  }
}

export type { DatasetReach, ReadLevel } from './dataset-reach.service.js';

const toGrantView = (grant: GrantRecord): GrantView => ({ ...grant, createdAt: grant.createdAt.toISOString() });

function toView(dataset: DatasetRecord): DatasetView {
  return {
    id: dataset.id,
    name: dataset.name,
    robotId: dataset.robotId,
    access: dataset.access,
    license: dataset.license,
    description: dataset.description,
    features: dataset.features,
    ownerKeyId: dataset.ownerKeyId,
    latestVersion: dataset.latestVersion,
    episodeCount: dataset.episodeCount,
    stepCount: Number(dataset.stepCount),
    createdAt: dataset.createdAt.toISOString(),
  };
}
