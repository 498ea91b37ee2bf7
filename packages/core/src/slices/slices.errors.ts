import type { Principal } from '../auth/principal.js';
import { AppError, notFound } from '../errors/app-error.js';

export const sliceNotFound = (id: string) => notFound('SLICE_NOT_FOUND', 'slice', id);

/** A problem with a `POST /v1/slices` body that is valid JSON but cannot be served (422). */
export const sliceUnprocessable = (code: string, message: string, field: string, details: Record<string, unknown> = {}) =>
  new AppError({ code, kind: 'unprocessable', message, details, location: { field } });

/** 401 for an anonymous caller, 403 for a key, when a slice holds episodes the caller may not read. */
export const sliceReadDenied = (principal: Principal, id: string, why: string) =>
  new AppError(
    principal.kind === 'anonymous'
      ? { code: 'AUTH_REQUIRED', kind: 'unauthenticated', message: `slice ${id} needs an API key: ${why}`, details: { sliceId: id } }
      : { code: 'FORBIDDEN', kind: 'forbidden', message: `this key may not read slice ${id}: ${why}`, details: { sliceId: id } },
  );
