import type { DomainProviders } from '../common/domain.js';
import { KeyCache } from './key-cache.js';
import { KeysRepository } from './keys.repository.js';
import { KeysService } from './keys.service.js';

export * from './auth.errors.js';
export * from './principal.js';
export * from './keys.service.js';

export const authDomain: DomainProviders = { providers: [KeysRepository, KeyCache, KeysService], exports: [KeysService] };
