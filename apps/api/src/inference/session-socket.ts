import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Packr, Unpackr } from 'msgpackr';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  AppError,
  frameInvalid,
  frameNotBinary,
  frameNotMap,
  frameNotMsgpack,
  type KeysService,
  type SessionsService,
  type Logger,
  type Principal,
} from '@kura/core';
import { encodePng } from '@kura/formats';
import { dtypeOfNumpyDescr, numericDtypeTable, unstorableTextProblem, type NumericDtype } from '@kura/schema';
import { statusByKind } from '../http/error-body.js';

const socketPath = /^\/v1\/sessions\/([A-Za-z0-9_]+)\/ws$/;
/** Largest frame accepted: an observation with a few camera images. */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Most axes an array may have (a feature's shape has at most 8). */
const MAX_RANK = 8;
/** The dtypes an observation's arrays may have (sent as numpy descrs, with or without the byte-order mark). */
const observationDtypes: ReadonlySet<NumericDtype> = new Set(['float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool']);
// Plain msgpack maps both ways (no msgpackr records); maps are decoded as Maps because openpi's keys
// may be bin, which an object cannot hold.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });
const textDecoder = new TextDecoder('utf-8', { fatal: true });
const bytes = (text: string) => Buffer.from(text, 'utf8');

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
  client.send(packr.pack(params.metadata));
  let busy = Promise.resolve();
  client.on('message', (data, isBinary) => {
    busy = busy.then(async () => {
      if (client.readyState !== client.OPEN) return;
      try {
        if (!isBinary) throw frameNotBinary();
        const frame = decodeFrame(Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data as ArrayBuffer)]));
        // openpi clients send what their own policy config names; the policy reads its features only.
        const wanted = params.metadata.observation as string[];
        frame.observation = Object.fromEntries(Object.entries(frame.observation).filter(([name]) => wanted.includes(name)));
        const started = performance.now();
        const result = await params.sessions
          .step(params.principal, params.sessionId, { observation: frame.observation, ...(frame.task ? { task: frame.task } : {}) })
          .catch((error: unknown) => {
            throw asFrameInvalid(error, frame.keys);
          });
        const action = result.action.flat();
        const shape = Array.isArray(result.action[0]) ? [result.action.length, result.action[0].length] : [result.action.length];
        client.send(
          packr.pack({ actions: ndarray(Float32Array.from(action), shape), server_timing: { infer_ms: performance.now() - started } }),
        );
      } catch (error) {
        const code = error instanceof AppError ? error.code : 'INTERNAL';
        if (!(error instanceof AppError)) params.logger.error({ err: error, sessionId: params.sessionId }, 'WebSocket step failed');
        client.send(`${code}: ${error instanceof Error ? error.message : String(error)}`);
        // A refused frame recorded nothing: the robot may send the next one on the same socket.
        if (code !== 'FRAME_INVALID') client.close(1011, code.slice(0, 100));
      }
    });
  });
}

/**
 * An openpi observation frame → a session step: `a/b` keys as `a.b` features, arrays as numbers,
 * uint8 H×W×C arrays as PNG images, `prompt` as the task. `keys` gives each feature's key as sent.
 */
export function decodeFrame(buffer: Buffer): { observation: Record<string, unknown>; task?: string; keys: Map<string, string> } {
  let value: unknown;
  try {
    value = withStringKeys(unpackr.unpack(buffer));
  } catch (error) {
    throw frameNotMsgpack(error);
  }
  if (!isRecord(value)) throw frameNotMap();
  const observation: Record<string, unknown> = {};
  const keys = new Map<string, string>();
  let task: string | undefined;
  for (const [key, item] of Object.entries(value)) {
    if (key === 'prompt') {
      if (typeof item === 'string') {
        // The prompt becomes the session's task, a Postgres text.
        const problem = unstorableTextProblem(item);
        if (problem) throw frameInvalid('prompt', problem);
        task = item;
      }
      continue;
    }
    const feature = key.replaceAll('/', '.');
    keys.set(feature, key);
    observation[feature] = toObservationValue(item, key);
  }
  return { observation, ...(task ? { task } : {}), keys };
}

/**
 * The session's refusal of an observation (OBSERVATION_INVALID, naming `observation.<feature>`) as
 * FRAME_INVALID naming the frame's key as the client sent it.
 */
