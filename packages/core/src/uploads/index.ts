import type { DomainProviders } from '../common/domain.js';
import { IngestUploadJob } from './ingest/ingest-upload.job.js';
import { IngestService } from './ingest/ingest.service.js';
import { UploadsRepository } from './uploads.repository.js';
import { UploadsService } from './uploads.service.js';

export * from './uploads.errors.js';
export * from './uploads.service.js';
export * from './ingest/ingest.service.js';

/** Uploads (single-request and multipart) and their ingest into a new dataset version. */
export const uploadsDomain: DomainProviders = {
  providers: [UploadsRepository, UploadsService, IngestService],
  exports: [UploadsService],
  jobHandlers: [IngestUploadJob],
};
