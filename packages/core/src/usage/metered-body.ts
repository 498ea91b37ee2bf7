import { Transform, type Readable } from 'node:stream';

/**
 * The body as it is sent, counting its bytes; `record` gets the count once the reply is over, however
 * it ended. The source is closed then too: pipe() passes no destroy upstream, and a HEAD or a client
 * gone mid-way would otherwise leave its file handle open.
 */
export function meteredBody(body: Readable, record: (bytes: number) => void): Readable {
  let served = 0;
  // Counted as the bytes pass (a listener on the source would start it flowing before it is piped).
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      served += chunk.length;
      callback(null, chunk);
    },
  });
  body.once('error', (error) => counted.destroy(error));
  counted.once('close', () => {
    body.destroy();
    record(served);
  });
  return body.pipe(counted);
}
