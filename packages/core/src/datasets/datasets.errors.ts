import { AppError, notFound } from '../errors/app-error.js';

export const datasetNotFound = (id: string) => notFound('DATASET_NOT_FOUND', 'dataset', id);

export const datasetNameTaken = (name: string) =>
  new AppError({
    code: 'DATASET_NAME_TAKEN',
    kind: 'conflict',
    message: `a dataset named "${name}" already exists`,
    details: { name },
    location: { field: 'name' },
  });

export const datasetRobotUnknown = (robotId: string) =>
  new AppError({
    code: 'ROBOT_NOT_FOUND',
    kind: 'unprocessable',
    message: `robot "${robotId}" was not found`,
    details: { robotId },
    location: { field: 'robotId' },
  });
