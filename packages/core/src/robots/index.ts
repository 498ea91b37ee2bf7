import type { DomainProviders } from '../common/domain.js';
import { RobotsRepository } from './robots.repository.js';
import { RobotsService } from './robots.service.js';

export * from './robots.errors.js';
export * from './robots.service.js';

export const robotsDomain: DomainProviders = { providers: [RobotsRepository, RobotsService], exports: [RobotsService] };
