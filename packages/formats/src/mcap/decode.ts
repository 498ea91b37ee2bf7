import { parseRos2idl } from '@foxglove/ros2idl-parser';
import { parse as parseMessageDefinition } from '@foxglove/rosmsg';
import { MessageReader as Ros1Reader } from '@foxglove/rosmsg-serialization';
import { MessageReader as Ros2Reader } from '@foxglove/rosmsg2-serialization';
import protobuf from 'protobufjs';
// Adds Root.fromDescriptor (an MCAP protobuf schema is a FileDescriptorSet).
import 'protobufjs/ext/descriptor.js';
import type { McapChannel, McapSchema } from './bag.js';

/** A channel's messages as plain objects (numbers, strings, typed arrays, nested objects), or why Kura cannot read them. */
export type ChannelDecoder = { decode: (data: Uint8Array) => unknown } | { undecodable: string };

const text = new TextDecoder();

/** The (message encoding, schema encoding) pairs Kura reads, as the inspection and refusals name them. */
const READ = 'cdr with ros2msg or ros2idl, ros1 with ros1msg, protobuf, or json';

/**
 * The decoder of a channel: ROS 2 (CDR bytes; `ros2msg` or `ros2idl` schema), ROS 1 (`ros1msg`),
 * protobuf (the schema is a FileDescriptorSet, its name the message type) and JSON (`jsonschema` or
 * no schema). Other encodings are named in the reason, so the inspection can say which topics Kura
 * skips. rosbag2 writes the `.srv` text of service-event topics as their schema, which does not
 * parse: such a channel is undecodable, the rest of the bag is not.
 */
export function channelDecoder(channel: McapChannel, schema: McapSchema | undefined): ChannelDecoder {
  const encoding = channel.messageEncoding;
  if (encoding === 'json') return { decode: (data) => JSON.parse(text.decode(data)) as unknown };
  const pair = `${encoding}/${schema?.encoding ?? ''}`;
  const build = builders[pair];
  if (!schema || !build) {
    const schemaEncoding = schema ? `${schema.encoding || 'no'} schema encoding` : 'no schema';
    return { undecodable: `message encoding "${encoding}" with ${schemaEncoding} is not one Kura reads (${READ})` };
  }
  try {
    return { decode: build(schema) };
  } catch (error) {
    return { undecodable: `its schema ${schema.name} does not parse: ${(error as Error).message}` };
  }
}

const builders: Record<string, (schema: McapSchema) => (data: Uint8Array) => unknown> = {
  'cdr/ros2msg': (schema) => reader(new Ros2Reader(parseMessageDefinition(text.decode(schema.data), { ros2: true }))),
  'cdr/ros2idl': (schema) => reader(new Ros2Reader(rootFirst(parseRos2idl(text.decode(schema.data)), schema.name))),
  'ros1/ros1msg': (schema) => reader(new Ros1Reader(parseMessageDefinition(text.decode(schema.data)))),
  'protobuf/protobuf': (schema) => {
    const type = protobuf.Root.fromDescriptor(schema.data, { keepCase: true }).lookupType(schema.name);
    // Field names as the .proto spells them (not camelCased); int64s as numbers (Kura's features are float32), every field present (proto3 leaves zeros out of the bytes).
    return (data) => type.toObject(type.decode(data), { longs: Number, enums: Number, defaults: true, arrays: true });
  },
};

const reader = (messageReader: { readMessage(data: Uint8Array): unknown }) => (data: Uint8Array) => messageReader.readMessage(data);

type Definitions = ReturnType<typeof parseRos2idl>;

/** The readers take the first definition as the message's own: an IDL schema lists its types in any order. */
function rootFirst(definitions: Definitions, name: string): Definitions {
  const root = definitions.find((definition) => definition.name === name || definition.name === name.replace('/msg/', '/'));
  if (!root) throw new Error(`it defines no ${name}`);
  return [root, ...definitions.filter((definition) => definition !== root)];
}

/** The value at a dotted path (`pose.position.x`, `position`), or undefined. */
export function valueAt(message: unknown, path: string): unknown {
  let value = message;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** Numbers of a value: a number, a numeric typed array, or an array of numbers (bigints as numbers); undefined for anything else. */
export function numbersOf(value: unknown): ArrayLike<number> | undefined {
  if (typeof value === 'number') return [value];
  if (typeof value === 'bigint') return [Number(value)];
  if (typeof value === 'boolean') return [value ? 1 : 0];
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    if (value instanceof BigInt64Array || value instanceof BigUint64Array) return Array.from(value, Number);
    return value as unknown as ArrayLike<number>;
  }
  if (Array.isArray(value) && value.every((item) => typeof item === 'number' || typeof item === 'boolean'))
    return value.map((item) => Number(item));
  return undefined;
}

/**
 * A message's own time in nanoseconds, when it has one: a ROS header stamp (`header.stamp`: sec with
 * nanosec or nsec) or a Foxglove schema's `timestamp` (sec/nsec, or protobuf's seconds/nanos).
 */
export function headerStamp(message: unknown): bigint | undefined {
  for (const path of ['header.stamp', 'timestamp']) {
    const stamp = valueAt(message, path) as Record<string, unknown> | undefined;
    if (!stamp || typeof stamp !== 'object') continue;
    const seconds = stamp.sec ?? stamp.seconds;
    if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds)) continue;
    const fraction = stamp.nanosec ?? stamp.nsec ?? stamp.nanos;
    return BigInt(seconds) * 1_000_000_000n + BigInt(typeof fraction === 'number' && Number.isSafeInteger(fraction) ? fraction : 0);
  }
  return undefined;
}
