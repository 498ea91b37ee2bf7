import { Injectable } from '@nestjs/common';
import type { JobPayload } from '@kura/schema';
import type { JobHandler } from '../jobs/job-handler.js';
import { TrainerValidationService } from './trainer-validation.service.js';

/** Validates one uploaded trainer bundle: `ready` or `rejected` with codes. */
@Injectable()
export class ValidateTrainerJob implements JobHandler<'trainers.validate'> {
  readonly jobName = 'trainers.validate' as const;

  constructor(private readonly validation: TrainerValidationService) {}

  handle(payload: JobPayload<'trainers.validate'>, context: { attempt: number; maxAttempts: number }): Promise<void> {
    return this.validation.validate(payload.trainerId, context);
  }

  abandon(payload: JobPayload<'trainers.validate'>, context: { deaths: number }): Promise<void> {
    return this.validation.abandon(payload.trainerId, context.deaths);
  }
}
