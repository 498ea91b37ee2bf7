// The one real Kura the corpus runs against (the built api in embedded mode, as `npm start` runs it),
// and the HTTP client every case talks through: it keeps each reply's status and scans each reply
// body for the canaries, so the runner can judge the whole run, not only each case's own answer.
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { freePort } from '@kura/core';
import type { Canary } from './canary.js';
import { startKuraProcess, waitForHealthy, type KuraProcess } from '../support/processes.js';

/** One reply, as a case sees it. */
export interface Reply {
  status: number;
  /** `error.code` of an error body. */
  code: string | undefined;
  text: string;
  /** The parsed JSON body, or undefined when it is not JSON. */
  body: Record<string, unknown> | undefined;
  headers: IncomingHttpHeaders;
}

export interface RequestOptions {
  /** The API key; null sends no Authorization header. Default: the admin key. */
  key?: string | null;
  /** A JSON body (sent as application/json). */
  json?: unknown;
  /** A raw body, with `contentType` (default application/octet-stream). */
  body?: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
  /** A Content-Length larger than `body`: the body is sent and the request left open, for an answer by the declared size. */
  declaredLength?: number;
}

/** Something the run noticed that no case may cause, whichever case it was. */
export interface Violation {
  caseName: string;
  what: string;
}

/** `<status> <code>`, or the status alone for a reply without an error code: the notation of expectations. */
export const statusOf = (reply: Reply): string => (reply.code ? `${reply.status} ${reply.code}` : String(reply.status));

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One request on a connection of its own (no keep-alive): a hostile request that makes the server
 * drop its connection must not break the next case's request on a reused socket. The body goes out
 * in pieces, and stops once the server has answered: a server that refuses a body by its declared
 * size (413) answers and closes before reading it, and its answer is what counts, not our broken write.
 */
function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  declaredLength?: number,
): Promise<{ status: number; headers: Reply['headers']; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, {
      method,
      headers: body ? { ...headers, 'Content-Length': String(declaredLength ?? body.length) } : headers,
      agent: false,
    });
    if (declaredLength !== undefined)
      request.setTimeout(15_000, () => request.destroy(new Error('no answer within 15 s to a request that declared more than it sent')));
    let answered = false;
    request.on('response', (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, headers: response.headers, bytes: Buffer.concat(chunks) });
        request.destroy();
      });
      response.on('error', reject);
    });
    let failed = false;
    request.on('error', (error) => {
      failed = true;
      // The answer may still be on its way when our write breaks.
      setTimeout(() => reject(error), 5000);
    });
    void (async () => {
      const piece = 64 * 1024;
      for (let offset = 0; body && offset < body.length && !answered && !failed; offset += piece) {
        if (!request.write(body.subarray(offset, offset + piece)))
          await new Promise<void>((next) => {
            const done = () => {
              request.off('drain', done);
              request.off('close', done);
              next();
            };
            request.on('drain', done);
            request.on('close', done);
          });
        // Let an early answer in before the next piece: once the server has answered and closed, a
        // further write would reset the connection and lose the answer.
        await new Promise((next) => setTimeout(next, 1));
      }
      if (!answered && !failed && declaredLength === undefined) request.end();
    })();
  });
}

export class HostileKura {
  readonly violations: Violation[] = [];
  /** Datasets a case got published: their slices are downloaded and scanned at the end. */
  readonly publishedDatasets = new Set<string>();
  private process: KuraProcess | undefined;
  private pidAtStart: number | undefined;
  baseUrl = '';
  wsUrl = '';

  constructor(
    readonly adminKey: string,
    readonly dataDir: string,
    readonly canary: Canary,
  ) {}

