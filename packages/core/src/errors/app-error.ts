import type { ErrorLocation } from '@kura/schema';

/**
 * What kind of failure an error is. The HTTP layer maps each kind to one status in one place, so
 * domain code never speaks HTTP.
 */
export type ErrorKind =
  | 'invalid' // 400: malformed input
  | 'unauthenticated' // 401
  | 'forbidden' // 403
  | 'not_found' // 404
  | 'conflict' // 409
  | 'too_large' // 413
  | 'unsupported_media_type' // 415
  | 'unprocessable' // 422: well-formed but semantically wrong
  | 'range_not_satisfiable' // 416
  | 'rate_limited' // 429
  | 'unavailable' // 503
  | 'insufficient_storage' // 507: the server's disk is full
  | 'internal'; // 500

/** The HTTP status of each kind: the api's error filter and the edge runner's server both answer with it. */
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
  insufficient_storage: 507,
  internal: 500,
};

/** A failure with a stable code (`ROBOT_NOT_FOUND`) and a message that says what and where. */
export class AppError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown> | undefined;

  constructor(params: {
    code: string;
    kind: ErrorKind;
    message: string;
    details?: Record<string, unknown>;
    location?: ErrorLocation;
    cause?: unknown;
  }) {
    super(params.message, { cause: params.cause });
    this.name = 'AppError';
    this.code = params.code;
    this.kind = params.kind;
    const details = { ...(params.details ?? {}), ...(params.location ? { location: params.location } : {}) };
    this.details = Object.keys(details).length > 0 ? details : undefined;
  }
}

/** Shorthand for a missing resource: `notFound('ROBOT_NOT_FOUND', 'robot', id)`. */
export function notFound(code: string, what: string, id: string): AppError {
  return new AppError({ code, kind: 'not_found', message: `${what} "${id}" was not found`, details: { id } });
}
