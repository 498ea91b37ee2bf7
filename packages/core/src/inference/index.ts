import type { DomainProviders } from '../common/domain.js';
import { InferenceService } from './inference.service.js';
import { PolicyPool } from './policy-pool.js';
import { SessionStepWriter } from './session-step-writer.js';
import { SessionsRepository } from './sessions.repository.js';
import { SessionsService } from './sessions.service.js';

export * from './inference.errors.js';
export * from './inference.service.js';
export * from './observation.js';
export * from './openpi-frames.js';
export * from './sessions.service.js';
export * from './policy-pool.js';

/** Stateless actions and recorded sessions (which become episodes through an upload). */
export const inferenceDomain: DomainProviders = {
  providers: [PolicyPool, InferenceService, SessionsRepository, SessionStepWriter, SessionsService],
  exports: [InferenceService, SessionsService],
};
