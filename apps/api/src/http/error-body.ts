import type { Response } from 'express';
import type { ErrorKind } from '@kura/core';
import type { ErrorBody } from '@kura/schema';

export const statusByKind: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  range_not_satisfiable: 416,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

/** Writes API.md's error body: `{ error: { code, message, details? } }`. */
export function sendError(response: Response, status: number, error: ErrorBody['error']): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const body: ErrorBody = { error: error.details ? error : { code: error.code, message: error.message } };
  if (status === 401) response.setHeader('WWW-Authenticate', 'Bearer realm="kura"');
  // Quota and rate refusals say when to come back (RFC 9110 Retry-After, in seconds).
  if (status === 429 && typeof error.details?.retryAfterS === 'number')
    response.setHeader('Retry-After', String(error.details.retryAfterS));
  response.status(status).json(body);
}
