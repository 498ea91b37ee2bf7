import { open, type FileHandle } from 'node:fs/promises';
import {
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
  type AsyncBuffer,
  type FileMetaData,
  type ParquetRow,
  type SchemaElement,
} from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { ErrorLocation } from '@kura/schema';
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

/** One open parquet file of the source. Every hyparquet failure becomes PARQUET_INVALID naming the file. */
export class ParquetReader {
  private constructor(
    readonly file: SourceFile,
    private readonly buffer: FileHandleBuffer,
    private readonly metadata: FileMetaData,
    /** Top-level column names. */
    readonly columns: ReadonlySet<string>,
  ) {}

  static async open(file: SourceFile, location: ErrorLocation = {}): Promise<ParquetReader> {
    let buffer: FileHandleBuffer;
    try {
      buffer = await FileHandleBuffer.open(file.absolutePath);
    } catch (error) {
      throw new ImportError('PARQUET_INVALID', `${file.path} cannot be read: ${describe(error)}`, { ...location, file: file.path });
    }
    try {
      const metadata = await parquetMetadataAsync(buffer);
      const columns = new Set(parquetSchema(metadata).children.map((child) => child.element.name));
      return new ParquetReader(file, buffer, metadata, columns);
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
}

/** Opens a parquet file, runs `use`, and closes the file whatever happens. */
export async function withParquet<T>(file: SourceFile, location: ErrorLocation, use: (reader: ParquetReader) => Promise<T>): Promise<T> {
  const reader = await ParquetReader.open(file, location);
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
