/**
 * Binary frames, for channels that carry arrays (a policy's observation and action): a JSON header
 * and raw bytes, so float32 arrays and encoded images cross the pipe as they are, not as JSON text
 * or base64. Layout: u32 LE header length, u32 LE body length, the header (UTF-8 JSON), the body.
 * The Python policy host speaks the same (packages/core/src/policies/hosts/python/kura_policy_host.py).
 */
export interface Frame {
  header: Record<string, unknown>;
  body: Buffer;
}

const PREFIX_BYTES = 8;

/** Up to this size a frame is written as one buffer (one system call); larger bodies are not copied. */
const COPY_BELOW_BYTES = 64 * 1024;

/** One frame as buffers to write in order. */
export function encodeFrame(header: Record<string, unknown>, body: Uint8Array = new Uint8Array(0)): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  prefix.writeUInt32LE(json.length, 0);
  prefix.writeUInt32LE(body.byteLength, 4);
  const parts = [prefix, json, Buffer.from(body.buffer, body.byteOffset, body.byteLength)];
  return body.byteLength < COPY_BELOW_BYTES ? [Buffer.concat(parts)] : parts;
}

export class FrameTooLarge extends Error {
  constructor(readonly bytes: number) {
    super(`a frame of ${bytes} bytes is past the channel's limit`);
  }
}

/** Cuts a byte stream into frames; refuses (FrameTooLarge) a frame past `maxBytes` before buffering it. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxBytes: number) {}

  /** The frames `chunk` completes, in order. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < PREFIX_BYTES) break;
      const head = this.peek(PREFIX_BYTES);
      const headerBytes = head.readUInt32LE(0);
      const bodyBytes = head.readUInt32LE(4);
      const total = PREFIX_BYTES + headerBytes + bodyBytes;
      if (total > this.maxBytes) throw new FrameTooLarge(total);
      if (this.buffered < total) break;
      const all = this.take(total);
      const header = JSON.parse(all.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + headerBytes)) as unknown;
      if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error('a frame header is not a JSON object');
      frames.push({ header: header as Record<string, unknown>, body: all.subarray(PREFIX_BYTES + headerBytes) });
    }
    return frames;
  }

  private peek(bytes: number): Buffer {
    if (this.chunks[0]!.length < bytes) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, bytes);
  }

  private take(bytes: number): Buffer {
    const joined = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const taken = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered -= bytes;
    return taken;
  }
}
