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
