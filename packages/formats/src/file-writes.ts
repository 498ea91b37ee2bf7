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
