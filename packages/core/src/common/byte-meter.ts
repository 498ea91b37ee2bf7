import { Transform, type Readable } from 'node:stream';

/**
 * Passes a request body through, counting its bytes (and feeding `onChunk`), and fails the stream
 * with `tooLarge()` as soon as more than `limit` bytes arrive — before they are stored. A failing
 * source fails the metered stream too.
 */
export function meterBytes(params: { body: Readable; limit: number; tooLarge: () => Error; onChunk?: (chunk: Buffer) => void }): {
  stream: Readable;
  bytes: () => number;
  exceeded: () => boolean;
} {
  let bytes = 0;
  let exceeded = false;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > params.limit) {
        exceeded = true;
        callback(params.tooLarge());
        return;
      }
      params.onChunk?.(chunk);
      callback(null, chunk);
    },
  });
  params.body.on('error', (error) => meter.destroy(error));
  // The limit can be passed before the consumer has started reading (a small limit, a fast client);
  // the stream keeps the error for the consumer, so it must not also crash the process unheard.
  meter.on('error', () => undefined);
  return { stream: params.body.pipe(meter), bytes: () => bytes, exceeded: () => exceeded };
}
