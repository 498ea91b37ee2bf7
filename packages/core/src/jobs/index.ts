import type { DomainProviders } from '../common/domain.js';
import { JobRepository } from './job.repository.js';
import { JobsService } from './jobs.service.js';

export * from './job-queue.js';
export * from './jobs.service.js';

export const jobsDomain: DomainProviders = { providers: [JobRepository, JobsService], exports: [JobsService] };
