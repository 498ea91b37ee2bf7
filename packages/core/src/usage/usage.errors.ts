import type { KeyQuota } from '@kura/schema';
import { AppError } from '../errors/app-error.js';

export const otherKeysUsageForbidden = () =>
  new AppError({
    code: 'FORBIDDEN',
    kind: 'forbidden',
    message: 'only admins may read the usage of other keys',
    location: { field: 'keyId' },
  });

/** 429 with the whole seconds until the quota's window resets (at least 1). */
export function quotaExceeded(quota: keyof KeyQuota, limit: number, msLeft: number): AppError {
  const retryAfterS = Math.max(1, Math.ceil(msLeft / 1000));
  return new AppError({
    code: 'QUOTA_EXCEEDED',
    kind: 'rate_limited',
    message: `this key's ${quota} quota (${limit}) is used up; retry in ${retryAfterS} s`,
    details: { quota, limit, retryAfterS },
  });
}
