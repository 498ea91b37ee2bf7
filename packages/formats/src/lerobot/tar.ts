import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import tarStream, { type Headers as TarHeaders, type Pack } from 'tar-stream';
import { ExportError } from '../export-error.js';

// The tar stream of a LeRobot export: entries written while the tar is read, with backpressure.

export type { Pack };

/** A regular file's header: fixed owner and mtime, so the same export gives the same bytes. */
export function fileHeader(name: string, size: number, mtime: Date): TarHeaders {
  return { name, size, mode: 0o644, mtime, uid: 0, gid: 0, uname: '', gname: '', type: 'file' };
}

/** The tar that `write` fills, as chunks; `write`'s error (an ExportError keeps its code) ends it. */
export async function* streamTar(write: (pack: Pack) => Promise<void>): AsyncGenerator<Uint8Array> {
  const pack = tarStream.pack();
  let failure: unknown;
  // The entries are written while the tar is read: tar-stream holds back each entry until its bytes
  // have been read, so the producer never runs more than one entry ahead.
  const producing = write(pack).then(
    () => pack.finalize(),
    (error: unknown) => {
      failure = error;
      pack.destroy(error instanceof Error ? error : new Error(String(error)));
    },
  );
  try {
    for await (const chunk of pack) yield chunk;
  } catch (error) {
    // The pack ends with the producer's error; rethrow that error itself (an ExportError keeps its code).
    throw failure ?? error;
  } finally {
    // A consumer that stops early: end the pack so the producer's pending write fails and it stops.
    if (!pack.destroyed) pack.destroy();
    await producing;
  }
}

/** Adds an entry from memory; resolves once tar-stream has passed its bytes on (backpressure). */
export function writeEntry(pack: Pack, header: TarHeaders, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (error?: Error | null) =>
      error ? reject(error) : resolve(),
    );
  });
}

/** Copies a stream into an entry of the declared size (LEROBOT_EXPORT_VIDEO_SIZE when the stream's length differs). */
export async function writeStreamEntry(pack: Pack, header: TarHeaders, stream: Readable, blobKey: string): Promise<void> {
  const size = header.size ?? 0;
  let entry!: Writable;
  const done = new Promise<void>((resolve, reject) => {
    entry = pack.entry(header, (error?: Error | null) => (error ? reject(error) : resolve()));
  });
  // Awaited below; until then a failure (the pack destroyed by a consumer that stopped) must not count as unhandled.
  done.catch(() => undefined);
  // The entry's error reaches us through its callback (`done`); without a listener, streamx would throw it.
  entry.on('error', () => undefined);
  let written = 0;
  try {
    for await (const chunk of stream) {
      const bytes: unknown = chunk;
      if (!(bytes instanceof Uint8Array))
        throw new ExportError('LEROBOT_EXPORT_VIDEO_SIZE', `the stream of video blob ${blobKey} yields ${typeof bytes}, not bytes`);
      written += bytes.byteLength;
      if (written > size) break;
      if (!entry.write(bytes)) await Promise.race([once(entry, 'drain'), done]);
    }
  } catch (error) {
    entry.destroy(error instanceof Error ? error : new Error(String(error)));
    throw error;
  } finally {
    stream.destroy();
  }
  if (written !== size) {
    const error = new ExportError(
      'LEROBOT_EXPORT_VIDEO_SIZE',
      `video blob ${blobKey} holds ${written > size ? 'more than' : 'only'} ${written} bytes; ${size} were announced`,
    );
    entry.destroy(error);
    throw error;
  }
  entry.end();
  await done;
}

export async function concat(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
