/** Injection tokens for process-wide values. */
export const KURA_CONFIG = Symbol('KURA_CONFIG');
export const LOGGER = Symbol('LOGGER');
/** The Postgres URL this process uses (embedded or external), for work outside Prisma (advisory locks). */
export const DATABASE_URL = Symbol('DATABASE_URL');
/**
 * Why the database Kura supervises (embedded mode) is down while Kura restarts it, or undefined:
 * a function, read at each /health.
 */
export const DATABASE_OUTAGE = Symbol('DATABASE_OUTAGE');
/** Where quota counters live: this process's memory, or Redis shared by all api processes. */
export const QUOTA_COUNTERS = Symbol('QUOTA_COUNTERS');
/** The jail level chosen at start for untrusted work (packages/jail): `{ level, reason }`. */
export const JAIL_LEVEL = Symbol('JAIL_LEVEL');
