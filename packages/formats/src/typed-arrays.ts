import type { numericDtypes } from '@kura/schema';
import type { NumericArray } from './importer.js';

/** A Kura numeric dtype. */
export type NumericDtype = (typeof numericDtypes)[number];

/** A zeroed typed array for `length` values of a dtype (bool as 0/1 bytes, int64 as BigInt64Array). */
export function allocateTyped(dtype: NumericDtype, length: number): NumericArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
    case 'int8':
      return new Int8Array(length);
    case 'int16':
      return new Int16Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'int64':
      return new BigInt64Array(length);
    case 'uint8':
    case 'bool':
      return new Uint8Array(length);
    case 'uint16':
      return new Uint16Array(length);
    case 'uint32':
      return new Uint32Array(length);
  }
}

/** Bytes of one value of a dtype as Kura holds it. */
export function bytesPerValue(dtype: NumericDtype): number {
  return allocateTyped(dtype, 0).BYTES_PER_ELEMENT;
}
