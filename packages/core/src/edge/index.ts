import type { DomainProviders } from '../common/domain.js';
import { EdgeExportsService } from './edge-exports.service.js';
import { EdgeKeysService } from './edge-keys.service.js';

export * from './edge.errors.js';
export * from './edge-exports.service.js';
export * from './edge-keys.service.js';
export * from './edge-package.js';
export * from './usage-chain.js';

export const edgeDomain: DomainProviders = {
  providers: [EdgeKeysService, EdgeExportsService],
  exports: [EdgeKeysService, EdgeExportsService],
};
