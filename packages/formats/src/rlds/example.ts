import protobuf from 'protobufjs';

/**
 * tensorflow/core/example/example.proto and feature.proto, the messages a TFRecord of RLDS episodes
 * holds (only what an Example needs; field numbers as in TensorFlow).
 */
export const EXAMPLE_PROTO = `
syntax = "proto3";
package tensorflow;

message BytesList { repeated bytes value = 1; }
message FloatList { repeated float value = 1 [packed = true]; }
message Int64List { repeated int64 value = 1 [packed = true]; }

message Feature {
  oneof kind {
    BytesList bytes_list = 1;
    FloatList float_list = 2;
    Int64List int64_list = 3;
  }
}

message Features { map<string, Feature> feature = 1; }

message Example { Features features = 1; }
`;

/** The parsed `tensorflow.Example` message type (keepCase: field names as in the .proto), for writing test records. */
export const exampleType: protobuf.Type = protobuf.parse(EXAMPLE_PROTO, { keepCase: true }).root.lookupType('tensorflow.Example');

/** The values of one `tf.train.Feature`, in the list type it was stored with. */
export type ExampleFeature =
  | { kind: 'bytes'; values: Uint8Array[] }
  | { kind: 'float'; values: Float32Array }
  | { kind: 'int64'; values: BigInt64Array }
  /** A Feature with no list set: TensorFlow reads it as an empty list of any type. */
  | { kind: 'empty' };

/** A decoded `tf.train.Example`: feature key (e.g. `steps/action`) → values. */
export type DecodedExample = Map<string, ExampleFeature>;

/**
 * Decodes a `tf.train.Example` straight from protobuf's wire format into typed arrays. Not with
 * protobufjs: it builds one object per int64, 60 bytes of heap per byte of record for packed flags,
 * so a 100 MB record of them took 6 GB. Each list's size is known from its bytes before it is
 * allocated and passed to `checkArray` (the budget's largest-array check); keys go into a Map as they
 * are. Throws an Error (not an ImportError: the caller says which record) when the bytes are not an
 * Example.
 */
export function decodeExample(payload: Uint8Array, checkArray: (bytes: number, key: string) => void = () => undefined): DecodedExample {
  const reader = new WireReader(payload, 0, payload.length);
  let decoded: DecodedExample = new Map();
  while (reader.more()) {
    const { field, wireType } = reader.tag();
    // A repeated `features` field replaces the earlier one, as protobufjs (and proto3 for a message decoded alone) does.
    if (field === 1 && wireType === WIRE_LENGTH_DELIMITED) decoded = decodeFeatures(reader.nested(), checkArray);
    else reader.skip(wireType);
  }
  return decoded;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;
/** Map keys decode as protobufjs decodes strings: invalid UTF-8 becomes U+FFFD (the key is only a name). */
const keyDecoder = new TextDecoder('utf-8');

/** `Features`: map<string, Feature> feature = 1, each entry a message { key = 1; value = 2 }. */
function decodeFeatures(reader: WireReader, checkArray: (bytes: number, key: string) => void): DecodedExample {
  const features: DecodedExample = new Map();
  while (reader.more()) {
    const { field, wireType } = reader.tag();
    if (field !== 1 || wireType !== WIRE_LENGTH_DELIMITED) {
      reader.skip(wireType);
      continue;
    }
    const entry = reader.nested();
    let key = '';
    let value: WireReader | undefined;
    while (entry.more()) {
      const member = entry.tag();
      if (member.field === 1 && member.wireType === WIRE_LENGTH_DELIMITED) key = keyDecoder.decode(entry.nested().rest());
      else if (member.field === 2 && member.wireType === WIRE_LENGTH_DELIMITED) value = entry.nested();
      else entry.skip(member.wireType);
    }
    // A Map: every key is kept as it is, `__proto__` included; a repeated key keeps its last value.
    features.set(key, value ? decodeFeature(value, key, checkArray) : { kind: 'empty' });
  }
  return features;
}

/** `Feature`: oneof bytes_list = 1, float_list = 2, int64_list = 3 (the last one set wins). */
function decodeFeature(reader: WireReader, key: string, checkArray: (bytes: number, key: string) => void): ExampleFeature {
  let feature: ExampleFeature = { kind: 'empty' };
  while (reader.more()) {
    const { field, wireType } = reader.tag();
    if (wireType !== WIRE_LENGTH_DELIMITED || field < 1 || field > 3) {
      reader.skip(wireType);
      continue;
    }
    const list = reader.nested();
    if (field === 1) feature = { kind: 'bytes', values: decodeBytesList(list) };
    else if (field === 2) feature = { kind: 'float', values: decodeFloatList(list, key, checkArray) };
    else feature = { kind: 'int64', values: decodeInt64List(list, key, checkArray) };
  }
  return feature;
}

function decodeBytesList(reader: WireReader): Uint8Array[] {
  const values: Uint8Array[] = [];
  while (reader.more()) {
    const { field, wireType } = reader.tag();
    if (field === 1 && wireType === WIRE_LENGTH_DELIMITED) values.push(reader.nested().rest());
    else reader.skip(wireType);
  }
  return values;
}

/** `repeated float value = 1`, packed (as TensorFlow writes it) or not. */
function decodeFloatList(reader: WireReader, key: string, checkArray: (bytes: number, key: string) => void): Float32Array {
  let count = 0;
  const start = reader.offset;
  while (reader.more()) {
    const { field, wireType } = reader.tag();
    if (field === 1 && wireType === WIRE_LENGTH_DELIMITED) {
      const bytes = reader.nested().rest();
      if (bytes.length % 4 !== 0) throw new Error(`packed float list of ${key} has ${bytes.length} bytes, not a multiple of 4`);
      count += bytes.length / 4;
    } else if (field === 1 && wireType === WIRE_FIXED32) {
      reader.skip(wireType);
      count++;
    } else reader.skip(wireType);
  }
  checkArray(count * 4, key);
  const values = new Float32Array(count);
  // Second pass: the list's bytes are walked again, now that the array is allocated.
  const again = new WireReader(reader.bytes, start, reader.end);
  let index = 0;
  while (again.more()) {
    const { field, wireType } = again.tag();
    if (field === 1 && wireType === WIRE_LENGTH_DELIMITED) {
      const bytes = again.nested().rest();
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let offset = 0; offset < bytes.length; offset += 4) values[index++] = view.getFloat32(offset, true);
    } else if (field === 1 && wireType === WIRE_FIXED32) values[index++] = again.float32();
    else again.skip(wireType);
  }
  return values;
}

