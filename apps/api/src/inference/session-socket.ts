import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, answerOpenpiFrames, type KeysService, type SessionsService, type Logger, type Principal } from '@kura/core';
import { statusByKind } from '../http/error-body.js';

const socketPath = /^\/v1\/sessions\/([A-Za-z0-9_]+)\/ws$/;
/** Largest frame accepted: an observation with a few camera images. */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * `GET /v1/sessions/:id/ws`, openpi's policy-server protocol, so robot clients connect unchanged:
 * the server sends a msgpack map of metadata first; each binary client frame is a msgpack map of the
 * observation (numpy arrays as `{__ndarray__, data, dtype, shape}` maps, keys as bin or str); each
 * reply is `{ actions, server_timing: { infer_ms } }` with `actions` encoded the same way (bin keys,
 * as msgpack_numpy writes them). A frame Kura cannot use (FRAME_INVALID: not msgpack, an array whose
 * shape disagrees with its bytes or with the session's feature) is answered with a text frame naming
 * the key, nothing is recorded, and the socket stays open for the next frame; any other error goes out
 * as a text frame, then close code 1011; a frame over MAX_FRAME_BYTES closes the socket with 1009
 * (message too big). Auth:
 * `Authorization: Bearer <key>` or openpi's `Api-Key <key>`. Each frame is a session step: recorded
 * before the reply. Closing the socket leaves the session open.
 */
export function attachSessionSockets(params: {
  server: Server;
  keys: KeysService;
  sessions: SessionsService;
  logger: Logger;
}): WebSocketServer {
  const sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  params.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const match = socketPath.exec(new URL(request.url ?? '/', 'http://kura').pathname);
    if (!match) return refuse(socket, 404, 'ROUTE_NOT_FOUND', 'no WebSocket at this path');
    void (async () => {
      let principal: Principal;
      let metadata: Record<string, unknown>;
      try {
        const header = request.headers.authorization ?? '';
        const key = /^(?:Bearer|Api-Key)\s+(\S+)$/i.exec(header)?.[1];
        if (!key) return refuse(socket, 401, 'AUTH_REQUIRED', 'send Authorization: Bearer <key> (or Api-Key <key>)');
        principal = await params.keys.authenticate(key);
        const { session, manifest } = await params.sessions.manifestOf(principal, match[1]!);
        metadata = {
          session_id: session.id,
          policy_id: session.policyId,
          observation: manifest.observation,
          action_shape: manifest.action.shape,
        };
      } catch (error) {
        return refuse(
          socket,
          error instanceof AppError ? statusByKind[error.kind] : 500,
          error instanceof AppError ? error.code : 'INTERNAL',
          error instanceof Error ? error.message : 'error',
        );
      }
      sockets.handleUpgrade(request, socket, head, (client) =>
        serve({ client, principal, sessionId: match[1]!, metadata, sessions: params.sessions, logger: params.logger }),
      );
    })();
  });
  return sockets;
}

function serve(params: {
  client: WebSocket;
  principal: Principal;
  sessionId: string;
  metadata: Record<string, unknown>;
  sessions: SessionsService;
  logger: Logger;
}): void {
  const { client } = params;
  // ws reports a frame over maxPayload (after closing with 1009) and protocol errors here; unheard, they would end the process.
  client.on('error', (error) => params.logger.warn({ err: error, sessionId: params.sessionId }, 'WebSocket closed on a protocol error'));
  answerOpenpiFrames(client, {
    metadata: params.metadata,
    features: params.metadata.observation as string[],
    // Each frame is a session step: recorded before the reply.
    act: async (observation, task) =>
      (await params.sessions.step(params.principal, params.sessionId, { observation, ...(task ? { task } : {}) })).action,
    describe: (error) => {
      if (error instanceof AppError) return error;
      params.logger.error({ err: error, sessionId: params.sessionId }, 'WebSocket step failed');
      return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
    },
  });
}

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
