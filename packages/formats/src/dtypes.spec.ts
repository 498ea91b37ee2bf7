import { describe, expect, it } from '@jest/globals';
import { dtypeOfNumpyDescr, isNumericDtype, numericDtypeTable, numericDtypes } from '@kura/schema';
import { Field, Schema } from 'apache-arrow';
import { parquetSchemaOf } from './parquet/export.js';

describe('the numeric dtype table', () => {
  it.each(numericDtypes)('%s: width, typed array, numpy descr and Parquet type agree with its Arrow type', (dtype) => {
    const info = numericDtypeTable[dtype];
    expect(info.name).toBe(dtype);
    expect(new info.TypedArray(3).BYTES_PER_ELEMENT).toBe(info.bytes);
    expect(Number(info.numpy.slice(2))).toBe(info.bytes);
    // The Parquet writer maps Arrow types on its own (it writes step columns too): the table must say the same.
    const [, element] = parquetSchemaOf(new Schema([new Field('x', info.arrowType(), false)]));
    expect({ type: element!.type, convertedType: element!.converted_type }).toEqual({
      type: info.parquet.type,
      convertedType: info.parquet.convertedType,
    });
  });

  it('reads numpy descrs with or without the byte-order mark, and knows which dtypes are numeric', () => {
    expect(['<f4', 'f4', '=f8', '|b1', 'u1', '<i8', '<u2'].map(dtypeOfNumpyDescr)).toEqual([
      'float32',
      'float32',
      'float64',
      'bool',
      'uint8',
      'int64',
      'uint16',
    ]);
    expect(['>f4', 'u8', 'f2', 'O', ''].map(dtypeOfNumpyDescr)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(['float32', 'bool', 'image', 'video', 'string', 'constructor'].map(isNumericDtype)).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
    ]);
  });
});
