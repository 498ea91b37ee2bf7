import { parse as parseMessageDefinition } from '@foxglove/rosmsg';
import { MessageReader } from '@foxglove/rosmsg2-serialization';
import type { McapChannel, McapSchema } from './bag.js';

/** A channel's messages as plain objects (numbers, strings, typed arrays, nested objects), or why Kura cannot read them. */
export type ChannelDecoder = { decode: (data: Uint8Array) => unknown } | { undecodable: string };

const text = new TextDecoder();

/**
 * The decoder of a channel: ROS 2 messages (`ros2msg` schema, CDR bytes) and JSON (`jsonschema` or
 * no schema). Other encodings are named in the reason, so the inspection can say which topics Kura
 * skips. rosbag2 writes the `.srv` text of service-event topics as their schema, which does not
 * parse: such a channel is undecodable, the rest of the bag is not.
 */
export function channelDecoder(channel: McapChannel, schema: McapSchema | undefined): ChannelDecoder {
  if (channel.messageEncoding === 'json') {
    return { decode: (data) => JSON.parse(text.decode(data)) as unknown };
  }
  if (channel.messageEncoding === 'cdr' && schema?.encoding === 'ros2msg') {
    try {
      const reader = new MessageReader(parseMessageDefinition(text.decode(schema.data), { ros2: true }));
      return { decode: (data) => reader.readMessage(data) };
    } catch (error) {
      return { undecodable: `its schema ${schema.name} does not parse: ${(error as Error).message}` };
    }
  }
  const schemaEncoding = schema ? `${schema.encoding || 'no'} schema encoding` : 'no schema';
  return {
    undecodable: `message encoding "${channel.messageEncoding}" with ${schemaEncoding} is not one Kura reads (cdr with ros2msg, or json)`,
  };
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

/** A ROS header stamp (`header.stamp`: sec with nanosec or nsec) in nanoseconds, when the message has one. */
export function headerStamp(message: unknown): bigint | undefined {
  const stamp = valueAt(message, 'header.stamp') as { sec?: unknown; nanosec?: unknown; nsec?: unknown } | undefined;
  if (!stamp || typeof stamp.sec !== 'number') return undefined;
  const nanoseconds = typeof stamp.nanosec === 'number' ? stamp.nanosec : typeof stamp.nsec === 'number' ? stamp.nsec : 0;
  return BigInt(stamp.sec) * 1_000_000_000n + BigInt(nanoseconds);
}
