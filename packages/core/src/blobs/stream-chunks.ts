import { Readable } from 'node:stream';

/** A stream chunk as bytes: streams with an encoding set yield strings, some sources yield Uint8Arrays. */
export function chunkToBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`blob bodies must yield bytes, got a chunk of type ${typeof chunk}`);
}

/** The bytes of a body, chunk by chunk, whether it is a stream or a single Buffer. */
export async function* chunksOf(body: Readable | Buffer): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(body)) {
    yield body;
    return;
  }
  for await (const chunk of body) yield chunkToBuffer(chunk);
}

/** A byte stream (not object mode) over async chunks. */
export function byteStream(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Readable {
  return Readable.from(chunks, { objectMode: false });
}
