import { DataType, Precision, type Data, type RecordBatch, type Schema, type Vector } from 'apache-arrow';
import { ByteWriter, ParquetWriter, type ColumnSource, type SchemaElement } from 'hyparquet-writer';
import { arrowTypeName, asDataType, typeOf } from '../arrow-type.js';
import { ExportError } from '../export-error.js';
import type { NumericArray } from '../importer.js';

/** Rows per row group unless `rowGroupRows` says otherwise. */
export const DEFAULT_ROW_GROUP_ROWS = 65_536;

/**
 * A row group is also closed once its rows hold about this many bytes of Arrow data. While a group
 * is encoded its values live as JS arrays with definition and repetition levels, about ten times
 * their Arrow size for numeric lists (measured: 100 000 rows of two float32[26] features export in
 * a 160 MB heap with a 4 MiB budget and run out of it with 32 MiB), so this bounds one export's
 * working set to roughly 100 MB. Image bytes are passed through as views and cost little beyond themselves.
 */
export const DEFAULT_ROW_GROUP_BYTES = 8 * 1024 * 1024;

/** Footer `created_by`: fixed (no version of Node, no date), so that the same rows give the same bytes. */
export const PARQUET_CREATED_BY = 'kura (hyparquet-writer 0.17.0)';

/**
 * Writes Arrow record batches as one Parquet file, a row group at a time: the returned chunks
 * are the file's bytes in order, and only the rows of the row group being encoded are held.
 *
 * - Row groups close after `rowGroupRows` rows (default 65 536) or about `rowGroupBytes` bytes of
 *   row data (default 8 MiB), counted per row, so the cuts depend on the rows only, not on how
 *   the input was split into batches.
 * - Deterministic: the same rows give byte-identical files (fixed `created_by`, no timestamps).
 * - Types: see README.md beside this file. The schema's key-value metadata (`kura.features`) is
 *   kept in the footer's key-value metadata.
 * - Compression: SNAPPY (every Parquet reader has it; a pure function, so output stays deterministic).
 *
 * Every batch must have the fields of `schema`, in the same order (`EXPORT_SCHEMA_MISMATCH`);
 * a type without a Parquet mapping is `EXPORT_UNSUPPORTED_TYPE`.
 */
export function arrowToParquet(params: {
  schema: Schema;
  batches: AsyncIterable<RecordBatch> | Iterable<RecordBatch>;
  rowGroupRows?: number;
  rowGroupBytes?: number;
}): AsyncIterable<Uint8Array> {
  const rowGroupRows = params.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS;
  const rowGroupBytes = params.rowGroupBytes ?? DEFAULT_ROW_GROUP_BYTES;
  if (!Number.isInteger(rowGroupRows) || rowGroupRows < 1)
    throw new RangeError(`rowGroupRows must be a positive integer, not ${rowGroupRows}`);
  if (!(rowGroupBytes > 0)) throw new RangeError(`rowGroupBytes must be positive, not ${rowGroupBytes}`);
  // Checked before the first chunk, so a bad schema fails the call rather than a half-sent file.
  const parquetSchema = parquetSchemaOf(params.schema);
  return writeRowGroups({ ...params, parquetSchema, rowGroupRows, rowGroupBytes });
}

async function* writeRowGroups(params: {
  schema: Schema;
  batches: AsyncIterable<RecordBatch> | Iterable<RecordBatch>;
  parquetSchema: SchemaElement[];
  rowGroupRows: number;
  rowGroupBytes: number;
}): AsyncGenerator<Uint8Array> {
  const { schema, rowGroupRows, rowGroupBytes } = params;
  const output = new ChunkWriter();
  const writer = new ParquetWriter({
    writer: output,
    schema: params.parquetSchema,
    codec: 'SNAPPY',
    kvMetadata: [...schema.metadata].map(([key, value]) => ({ key, value })),
    createdBy: PARQUET_CREATED_BY,
  });

  let pending: RecordBatch[] = [];
  let pendingRows = 0;
  let pendingBytes = 0;
  const writeGroup = (): void | Promise<void> => {
    if (pendingRows === 0) return;
    const columnData: ColumnSource[] = schema.fields.map((field, column) => {
      const data = pending.flatMap((batch) => cellsOf(batch.getChildAt(column)!, field.name));
      return {
        name: field.name,
        data,
        statistics: wantsStatistics(typeOf(field)),
        // The writer's dictionary keys values by SameValueZero, which makes −0 and 0 one entry: a
        // chunk holding −0 is written PLAIN so that every value keeps its sign bit.
        ...(holdsFloats(typeOf(field)) && holdsNegativeZero(data) ? { encoding: 'PLAIN' as const } : {}),
      };
    });
    const rows = pendingRows;
    pending = [];
    pendingRows = 0;
    pendingBytes = 0;
    // One write per row group: ParquetWriter calls output.flush() after it, which hands the bytes over.
    return writer.write({ columnData, rowGroupSize: rows });
  };

  for await (const batch of params.batches) {
    checkBatchSchema(schema, batch);
    const sizes = rowBytes(batch);
    let start = 0;
    for (let row = 0; row < batch.numRows; row++) {
      pendingRows++;
      pendingBytes += sizes[row]!;
      if (pendingRows >= rowGroupRows || pendingBytes >= rowGroupBytes) {
        pending.push(batch.slice(start, row + 1));
        start = row + 1;
        await writeGroup();
        yield* output.take();
      }
    }
    if (start < batch.numRows) pending.push(start === 0 ? batch : batch.slice(start));
  }
  await writeGroup();
  await writer.finish();
  yield* output.take();
}

