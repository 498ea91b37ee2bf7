import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { constants as bufferConstants } from 'node:buffer';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import type { IngestBudget } from '../budget.js';
import { ImportError } from '../importer.js';

/*
 * TFRecord framing, as TensorFlow writes it (tensorflow/core/lib/io/record_writer.cc):
 *
 *   uint64 length          little-endian
 *   uint32 masked_crc32c(length bytes)
 *   byte   data[length]
 *   uint32 masked_crc32c(data)
 */

/** Bytes before a record's payload: the length and its checksum. */
export const TFRECORD_HEADER_BYTES = 12;
/** Bytes after a record's payload: the payload's checksum. */
export const TFRECORD_FOOTER_BYTES = 4;

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one table entry per byte value. */
const CRC32C_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    table[byte] = crc >>> 0;
  }
  return table;
})();

/** CRC-32C of `bytes` (the checksum TFRecord, iSCSI and ext4 use). `crc32c("123456789") === 0xe3069283`. */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let index = 0; index < bytes.length; index++) {
    // `?? 0` never applies: the index is always a byte value.
    crc = (CRC32C_TABLE[(crc ^ (bytes[index] ?? 0)) & 0xff] ?? 0) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * TensorFlow's masked CRC: rotate right by 15 bits and add a constant, so that a CRC stored inside
 * the checksummed data does not make the checksum trivially predictable.
 */
export function maskCrc32c(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** The masked CRC-32C of `bytes`, as TFRecord stores it. */
export function maskedCrc32c(bytes: Uint8Array): number {
  return maskCrc32c(crc32c(bytes));
}

/** How a TFRecord file's bytes are wrapped (TensorFlow's `compression_type`). */
export type TfRecordCompression = 'none' | 'gzip' | 'zlib';

/** Whether `bytes` start with a TFRecord record header whose length checksum is right. */
export function isTfRecordHeader(bytes: Uint8Array): boolean {
  if (bytes.length < TFRECORD_HEADER_BYTES) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, TFRECORD_HEADER_BYTES);
  return maskedCrc32c(bytes.subarray(0, 8)) === view.getUint32(8, true);
}

/**
 * Guesses the compression of a TFRecord file from its first bytes. A valid record header wins, since
 * a length's low bytes can look like a gzip or zlib magic number.
 */
export function compressionFromMagic(firstBytes: Uint8Array): TfRecordCompression {
  if (isTfRecordHeader(firstBytes)) return 'none';
  const [first, second] = firstBytes;
  if (first === 0x1f && second === 0x8b) return 'gzip';
  // zlib (RFC 1950): deflate method, and the two header bytes are a multiple of 31.
  if (first !== undefined && second !== undefined && (first & 0x0f) === 8 && first >> 4 <= 7 && (first * 256 + second) % 31 === 0)
    return 'zlib';
  return 'none';
}

/** Reads up to `count` bytes from the start of a file (fewer when the file is shorter). */
export async function readFileStart(absolutePath: string, count: number): Promise<Uint8Array> {
  const handle = await open(absolutePath, 'r');
  try {
    const buffer = Buffer.alloc(count);
    const { bytesRead } = await handle.read(buffer, 0, count, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** One record of a TFRecord file. */
export interface TfRecord {
  /** 0-based index of the record in its file. */
  indexInFile: number;
  /** Byte offset of the record's header in the (decompressed) file. */
  offset: number;
  payload: Uint8Array;
}

/** Which file to read and how to name it in errors. */
export interface TfRecordFile {
  /** The path shown in error locations (the upload-relative path). */
  path: string;
  absolutePath: string;
  /** Bytes on disk, used to reject an impossible record length before reading it. */
  bytes: number;
}

export interface ReadTfRecordsOptions {
  /** Added to a record's index in its file to give `location.episode` (records are numbered across files). */
  firstEpisodeIndex?: number;
  /** Bytes read from disk at a time. */
  chunkBytes?: number;
  /** Each record's length (from its header) is charged here before the record is read. */
  budget?: IngestBudget;
  /** Only check records against the budget, without counting them: they are read again later (the first record, in open). */
  peek?: boolean;
}

/**
 * Streams the records of one TFRecord file, checking both checksums of every record. Holds one record
 * (plus one read chunk) in memory at a time. GZIP- and ZLIB-compressed files are decompressed on the fly.
 *
 * Throws ImportError `TFRECORD_TRUNCATED`, `TFRECORD_LENGTH_CRC_MISMATCH`, `TFRECORD_DATA_CRC_MISMATCH`,
 * `TFRECORD_RECORD_TOO_LARGE`, `TFRECORD_COMPRESSION_INVALID` or (a record past the budget, known
 * from its length field before it is read) `INGEST_LIMIT_EXCEEDED`, located at `{ file, episode }`.
 */
export async function* readTfRecords(file: TfRecordFile, options: ReadTfRecordsOptions = {}): AsyncGenerator<TfRecord> {
  const firstEpisodeIndex = options.firstEpisodeIndex ?? 0;
  const compression = compressionFromMagic(await readFileStart(file.absolutePath, TFRECORD_HEADER_BYTES));
  const fileStream = createReadStream(file.absolutePath, { highWaterMark: options.chunkBytes ?? 1 << 20 });
  let stream: Readable = fileStream;
  if (compression !== 'none') {
    const inflater = compression === 'gzip' ? createGunzip() : createInflate();
    // pipeline destroys the inflater with the file's error, so the error reaches the iterator below.
    stream = pipeline(fileStream, inflater, () => undefined);
  }
  const reader = new ByteReader(stream);
  const where = compression === 'none' ? '' : ` (offset in the ${compression}-decompressed data)`;
  let offset = 0;
  let indexInFile = 0;
  try {
    for (;;) {
      const location = { file: file.path, episode: firstEpisodeIndex + indexInFile };
      const describe = `record ${indexInFile} of ${file.path} at byte ${offset}${where}`;
      const header = await readOrThrow(reader, TFRECORD_HEADER_BYTES, compression, location, describe);
      if (header.length === 0) return;
      if (header.length < TFRECORD_HEADER_BYTES) {
        throw new ImportError(
          'TFRECORD_TRUNCATED',
          `${describe}: the file ends inside the record header (${header.length} of ${TFRECORD_HEADER_BYTES} bytes)`,
          location,
        );
      }
      const view = new DataView(header.buffer, header.byteOffset, TFRECORD_HEADER_BYTES);
      const storedLengthCrc = view.getUint32(8, true);
      const lengthCrc = maskedCrc32c(header.subarray(0, 8));
      if (storedLengthCrc !== lengthCrc) {
        throw new ImportError(
          'TFRECORD_LENGTH_CRC_MISMATCH',
          `${describe}: the length field's checksum is wrong (stored 0x${hex(storedLengthCrc)}, computed 0x${hex(lengthCrc)}); the file is corrupt or not a TFRecord file`,
          location,
        );
      }
      const length = view.getBigUint64(0, true);
      const recordBytes = BigInt(TFRECORD_HEADER_BYTES + TFRECORD_FOOTER_BYTES) + length;
      if (length > BigInt(bufferConstants.MAX_LENGTH)) {
        throw new ImportError(
          'TFRECORD_RECORD_TOO_LARGE',
          `${describe}: a record of ${length} bytes is larger than this reader can hold`,
          location,
        );
      }
      // For a plain file the remaining size is known: an impossible length is a truncation, found without reading.
      if (compression === 'none' && BigInt(offset) + recordBytes > BigInt(file.bytes)) {
        throw new ImportError(
          'TFRECORD_TRUNCATED',
          `${describe}: the record needs ${recordBytes} bytes but the file ends after ${file.bytes - offset}`,
          location,
        );
      }
      // A gzip-compressed file may hold a record thousands of times its size: its length decides before its bytes are read.
      const budget = options.budget;
      if (budget && options.peek) {
        budget.checkTensor(Number(length), location, describe);
        budget.checkAhead(Number(length), location);
      } else budget?.reserveBytes(Number(length), location, describe);
      const body = await readOrThrow(reader, Number(length) + TFRECORD_FOOTER_BYTES, compression, location, describe);
      if (body.length < Number(length) + TFRECORD_FOOTER_BYTES) {
        throw new ImportError(
          'TFRECORD_TRUNCATED',
          `${describe}: the file ends inside the record (${body.length} of ${length + 4n} bytes after the header)`,
          location,
        );
      }
      const payload = body.subarray(0, Number(length));
      const storedDataCrc = new DataView(body.buffer, body.byteOffset + Number(length), TFRECORD_FOOTER_BYTES).getUint32(0, true);
      const dataCrc = maskedCrc32c(payload);
      if (storedDataCrc !== dataCrc) {
        throw new ImportError(
          'TFRECORD_DATA_CRC_MISMATCH',
          `${describe}: the payload's checksum is wrong (stored 0x${hex(storedDataCrc)}, computed 0x${hex(dataCrc)}); the record is corrupt`,
          location,
        );
      }
      yield { indexInFile, offset, payload };
      offset += Number(recordBytes);
      indexInFile++;
    }
  } finally {
    stream.destroy();
    fileStream.destroy();
  }
}

function hex(value: number): string {
  return value.toString(16).padStart(8, '0');
}

/** Reads from the stream, turning a decompression failure into an ImportError at the current record. */
async function readOrThrow(
  reader: ByteReader,
  count: number,
  compression: TfRecordCompression,
  location: { file: string; episode: number },
  describe: string,
): Promise<Uint8Array> {
  try {
    return await reader.read(count);
  } catch (error) {
    if (compression === 'none' || !isZlibError(error)) throw error;
    // zlib reports a cut-off stream as Z_BUF_ERROR ("unexpected end of file").
    if (error.code === 'Z_BUF_ERROR') {
      throw new ImportError('TFRECORD_TRUNCATED', `${describe}: the ${compression} stream ends early (${error.message})`, location);
    }
    throw new ImportError(
      'TFRECORD_COMPRESSION_INVALID',
      `${describe}: the ${compression} data cannot be decompressed (${error.message})`,
      location,
    );
  }
}

/** Duck-typed, not `instanceof Error`: errors from Node's core can come from another realm (e.g. under Jest). */
function isZlibError(error: unknown): error is { code: string; message: string } {
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string' &&
    error.code.startsWith('Z_') &&
    'message' in error &&
    typeof error.message === 'string'
  );
}

/** Exact-size reads over a stream of chunks, without concatenating more than one read's worth. */
class ByteReader {
  private readonly iterator: AsyncIterator<unknown>;
  private readonly chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private head = 0;
  private buffered = 0;
  private ended = false;

  constructor(stream: Readable) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** Up to `count` bytes; fewer only when the stream ends first. */
  async read(count: number): Promise<Uint8Array> {
    while (this.buffered < count && !this.ended) {
      const next = await this.iterator.next();
      if (next.done === true) this.ended = true;
      else if (Buffer.isBuffer(next.value) && next.value.length > 0) {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
      }
    }
    const take = Math.min(count, this.buffered);
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.head >= take) {
      // The common case for small reads: no copy.
      const bytes = first.subarray(this.head, this.head + take);
      this.consume(take);
      return bytes;
    }
    const bytes = Buffer.allocUnsafe(take);
    let filled = 0;
    while (filled < take) {
      const chunk = this.chunks[0];
      if (chunk === undefined) break;
      const piece = Math.min(take - filled, chunk.length - this.head);
      chunk.copy(bytes, filled, this.head, this.head + piece);
      filled += piece;
      this.consume(piece);
    }
    return bytes;
  }

  private consume(count: number): void {
    this.buffered -= count;
    this.head += count;
    const first = this.chunks[0];
    if (first !== undefined && this.head >= first.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
