import type { KeyQuota, Role } from '@kura/schema';
import { AppError } from '../errors/app-error.js';

/** Who is asking: a valid API key (with its quota, read with the key on each request), or nobody (anonymous reads of public data). */
export type Principal = { kind: 'key'; keyId: string; role: Role; name: string; quota?: KeyQuota | null } | { kind: 'anonymous' };

export const anonymous: Principal = { kind: 'anonymous' };

/**
 * Throws 401 for anonymous callers and 403 for keys whose role is not listed. Admins may do
 * everything.
 */
export function requireRole(
  principal: Principal,
  roles: readonly Role[],
  action: string,
): asserts principal is Extract<Principal, { kind: 'key' }> {
  if (principal.kind === 'anonymous') {
    throw new AppError({
      code: 'AUTH_REQUIRED',
      kind: 'unauthenticated',
      message: `an API key is needed to ${action} (Authorization: Bearer <key>)`,
    });
  }
  if (principal.role !== 'admin' && !roles.includes(principal.role)) {
    throw new AppError({
      code: 'FORBIDDEN',
      kind: 'forbidden',
      message: `a key with role "${principal.role}" may not ${action}; needed: ${['admin', ...roles].join(' or ')}`,
      details: { role: principal.role, allowedRoles: ['admin', ...roles] },
    });
  }
}

export function isAdmin(principal: Principal): boolean {
  return principal.kind === 'key' && principal.role === 'admin';
}

/** Whether the caller owns a resource (or is an admin, who may act as any owner). */
export function ownsOrAdmin(principal: Principal, ownerKeyId: string): boolean {
  return principal.kind === 'key' && (principal.role === 'admin' || principal.keyId === ownerKeyId);
}