/**
 * Min/max statistics are kept for flat scalar columns (episode_index, step_index, timestamp, reward,
 * task…), where readers use them to skip row groups. Computing them over every component of a
 * list column or over image bytes took about two thirds of the export time, for statistics no
 * filter uses.
 */
function wantsStatistics(type: DataType): boolean {
  return !(
    DataType.isFixedSizeList(type) ||
    DataType.isList(type) ||
    DataType.isStruct(type) ||
    DataType.isBinary(type) ||
    DataType.isLargeBinary(type)
  );
}

/** Whether a column's values include floats (directly, as list items or struct members). */
function holdsFloats(type: DataType): boolean {
  if (DataType.isFloat(type)) return true;
  if (DataType.isFixedSizeList(type) || DataType.isList(type) || DataType.isStruct(type))
    return type.children.some((child) => holdsFloats(typeOf(child)));
  return false;
}

/** Whether cells (numbers, arrays of them, struct objects) hold a −0 anywhere. */
function holdsNegativeZero(cells: readonly unknown[]): boolean {
  return cells.some((cell) => {
    if (typeof cell === 'number') return Object.is(cell, -0);
    if (Array.isArray(cell)) return holdsNegativeZero(cell);
    if (typeof cell === 'object' && cell !== null && !ArrayBuffer.isView(cell)) return holdsNegativeZero(Object.values(cell));
    return false;
  });
}

/** A ByteWriter whose bytes are handed out after each row group instead of growing into the whole file. */
class ChunkWriter extends ByteWriter {
  private ready: Uint8Array[] = [];

  flush(): void {
    if (this.index === 0) return;
    this.ready.push(new Uint8Array(this.buffer, 0, this.index));
    // A fresh buffer, so the chunk just handed out is never overwritten; `offset` keeps counting file bytes.
    this.buffer = new ArrayBuffer(64 * 1024);
    this.view = new DataView(this.buffer);
    this.index = 0;
  }

  override finish(): void {
    this.flush();
  }

  take(): Uint8Array[] {
    const chunks = this.ready;
    this.ready = [];
    return chunks;
  }
}

function checkBatchSchema(schema: Schema, batch: RecordBatch): void {
  const expected = schema.fields.map((field) => field.name);
  const found = batch.schema.fields.map((field) => field.name);
  if (expected.length !== found.length || expected.some((name, index) => name !== found[index])) {
    throw new ExportError(
      'EXPORT_SCHEMA_MISMATCH',
      `a record batch has columns [${found.join(', ')}], but the export's schema has [${expected.join(', ')}]`,
    );
  }
  schema.fields.forEach((field, index) => {
    const type = typeOf(batch.schema.fields[index]!);
    if (!sameKind(typeOf(field), type)) {
      throw new ExportError(
        'EXPORT_SCHEMA_MISMATCH',
        `column ${field.name} is ${arrowTypeName(type)} in a record batch, ${arrowTypeName(typeOf(field))} in the schema`,
      );
    }
  });
}

/** Same Arrow type, ignoring dictionary ids (shards may number their dictionaries differently). */
function sameKind(a: DataType, b: DataType): boolean {
  if (DataType.isDictionary(a) && DataType.isDictionary(b))
    return sameKind(asDataType(a.dictionary), asDataType(b.dictionary)) && sameKind(a.indices, b.indices);
  if (a.typeId !== b.typeId || a.children?.length !== b.children?.length) return false;
  if (DataType.isInt(a) && DataType.isInt(b)) return a.bitWidth === b.bitWidth && a.isSigned === b.isSigned;
  if (DataType.isFloat(a) && DataType.isFloat(b)) return a.precision === b.precision;
  if (DataType.isFixedSizeList(a) && DataType.isFixedSizeList(b) && a.listSize !== b.listSize) return false;
  return (a.children ?? []).every((child, index) => {
    const other = b.children[index]!;
    return child.name === other.name && sameKind(typeOf(child), typeOf(other));
  });
}

