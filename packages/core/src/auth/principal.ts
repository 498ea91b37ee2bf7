import type { KeyQuota, Role } from '@kura/schema';
import { authRequired, roleNotAllowed } from './auth.errors.js';

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
    throw authRequired(action);
  }
  if (principal.role !== 'admin' && !roles.includes(principal.role)) {
    throw roleNotAllowed(principal.role, roles, action);
  }
}

export function isAdmin(principal: Principal): boolean {
  return principal.kind === 'key' && principal.role === 'admin';
}

/** Whether the caller owns a resource (or is an admin, who may act as any owner). */
export function ownsOrAdmin(principal: Principal, ownerKeyId: string): boolean {
  return principal.kind === 'key' && (principal.role === 'admin' || principal.keyId === ownerKeyId);
}
