import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, answerOpenpiFrames, isPolicyError, statusByKind } from '@kura/core/edge-runtime';
import { actRequestSchema } from '@kura/schema';
import { EdgeRunError } from './edge.errors.js';
import type { EdgeRunner } from './edge-runner.js';

/** Largest request or frame: an observation with a few camera images (as on the server). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/**
 * `kura edge serve`: the server's act endpoint and openpi WebSocket, locally, for one package.
 * `POST /act` (or `/v1/policies/<its id>/act`) takes `{observation, task?}` and answers
 * `{action, policyId, latencyMs}`; a WebSocket at `/` or `/ws` speaks openpi's policy-server
 * protocol (metadata first, then one action per observation frame). `GET /health` says what runs.
 * No key: it listens on the loopback interface unless told otherwise. Every call is counted.
 */
export async function serveEdgePolicy(
  runner: EdgeRunner,
  options: { port: number; host: string },
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const policyId = runner.license.policy.id;
  const server = createServer((request, response) => void handle(runner, request, response));
  const sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_BODY_BYTES });
  server.on('upgrade', (request, socket, head) => {
    const path = new URL(request.url ?? '/', 'http://edge').pathname;
    if (path !== '/' && path !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    sockets.handleUpgrade(request, socket, head, (client) => openpiConnection(runner, client));
  });
  runner.startWindowTimer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    server,
    url: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    close: async () => {
      for (const client of sockets.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };

  async function handle(runner: EdgeRunner, request: IncomingMessage, response: ServerResponse): Promise<void> {
    try {
      const path = new URL(request.url ?? '/', 'http://edge').pathname;
      if (request.method === 'GET' && path === '/health') {
        return reply(response, 200, {
          status: 'ok',
          exportId: runner.license.exportId,
          policyId,
          expiresAt: runner.license.expiresAt,
          callQuota: runner.license.callQuota,
          calls: runner.calls,
        });
      }
      if (request.method !== 'POST' || (path !== '/act' && path !== `/v1/policies/${policyId}/act`))
        return reply(response, 404, { error: { code: 'ROUTE_NOT_FOUND', message: `no ${request.method} ${path} here (POST /act)` } });
      const body = await readBody(request);
      let value: unknown;
      try {
        value = JSON.parse(body.toString('utf8'));
      } catch {
        return reply(response, 400, { error: { code: 'VALIDATION_FAILED', message: 'the body is not JSON' } });
      }
      const parsed = actRequestSchema.safeParse(value);
      if (!parsed.success)
        return reply(response, 400, {
          error: {
            code: 'VALIDATION_FAILED',
            message: parsed.error.issues[0]?.message ?? 'invalid',
            details: { issues: parsed.error.issues },
          },
        });
      const { action, latencyMs } = await runner.act(parsed.data.observation, { task: parsed.data.task });
      reply(response, 200, { action, policyId, latencyMs });
    } catch (error) {
      const { status, body } = errorReply(error);
      reply(response, status, body);
    }
  }
}

/** One openpi client: metadata first, then an action per binary observation frame, in order. */
function openpiConnection(runner: EdgeRunner, client: WebSocket): void {
  const manifest = runner.manifest;
  client.on('error', () => client.terminate());
  let step = 0;
  answerOpenpiFrames(client, {
    metadata: {
      export_id: runner.license.exportId,
      policy_id: runner.license.policy.id,
      observation: manifest.observation,
      action_shape: manifest.action.shape,
    },
    features: manifest.observation,
    act: async (observation, task) => {
      const { action } = await runner.act(observation, { step, task });
      step += 1;
      return action;
    },
    describe: (error) => errorReply(error).body.error,
  });
}

const runStatus: Record<string, number> = {
  EDGE_LICENSE_EXPIRED: 403,
  EDGE_QUOTA_EXCEEDED: 403,
  EDGE_CLOCK_BACKWARDS: 409,
  PAYLOAD_TOO_LARGE: 413,
};

function errorReply(error: unknown): { status: number; body: { error: { code: string; message: string; details?: unknown } } } {
  if (error instanceof EdgeRunError)
    return { status: runStatus[error.code] ?? 500, body: { error: { code: error.code, message: error.message, details: error.details } } };
  if (error instanceof AppError)
    return { status: statusByKind[error.kind], body: { error: { code: error.code, message: error.message, details: error.details } } };
  if (isPolicyError(error)) return { status: 422, body: { error: { code: error.code, message: error.message } } };
  return { status: 500, body: { error: { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) } } };
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw new EdgeRunError('PAYLOAD_TOO_LARGE', `the body passes ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
