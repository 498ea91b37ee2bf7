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

/** The parsed `tensorflow.Example` message type (keepCase: field names as in the .proto). */
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

/** What protobufjs produces for an Example decoded with the schema above. */
interface ExampleMessage {
  features?: { feature?: Record<string, FeatureMessage> } | null;
}
interface FeatureMessage {
  bytes_list?: { value?: Uint8Array[] } | null;
  float_list?: { value?: number[] } | null;
  int64_list?: { value?: Array<number | LongBits> } | null;
}
/** protobufjs hands int64 values over as long.js `Long` objects (or numbers when long.js is absent). */
interface LongBits {
  low: number;
  high: number;
}

/** Decodes a `tf.train.Example`. Throws (protobufjs's error) when the bytes are not valid protobuf. */
export function decodeExample(payload: Uint8Array): DecodedExample {
  // The parsed boundary: protobufjs returns an untyped message whose shape the schema above fixes.
  const message = exampleType.decode(payload) as unknown as ExampleMessage;
  const decoded: DecodedExample = new Map();
  for (const [key, feature] of Object.entries(message.features?.feature ?? {})) decoded.set(key, toExampleFeature(feature));
  return decoded;
}

function toExampleFeature(feature: FeatureMessage): ExampleFeature {
  if (feature.bytes_list) return { kind: 'bytes', values: feature.bytes_list.value ?? [] };
  if (feature.float_list) return { kind: 'float', values: Float32Array.from(feature.float_list.value ?? []) };
  if (feature.int64_list) {
    const source = feature.int64_list.value ?? [];
    const values = new BigInt64Array(source.length);
    for (let index = 0; index < source.length; index++) values[index] = toBigInt(source[index] ?? 0);
    return { kind: 'int64', values };
  }
  return { kind: 'empty' };
}

function toBigInt(value: number | LongBits): bigint {
  if (typeof value === 'number') return BigInt(value);
  return BigInt.asIntN(64, (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0));
}

/** Number of values in a feature, whatever its list type. */
export function featureValueCount(feature: ExampleFeature): number {
  return feature.kind === 'empty' ? 0 : feature.values.length;
}
