import { DataType, type Data, type RecordBatch } from 'apache-arrow';
import type { NumericArray } from '@kura/formats';

/**
 * A column's values for `rows` rows (`size` numbers each; `list` for a FixedSizeList feature), as the
 * typed array Arrow holds them, cut to exactly those rows (value buffers may be padded past the
 * last); bools unpacked to 0/1 bytes.
 */
export function columnValues(batch: RecordBatch, name: string, rows: number, size: number, list = false): ArrayBufferView {
  const column = batch.getChild(name);
  if (!column) throw new Error(`the batches have no column "${name}"`);
  if (column.data.length !== 1) throw new Error(`column "${name}" has ${column.data.length} chunks in one batch`);
  const outer = column.data[0]!;
  // A FixedSizeList's values sit in its child; offsets count rows of the list and values of the child.
  const data = (list ? outer.children[0]! : outer) as Data;
  const start = list ? outer.offset * size + data.offset : data.offset;
  if (DataType.isBool(data.type)) {
    const bits = data.values as Uint8Array;
    return Uint8Array.from({ length: rows * size }, (_, index) => (bits[(start + index) >> 3]! >> ((start + index) & 7)) & 1);
  }
  return (data.values as NumericArray).subarray(start, start + rows * size);
}
