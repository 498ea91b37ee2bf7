import { AppError, notFound } from '../errors/app-error.js';

export const sliceNotFound = (id: string) => notFound('SLICE_NOT_FOUND', 'slice', id);

/** A problem with a `POST /v1/slices` body that is valid JSON but cannot be served (422). */
export const sliceUnprocessable = (code: string, message: string, field: string, details: Record<string, unknown> = {}) =>
  new AppError({ code, kind: 'unprocessable', message, details, location: { field } });

export const invalidRange = (header: string, why: string) =>
  new AppError({
    code: 'INVALID_RANGE',
    kind: 'invalid',
    message: `Range header "${header}" is not understood: ${why}; use one range such as "bytes=0-1023", "bytes=1024-" or "bytes=-512"`,
    details: { range: header },
    location: { field: 'Range' },
  });

export const rangeNotSatisfiable = (header: string, size: number) =>
  new AppError({
    code: 'RANGE_NOT_SATISFIABLE',
    kind: 'range_not_satisfiable',
    message: `Range "${header}" starts past the end of the ${size}-byte download`,
    details: { range: header, size },
    location: { field: 'Range' },
  });
