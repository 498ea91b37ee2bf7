import { Transform, type Readable } from 'node:stream';

/** Passes the stream through, telling how many bytes went by so far (progress bars). */
export function counted(stream: Readable, onBytes: (bytes: number) => void, startAt = 0): Readable {
  let bytes = startAt;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onBytes((bytes += chunk.length));
      callback(null, chunk);
    },
  });
  stream.on('error', (error) => counter.destroy(error));
  return stream.pipe(counter);
}
