import { AppError, notFound } from '../errors/app-error.js';

export const trainerNotFound = (id: string) => notFound('TRAINER_NOT_FOUND', 'trainer', id);
export const trainingNotFound = (id: string) => notFound('TRAINING_NOT_FOUND', 'training', id);

export const trainerBundleTooLarge = (limit: number) =>
  new AppError({
    code: 'BUNDLE_TOO_LARGE',
    kind: 'too_large',
    message: `a trainer bundle may hold at most ${limit} bytes (KURA_TRAINER_MAX_BUNDLE_BYTES)`,
    details: { limit },
  });

export const trainerBundleEmpty = () =>
  new AppError({ code: 'BUNDLE_EMPTY', kind: 'invalid', message: 'the request body is empty: send the bundle (.tar.gz or .zip)' });

export const trainerNotReady = (id: string, status: string) =>
  new AppError({
    code: 'TRAINER_NOT_READY',
    kind: 'conflict',
    message: `trainer ${id} is ${status}; only a ready trainer can be run`,
    details: { trainerId: id, status },
    location: { field: 'trainerId' },
  });

export const trainingUnprocessable = (code: string, message: string, field: string, details: Record<string, unknown> = {}) =>
  new AppError({ code, kind: 'unprocessable', message, details, location: { field } });

export const trainingFinished = (id: string, status: string) =>
  new AppError({
    code: 'TRAINING_FINISHED',
    kind: 'conflict',
    message: `training ${id} has already ${status === 'cancelled' ? 'been cancelled' : status}`,
    details: { trainingId: id, status },
  });

export const trainingLogsNotReady = (id: string, status: string) =>
  new AppError({
    code: 'TRAINING_LOGS_NOT_READY',
    kind: 'conflict',
    message: `training ${id} is ${status}: its log is stored when it ends (its metrics are live at /v1/trainings/${id}/metrics)`,
    details: { trainingId: id, status },
  });
