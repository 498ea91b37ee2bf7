// tf.train.Example decoding (example.ts) from protobuf's wire format: every key kept as it is, lists
// packed or not, damaged bytes an Error (TFRECORD_EXAMPLE_INVALID for the importer).
import { describe, expect, it } from '@jest/globals';
import { decodeExample } from './example.js';

/** Protobuf wire-format writing, just enough for an Example. */
const varint = (value: number): number[] => {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  return [...bytes, value];
};
const field = (number: number, wireType: number) => varint(number * 8 + wireType);
const delimited = (number: number, content: number[]) => [...field(number, 2), ...varint(content.length), ...content];
const float32 = (value: number) => [...new Uint8Array(Float32Array.of(value).buffer)];
const entry = (key: string, feature: number[]) => delimited(1, [...delimited(1, [...Buffer.from(key)]), ...delimited(2, feature)]);
const example = (...entries: number[][]) => Uint8Array.from(delimited(1, entries.flat()));

describe('decodeExample', () => {
  it('keeps a key __proto__ and reads unpacked float and int64 lists as packed ones', () => {
    const unpackedFloats = delimited(2, [...field(1, 5), ...float32(1.5), ...field(1, 5), ...float32(-2)]);
    const unpackedInts = delimited(3, [...field(1, 0), ...varint(7), ...field(1, 0), ...varint(300)]);
    const decoded = decodeExample(example(entry('__proto__', unpackedFloats), entry('steps/is_first', unpackedInts)));

    expect([...decoded.keys()]).toEqual(['__proto__', 'steps/is_first']);
    expect(decoded.get('__proto__')).toEqual({ kind: 'float', values: Float32Array.of(1.5, -2) });
    expect(decoded.get('steps/is_first')).toEqual({ kind: 'int64', values: BigInt64Array.of(7n, 300n) });
  });

  it('checks each list size before allocating it, and refuses a message cut short', () => {
    const packed = delimited(3, delimited(1, [1, 1, 1, 1]));
    const sizes: Array<[number, string]> = [];
    decodeExample(example(entry('steps/is_last', packed)), (bytes, key) => sizes.push([bytes, key]));
    expect(sizes).toEqual([[32, 'steps/is_last']]);

    const whole = example(entry('steps/is_last', packed));
    expect(() => decodeExample(whole.subarray(0, whole.length - 2))).toThrow(/ends early/);
  });
});
