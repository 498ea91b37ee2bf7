import type { DomainProviders } from '../common/domain.js';
import { HealthService } from './health.service.js';

export * from './health.service.js';

export const healthDomain: DomainProviders = { providers: [HealthService], exports: [HealthService] };
