import { Readable } from 'node:stream';
import { describeNetworkError, KuraApiError, type KuraError, KuraNetworkError } from './errors.js';

/** A body the client can send again on a retry: bytes, JSON, or a factory of fresh streams. */
export type RequestBody =
  | { json: unknown }
  | { bytes: Uint8Array<ArrayBuffer>; contentType?: string }
  | { stream: () => Readable; contentType?: string; length?: number };

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: RequestBody;
  headers?: Record<string, string>;
  /** Safe to send again after a 5xx or a network error (GET, PUT, DELETE are; a POST with an Idempotency-Key is). */
  idempotent?: boolean;
  /** Absolute URLs (presigned object-store parts) go out without the API key. */
  absolute?: boolean;
  signal?: AbortSignal;
}

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** First wait; doubles each time, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { retries: 4, baseDelayMs: 250, maxDelayMs: 8000 };

const RETRYABLE_STATUS = new Set([500, 502, 503, 504]);

/** Waits before retry `attempt` (1-based): base·2^(n−1), between half and all of it, capped; a Retry-After header wins. */
export function retryDelayMs(policy: RetryPolicy, attempt: number, retryAfter?: string | null, random = Math.random): number {
  const seconds = retryAfter ? Number(retryAfter) : Number.NaN;
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, policy.maxDelayMs);
  const ceiling = Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}

/** HTTP to one Kura server with its key: JSON in and out, error bodies as KuraApiError, retries with backoff. */
export class HttpClient {
  constructor(
    readonly baseUrl: string,
    private readonly apiKey: string | undefined,
    private readonly retry: RetryPolicy = defaultRetryPolicy,
    private readonly userAgent = 'kura-sdk/0.1',
  ) {}

  /** The raw response of a successful request (status < 400); errors are thrown. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const url = options.absolute
      ? new URL(path)
      : new URL(path.replace(/^\//, ''), this.baseUrl.endsWith('/') ? this.baseUrl : `${this.baseUrl}/`);
    for (const [name, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value));
    const idempotent = options.idempotent ?? ['GET', 'HEAD', 'PUT', 'DELETE'].includes(method);
    for (let attempt = 0; ; attempt++) {
      const canRetry = idempotent && attempt < this.retry.retries;
      let response: Response;
      try {
        response = await fetch(url, { method, ...this.init(options), ...(options.signal ? { signal: options.signal } : {}) });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        if (canRetry) {
          await sleep(retryDelayMs(this.retry, attempt + 1));
          continue;
        }
        throw new KuraNetworkError(`cannot reach ${url.origin}: ${describeNetworkError(error)}`, error);
      }
      if (response.status < 400) return response;
      if (canRetry && RETRYABLE_STATUS.has(response.status)) {
        await response.body?.cancel();
        await sleep(retryDelayMs(this.retry, attempt + 1, response.headers.get('retry-after')));
        continue;
      }
      throw await apiErrorOf(response);
    }
  }

  /** A request and its reply as text (e.g. a training's log), with the reply's headers. */
  async text(method: string, path: string, options: RequestOptions = {}): Promise<{ text: string; headers: Headers }> {
    const response = await this.send(method, path, options);
    return { text: await response.text(), headers: response.headers };
  }

  /** A request and its reply's bytes (a package, an archive), with the reply's headers. */
  async bytes(method: string, path: string, options: RequestOptions = {}): Promise<{ bytes: Uint8Array; headers: Headers }> {
    const response = await this.send(method, path, options);
    return { bytes: new Uint8Array(await response.arrayBuffer()), headers: response.headers };
  }

  /** A JSON request and its JSON reply. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  private init(options: RequestOptions): RequestInit & { duplex?: 'half' } {
    const headers: Record<string, string> = { 'User-Agent': this.userAgent, Accept: 'application/json', ...(options.headers ?? {}) };
    if (this.apiKey && !options.absolute) headers.Authorization = `Bearer ${this.apiKey}`;
    const body = options.body;
    if (!body) return { headers };
    if ('json' in body) return { headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body.json) };
    const contentType = body.contentType ?? 'application/octet-stream';
    if ('bytes' in body) return { headers: { ...headers, 'Content-Type': contentType }, body: body.bytes };
    return {
      headers: { ...headers, 'Content-Type': contentType, ...(body.length !== undefined ? { 'Content-Length': String(body.length) } : {}) },
      body: Readable.toWeb(body.stream()) as ReadableStream<Uint8Array>,
      duplex: 'half',
    };
  }
}

async function apiErrorOf(response: Response): Promise<KuraError> {
  const requestId = response.headers.get('x-request-id') ?? undefined;
  const text = await response.text().catch(() => '');
  try {
    const { error } = JSON.parse(text) as { error: { code: string; message: string; details?: Record<string, unknown> } };
    if (error?.code) return new KuraApiError(response.status, error.code, error.message, error.details, requestId);
  } catch {
    // not Kura's error body (a proxy's page, say): reported by status below
  }
  return new KuraApiError(
    response.status,
    `HTTP_${response.status}`,
    `${response.status} ${response.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`,
    undefined,
    requestId,
  );
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
