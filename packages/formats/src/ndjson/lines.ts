import { createReadStream } from 'node:fs';
import type { SourceFile } from '../importer.js';

const CHUNK_BYTES = 1024 * 1024;

/** A line of a text file: its 1-based number, its text (undefined when not valid UTF-8), whether it was too long. */
export interface TextLine {
  line: number;
  text: string | undefined;
  tooLong: boolean;
  bytes: number;
}

/**
 * The lines of a UTF-8 text file (read as it arrives when it is still arriving), with their
 * 1-based numbers. Bytes that are not valid UTF-8 are reported (`text` undefined) instead of being
 * replaced silently; a line longer than `maxLineBytes` is reported (`tooLong`) once that many bytes
 * were read, and ends the reading.
 */
export async function* readLines(file: SourceFile, maxLineBytes: number): AsyncGenerator<TextLine> {
  for await (const batch of readLineBatches(file, maxLineBytes)) yield* batch;
}

/**
 * readLines in batches, one per chunk read: a short line costs less to parse than an async
 * generator's round trip, so a caller going through millions of them takes them a chunk at a time.
 */
export async function* readLineBatches(file: SourceFile, maxLineBytes: number): AsyncGenerator<TextLine[]> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  const emit = (parts: Buffer[]): TextLine => {
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
    const batch: TextLine[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      pending.push(chunk.subarray(start, newline));
      const bytes = pendingBytes + newline - start;
      batch.push(bytes > maxLineBytes ? { line: ++line, text: undefined, tooLong: true, bytes } : emit(pending));
      pending = [];
      pendingBytes = 0;
      start = newline + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      // The line is not held beyond the limit: `bytes` is as far as it was read.
      if (pendingBytes > maxLineBytes) {
        batch.push({ line: ++line, text: undefined, tooLong: true, bytes: pendingBytes });
        yield batch;
        return;
      }
    }
    if (batch.length > 0) yield batch;
  }
  if (pendingBytes > 0) yield [emit(pending)];
}
