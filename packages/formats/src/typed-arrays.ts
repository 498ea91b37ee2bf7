import { numericDtypeTable, type NumericDtype } from '@kura/schema';
import type { NumericArray } from './importer.js';

/** A Kura numeric dtype. */
export type { NumericDtype } from '@kura/schema';

/** A zeroed typed array for `length` values of a dtype (bool as 0/1 bytes, int64 as BigInt64Array). */
export function allocateTyped(dtype: NumericDtype, length: number): NumericArray {
  return new numericDtypeTable[dtype].TypedArray(length);
}

/** Bytes of one value of a dtype as Kura holds it. */
export function bytesPerValue(dtype: NumericDtype): number {
  return numericDtypeTable[dtype].bytes;
}
