import { DataType, Type, makeData, type Binary, type Data, type Float } from 'apache-arrow';

/**
 * The rows `rows` (ascending or not) of a column, as new contiguous Arrow data. Covers the types
 * Kura shards hold: fixed-width numbers, bools, dictionaries (the dictionary is kept), binary and
 * utf8, fixed-size lists and structs of those. `remapIndices` rewrites dictionary indices (a
 * shard's own task numbering → a slice's), with the dictionary to attach.
 */
export function takeRows(data: Data, rows: Int32Array, remap?: { indices: Int32Array; dictionary: Data['dictionary'] }): Data {
  // Arrow JS slices value buffers but not validity bitmaps; data decoded from IPC is never sliced,
  // and refusing sliced data keeps the index arithmetic simple.
  if (data.offset !== 0) throw new Error('takeRows needs unsliced data (offset 0)');
  const length = rows.length;
  const nullBitmap = takeValidity(data, rows);
  const nullCount = nullBitmap ? length - countBits(nullBitmap, length) : 0;
  const type = data.type;
  if (DataType.isDictionary(type)) {
    const source = data.values as Int32Array;
    const indices = new Int32Array(length);
    for (let row = 0; row < length; row++) {
      const index = source[rows[row]!]!;
      indices[row] = remap ? remap.indices[index]! : index;
    }
    return makeData({ type, length, nullCount, nullBitmap, data: indices, dictionary: remap ? remap.dictionary : data.dictionary });
  }
  if (DataType.isBool(type)) {
    const bits = new Uint8Array(Math.ceil(length / 8));
    const source = data.values as Uint8Array;
    for (let row = 0; row < length; row++) {
      const at = rows[row]!;
      if (source[at >> 3]! & (1 << (at & 7))) bits[row >> 3]! |= 1 << (row & 7);
    }
    return makeData({ type, length, nullCount, nullBitmap, data: bits });
  }
  if (DataType.isInt(type) || DataType.isFloat(type)) {
    const source = data.values as Float64Array;
    const Values = source.constructor as { new (length: number): typeof source };
    const values = new Values(length);
    for (let row = 0; row < length; row++) values[row] = source[rows[row]!]!;
    // makeData's overloads cannot take an Int|Float union, though the props are right for either;
    // typescript-eslint sees through the cast that tsc needs.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    return makeData({ type: type as Float, length, nullCount, nullBitmap, data: values as unknown as Float32Array });
  }
  if (DataType.isBinary(type) || DataType.isUtf8(type)) {
    const offsets = data.valueOffsets as Int32Array;
    const source = data.values as Uint8Array;
    const valueOffsets = new Int32Array(length + 1);
    for (let row = 0; row < length; row++) {
      const at = rows[row]!;
      valueOffsets[row + 1] = valueOffsets[row]! + offsets[at + 1]! - offsets[at]!;
    }
    const values = new Uint8Array(valueOffsets[length]!);
    for (let row = 0; row < length; row++) {
      const at = rows[row]!;
      values.set(source.subarray(offsets[at], offsets[at + 1]), valueOffsets[row]);
    }
    // As above, for the Binary|Utf8 union.
    return makeData({ type: type as Binary, length, nullCount, nullBitmap, valueOffsets, data: values });
  }
  if (DataType.isFixedSizeList(type)) {
    const size = type.listSize;
    const childRows = new Int32Array(length * size);
    for (let row = 0; row < length; row++) {
      const first = rows[row]! * size;
      for (let component = 0; component < size; component++) childRows[row * size + component] = first + component;
    }
    return makeData({ type, length, nullCount, nullBitmap, child: takeRows(data.children[0]!, childRows) });
  }
  if (DataType.isStruct(type)) {
    return makeData({ type, length, nullCount, nullBitmap, children: data.children.map((child) => takeRows(child, rows)) });
  }
  throw new Error(`cannot take rows of Arrow type ${Type[type.typeId]}`);
}

function takeValidity(data: Data, rows: Int32Array): Uint8Array | undefined {
  const source = data.nullBitmap;
  if (!source || data.nullCount === 0) return undefined;
  const bits = new Uint8Array(Math.ceil(rows.length / 8));
  for (let row = 0; row < rows.length; row++) {
    const at = rows[row]!;
    if (source[at >> 3]! & (1 << (at & 7))) bits[row >> 3]! |= 1 << (row & 7);
  }
  return bits;
}

function countBits(bits: Uint8Array, length: number): number {
  let count = 0;
  for (let index = 0; index < length; index++) if (bits[index >> 3]! & (1 << (index & 7))) count++;
  return count;
}
