import type { DomainProviders } from '../common/domain.js';
import { QuotaService } from './quota.service.js';
import { UsageMeter } from './usage.meter.js';
import { UsageService } from './usage.service.js';

export * from './usage.errors.js';
export * from './usage.service.js';
export * from './usage.meter.js';
export * from './quota.service.js';
export * from './quota-counters.js';

export const usageDomain: DomainProviders = { providers: [UsageMeter, UsageService, QuotaService], exports: [UsageService, QuotaService] };
