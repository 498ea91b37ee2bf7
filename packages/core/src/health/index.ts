import type { DomainProviders } from '../common/domain.js';
import { DatabaseHealth } from '../database/database-health.js';
import { HealthService } from './health.service.js';

export * from './health.service.js';

export const healthDomain: DomainProviders = { providers: [DatabaseHealth, HealthService], exports: [HealthService] };
