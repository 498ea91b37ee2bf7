import type { DomainProviders } from '../common/domain.js';
import { DeleteBlobJob } from './delete-blob.job.js';

export * from './blob-store.js';
export * from './filesystem-blob-store.js';
export * from './s3-blob-store.js';

/** The blob store itself is infrastructure (CoreModule builds it from the config). */
export const blobsDomain: DomainProviders = { providers: [], exports: [], jobHandlers: [DeleteBlobJob] };
