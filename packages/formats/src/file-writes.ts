import type { FileHandle } from 'node:fs/promises';

/**
 * Writes all of `bytes` at the file's position: a write may take fewer bytes than asked (a disk
 * nearly full), and only the next one fails with ENOSPC. Ignoring the count would leave a hole in
 * the file instead of an error.
 */
export async function writeFully(file: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.byteLength;) {
    const { bytesWritten } = await file.write(bytes, offset, bytes.byteLength - offset);
    offset += bytesWritten;
  }
}

/** Most buffers one writev takes here (below every system's IOV_MAX). */
const WRITEV_BUFFERS = 256;

/**
 * Writes all of `chunks`, in order, at the file's position: with writev, so that chunks arrived
 * from a socket need not be copied into one buffer first. A short write goes on chunk by chunk.
 */
export async function writeChunksFully(file: FileHandle, chunks: readonly Uint8Array[]): Promise<void> {
  for (let first = 0; first < chunks.length; first += WRITEV_BUFFERS) {
    const group = chunks.slice(first, first + WRITEV_BUFFERS);
    if (group.length === 1) {
      await writeFully(file, group[0]!);
      continue;
    }
    let { bytesWritten } = await file.writev(group);
    for (const chunk of group) {
      if (bytesWritten >= chunk.byteLength) bytesWritten -= chunk.byteLength;
      else {
        await writeFully(file, chunk.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
  }
}
