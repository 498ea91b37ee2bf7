import type { PolicyCallContext, PolicyObservation } from '@kura/schema';

/**
 * What the api and a policy host say to each other, in frames (@kura/jail frames.ts): one request
 * at a time, one answer each. Arrays travel as raw bytes in the frame's body.
 *
 * api → host: `load` (body: the entry file for JS and ONNX; Python reads its bundle folder),
 * `act` (body: the observation's arrays), `reset`.
 * host → api: `loaded`, `action` (body: float32 LE), `done`, or `error` with a PolicyErrorCode.
 */
export type HostRequest =
  | { type: 'load'; manifest: unknown; limits: unknown; features: unknown; bundleDir?: string }
  | { type: 'act'; context: PolicyCallContext; arrays: ArrayEntry[] }
  /** Several steps in order (evaluations): `arrays[i]` and `contexts[i]` are step i's; one body. */
  | { type: 'actMany'; contexts: PolicyCallContext[]; arrays: ArrayEntry[][] }
  | { type: 'reset' };

export type HostAnswer =
  | { type: 'loaded'; observationShapes: Record<string, number[]> | null }
  | { type: 'action'; length: number }
  | { type: 'actions'; lengths: number[] }
  | { type: 'done' }
  | { type: 'error'; code: string; message: string; details?: Record<string, unknown> };

/** One observation feature in a frame's body: `f64` for plain numbers (exact), `f32`, or `bytes` (an encoded image). */
export interface ArrayEntry {
  name: string;
  kind: 'f64' | 'f32' | 'bytes';
  offset: number;
  bytes: number;
}

/** The observation as frame entries and one body. */
export function encodeObservation(observation: PolicyObservation): { arrays: ArrayEntry[]; body: Buffer } {
  const [arrays, body] = encodeObservations([observation]);
  return { arrays: arrays[0]!, body };
}

/** Several observations as frame entries (offsets into one body) and that body. */
export function encodeObservations(observations: readonly PolicyObservation[]): [ArrayEntry[][], Buffer] {
  const parts: Buffer[] = [];
  let offset = 0;
  const all = observations.map((observation) => {
    const arrays: ArrayEntry[] = [];
    offset = encodeInto(observation, arrays, parts, offset);
    return arrays;
  });
  return [all, Buffer.concat(parts)];
}

function encodeInto(observation: PolicyObservation, arrays: ArrayEntry[], parts: Buffer[], start: number): number {
  let offset = start;
  for (const name of Object.keys(observation)) {
    const value = observation[name]!;
    let bytes: Buffer;
    let kind: ArrayEntry['kind'];
    if (value instanceof Uint8Array) {
      kind = 'bytes';
      bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    } else if (value instanceof Float32Array) {
      kind = 'f32';
      bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    } else {
      kind = 'f64';
      bytes = Buffer.from(Float64Array.from(value).buffer);
    }
    // Each array starts 8-byte aligned, so the other side can view it without copying.
    const padding = (8 - (offset % 8)) % 8;
    if (padding > 0) parts.push(Buffer.alloc(padding));
    offset += padding;
    arrays.push({ name, kind, offset, bytes: bytes.length });
    parts.push(bytes);
    offset += bytes.length;
  }
  return offset;
}

/** The observation back from a frame (copies: the frame's buffer is not kept). */
export function decodeObservation(arrays: ArrayEntry[], body: Buffer): PolicyObservation {
  const observation: PolicyObservation = {};
  for (const entry of arrays) {
    const slice = body.subarray(entry.offset, entry.offset + entry.bytes);
    if (entry.kind === 'bytes') observation[entry.name] = new Uint8Array(slice);
    else if (entry.kind === 'f32') observation[entry.name] = new Float32Array(new Uint8Array(slice).buffer);
    else observation[entry.name] = Array.from(new Float64Array(new Uint8Array(slice).buffer));
  }
  return observation;
}
