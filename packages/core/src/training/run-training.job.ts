import { Injectable } from '@nestjs/common';
import type { JobPayload } from '@kura/schema';
import type { JobHandler } from '../jobs/job-handler.js';
import { TrainingRunner } from './training-runner.service.js';

/**
 * Runs one training. Never retried: a second attempt finds the run started and fails it WORKER_LOST
 * (a worker killed mid-run), as does a process that died inside it.
 */
@Injectable()
export class RunTrainingJob implements JobHandler<'trainings.run'> {
  readonly jobName = 'trainings.run' as const;

  constructor(private readonly runner: TrainingRunner) {}

  handle(payload: JobPayload<'trainings.run'>): Promise<void> {
    return this.runner.run(payload.trainingId);
  }

  abandon(payload: JobPayload<'trainings.run'>): Promise<void> {
    return this.runner.lost(payload.trainingId);
  }
}