// ------------------------------------------------------------------------------------------ schema

/** The Parquet schema (flattened, depth first, as the footer stores it) of an Arrow schema. */
export function parquetSchemaOf(schema: Schema): SchemaElement[] {
  if (schema.fields.length === 0) throw new ExportError('EXPORT_SCHEMA_MISMATCH', 'the schema has no columns');
  return [
    { name: 'root', num_children: schema.fields.length },
    ...schema.fields.flatMap((field) => fieldElements(field.name, typeOf(field), field.nullable, field.name)),
  ];
}

function fieldElements(name: string, type: DataType, nullable: boolean, path: string): SchemaElement[] {
  const repetition_type = nullable ? 'OPTIONAL' : 'REQUIRED';
  if (DataType.isBool(type)) return [{ name, repetition_type, type: 'BOOLEAN' }];
  if (DataType.isInt(type)) {
    if (type.bitWidth === 64) return [{ name, repetition_type, type: 'INT64', ...(type.isSigned ? {} : { converted_type: 'UINT_64' }) }];
    // Narrow ints are INT32 annotated with their width, as pyarrow writes them, so readers restore int8/uint16/….
    const converted_type = (['INT_8', 'INT_16', 'INT_32', 'UINT_8', 'UINT_16', 'UINT_32'] as const).find(
      (candidate) => candidate === `${type.isSigned ? 'INT' : 'UINT'}_${type.bitWidth}`,
    );
    return [{ name, repetition_type, type: 'INT32', ...(converted_type && converted_type !== 'INT_32' ? { converted_type } : {}) }];
  }
  if (DataType.isFloat(type)) {
    if (type.precision === Precision.SINGLE) return [{ name, repetition_type, type: 'FLOAT' }];
    if (type.precision === Precision.DOUBLE) return [{ name, repetition_type, type: 'DOUBLE' }];
  }
  if (DataType.isUtf8(type) || DataType.isLargeUtf8(type)) return [{ name, repetition_type, type: 'BYTE_ARRAY', converted_type: 'UTF8' }];
  if (DataType.isBinary(type) || DataType.isLargeBinary(type)) return [{ name, repetition_type, type: 'BYTE_ARRAY' }];
  if (DataType.isDictionary(type)) {
    // Parquet has no dictionary type: the values are written (and dictionary-encoded by the writer).
    const values = fieldElements(name, asDataType(type.dictionary), nullable, path);
    if (values.length === 1) return values;
  }
  if (DataType.isFixedSizeList(type) || DataType.isList(type)) {
    const item = type.children[0]!;
    // The standard three-level list: <name> (LIST) → repeated group `list` → `element`.
    return [
      { name, repetition_type, converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      ...fieldElements('element', typeOf(item), item.nullable, `${path}.element`),
    ];
  }
  if (DataType.isStruct(type)) {
    return [
      { name, repetition_type, num_children: type.children.length },
      ...type.children.flatMap((child) => fieldElements(child.name, typeOf(child), child.nullable, `${path}.${child.name}`)),
    ];
  }
  throw new ExportError(
    'EXPORT_UNSUPPORTED_TYPE',
    `column ${path} has Arrow type ${arrowTypeName(type)}, which the Parquet export does not write`,
  );
}

// ------------------------------------------------------------------------------------------ values

/** One JS value per row, as hyparquet-writer takes them: lists as arrays, structs as objects, null for null. */
function cellsOf(vector: Vector, path: string): unknown[] {
  const type = typeOf(vector);
  const rows = vector.length;
  if (DataType.isStruct(type)) {
    const children = type.children.map((child, index) => ({
      name: child.name,
      cells: cellsOf(vector.getChildAt(index)!, `${path}.${child.name}`),
    }));
    return Array.from({ length: rows }, (_, row) =>
      vector.isValid(row) ? Object.fromEntries(children.map(({ name, cells }) => [name, cells[row]])) : null,
    );
  }
  if (DataType.isFixedSizeList(type)) {
    // The child vector covers exactly these rows (Arrow slices fixed-size children with their parent).
    const items = cellsOf(vector.getChildAt(0)!, `${path}.element`);
    const size = type.listSize;
    return Array.from({ length: rows }, (_, row) => (vector.isValid(row) ? items.slice(row * size, (row + 1) * size) : null));
  }
  if (DataType.isList(type)) {
    return Array.from({ length: rows }, (_, row) => {
      const list: unknown = vector.get(row);
      return isVector(list) ? cellsOf(list, `${path}.element`) : null;
    });
  }
  if ((DataType.isInt(type) || DataType.isFloat(type)) && vector.nullCount === 0) {
    // The fast path for the bulk of robot data (the components of state and action vectors).
    const values: unknown = vector.toArray();
    if (isNumericArray(values)) return Array.from<number | bigint>(values);
  }
  return Array.from({ length: rows }, (_, row) => {
    const value: unknown = vector.get(row);
    return value ?? null;
  });
}

const numericArrays = [Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, BigInt64Array, Uint8Array, Uint16Array, Uint32Array];

function isNumericArray(value: unknown): value is NumericArray {
  return numericArrays.some((kind) => value instanceof kind);
}

function isVector(value: unknown): value is Vector {
  return typeof value === 'object' && value !== null && 'getChildAt' in value && 'isValid' in value;
}

// ------------------------------------------------------------------------------------ row sizes

/** Approximate bytes of each row of a batch: fixed widths plus the lengths of strings and binaries. */
function rowBytes(batch: RecordBatch): Float64Array {
  const sizes = new Float64Array(batch.numRows);
  for (const column of batch.data.children) {
    const width = fixedWidth(typeOf(column));
    if (width !== undefined) for (let row = 0; row < sizes.length; row++) sizes[row]! += width;
    else columnRowBytes(column).forEach((bytes, row) => (sizes[row]! += bytes));
  }
  return sizes;
}

function columnRowBytes(data: Data): Float64Array {
  const type = typeOf(data);
  const rows = data.length;
  const width = fixedWidth(type);
  if (width !== undefined) return new Float64Array(rows).fill(width);
  const sizes = new Float64Array(rows);
  const offsets = valueOffsetsOf(data);
  if (DataType.isUtf8(type) || DataType.isLargeUtf8(type) || DataType.isBinary(type) || DataType.isLargeBinary(type)) {
    for (let row = 0; row < rows; row++) sizes[row] = Number(offsets![row + 1]!) - Number(offsets![row]!) + 4;
  } else if (DataType.isStruct(type)) {
    for (const child of data.children) columnRowBytes(child).forEach((bytes, row) => (sizes[row]! += bytes));
  } else if (DataType.isFixedSizeList(type)) {
    const items = columnRowBytes(data.children[0]!);
    items.forEach((bytes, item) => (sizes[Math.floor(item / type.listSize)]! += bytes));
  } else if (DataType.isList(type)) {
    // List children are not sliced with their parent: the offsets index the whole child.
    const items = columnRowBytes(data.children[0]!);
    for (let row = 0; row < rows; row++) {
      for (let item = Number(offsets![row]!); item < Number(offsets![row + 1]!); item++) sizes[row]! += items[item]!;
    }
  } else {
    // Types without a Parquet mapping were refused by parquetSchemaOf before any row was read.
    throw new ExportError('EXPORT_UNSUPPORTED_TYPE', `cannot size Arrow type ${arrowTypeName(type)}`);
  }
  return sizes;
}

/** Bytes per row of a fixed-width type; undefined for types holding variable-length values. */
function fixedWidth(type: DataType): number | undefined {
  if (DataType.isBool(type)) return 1 / 8;
  if (DataType.isInt(type)) return type.bitWidth / 8;
  if (DataType.isFloat(type)) return type.precision === Precision.HALF ? 2 : type.precision === Precision.SINGLE ? 4 : 8;
  if (DataType.isDictionary(type)) return type.indices.bitWidth / 8;
  if (DataType.isFixedSizeList(type)) {
    const item = fixedWidth(typeOf(type.children[0]!));
    return item === undefined ? undefined : item * type.listSize;
  }
  if (DataType.isStruct(type)) {
    let total = 0;
    for (const child of type.children) {
      const width = fixedWidth(typeOf(child));
      if (width === undefined) return undefined;
      total += width;
    }
    return total;
  }
  return undefined;
}

/** The value offsets of a variable-length column (strings, binaries, lists). */
function valueOffsetsOf(data: Data): ArrayLike<number | bigint> | undefined {
  const offsets: unknown = data.valueOffsets;
  return offsets instanceof Int32Array || offsets instanceof BigInt64Array ? offsets : undefined;
}
