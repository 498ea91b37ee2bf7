import { Injectable } from '@nestjs/common';
import type { JobPayload } from '@kura/schema';
import type { JobHandler } from '../jobs/job-handler.js';
import { PolicyValidationService } from './policy-validation.service.js';

/**
 * Validates one uploaded policy bundle; a bad bundle ends `rejected`. Only a failure of Kura's own
 * storage is retried, and on the last attempt it too ends `rejected` (POLICY_VALIDATION_FAILED).
 */
@Injectable()
export class ValidatePolicyJob implements JobHandler<'policies.validate'> {
  readonly jobName = 'policies.validate' as const;

  constructor(private readonly validation: PolicyValidationService) {}

  handle(payload: JobPayload<'policies.validate'>, context: { attempt: number; maxAttempts: number }): Promise<void> {
    return this.validation.validate(payload.policyId, { attempt: context.attempt, maxAttempts: context.maxAttempts });
  }

  abandon(payload: JobPayload<'policies.validate'>, context: { deaths: number }): Promise<void> {
    return this.validation.abandon(payload.policyId, context.deaths);
  }
}
