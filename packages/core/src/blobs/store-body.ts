import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { AppError } from '../errors/app-error.js';
import { outageError } from '../errors/outages.js';
import { meterBytes } from '../common/byte-meter.js';
import type { BlobStore, LocalFileListener } from './blob-store.js';

/** The limits a request body is read under: its size, and the errors it fails with. */
interface BodyLimits {
  body: Readable;
  maxBytes: number;
  tooLarge: () => Error;
  interrupted: (error: unknown) => Error;
}

/**
 * Streams a request body into a blob while hashing it (sha256) and counting it: more than
 * `maxBytes` fails with `tooLarge()` before the excess is stored, a body that breaks off fails with
 * `interrupted(error)`. Nothing is held in memory.
 */
export function storeBody(
  params: BodyLimits & {
    blobs: BlobStore;
    key: string;
    /** Sees every chunk, in order (a conversion reading the body as it arrives)… */
    tee?: (chunk: Buffer) => void;
    /** …or the local file the store writes the body to, where it writes one (BlobStore.put). */
    onLocalFile?: LocalFileListener;
  },
): Promise<{ bytes: number; sha256: string }> {
  return readHashed(params, (stream) =>
    params.blobs.put({ key: params.key, body: stream, ...(params.onLocalFile ? { onLocalFile: params.onLocalFile } : {}) }),
  );
}

/** Reads a request body to its end for its sha256 and size only, storing nothing; the same limits as storeBody. */
export function hashBody(params: BodyLimits): Promise<{ bytes: number; sha256: string }> {
  return readHashed(params, (stream) => finished(stream.resume()));
}

/** Hands the metered, hashed body to `consume`, and maps its failure to `tooLarge` or `interrupted`. */
async function readHashed(
  params: BodyLimits & { tee?: (chunk: Buffer) => void },
  consume: (stream: Readable) => Promise<unknown>,
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  const metered = meterBytes({
    body: params.body,
    limit: params.maxBytes,
    tooLarge: params.tooLarge,
    onChunk: (chunk) => {
      hash.update(chunk);
      params.tee?.(chunk);
    },
  });
  try {
    await consume(metered.stream);
  } catch (error) {
    if (metered.exceeded()) throw params.tooLarge();
    // The store failed, not the client (a full disk, an object store that is down): say which. A
    // bare socket error is the client's connection breaking off.
    const outage = outageError(error);
    if (outage && outage.code !== 'SERVICE_UNAVAILABLE') throw outage;
    throw params.interrupted(error);
  }
  return { bytes: metered.bytes(), sha256: hash.digest('hex') };
}

/** A request body that broke off before its end (the client went away, or the connection failed). */
export const bodyInterrupted = (code: string, error: unknown) =>
  new AppError({
    code,
    kind: 'invalid',
    message: `the request body could not be read to the end: ${error instanceof Error ? error.message : String(error)}`,
    cause: error,
  });
