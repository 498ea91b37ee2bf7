import type { DomainProviders } from '../common/domain.js';
import { RunTrainingJob } from './run-training.job.js';
import { TrainerValidationService } from './trainer-validation.service.js';
import { TrainersRepository } from './trainers.repository.js';
import { TrainersService } from './trainers.service.js';
import { TrainingRunner } from './training-runner.service.js';
import { TrainingsRepository } from './trainings.repository.js';
import { TrainingsService } from './trainings.service.js';
import { ValidateTrainerJob } from './validate-trainer.job.js';

export * from './trainers.service.js';
export * from './trainings.service.js';
export * from './training.errors.js';

/** Trainers (developers' training code) and training runs on the platform, which end as ranked policies. */
export const trainingDomain: DomainProviders = {
  providers: [TrainersRepository, TrainersService, TrainerValidationService, TrainingsRepository, TrainingsService, TrainingRunner],
  exports: [TrainersService, TrainingsService],
  jobHandlers: [ValidateTrainerJob, RunTrainingJob],
};