  async start(environment: Record<string, string>): Promise<void> {
    const port = await freePort();
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}`;
    this.process = startKuraProcess('api', {
      ...environment,
      KURA_DATA_DIR: this.dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      KURA_ADMIN_KEY: this.adminKey,
    });
    await waitForHealthy(this.baseUrl, this.process, 60_000);
    this.pidAtStart = this.process.child.pid;
  }

  async stop(): Promise<void> {
    const kura = this.process;
    if (!kura || kura.child.exitCode !== null || kura.child.signalCode !== null) return;
    kura.child.kill('SIGINT');
    const killer = setTimeout(() => kura.child.kill('SIGKILL'), 20_000);
    await kura.exited;
    clearTimeout(killer);
  }

  /** Undefined while the api process that started is alive; else how it ended. */
  death(): string | undefined {
    const child = this.process?.child;
    if (!child) return 'never started';
    if (child.pid !== this.pidAtStart) return `pid changed from ${this.pidAtStart} to ${child.pid}`;
    if (child.exitCode !== null) return `exited with code ${child.exitCode}`;
    if (child.signalCode !== null) return `killed by ${child.signalCode}`;
    return undefined;
  }

  /** The api's resident memory (VmRSS) in bytes. */
  async residentBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.pidAtStart}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    if (kib === undefined) throw new Error(`no VmRSS in /proc/${this.pidAtStart}/status`);
    return Number(kib) * 1024;
  }

  output(): string {
    return this.process?.output() ?? '';
  }

  /** A client whose replies are credited to `caseName` in violations. */
  client(caseName: string): CaseClient {
    return new CaseClient(this, caseName);
  }

  /** Checks one reply (or other text Kura gave out) against the run-wide rules. */
  inspect(caseName: string, what: string, reply: { status: number; text: string }): void {
    if (reply.status >= 500) this.violations.push({ caseName, what: `${what} answered ${reply.status}: ${reply.text.slice(0, 300)}` });
    const found = this.canary.findIn(reply.text);
    if (found) this.violations.push({ caseName, what: `${what} gave out ${found}` });
  }

  /** Where blobs are kept (the filesystem store of embedded mode). */
  get blobsDir(): string {
    return join(this.dataDir, 'blobs');
  }
}

export class CaseClient {
  constructor(
    readonly kura: HostileKura,
    readonly caseName: string,
  ) {}

  get adminKey(): string {
    return this.kura.adminKey;
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    const key = options.key === undefined ? this.kura.adminKey : options.key;
    if (key !== null && headers.Authorization === undefined) headers.Authorization = `Bearer ${key}`;
    let body: Buffer | undefined;
    if (options.json !== undefined) {
      body = Buffer.from(JSON.stringify(options.json));
      headers['Content-Type'] ??= 'application/json';
    } else if (options.body !== undefined) {
      body = Buffer.from(options.body);
      headers['Content-Type'] ??= options.contentType ?? 'application/octet-stream';
    }
    let answer: { status: number; headers: Reply['headers']; bytes: Buffer };
    try {
      answer = await send(`${this.kura.baseUrl}${path}`, method, headers, body, options.declaredLength);
    } catch (error) {
      const death = this.kura.death();
      if (death) throw new Error(`the api process died (${death})`, { cause: error });
      throw new Error(`${method} ${path.slice(0, 80)} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    const text = answer.bytes.toString('utf8');
    let parsed: Record<string, unknown> | undefined;
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) parsed = value as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    const error = parsed?.error;
    const code = typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
    const reply: Reply = { status: answer.status, code, text, body: parsed, headers: answer.headers };
    this.kura.inspect(this.caseName, `${method} ${path.slice(0, 120)}`, reply);
    return reply;
  }

  get = (path: string, options?: RequestOptions) => this.request('GET', path, options);
  post = (path: string, options?: RequestOptions) => this.request('POST', path, options);

  /**
   * Polls `path` until `done` says the reply is final; gives up after `timeoutMs` with the last reply.
   * Starts fast and backs off, so many cases can wait at once without flooding the api.
   */
  async until(path: string, done: (reply: Reply) => boolean, key: string | null, timeoutMs: number): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    let delay = 50;
    for (;;) {
      const reply = await this.get(path, { key });
      if (done(reply) || Date.now() > deadline) return reply;
      await pause(delay);
      delay = Math.min(delay * 1.5, 600);
    }
  }
}
