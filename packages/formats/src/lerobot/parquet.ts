import { open, type FileHandle } from 'node:fs/promises';
import {
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
  type AsyncBuffer,
  type FileMetaData,
  type PageHeader,
  type ParquetRow,
  type SchemaElement,
} from 'hyparquet';
import { parquetHeader } from 'hyparquet/src/column.js';
import { compressors } from 'hyparquet-compressors';
import type { ErrorLocation } from '@kura/schema';
import { IngestBudget } from '../budget.js';
import { ImportError, type SourceFile } from '../importer.js';

/** Text of a parquet string column that was not valid UTF-8 (kept apart so the caller can say where). */
export class InvalidUtf8Text {
  constructor(readonly bytes: Uint8Array) {}
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes parquet strings strictly: hyparquet's default would hide bad bytes behind U+FFFD. */
function stringFromBytes(bytes: Uint8Array): string | InvalidUtf8Text {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return new InvalidUtf8Text(bytes);
  }
}

/** An AsyncBuffer over an open file handle: hyparquet reads the footer and the column chunks it needs, not the whole file. */
class FileHandleBuffer implements AsyncBuffer {
  private constructor(
    private readonly handle: FileHandle,
    readonly byteLength: number,
  ) {}

  static async open(absolutePath: string): Promise<FileHandleBuffer> {
    const handle = await open(absolutePath, 'r');
    try {
      return new FileHandleBuffer(handle, (await handle.stat()).size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async slice(start: number, end: number = this.byteLength): Promise<ArrayBuffer> {
    const length = Math.max(0, Math.min(end, this.byteLength) - start);
    const bytes = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(bytes, filled, length - filled, start + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === length ? bytes.buffer : bytes.buffer.slice(0, filled);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/**
 * JavaScript's cost of one decoded parquet value (a number or a reference in an array, its share of
 * the row objects), for the budget: what hyparquet builds, not what the file stores.
 */
const BYTES_PER_VALUE = 16;
/** Page headers are read through windows of this many bytes (a header with statistics may be larger: the window grows). */
const HEADER_WINDOW_BYTES = 64 * 1024;
const MAX_HEADER_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * One open parquet file of the source. Every hyparquet failure becomes PARQUET_INVALID naming the
 * file. Before rows are decoded, the page headers of their column chunks are read and charged to the
 * budget: a page may declare millions of values in a few bytes (run-length encoding), and hyparquet
 * allocates what the header declares.
 */
export class ParquetReader {
  private constructor(
    readonly file: SourceFile,
    private readonly buffer: FileHandleBuffer,
    private readonly metadata: FileMetaData,
    /** Top-level column names. */
    readonly columns: ReadonlySet<string>,
    private readonly budget: IngestBudget,
  ) {}

  /** Column chunks whose page headers were read and charged. */
  private readonly chargedChunks = new Set<string>();

  static async open(
    file: SourceFile,
    location: ErrorLocation = {},
    budget: IngestBudget = new IngestBudget(file.bytes),
  ): Promise<ParquetReader> {
    let buffer: FileHandleBuffer;
    try {
      buffer = await FileHandleBuffer.open(file.absolutePath);
    } catch (error) {
      throw new ImportError('PARQUET_INVALID', `${file.path} cannot be read: ${describe(error)}`, { ...location, file: file.path });
    }
    try {
      const metadata = await parquetMetadataAsync(buffer);
      const columns = new Set(parquetSchema(metadata).children.map((child) => child.element.name));
      return new ParquetReader(file, buffer, metadata, columns, budget);
    } catch (error) {
      await buffer.close();
      throw new ImportError('PARQUET_INVALID', `${file.path} is not a readable parquet file: ${describe(error)}`, {
        ...location,
        file: file.path,
      });
    }
  }

  get numRows(): number {
    return Number(this.metadata.num_rows);
  }

  /**
   * The numeric type a column's values are stored as (`float32`, `float64`, `int64`, `bool`…; for a
   * list column, its items'), in LeRobot's dtype words; undefined for other types or no such column.
   */
  storedDtype(column: string): string | undefined {
    let node = parquetSchema(this.metadata).children.find((child) => child.element.name === column);
    while (node && node.children.length > 0) node = node.children[0];
    return node ? dtypeOf(node.element) : undefined;
  }

  /** Key-value metadata of the footer (pandas writes its index columns there). */
  keyValue(key: string): string | undefined {
    return this.metadata.key_value_metadata?.find((entry) => entry.key === key)?.value ?? undefined;
  }

  /**
   * Rows `[rowStart, rowEnd)` of the given columns as objects. Binary columns stay Uint8Array;
   * strings are decoded strictly (InvalidUtf8Text where the bytes are not UTF-8).
   */
  async read(params: { columns: string[]; rowStart?: number; rowEnd?: number; location?: ErrorLocation }): Promise<ParquetRow[]> {
    const { columns, rowStart, rowEnd, location = {} } = params;
    await this.chargePages(columns, rowStart ?? 0, rowEnd ?? this.numRows, location);
    try {
      return await parquetReadObjects({
        file: this.buffer,
        metadata: this.metadata,
        columns,
        rowStart,
        rowEnd,
        compressors,
        utf8: false,
        parsers: { stringFromBytes },
      });
    } catch (error) {
      throw new ImportError('PARQUET_INVALID', `${this.file.path} cannot be decoded: ${describe(error)}`, {
        ...location,
        file: this.file.path,
      });
    }
  }

  close(): Promise<void> {
    return this.buffer.close();
  }

  /**
   * Reads the page headers of the chunks of `columns` in the row groups holding rows
   * `[rowStart, rowEnd)`: each page must fit `maxTensorBytes` as decoded, and each chunk counts once
   * towards the upload's decoded budget (INGEST_LIMIT_EXCEEDED before hyparquet allocates anything).
   */
  private async chargePages(columns: readonly string[], rowStart: number, rowEnd: number, location: ErrorLocation): Promise<void> {
    let groupStart = 0;
    for (const [group, rowGroup] of this.metadata.row_groups.entries()) {
      const groupEnd = groupStart + Number(rowGroup.num_rows);
      const overlaps = groupStart < rowEnd && groupEnd > rowStart;
      groupStart = groupEnd;
      if (!overlaps) continue;
      for (const chunk of rowGroup.columns) {
        const meta = chunk.meta_data;
        const column = meta?.path_in_schema[0];
        if (!meta || column === undefined || !columns.includes(column)) continue;
        // Episodes of one file read the same chunks: each chunk's headers are read once.
        const key = `${this.file.path}#${group}#${meta.path_in_schema.join('.')}`;
        if (this.chargedChunks.has(key)) continue;
        const at = { ...location, file: this.file.path, field: column };
        const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
        const end = Math.min(start + Number(meta.total_compressed_size), this.buffer.byteLength);
        const decoded = await this.pagesDecodedBytes(start, end, at, `column ${column} of row group ${group} in ${this.file.path}`);
        this.budget.reserveOnce(key, decoded, at);
        this.chargedChunks.add(key);
      }
    }
  }

  /** What the pages between `start` and `end` declare they decode to, each checked against `maxTensorBytes`. */
  private async pagesDecodedBytes(start: number, end: number, at: ErrorLocation, what: string): Promise<number> {
    let total = 0;
    let window = { start: 0, bytes: new Uint8Array(0) };
    for (let offset = start, page = 0; offset < end; page++) {
      let header: PageHeader | undefined;
      let headerBytes = 0;
      for (let size = HEADER_WINDOW_BYTES; header === undefined; size *= 4) {
        const windowEnd = Math.min(end, offset + size);
        if (offset < window.start || window.start + window.bytes.length < windowEnd)
          window = {
            start: offset,
            bytes: new Uint8Array(await this.buffer.slice(offset, Math.min(end, offset + Math.max(size, 1024 * 1024)))),
          };
        const reader = { view: new DataView(window.bytes.buffer, window.bytes.byteOffset + (offset - window.start)), offset: 0 };
        try {
          header = parquetHeader(reader);
          headerBytes = reader.offset;
        } catch (error) {
          // A header cut by the window: read a larger one, unless the chunk itself ends there.
          if (windowEnd >= end || size >= MAX_HEADER_WINDOW_BYTES)
            throw new ImportError('PARQUET_INVALID', `${what}: page ${page} has no readable header (${describe(error)})`, at);
        }
      }
      const values =
        header.data_page_header?.num_values ?? header.data_page_header_v2?.num_values ?? header.dictionary_page_header?.num_values ?? 0;
      const decoded = Math.max(header.uncompressed_page_size, values * BYTES_PER_VALUE);
      if (!(header.compressed_page_size >= 0) || !(decoded >= 0))
        throw new ImportError('PARQUET_INVALID', `${what}: page ${page} declares negative sizes`, at);
      this.budget.checkTensor(decoded, at, `page ${page} of ${what} (${values} values, ${header.uncompressed_page_size} bytes)`);
      total += decoded;
      offset += headerBytes + header.compressed_page_size;
    }
    return total;
  }
}

/** Opens a parquet file, runs `use`, and closes the file whatever happens; reads are charged to `budget` when given. */
export async function withParquet<T>(
  file: SourceFile,
  location: ErrorLocation,
  use: (reader: ParquetReader) => Promise<T>,
  budget?: IngestBudget,
): Promise<T> {
  const reader = await ParquetReader.open(file, location, budget);
  try {
    return await use(reader);
  } finally {
    await reader.close();
  }
}

/** A leaf's type in LeRobot's dtype words, from its physical type and integer annotations. */
function dtypeOf(element: SchemaElement): string | undefined {
  const logical = element.logical_type;
  switch (element.type) {
    case 'FLOAT':
      return 'float32';
    case 'DOUBLE':
      return 'float64';
    case 'BOOLEAN':
      return 'bool';
    case 'INT64':
      return element.converted_type === 'UINT_64' || (logical?.type === 'INTEGER' && !logical.isSigned) ? 'uint64' : 'int64';
    case 'INT32': {
      if (logical?.type === 'INTEGER') return `${logical.isSigned ? 'int' : 'uint'}${logical.bitWidth}`;
      const converted = element.converted_type;
      if (converted === 'INT_8' || converted === 'INT_16' || converted === 'UINT_8' || converted === 'UINT_16' || converted === 'UINT_32')
        return converted.toLowerCase().replace('_', '');
      return converted === undefined || converted === 'INT_32' ? 'int32' : undefined;
    }
    case 'FIXED_LEN_BYTE_ARRAY':
      return logical?.type === 'FLOAT16' ? 'float16' : undefined;
    case 'BYTE_ARRAY':
    case 'INT96':
    case undefined:
      return undefined;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