/** `repeated int64 value = 1`, packed (as TensorFlow writes it) or not. */
function decodeInt64List(reader: WireReader, key: string, checkArray: (bytes: number, key: string) => void): BigInt64Array {
  let count = 0;
  const start = reader.offset;
  while (reader.more()) {
    const { field, wireType } = reader.tag();
    if (field === 1 && wireType === WIRE_LENGTH_DELIMITED) {
      // One value per byte without the continuation bit.
      for (const byte of reader.nested().rest()) if (byte < 0x80) count++;
    } else if (field === 1 && wireType === WIRE_VARINT) {
      reader.varint64();
      count++;
    } else reader.skip(wireType);
  }
  checkArray(count * 8, key);
  const values = new BigInt64Array(count);
  const again = new WireReader(reader.bytes, start, reader.end);
  let index = 0;
  while (again.more()) {
    const { field, wireType } = again.tag();
    if (field === 1 && wireType === WIRE_LENGTH_DELIMITED) {
      const list = again.nested();
      while (list.more()) values[index++] = BigInt.asIntN(64, list.varint64());
    } else if (field === 1 && wireType === WIRE_VARINT) values[index++] = BigInt.asIntN(64, again.varint64());
    else again.skip(wireType);
  }
  if (index !== count) throw new Error(`int64 list of ${key} ends inside a value`);
  return values;
}

/** Protobuf's wire format over `bytes[offset, end)`. Reading past `end` throws. */
class WireReader {
  constructor(
    readonly bytes: Uint8Array,
    public offset: number,
    readonly end: number,
  ) {}

  more(): boolean {
    return this.offset < this.end;
  }

  tag(): { field: number; wireType: number } {
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    if (field === 0) throw new Error(`invalid field number 0 at byte ${this.offset}`);
    return { field, wireType: tag % 8 };
  }

  /** A varint as a number (tags and lengths: at most 2^53). */
  varint(): number {
    let result = 0;
    for (let shift = 1; ; shift *= 128) {
      const byte = this.byte();
      result += (byte & 0x7f) * shift;
      if (byte < 0x80) return result;
      if (shift > 2 ** 49) throw new Error(`varint too long at byte ${this.offset}`);
    }
  }

  varint64(): bigint {
    // Most values (flags, indices) fit in 7 bytes: summed as a number, made a bigint once.
    let small = 0;
    for (let shift = 1; shift <= 2 ** 42; shift *= 128) {
      const byte = this.byte();
      small += (byte & 0x7f) * shift;
      if (byte < 0x80) return BigInt(small);
    }
    let result = BigInt(small);
    for (let shift = 49n; ; shift += 7n) {
      const byte = this.byte();
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
      if (shift >= 63n) throw new Error(`varint too long at byte ${this.offset}`);
    }
  }

  float32(): number {
    this.need(4);
    const value = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.offset, 4).getFloat32(0, true);
    this.offset += 4;
    return value;
  }

  /** A length-delimited field's contents, as a reader of its own. */
  nested(): WireReader {
    const length = this.varint();
    this.need(length);
    const nested = new WireReader(this.bytes, this.offset, this.offset + length);
    this.offset += length;
    return nested;
  }

  /** The rest of this reader's bytes (a view, not a copy). */
  rest(): Uint8Array {
    const bytes = this.bytes.subarray(this.offset, this.end);
    this.offset = this.end;
    return bytes;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint64();
        return;
      case WIRE_FIXED64:
        this.need(8);
        this.offset += 8;
        return;
      case WIRE_LENGTH_DELIMITED:
        this.nested();
        return;
      case WIRE_FIXED32:
        this.need(4);
        this.offset += 4;
        return;
      default:
        throw new Error(`unsupported wire type ${wireType} at byte ${this.offset}`);
    }
  }

  private byte(): number {
    this.need(1);
    return this.bytes[this.offset++]!;
  }

  private need(count: number): void {
    if (this.offset + count > this.end)
      throw new Error(`the message ends early (needs ${count} bytes at byte ${this.offset} of ${this.end})`);
  }
}

/** Number of values in a feature, whatever its list type. */
export function featureValueCount(feature: ExampleFeature): number {
  return feature.kind === 'empty' ? 0 : feature.values.length;
}
