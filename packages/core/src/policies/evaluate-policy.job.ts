import { Injectable } from '@nestjs/common';
import type { JobPayload } from '@kura/schema';
import type { JobHandler } from '../jobs/job-handler.js';
import { PolicyEvaluationService } from './policy-evaluation.service.js';

/** Runs one evaluation; a policy or dataset problem ends it `failed` with a code, infrastructure errors retry. */
@Injectable()
export class EvaluatePolicyJob implements JobHandler<'policies.evaluate'> {
  readonly jobName = 'policies.evaluate' as const;

  constructor(private readonly evaluation: PolicyEvaluationService) {}

  handle(payload: JobPayload<'policies.evaluate'>): Promise<void> {
    return this.evaluation.run(payload.evaluationId);
  }

  abandon(payload: JobPayload<'policies.evaluate'>, context: { deaths: number }): Promise<void> {
    return this.evaluation.abandon(payload.evaluationId, context.deaths);
  }
}
