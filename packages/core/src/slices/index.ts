import type { DomainProviders } from '../common/domain.js';
import { DatasetStatsService } from './dataset-stats.service.js';
import { SliceDownloadService } from './slice-download.service.js';
import { SliceReader } from './slice-reader.js';
import { SlicesRepository } from './slices.repository.js';
import { SlicesService } from './slices.service.js';

export * from './slices.service.js';
export * from './slice-download.service.js';
export * from './dataset-stats.service.js';

/** Slices (saved selections across datasets), their downloads and the statistics read through them. */
export const slicesDomain: DomainProviders = {
  providers: [SliceReader, SlicesRepository, SlicesService, SliceDownloadService, DatasetStatsService],
  exports: [SlicesService, SliceDownloadService, DatasetStatsService],
};