function asFrameInvalid(error: unknown, keys: Map<string, string>): unknown {
  if (!(error instanceof AppError) || error.code !== 'OBSERVATION_INVALID') return error;
  const location = error.details?.location;
  const field = isRecord(location) && typeof location.field === 'string' ? location.field : 'observation';
  // `observation.<feature>` or a place inside it (`observation.<feature>.3`): the longest feature that matches.
  const name = field.replace(/^observation\.?/, '');
  const feature = [...keys.keys()]
    .filter((candidate) => name === candidate || name.startsWith(`${candidate}.`))
    .sort((first, second) => second.length - first.length)[0];
  const key = feature === undefined ? name.replaceAll('.', '/') || 'observation' : keys.get(feature)!;
  const problem = error.message.startsWith(`${field}: `) ? error.message.slice(field.length + 2) : error.message;
  return frameInvalid(key, problem);
}

/** An ndarray's values after checking that its dtype, shape and bytes agree (msgpack_numpy sends all three). */
function toObservationValue(item: unknown, key: string): unknown {
  if (!isRecord(item) || !('__ndarray__' in item)) return item;
  const { dtype, shape, data } = checkedNdarray(item, key);
  const values = typedArrayOf(dtype, data);
  // An image: uint8 H×W×C (openpi sends raw pixels); Kura's policies take encoded images.
  const [height, width, channels] = shape;
  if (dtype === 'uint8' && shape.length === 3 && (channels === 1 || channels === 3 || channels === 4)) {
    if (!height || !width) throw frameInvalid(key, `an image of shape [${shape.join(', ')}] has no pixels`);
    const png = encodePng({ pixels: new Uint8Array(data), height, width, channels });
    return Buffer.from(png).toString('base64');
  }
  return Array.from(values, (number) => Number(number));
}

function checkedNdarray(item: Record<string, unknown>, key: string): { dtype: NumericDtype; shape: number[]; data: Uint8Array } {
  const named = typeof item.dtype === 'string' ? dtypeOfNumpyDescr(item.dtype) : undefined;
  const dtype = named !== undefined && observationDtypes.has(named) ? named : undefined;
  if (dtype === undefined) {
    throw frameInvalid(key, `dtype ${describe(item.dtype)} is not supported (use float32/64, int8-64, uint8, bool, little-endian)`);
  }
  const { shape, data } = item;
  if (!(data instanceof Uint8Array)) throw frameInvalid(key, 'the array’s data is not bytes');
  if (
    !Array.isArray(shape) ||
    shape.length > MAX_RANK ||
    !shape.every((dimension): dimension is number => typeof dimension === 'number' && Number.isSafeInteger(dimension) && dimension >= 0)
  ) {
    throw frameInvalid(key, `the shape must be a list of at most ${MAX_RANK} non-negative integers, not ${describe(shape)}`);
  }
  // Safe integers multiplied stay far from a frame's byte length once they pass it, so doubles suffice.
  const expectedBytes = shape.reduce((product, dimension) => product * dimension, numericDtypeTable[dtype].bytes);
  if (expectedBytes !== data.byteLength) {
    throw frameInvalid(
      key,
      `shape [${shape.join(', ')}] of ${String(item.dtype)} needs ${expectedBytes} bytes, but the data has ${data.byteLength}`,
    );
  }
  return { dtype, shape, data };
}

const describe = (value: unknown) => {
  const text = JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? item.toString() : item)) ?? String(value);
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
};

function typedArrayOf(dtype: NumericDtype, data: Uint8Array): ArrayLike<number | bigint> {
  return new numericDtypeTable[dtype].TypedArray(new Uint8Array(data).buffer);
}

/** A numpy array as msgpack_numpy writes it: bin keys. */
function ndarray(values: Float32Array, shape: number[]): Map<Buffer, unknown> {
  return new Map<Buffer, unknown>([
    [bytes('__ndarray__'), true],
    [bytes('data'), Buffer.from(values.buffer, values.byteOffset, values.byteLength)],
    [bytes('dtype'), numericDtypeTable.float32.numpy],
    [bytes('shape'), shape],
  ]);
}

/** Decoded msgpack with every map as an object keyed by text (bin keys read as UTF-8). */
function withStringKeys(value: unknown): unknown {
  if (value instanceof Map) {
    const object: Record<string, unknown> = {};
    for (const [key, item] of value as Map<unknown, unknown>) {
      const name = key instanceof Uint8Array ? textDecoder.decode(key) : String(key);
      object[name] = withStringKeys(item);
    }
    return object;
  }
  return Array.isArray(value) ? value.map(withStringKeys) : value;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
