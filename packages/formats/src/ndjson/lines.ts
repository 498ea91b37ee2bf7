import { createReadStream } from 'node:fs';
import type { SourceFile } from '../importer.js';

const CHUNK_BYTES = 1024 * 1024;

/**
 * The lines of a UTF-8 text file (read as it arrives when it is still arriving), one at a time, with their 1-based numbers. Bytes that are not
 * valid UTF-8 are reported (`text` undefined) instead of being replaced silently; a line longer than
 * `maxLineBytes` is reported (`tooLong`) once that many bytes were read, and ends the reading.
 */
export async function* readLines(
  file: SourceFile,
  maxLineBytes: number,
): AsyncGenerator<{ line: number; text: string | undefined; tooLong: boolean; bytes: number }> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  const emit = (parts: Buffer[]) => {
    line++;
    // Most lines sit inside one read chunk: no copy then.
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
    try {
      return { line, text: decoder.decode(bytes.subarray(0, end)), tooLong: false, bytes: bytes.length };
    } catch {
      return { line, text: undefined, tooLong: false, bytes: bytes.length };
    }
  };
  const chunks =
    file.arriving?.chunks(CHUNK_BYTES) ?? (createReadStream(file.absolutePath, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>);
  for await (const chunk of chunks) {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      pending.push(chunk.subarray(start, newline));
      const bytes = pendingBytes + newline - start;
      yield bytes > maxLineBytes ? { line: ++line, text: undefined, tooLong: true, bytes } : emit(pending);
      pending = [];
      pendingBytes = 0;
      start = newline + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      // The line is not held beyond the limit: `bytes` is as far as it was read.
      if (pendingBytes > maxLineBytes) {
        yield { line: ++line, text: undefined, tooLong: true, bytes: pendingBytes };
        return;
      }
    }
  }
  if (pendingBytes > 0) yield emit(pending);
}
