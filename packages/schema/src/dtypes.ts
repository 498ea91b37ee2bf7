import { Bool, Float32, Float64, Int16, Int32, Int64, Int8, Uint16, Uint32, Uint8, type DataType } from 'apache-arrow';
import { numericDtypes } from './features.js';

/** A Kura numeric dtype. */
export type NumericDtype = (typeof numericDtypes)[number];

/** The typed arrays Kura holds numeric values in (bool as 0/1 bytes, int64 as BigInt64Array). */
export type NumericTypedArray =
  Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | Uint32Array;

/** What Kura knows of one numeric dtype, everywhere it is written or read. */
export interface NumericDtypeInfo {
  readonly name: NumericDtype;
  /** Bytes of one value as Kura holds it. */
  readonly bytes: number;
  /** The typed array of its values: `new info.TypedArray(length)` or `new info.TypedArray(buffer)`. */
  readonly TypedArray: { new (length: number): NumericTypedArray; new (buffer: ArrayBuffer): NumericTypedArray };
  /** Its Arrow type in shards and downloads (a fresh instance each call). */
  arrowType(): DataType;
  /** Its Parquet physical type and annotation, as pyarrow writes them (parquet/export.ts). */
  readonly parquet: { readonly type: 'BOOLEAN' | 'INT32' | 'INT64' | 'FLOAT' | 'DOUBLE'; readonly convertedType?: string };
  /** Its numpy array-interface descr (`<f4`: byte order, kind, bytes), as msgpack_numpy sends it. */
  readonly numpy: string;
}

/** The one table of numeric dtypes, by name (in `numericDtypes` order). */
export const numericDtypeTable: { readonly [Name in NumericDtype]: NumericDtypeInfo & { readonly name: Name } } = {
  float32: {
    name: 'float32',
    bytes: 4,
    TypedArray: Float32Array,
    arrowType: () => new Float32(),
    parquet: { type: 'FLOAT' },
    numpy: '<f4',
  },
  float64: {
    name: 'float64',
    bytes: 8,
    TypedArray: Float64Array,
    arrowType: () => new Float64(),
    parquet: { type: 'DOUBLE' },
    numpy: '<f8',
  },
  int8: {
    name: 'int8',
    bytes: 1,
    TypedArray: Int8Array,
    arrowType: () => new Int8(),
    parquet: { type: 'INT32', convertedType: 'INT_8' },
    numpy: '|i1',
  },
  int16: {
    name: 'int16',
    bytes: 2,
    TypedArray: Int16Array,
    arrowType: () => new Int16(),
    parquet: { type: 'INT32', convertedType: 'INT_16' },
    numpy: '<i2',
  },
  int32: { name: 'int32', bytes: 4, TypedArray: Int32Array, arrowType: () => new Int32(), parquet: { type: 'INT32' }, numpy: '<i4' },
  int64: { name: 'int64', bytes: 8, TypedArray: BigInt64Array, arrowType: () => new Int64(), parquet: { type: 'INT64' }, numpy: '<i8' },
  uint8: {
    name: 'uint8',
    bytes: 1,
    TypedArray: Uint8Array,
    arrowType: () => new Uint8(),
    parquet: { type: 'INT32', convertedType: 'UINT_8' },
    numpy: '|u1',
  },
  uint16: {
    name: 'uint16',
    bytes: 2,
    TypedArray: Uint16Array,
    arrowType: () => new Uint16(),
    parquet: { type: 'INT32', convertedType: 'UINT_16' },
    numpy: '<u2',
  },
  uint32: {
    name: 'uint32',
    bytes: 4,
    TypedArray: Uint32Array,
    arrowType: () => new Uint32(),
    parquet: { type: 'INT32', convertedType: 'UINT_32' },
    numpy: '<u4',
  },
  bool: { name: 'bool', bytes: 1, TypedArray: Uint8Array, arrowType: () => new Bool(), parquet: { type: 'BOOLEAN' }, numpy: '|b1' },
};

/** Whether a feature dtype is numeric (not image, video or string). */
export function isNumericDtype(dtype: string): dtype is NumericDtype {
  return Object.hasOwn(numericDtypeTable, dtype);
}

/** The dtype whose numpy descr this is, ignoring the byte-order character (`<f4`, `f4`, `|u1`, `u1`). */
export function dtypeOfNumpyDescr(descr: string): NumericDtype | undefined {
  const bare = descr.replace(/^[<|=]/, '');
  return numericDtypes.find((name) => numericDtypeTable[name].numpy.slice(1) === bare);
}
