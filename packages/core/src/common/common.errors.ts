// The codes of helpers every domain shares: list cursors and byte ranges.
import { AppError } from '../errors/app-error.js';

export const invalidCursor = () =>
  new AppError({ code: 'INVALID_CURSOR', kind: 'invalid', message: 'cursor is not one this server issued', location: { field: 'cursor' } });

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
