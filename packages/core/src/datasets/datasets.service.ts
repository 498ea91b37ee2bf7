import { Injectable } from '@nestjs/common';
import type { CreateDatasetRequest, DatasetAccess, FeatureSpec, ListQuery, Page } from '@kura/schema';
import { isAdmin, requireRole, type Principal } from '../auth/principal.js';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import { RobotsService } from '../robots/robots.service.js';
import { AppError } from '../errors/app-error.js';
import { datasetNameTaken, datasetNotFound, datasetRobotUnknown } from './datasets.errors.js';
import { DatasetsRepository, type DatasetRecord, type DatasetVisibility } from './datasets.repository.js';

/** A dataset as the API shows it. */
export interface DatasetView {
  id: string;
  name: string;
  robotId: string;
  access: DatasetAccess;
  license: string | null;
  description: string | null;
  features: FeatureSpec | null;
  ownerKeyId: string;
  latestVersion: number;
  episodeCount: number;
  stepCount: number;
  createdAt: string;
}

@Injectable()
export class DatasetsService {
  constructor(
    private readonly datasets: DatasetsRepository,
    private readonly robots: RobotsService,
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
          : { kind: 'open-or-owned', ownerKeyId: principal.keyId };
    const rows = await this.datasets.list({
      afterId: decodeCursor(query.cursor),
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
    const dataset = await this.datasets.findById(id);
    if (!dataset || !canSee(principal, dataset)) throw datasetNotFound(id);
    return dataset;
  }
}

function canSee(principal: Principal, dataset: DatasetRecord): boolean {
  if (dataset.access !== 'private') return true;
  return principal.kind === 'key' && (principal.role === 'admin' || principal.keyId === dataset.ownerKeyId);
}

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
