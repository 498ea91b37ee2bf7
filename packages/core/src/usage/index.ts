import type { DomainProviders } from '../common/domain.js';
import { QuotaService } from './quota.service.js';
import { UsageMeter } from './usage.meter.js';
import { UsageRepository } from './usage.repository.js';
import { UsageService } from './usage.service.js';

export * from './usage.errors.js';
export * from './usage.service.js';
export * from './usage.meter.js';
export * from './quota.service.js';
export * from './quota-counters.js';
export * from './usage.repository.js';

export const usageDomain: DomainProviders = {
  providers: [UsageRepository, UsageMeter, UsageService, QuotaService],
  exports: [UsageService, QuotaService],
};
