import type { DomainProviders } from '../common/domain.js';
import { DatasetAccessCache } from './dataset-access-cache.js';
import { DatasetReachService } from './dataset-reach.service.js';
import { DatasetsRepository } from './datasets.repository.js';
import { DatasetsService } from './datasets.service.js';
import { EpisodesRepository } from './episodes/episodes.repository.js';
import { EpisodesService } from './episodes/episodes.service.js';
import { ShardReader } from './episodes/shard-reader.js';
import { GrantsRepository } from './grants.repository.js';
import { VersionsRepository } from './versions.repository.js';
import { VersionsService } from './versions.service.js';

export * from './datasets.errors.js';
export * from './datasets.service.js';
export * from './versions.service.js';
export * from './episodes/episodes.repository.js';
export * from './episodes/episodes.service.js';
export * from './episodes/episodes.errors.js';
export { episodeBucket, SAMPLE_BUCKET_LIMIT, HELD_OUT_BUCKET_START } from './episode-buckets.js';

/** Datasets, their grants, published versions and episodes (rows and stored shards). */
export const datasetsDomain: DomainProviders = {
  providers: [
    DatasetsRepository,
    DatasetAccessCache,
    DatasetReachService,
    DatasetsService,
    GrantsRepository,
    VersionsRepository,
    VersionsService,
    EpisodesRepository,
    EpisodesService,
    ShardReader,
  ],
  exports: [DatasetsService, VersionsService, EpisodesService],
};
