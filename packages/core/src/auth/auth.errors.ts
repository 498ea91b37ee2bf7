import type { Role } from '@kura/schema';
import { AppError } from '../errors/app-error.js';

export const invalidApiKey = () =>
  new AppError({ code: 'INVALID_API_KEY', kind: 'unauthenticated', message: 'the API key is unknown or revoked' });

export const keyNotFound = (id: string) =>
  new AppError({ code: 'KEY_NOT_FOUND', kind: 'not_found', message: `API key "${id}" was not found`, details: { id } });

export const lastAdminKey = (id: string) =>
  new AppError({
    code: 'LAST_ADMIN_KEY',
    kind: 'conflict',
    message: `key "${id}" is the last active admin key; create another admin key before revoking it`,
    details: { id },
  });

export const authRequired = (action: string) =>
  new AppError({
    code: 'AUTH_REQUIRED',
    kind: 'unauthenticated',
    message: `an API key is needed to ${action} (Authorization: Bearer <key>)`,
  });

export const roleNotAllowed = (role: Role, roles: readonly Role[], action: string) =>
  new AppError({
    code: 'FORBIDDEN',
    kind: 'forbidden',
    message: `a key with role "${role}" may not ${action}; needed: ${['admin', ...roles].join(' or ')}`,
    details: { role, allowedRoles: ['admin', ...roles] },
  });

export const invalidAuthorizationHeader = () =>
  new AppError({
    code: 'INVALID_AUTHORIZATION_HEADER',
    kind: 'unauthenticated',
    message: 'the Authorization header must be "Bearer <key>"',
  });
