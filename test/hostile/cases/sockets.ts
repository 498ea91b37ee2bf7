// WebSocket helpers: connecting to a session's socket as openpi clients do, and reading what comes back.
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import type { CaseClient } from '../kura.js';

// What a Python client's msgpack does: maps stay maps, whatever their keys.
export const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });
export const bin = (text: string) => Buffer.from(text, 'utf8');

/** A numpy array as msgpack_numpy packs it (bin keys); `shape` and `data` may disagree on purpose. */
export function ndarray(data: Uint8Array, dtype: string, shape: unknown): Map<Buffer, unknown> {
  return new Map<Buffer, unknown>([
    [bin('__ndarray__'), true],
    [bin('data'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)],
    [bin('dtype'), dtype],
    [bin('shape'), shape],
  ]);
}

export const float32Bytes = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

/** A frame the corpus's image policy answers: state [2] and a 2×2 RGB image. */
export const goodFrame = (value = 1) =>
  new Map<Buffer, unknown>([
    [bin('observation/state'), ndarray(float32Bytes(value, 2), '<f4', [2])],
    [bin('observation/image'), ndarray(new Uint8Array(12), '|u1', [2, 2, 3])],
  ]);

export interface Reception {
  kind: 'binary' | 'text' | 'closed';
  /** Text frames: the text; binary: the decoded frame's keys; closed: the close code. */
  detail: string;
}

/** A connected socket, with a queue of what it receives. */
export class SessionSocket {
  private readonly received: Reception[] = [];
  private waiting: ((reception: Reception) => void) | undefined;

  private constructor(
    readonly socket: WebSocket,
    client: CaseClient,
  ) {
    socket.on('message', (data, isBinary) => {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (!isBinary) client.kura.inspect(client.caseName, 'a WebSocket text frame', { status: 200, text: bytes.toString('utf8') });
      this.push(isBinary ? { kind: 'binary', detail: describeBinary(bytes) } : { kind: 'text', detail: bytes.toString('utf8') });
    });
    socket.on('close', (code) => this.push({ kind: 'closed', detail: String(code) }));
    // A refused or broken socket reports here too; 'close' follows.
    socket.on('error', () => undefined);
  }

  private push(reception: Reception): void {
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting(reception);
    } else this.received.push(reception);
  }

  /** The next thing received, or `closed timeout` after `ms`. */
  next(ms = 15_000): Promise<Reception> {
    const queued = this.received.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve({ kind: 'closed', detail: `nothing within ${ms / 1000} s` });
      }, ms);
      this.waiting = (reception) => {
        clearTimeout(timer);
        resolve(reception);
      };
    });
  }

  send(data: Buffer | string, binary = true): void {
    this.socket.send(data, { binary });
  }

  close(): void {
    this.socket.terminate();
  }

  /**
   * Opens a socket to the session; resolves with it once the metadata frame arrived, or with the
   * refusal as `<status> <code>` when the upgrade is refused.
   */
  static open(client: CaseClient, sessionId: string, authorization: string | undefined): Promise<SessionSocket | string> {
    return new Promise((resolve) => {
      const socket = new WebSocket(`${client.kura.wsUrl}/v1/sessions/${sessionId}/ws`, {
        headers: authorization === undefined ? {} : { Authorization: authorization },
        maxPayload: 64 * 1024 * 1024,
      });
      socket.once('unexpected-response', (_request, response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          client.kura.inspect(client.caseName, `WebSocket upgrade to ${sessionId}`, { status: response.statusCode ?? 0, text });
          resolve(`${response.statusCode} ${errorCodeOf(text)}`.trim());
        });
      });
      socket.once('error', (error) => resolve(`socket error: ${error.message}`));
      socket.once('message', (data) => {
        socket.removeAllListeners();
        void data;
        resolve(new SessionSocket(socket, client));
      });
    });
  }
}

/** `error.code` of an error body, or `(not JSON)`. */
function errorCodeOf(text: string): string {
  try {
    return String((JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '');
  } catch {
    return '(not JSON)';
  }
}

function describeBinary(bytes: Buffer): string {
  try {
    const value: unknown = unpackr.unpack(bytes);
    if (value instanceof Map)
      return [...(value as Map<unknown, unknown>).keys()]
        .map((key) => (Buffer.isBuffer(key) ? key.toString('utf8') : String(key)))
        .join(',');
    return typeof value;
  } catch {
    return 'not msgpack';
  }
}
