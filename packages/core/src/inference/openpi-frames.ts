import { Packr, Unpackr } from 'msgpackr';
import { encodePng } from '@kura/formats';
import { dtypeOfNumpyDescr, numericDtypeTable, unstorableTextProblem, type NumericDtype } from '@kura/schema';
import { AppError } from '../errors/app-error.js';
import { frameInvalid, frameNotBinary, frameNotMap, frameNotMsgpack } from './inference.errors.js';

// openpi's policy-server frames (msgpack with msgpack_numpy arrays), for the server's session
// WebSocket and the edge runner's (@kura/edge): both read and write them with this one codec.

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

/** The first message of an openpi connection: the server's metadata. */
export const encodeOpenpiMetadata = (metadata: Record<string, unknown>): Buffer => packr.pack(metadata);

/** A reply: `{ actions, server_timing: { infer_ms } }`, the action as a float32 ndarray of its shape. */
export function encodeOpenpiActions(action: number[] | number[][], inferMs: number): Buffer {
  const flat = action.flat();
  const shape = Array.isArray(action[0]) ? [action.length, action[0].length] : [action.length];
  return packr.pack({ actions: ndarray(Float32Array.from(flat), shape), server_timing: { infer_ms: inferMs } });
}

/**
 * An openpi observation frame → a session step: `a/b` keys as `a.b` features, arrays as numbers,
 * uint8 H×W×C arrays as PNG images, `prompt` as the task. `keys` gives each feature's key as sent.
 */
export function decodeOpenpiFrame(buffer: Buffer): { observation: Record<string, unknown>; task?: string; keys: Map<string, string> } {
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
export function asFrameInvalid(error: unknown, keys: Map<string, string>): unknown {
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

/** What of a `ws` WebSocket the frame loop uses (core does not depend on `ws`). */
export interface OpenpiSocket {
  readonly readyState: number;
  readonly OPEN: number;
  send(data: Buffer | string): void;
  close(code: number, reason: string): void;
  on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
}

/**
 * openpi's conversation on one socket, for the server's sessions and the edge runner: the metadata
 * first, then one reply per binary observation frame, in order. The policy sees only the features it
 * observes (openpi clients send what their own config names). A frame Kura cannot use
 * (FRAME_INVALID) is answered with a text frame and the socket stays open; any other failure is
 * answered the same way, then the socket closes with 1011.
 */
export function answerOpenpiFrames(
  client: OpenpiSocket,
  params: {
    metadata: Record<string, unknown>;
    features: readonly string[];
    act: (observation: Record<string, unknown>, task: string | undefined) => Promise<number[] | number[][]>;
    /** The code and message a failure is answered with (and where it is logged). */
    describe: (error: unknown) => { code: string; message: string };
  },
): void {
  client.send(encodeOpenpiMetadata(params.metadata));
  let busy = Promise.resolve();
  client.on('message', (data, isBinary) => {
    busy = busy.then(async () => {
      if (client.readyState !== client.OPEN) return;
      try {
        if (!isBinary) throw frameNotBinary();
        const frame = decodeOpenpiFrame(Buffer.concat(Array.isArray(data) ? data : [Buffer.isBuffer(data) ? data : Buffer.from(data)]));
        const observation = Object.fromEntries(Object.entries(frame.observation).filter(([name]) => params.features.includes(name)));
        const started = performance.now();
        const action = await params.act(observation, frame.task).catch((error: unknown) => {
          throw asFrameInvalid(error, frame.keys);
        });
        client.send(encodeOpenpiActions(action, performance.now() - started));
      } catch (error) {
        const { code, message } = params.describe(error);
        client.send(`${code}: ${message}`);
        // A refused frame did nothing: the robot may send the next one on the same socket.
        if (code !== 'FRAME_INVALID') client.close(1011, code.slice(0, 100));
      }
    });
  });
}
