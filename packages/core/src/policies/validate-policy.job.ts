import { Injectable } from '@nestjs/common';
import type { JobPayload } from '@kura/schema';
import type { JobHandler } from '../jobs/job-handler.js';
import { PolicyValidationService } from './policy-validation.service.js';

/** Validates one uploaded policy bundle; a bad bundle ends `rejected`, only infrastructure errors retry. */
@Injectable()
export class ValidatePolicyJob implements JobHandler<'policies.validate'> {
  readonly jobName = 'policies.validate' as const;

  constructor(private readonly validation: PolicyValidationService) {}

  handle(payload: JobPayload<'policies.validate'>): Promise<void> {
    return this.validation.validate(payload.policyId);
  }

  abandon(payload: JobPayload<'policies.validate'>, context: { deaths: number }): Promise<void> {
    return this.validation.abandon(payload.policyId, context.deaths);
  }
}
