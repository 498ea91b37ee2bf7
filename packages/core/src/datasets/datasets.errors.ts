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

/** A dataset named in a request body (at `field`) that is unknown or invisible to the caller: 422. */
export const datasetReferenceNotFound = (id: string, field: string) =>
  new AppError({
    code: 'DATASET_NOT_FOUND',
    kind: 'unprocessable',
    message: `dataset "${id}" was not found`,
    details: { datasetId: id },
    location: { field },
  });

export const datasetNotOwned = (datasetId: string, action: string) =>
  new AppError({
    code: 'FORBIDDEN',
    kind: 'forbidden',
    message: `only the owner of dataset "${datasetId}" or an admin may ${action}`,
    details: { datasetId },
  });

export const grantNotFound = (keyId: string) => notFound('GRANT_NOT_FOUND', 'grant for key', keyId);

export const grantKeyUnknown = (keyId: string) =>
  new AppError({
    code: 'KEY_NOT_FOUND',
    kind: 'unprocessable',
    message: `API key "${keyId}" was not found or is revoked`,
    details: { keyId },
    location: { field: 'keyId' },
  });

export const versionNotFound = (datasetId: string, version: number | undefined) =>
  new AppError({
    code: 'VERSION_NOT_FOUND',
    kind: 'not_found',
    message:
      version === undefined ? `dataset "${datasetId}" has no published version yet` : `dataset "${datasetId}" has no version ${version}`,
    details: { datasetId, ...(version !== undefined ? { version } : {}) },
    location: { field: 'version' },
  });
