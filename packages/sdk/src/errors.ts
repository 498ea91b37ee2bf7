import type { ErrorLocation } from '@kura/schema';

/** Where the API says a problem is (file, episode, step, field): the API's own type. */
export type { ErrorLocation };

/** Any failure the client reports: `code` is the API's error code or one of the client's own. */
export class KuraError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KuraError';
  }
}

/** The API answered with an error body `{ error: { code, message, details } }`. */
export class KuraApiError extends KuraError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly details: Record<string, unknown> | undefined,
    readonly requestId: string | undefined,
  ) {
    super(code, message);
    this.name = 'KuraApiError';
  }

  get location(): ErrorLocation | undefined {
    return this.details?.location as ErrorLocation | undefined;
  }
}

/** The server could not be reached, or the connection broke mid-way (after the retries). */
export class KuraNetworkError extends KuraError {
  constructor(message: string, cause: unknown) {
    super('NETWORK_ERROR', message, { cause });
    this.name = 'KuraNetworkError';
  }
}

/** A location as people read it: `file a.ndjson, episode 3, step 17, field action`. */
export function formatLocation(location: ErrorLocation | undefined): string {
  if (!location) return '';
  const parts: string[] = [];
  if (location.file !== undefined) parts.push(`file ${location.file}`);
  if (location.episode !== undefined) parts.push(`episode ${location.episode}`);
  if (location.step !== undefined) parts.push(`step ${location.step}`);
  if (location.field !== undefined) parts.push(`field ${location.field}`);
  return parts.join(', ');
}

/** Why a network call failed, in a few words (`connection refused to 127.0.0.1:9`). */
export function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; address?: string; port?: number; message?: string } })?.cause;
  const code = cause?.code ?? (error as { code?: string })?.code;
  const where = cause?.address ? ` to ${cause.address}${cause.port ? `:${cause.port}` : ''}` : '';
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    ETIMEDOUT: 'timed out',
    EPIPE: 'connection closed',
    UND_ERR_SOCKET: 'connection closed',
  };
  if (code && words[code]) return `${words[code]}${where}`;
  return cause?.message ?? (error instanceof Error ? error.message : String(error));
}
