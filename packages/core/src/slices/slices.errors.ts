import { AppError, notFound } from '../errors/app-error.js';

export const sliceNotFound = (id: string) => notFound('SLICE_NOT_FOUND', 'slice', id);

/** A problem with a `POST /v1/slices` body that is valid JSON but cannot be served (422). */
export const sliceUnprocessable = (code: string, message: string, field: string, details: Record<string, unknown> = {}) =>
  new AppError({ code, kind: 'unprocessable', message, details, location: { field } });
