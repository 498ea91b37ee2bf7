import { AppError, type ErrorKind } from './app-error.js';

/**
 * A service Kura depends on that failed under a request or a job: the database, the object store,
 * the job queue (Redis), or the disk. These are not the caller's fault and not Kura's bugs, so they
 * answer 503 (507 for a full disk) with a code that names the service, and jobs wait them out
 * instead of spending their attempts (jobs/jobs.service.ts).
 */
export type Outage = 'database' | 'blobs' | 'queue' | 'disk' | 'service';

const OUTAGE_ERRORS: Record<Outage, { code: string; kind: ErrorKind; message: string }> = {
  database: { code: 'DATABASE_UNAVAILABLE', kind: 'unavailable', message: 'the database is not answering; try again shortly' },
  blobs: { code: 'BLOB_STORE_UNAVAILABLE', kind: 'unavailable', message: 'the object store is not answering; try again shortly' },
  queue: { code: 'QUEUE_UNAVAILABLE', kind: 'unavailable', message: 'the job queue (Redis) is not answering; try again shortly' },
  disk: { code: 'STORAGE_FULL', kind: 'insufficient_storage', message: 'the server has no space left for this; nothing of it was kept' },
  // A refused or dropped connection whose client is not recognised (a raw pg connection, say).
  service: { code: 'SERVICE_UNAVAILABLE', kind: 'unavailable', message: 'a service Kura depends on is not answering; try again shortly' },
};

/** Socket-level failures: the peer is down, restarting or unreachable. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);
/** Prisma's codes for a database it cannot reach or lost (P2024: no pool connection in time). */
const PRISMA_CONNECTION_CODES: ReadonlySet<string> = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
/** SQLSTATEs of a server going away or not yet back: class 08, admin/crash shutdown, starting up, too many connections. */
const POSTGRES_UNAVAILABLE = /^(08\d{3}|57P0[123]|53300)$/;
const POSTGRES_UNAVAILABLE_TEXT =
  /Connection terminated|Can't reach database server|Server has closed the connection|the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)|Code: `(08\d{3}|57P0[123]|53300)`/i;

/** Marks an error of a raw pg client (not Prisma's) as the database's, for outageOf. */
const DATABASE_CLIENT_ERROR = 'DatabaseClientError';

/**
 * An error of Kura's own pg connections (COPY): pg's socket errors ("Connection terminated
 * unexpectedly", ECONNREFUSED) carry nothing that says which service they come from.
 */
export function databaseClientError(cause: unknown): Error {
  const message = cause instanceof Error ? cause.message : String(cause);
  return Object.assign(new Error(`database: ${message}`, { cause }), { name: DATABASE_CLIENT_ERROR });
}

/** Which service `error` says is down, if any (its causes are looked at too). */
export function outageOf(error: unknown): Outage | undefined {
  let origin: Outage | undefined;
  for (const link of causeChain(error)) {
    const code = typeof link.code === 'string' ? link.code : undefined;
    if (code === 'ENOSPC' || code === 'EDQUOT') return 'disk';
    const name = typeof link.name === 'string' ? link.name : '';
    const message = typeof link.message === 'string' ? link.message : '';
    if (
      name.startsWith('PrismaClient') ||
      name === 'DriverAdapterError' ||
      name === DATABASE_CLIENT_ERROR ||
      (typeof link.severity === 'string' && 'routine' in link)
    )
      origin ??= 'database';
    else if ('$metadata' in link) origin ??= 'blobs';
    else if (name === 'MaxRetriesPerRequestError' || /ioredis|bullmq/i.test(typeof link.stack === 'string' ? link.stack : ''))
      origin ??= 'queue';

    if (origin === 'database') {
      if ((code && (PRISMA_CONNECTION_CODES.has(code) || POSTGRES_UNAVAILABLE.test(code))) || POSTGRES_UNAVAILABLE_TEXT.test(message))
        return 'database';
    }
    if (origin === 'queue' && (name === 'MaxRetriesPerRequestError' || /Connection is closed|Stream isn't writeable/i.test(message)))
      return 'queue';
    const status = (link.$metadata as { httpStatusCode?: number } | undefined)?.httpStatusCode;
    if (origin === 'blobs' && status !== undefined && status >= 500) return 'blobs';
    if (code && NETWORK_CODES.has(code)) return origin ?? 'service';
  }
  return undefined;
}

/** `error` as the coded 503/507 it stands for, or undefined when it is not an outage. */
export function outageError(error: unknown): AppError | undefined {
  const outage = outageOf(error);
  if (!outage) return undefined;
  return new AppError({ ...OUTAGE_ERRORS[outage], cause: error });
}

/** The error and its causes (AggregateError members included), nearest first, at most 8. */
function causeChain(error: unknown): Array<Record<string, unknown>> {
  const chain: Array<Record<string, unknown>> = [];
  const pending: unknown[] = [error];
  while (pending.length > 0 && chain.length < 8) {
    const next = pending.shift();
    if (typeof next !== 'object' || next === null || chain.includes(next as Record<string, unknown>)) continue;
    const link = next as Record<string, unknown>;
    chain.push(link);
    if ('cause' in link) pending.push(link.cause);
    if (Array.isArray(link.errors)) pending.push(...(link.errors as unknown[]));
  }
  return chain;
}
