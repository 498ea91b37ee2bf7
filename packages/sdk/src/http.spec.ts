import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KuraApiError, KuraNetworkError } from './errors.js';
import { HttpClient, retryDelayMs } from './http.js';

/** A server whose answers the test scripts per path: a list of statuses (or 'drop' to cut the connection) used in turn. */
describe('HttpClient retries', () => {
  let server: Server;
  let base: string;
  const scripts = new Map<string, Array<number | 'drop'>>();
  const hits = new Map<string, number>();
  const bodies: string[] = [];

  beforeAll(async () => {
    server = createServer((request: IncomingMessage, response: ServerResponse) => {
      const path = request.url ?? '/';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        const next = scripts.get(path)?.shift() ?? 200;
        if (next === 'drop') return request.socket.destroy();
        response.statusCode = next;
        response.setHeader('Content-Type', 'application/json');
        if (next === 429 || path.startsWith('/later')) response.setHeader('Retry-After', '0');
        response.end(
          next < 400 ? JSON.stringify({ ok: true }) : JSON.stringify({ error: { code: `CODE_${next}`, message: `status ${next}` } }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const client = () => new HttpClient(base, 'kura_test', { retries: 3, baseDelayMs: 1, maxDelayMs: 5 });

  it('retries GETs on 5xx and on a dropped connection, then succeeds', async () => {
    scripts.set('/flaky', [503, 'drop', 502]);
    expect(await client().json('GET', '/flaky')).toEqual({ ok: true });
    expect(hits.get('/flaky')).toBe(4);
  });

  it('gives up after the retries with the last error, and never retries 4xx', async () => {
    scripts.set('/down', [503, 503, 503, 503, 503]);
    const error = (await client()
      .json('GET', '/down')
      .catch((caught: unknown) => caught)) as KuraApiError;
    expect(error).toBeInstanceOf(KuraApiError);
    expect(error.code).toBe('CODE_503');
    expect(hits.get('/down')).toBe(4);
    scripts.set('/bad', [400]);
    await expect(client().json('GET', '/bad')).rejects.toMatchObject({ status: 400, code: 'CODE_400' });
    expect(hits.get('/bad')).toBe(1);
  });

  it('does not repeat a POST unless it is idempotent, and resends a streamed body in full when it is', async () => {
    scripts.set('/create', [503]);
    await expect(client().json('POST', '/create', { body: { json: { a: 1 } } })).rejects.toMatchObject({ status: 503 });
    expect(hits.get('/create')).toBe(1);
    scripts.set('/upload', [500, 'drop']);
    bodies.length = 0;
    const { Readable } = await import('node:stream');
    await client().json('POST', '/upload', {
      body: { stream: () => Readable.from([Buffer.from('abc'), Buffer.from('def')]) },
      idempotent: true,
    });
    expect(hits.get('/upload')).toBe(3);
    expect(bodies).toEqual(['abcdef', 'abcdef', 'abcdef']);
  });

  it('reports an unreachable server as a network error naming the cause', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = (await new HttpClient(`http://127.0.0.1:${port}`, undefined, { retries: 1, baseDelayMs: 1, maxDelayMs: 1 })
      .json('GET', '/x')
      .catch((caught: unknown) => caught)) as KuraNetworkError;
    expect(error).toBeInstanceOf(KuraNetworkError);
    expect(error.message).toContain(`connection refused to 127.0.0.1:${port}`);
  });

  it('waits base·2^(n−1) with jitter, capped, and follows Retry-After', () => {
    const policy = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(retryDelayMs(policy, 1, null, () => 0)).toBe(50);
    expect(retryDelayMs(policy, 3, null, () => 0.999)).toBe(399);
    expect(retryDelayMs(policy, 10, null, () => 0.999)).toBe(999);
    expect(retryDelayMs(policy, 1, '2', () => 0)).toBe(1000);
    expect(retryDelayMs(policy, 1, '0.2', () => 0)).toBe(200);
  });
});
