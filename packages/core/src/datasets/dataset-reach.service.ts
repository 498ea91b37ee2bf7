import { Injectable } from '@nestjs/common';
import { anonymous, isAdmin, ownsOrAdmin, type Principal } from '../auth/principal.js';
import { KeysRepository } from '../auth/keys.repository.js';
import { DatasetAccessCache, type DatasetAccessRecord } from './dataset-access-cache.js';
import { datasetNotFound } from './datasets.errors.js';
import { DatasetsRepository, type DatasetRecord } from './datasets.repository.js';
import { GrantsRepository } from './grants.repository.js';

/** What of one dataset's episodes a caller may read; see DatasetReachService.reach. */
export interface ReadLevel {
  episodes: 'full' | 'sample';
  /** Whether held-out episodes may be read (admins). */
  heldOut: boolean;
}

/** A caller's access to one dataset, with the dataset. */
export interface DatasetReach extends ReadLevel {
  dataset: DatasetRecord;
}

/**
 * Who may read which of a dataset's episodes: the one rule slices, downloads, statistics, policies'
 * normalization, evaluations and sessions all go through. Apart from DatasetsService so that jobs
 * (policy validation, evaluation) can use it without depending on everything DatasetsService does.
 */
@Injectable()
export class DatasetReachService {
  constructor(
    private readonly datasets: DatasetsRepository,
    private readonly grants: GrantsRepository,
    private readonly keys: KeysRepository,
    private readonly cache: DatasetAccessCache,
  ) {}

  /**
   * What of a dataset's episodes the caller may read (DESIGN, access levels): `full` for public
   * datasets, owners, grantees and admins; `sample` (the public 10 %) for anyone else on a `sample`
   * dataset. Private datasets are DATASET_NOT_FOUND to everyone else. Held-out episodes are readable
   * by admins only, whatever the level.
   */
  async reach(principal: Principal, id: string): Promise<DatasetReach> {
    const dataset = await this.datasets.findById(id);
    if (!dataset) throw datasetNotFound(id);
    return { dataset, ...(await this.levelOf(principal, dataset)) };
  }

  /**
   * `reach` without the dataset's record, for checks on every read (slice downloads): the access
   * level and owner come from DatasetAccessCache, so a request usually costs no query at all.
   */
  async readLevel(principal: Principal, id: string): Promise<ReadLevel> {
    let dataset = this.cache.get(id);
    if (!dataset) {
      const readStarted = this.cache.readStarted();
      dataset = (await this.datasets.findAccess(id)) ?? undefined;
      if (!dataset) throw datasetNotFound(id);
      this.cache.set(id, dataset, readStarted);
    }
    return this.levelOf(principal, dataset);
  }

  private async levelOf(principal: Principal, dataset: DatasetAccessRecord): Promise<ReadLevel> {
    const heldOut = isAdmin(principal);
    if (dataset.access === 'public' || (principal.kind === 'key' && ownsOrAdmin(principal, dataset.ownerKeyId))) {
      return { episodes: 'full', heldOut };
    }
    const granted = principal.kind === 'key' && (await this.grants.exists(dataset.id, principal.keyId));
    if (granted) return { episodes: 'full', heldOut };
    if (dataset.access === 'sample') return { episodes: 'sample', heldOut };
    throw datasetNotFound(dataset.id);
  }

  /**
   * `reach` for the key a stored reference acts for — a policy's owner for its normalization dataset,
   * an evaluation's owner for its dataset — as that key is now: its current role and grants, and only
   * what anybody may read once it is revoked. Called at each use, so a revoked grant takes effect.
   */
  async reachOnBehalfOf(keyId: string, datasetId: string): Promise<DatasetReach> {
    const key = await this.keys.findById(keyId);
    const principal: Principal = key && key.revokedAt === null ? { kind: 'key', keyId: key.id, role: key.role, name: key.name } : anonymous;
    return this.reach(principal, datasetId);
  }
}
