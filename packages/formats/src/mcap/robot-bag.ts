// A small robot bag written with @mcap/core's writer, for tests and the bench: joint states at 100 Hz
// (joint order shuffled in every other message), arm commands (Twist) at 30 Hz, a camera at 15 Hz
// (3 ms after the joints; compressed PNG, or raw pixels), and a task per episode; episodes separated
// by a gap. Every value is a function of its time, so a test knows each step's values in advance.
// The same messages in each encoding Kura reads: ROS 2 (.msg or IDL schemas), ROS 1, protobuf.
import { open } from 'node:fs/promises';
import { McapWriter, type IWritable } from '@mcap/core';
import { parse as parseMessageDefinition } from '@foxglove/rosmsg';
import { MessageWriter as Ros1Writer } from '@foxglove/rosmsg-serialization';
import { MessageWriter as Ros2Writer } from '@foxglove/rosmsg2-serialization';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor.js';
import { lz4 } from './lz4.js';
import { encodePng } from '../png.js';

export const JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper'];
const SECOND = 1_000_000_000n;
/** The bag's clock starts here (ns since the epoch, a whole second). */
export const BAG_START = 1_700_000_000n * SECOND;

type MessageType = 'JointState' | 'Twist' | 'CompressedImage' | 'Image' | 'String';
const PACKAGES: Record<MessageType, string> = {
  JointState: 'sensor_msgs',
  Twist: 'geometry_msgs',
  CompressedImage: 'sensor_msgs',
  Image: 'sensor_msgs',
  String: 'std_msgs',
};
/** The schema encodings the bag can be written in (the message encoding follows: cdr, ros1, protobuf). */
export type RobotBagEncoding = 'ros2msg' | 'ros2idl' | 'ros1msg' | 'protobuf';

const SEPARATOR = '='.repeat(80);
const msgFields: Record<MessageType, string> = {
  JointState: 'std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\nfloat64[] effort',
  Twist: 'geometry_msgs/Vector3 linear\ngeometry_msgs/Vector3 angular',
  CompressedImage: 'std_msgs/Header header\nstring format\nuint8[] data',
  Image: 'std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\nuint32 step\nuint8[] data',
  String: 'string data',
};
/** A .msg schema as rosbag2 (ROS 2) or rosbag (ROS 1) writes it: the type's fields, then each type it uses. */
function msgSchema(type: MessageType, ros1: boolean): string {
  const header = ros1
    ? 'uint32 seq\ntime stamp\nstring frame_id'
    : `builtin_interfaces/Time stamp\nstring frame_id\n${SEPARATOR}\nMSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec`;
  const dependencies = type === 'Twist' ? `MSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z` : `MSG: std_msgs/Header\n${header}`;
  return type === 'String' ? msgFields.String : `${msgFields[type]}\n${SEPARATOR}\n${dependencies}`;
}
/** A ros2idl schema: each type's IDL, preceded by its delimiter, as rosbag2 writes them. */
function idlSchema(type: MessageType): string {
  const idl = (name: string, body: string) => {
    const [pkg, , struct] = name.split('/');
    return `${SEPARATOR}\nIDL: ${name}\nmodule ${pkg} { module msg {\n  struct ${struct} {\n${body}\n  };\n}; };`;
  };
  const time = idl('builtin_interfaces/msg/Time', '    int32 sec;\n    uint32 nanosec;');
  const header = idl('std_msgs/msg/Header', '    builtin_interfaces::msg::Time stamp;\n    string frame_id;');
  const bodies: Record<MessageType, string[]> = {
    JointState: [
      'std_msgs::msg::Header header;',
      'sequence<string> name;',
      'sequence<double> position;',
      'sequence<double> velocity;',
      'sequence<double> effort;',
    ],
    Twist: ['geometry_msgs::msg::Vector3 linear;', 'geometry_msgs::msg::Vector3 angular;'],
    CompressedImage: ['std_msgs::msg::Header header;', 'string format;', 'sequence<uint8> data;'],
    Image: [
      'std_msgs::msg::Header header;',
      'uint32 height;',
      'uint32 width;',
      'string encoding;',
      'uint8 is_bigendian;',
      'uint32 step;',
      'sequence<uint8> data;',
    ],
    String: ['string data;'],
  };
  const own = idl(`${PACKAGES[type]}/msg/${type}`, bodies[type].map((field) => `    ${field}`).join('\n'));
  // Dependencies first: an IDL schema may list its types in any order, and the reader must find the message's own.
  if (type === 'Twist') return `${idl('geometry_msgs/msg/Vector3', '    double x;\n    double y;\n    double z;')}\n${own}`;
  return type === 'String' ? own : `${time}\n${header}\n${own}`;
}
/** The protobuf messages, mirroring the ROS ones field for field (package `kura.ros`). */
const protoRoot = protobuf.Root.fromJSON({
  nested: {
    kura: {
      nested: {
        ros: {
          nested: {
            Time: { fields: { sec: { type: 'int32', id: 1 }, nanosec: { type: 'uint32', id: 2 } } },
            Header: { fields: { stamp: { type: 'Time', id: 1 }, frame_id: { type: 'string', id: 2 } } },
            JointState: {
              fields: {
                header: { type: 'Header', id: 1 },
                name: { rule: 'repeated', type: 'string', id: 2 },
                position: { rule: 'repeated', type: 'double', id: 3 },
                velocity: { rule: 'repeated', type: 'double', id: 4 },
                effort: { rule: 'repeated', type: 'double', id: 5 },
              },
            },
            Vector3: { fields: { x: { type: 'double', id: 1 }, y: { type: 'double', id: 2 }, z: { type: 'double', id: 3 } } },
            Twist: { fields: { linear: { type: 'Vector3', id: 1 }, angular: { type: 'Vector3', id: 2 } } },
            CompressedImage: {
              fields: { header: { type: 'Header', id: 1 }, format: { type: 'string', id: 2 }, data: { type: 'bytes', id: 3 } },
            },
            Image: {
              fields: {
                header: { type: 'Header', id: 1 },
                height: { type: 'uint32', id: 2 },
                width: { type: 'uint32', id: 3 },
                encoding: { type: 'string', id: 4 },
                is_bigendian: { type: 'uint32', id: 5 },
                step: { type: 'uint32', id: 6 },
                data: { type: 'bytes', id: 7 },
              },
            },
            String: { fields: { data: { type: 'string', id: 1 } } },
          },
        },
      },
    },
  },
});

/** How one message type is registered and serialized in an encoding. */
function typeIn(encoding: RobotBagEncoding, type: MessageType) {
  const encoder = new TextEncoder();
  if (encoding === 'protobuf') {
    const proto = protoRoot.lookupType(`kura.ros.${type}`);
    const set = descriptor.FileDescriptorSet.encode(protoRoot.toDescriptor('proto3')).finish();
    return {
      schema: { name: `kura.ros.${type}`, encoding: 'protobuf', data: set },
      messageEncoding: 'protobuf',
      write: (message: unknown) => proto.encode(proto.fromObject(plainArrays(message) as Record<string, unknown>)).finish(),
    };
  }
  const ros1 = encoding === 'ros1msg';
  const msg = msgSchema(type, ros1);
  const writer = ros1 ? new Ros1Writer(parseMessageDefinition(msg)) : new Ros2Writer(parseMessageDefinition(msg, { ros2: true }));
  return {
    schema: {
      name: ros1 ? `${PACKAGES[type]}/${type}` : `${PACKAGES[type]}/msg/${type}`,
      encoding,
      data: encoder.encode(encoding === 'ros2idl' ? idlSchema(type) : msg),
    },
    messageEncoding: ros1 ? 'ros1' : 'cdr',
    // ROS 1 stamps are {sec, nsec}; ROS 2 and the protobuf mirror's {sec, nanosec}.
    write: (message: unknown) => writer.writeMessage(ros1 ? ros1Stamps(message) : message),
  };
}

/** Typed arrays as plain ones (protobufjs takes arrays for repeated fields), bytes kept. */
function plainArrays(value: unknown): unknown {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>);
  if (Array.isArray(value)) return value.map(plainArrays);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, plainArrays(child)]));
  return value;
}

function ros1Stamps(message: unknown): unknown {
  const header = (message as { header?: { stamp: { sec: number; nanosec: number }; frame_id: string } }).header;
  return header
    ? {
        ...(message as object),
        header: { seq: 0, stamp: { sec: header.stamp.sec, nsec: header.stamp.nanosec }, frame_id: header.frame_id },
      }
    : message;
}

/** Joint `joint` at `t` seconds from the bag's start. */
export const jointValue = (t: number, joint: number) => Math.round(Math.sin(t * 2 + joint) * 1e6) / 1e6;
/** The command topic's fields, in the order `commandValues` gives them. */
export const COMMAND_FIELDS = ['linear.x', 'linear.y', 'linear.z', 'angular.x', 'angular.y', 'angular.z'];
/** The command (Twist: linear x, y, z, angular x, y, z) at `t` seconds. */
export const commandValues = (t: number) => [t, -t, 2 * t, Math.round(Math.cos(t) * 1e6) / 1e6, 0.5, -0.5];
/**
 * The camera frame with number `frame`: an 8×6 PNG whose pixels all hold `frame % 256`; with a size,
 * a frame of that size filled with noise (seeded by the frame number), so that it does not compress
 * (the bench's bags).
 */
export function cameraFrame(frame: number, size?: { width: number; height: number }): Uint8Array {
  if (!size) return encodePng({ pixels: new Uint8Array(8 * 6 * 3).fill(frame % 256), width: 8, height: 6, channels: 3 });
  const pixels = new Uint8Array(size.width * size.height * 3);
  let state = (frame + 1) * 2654435761;
  for (let index = 0; index < pixels.length; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    pixels[index] = state >>> 24;
  }
  return encodePng({ pixels, width: size.width, height: size.height, channels: 3 });
}

export interface RobotBagSchedule {
  /** Each episode's [start, end) in ns from BAG_START. */
  episodes: Array<[bigint, bigint]>;
  tasks: string[];
  jointPeriod: bigint;
  commandRateHz: number;
  cameraRateHz: number;
  cameraOffset: bigint;
}

export const robotBagSchedule: RobotBagSchedule = {
  // 1 s, then a 2 s gap, then 1 s.
  episodes: [
    [0n, SECOND],
    [3n * SECOND, 4n * SECOND],
  ],
  tasks: ['pick up the cube', 'put it in the box'],
  jointPeriod: 10_000_000n,
  commandRateHz: 30,
  cameraRateHz: 15,
  cameraOffset: 3_000_000n,
};

/** The message times (ns from BAG_START) of a stream at `rateHz` (or every `period`) within an episode, plus `offset`. */
export function streamTimes(episode: [bigint, bigint], every: { rateHz: number } | { period: bigint }, offset = 0n): bigint[] {
  const times: bigint[] = [];
  for (let index = 0; ; index++) {
    const time =
      episode[0] + ('period' in every ? every.period * BigInt(index) : BigInt(Math.round((index * 1e9) / every.rateHz))) + offset;
    if (time >= episode[1]) return times;
    times.push(time);
  }
}

class FileWritable implements IWritable {
  private written = 0n;
  constructor(private readonly file: import('node:fs/promises').FileHandle) {}
  async write(buffer: Uint8Array): Promise<void> {
    await this.file.write(buffer);
    this.written += BigInt(buffer.byteLength);
  }
  position(): bigint {
    return this.written;
  }
}

/** A raw camera's pixel format, as sensor_msgs/Image names it. */
export type RawCameraFormat = 'rgb8' | 'bgr8' | 'mono8' | '16UC1' | 'bayer_rggb8';
const RAW_SIZE = { width: 8, height: 6 };
const RAW_FORMAT: Record<RawCameraFormat, { channels: number; sampleBytes: number }> = {
  rgb8: { channels: 3, sampleBytes: 1 },
  bgr8: { channels: 3, sampleBytes: 1 },
  mono8: { channels: 1, sampleBytes: 1 },
  '16UC1': { channels: 1, sampleBytes: 2 },
  bayer_rggb8: { channels: 1, sampleBytes: 1 },
};

/**
 * Raw camera frame `frame`'s pixels as a PNG decoder gives them back (RGB or grey, channel-last, row-major):
 * every sample depends on the frame, its column, row and channel, so a swapped channel or a row
 * misread by its padding shows.
 */
export function rawFramePixels(frame: number, format: RawCameraFormat): number[] {
  const { channels, sampleBytes } = RAW_FORMAT[format];
  const modulus = sampleBytes === 2 ? 65536 : 256;
  const pixels: number[] = [];
  for (let y = 0; y < RAW_SIZE.height; y++)
    for (let x = 0; x < RAW_SIZE.width; x++)
      for (let channel = 0; channel < channels; channel++) pixels.push((frame * 1009 + x * 31 + y * 517 + channel * 83) % modulus);
  return pixels;
}

/** The raw Image message of frame `frame`: rows padded by 3 bytes (step > width × pixel bytes), BGR stored blue first, 16-bit little-endian. */
function rawImageMessage(frame: number, format: RawCameraFormat) {
  const { channels, sampleBytes } = RAW_FORMAT[format];
  const pixels = rawFramePixels(frame, format);
  const rowBytes = RAW_SIZE.width * channels * sampleBytes;
  const step = rowBytes + 3;
  const data = new Uint8Array(step * RAW_SIZE.height).fill(0xee);
  for (let y = 0; y < RAW_SIZE.height; y++)
    for (let x = 0; x < RAW_SIZE.width; x++)
      for (let channel = 0; channel < channels; channel++) {
        const stored = format === 'bgr8' ? channels - 1 - channel : channel;
        const value = pixels[(y * RAW_SIZE.width + x) * channels + channel]!;
        const at = y * step + (x * channels + stored) * sampleBytes;
        if (sampleBytes === 2) {
          data[at] = value & 0xff;
          data[at + 1] = value >> 8;
        } else data[at] = value;
      }
  return { height: RAW_SIZE.height, width: RAW_SIZE.width, encoding: format, is_bigendian: 0, step, data };
}

/** The camera topic of a bag written with `camera` (the compressed one unless a raw pixel format is given). */
export const cameraTopic = (camera?: RawCameraFormat) => (camera ? '/camera/front/image_raw' : '/camera/front/image_raw/compressed');

/** Writes the robot bag to `path` (lz4 chunks, or none): joints, commands, camera and task, in log-time order. */
export async function writeRobotBag(
  path: string,
  options: {
    compression?: 'lz4' | 'none';
    schedule?: RobotBagSchedule;
    frameSize?: { width: number; height: number };
    encoding?: RobotBagEncoding;
    /** A raw camera (sensor_msgs/Image) in this pixel format instead of the compressed one. */
    camera?: RawCameraFormat;
    /** Hostile tests: change a schema's bytes, a message before it is serialized, or its bytes after. */
    tamper?: {
      schema?: (name: string, data: Uint8Array) => Uint8Array;
      message?: (topic: string, message: Record<string, unknown>, index: number) => Record<string, unknown>;
      bytes?: (topic: string, data: Uint8Array, index: number) => Uint8Array;
    };
  } = {},
): Promise<void> {
  const schedule = options.schedule ?? robotBagSchedule;
  const encoding = options.encoding ?? 'ros2msg';
  const file = await open(path, 'w');
  const writer = new McapWriter({
    writable: new FileWritable(file),
    chunkSize: 64 * 1024,
    ...(options.compression === 'none'
      ? {}
      : { compressChunk: (data: Uint8Array) => ({ compression: 'lz4', compressedData: lz4.compress(data) }) }),
  });
  await writer.start({ profile: encoding === 'ros1msg' ? 'ros1' : encoding === 'protobuf' ? '' : 'ros2', library: 'kura-test' });
  const channels: Record<string, { id: number; write: (message: unknown) => Uint8Array }> = {};
  const channel = async (topic: string, type: MessageType) => {
    const { schema, messageEncoding, write } = typeIn(encoding, type);
    const tamperSchema = options.tamper?.schema;
    const schemaId = await writer.registerSchema(tamperSchema ? { ...schema, data: tamperSchema(schema.name, schema.data) } : schema);
    const id = await writer.registerChannel({ topic, schemaId, messageEncoding, metadata: new Map() });
    channels[topic] = { id, write };
  };
  const camera = cameraTopic(options.camera);
  await channel('/joint_states', 'JointState');
  await channel('/arm/command', 'Twist');
  await channel(camera, options.camera ? 'Image' : 'CompressedImage');
  await channel('/task', 'String');

  const messages: Array<{ topic: string; time: bigint; message: unknown }> = [];
  let frame = 0;
  for (const [index, episode] of schedule.episodes.entries()) {
    messages.push({ topic: '/task', time: episode[0], message: { data: schedule.tasks[index] } });
    for (const [count, time] of streamTimes(episode, { period: schedule.jointPeriod }).entries()) {
      const t = Number(time) / 1e9;
      // Every other message lists the joints backwards: the mapping picks them by name.
      const order = count % 2 === 0 ? JOINTS.map((_, joint) => joint) : JOINTS.map((_, joint) => JOINTS.length - 1 - joint);
      messages.push({
        topic: '/joint_states',
        time,
        message: {
          header: stampOf(time, 'base'),
          name: order.map((joint) => JOINTS[joint]),
          position: Float64Array.from(order, (joint) => jointValue(t, joint)),
          velocity: new Float64Array(0),
          effort: new Float64Array(0),
        },
      });
    }
    for (const time of streamTimes(episode, { rateHz: schedule.commandRateHz })) {
      const [lx, ly, lz, ax, ay, az] = commandValues(Number(time) / 1e9);
      messages.push({ topic: '/arm/command', time, message: { linear: { x: lx, y: ly, z: lz }, angular: { x: ax, y: ay, z: az } } });
    }
    for (const time of streamTimes(episode, { rateHz: schedule.cameraRateHz }, schedule.cameraOffset)) {
      const header = stampOf(time, 'front');
      const image = options.camera
        ? { header, ...rawImageMessage(frame++, options.camera) }
        : { header, format: 'png', data: cameraFrame(frame++, options.frameSize) };
      messages.push({ topic: camera, time, message: image });
    }
  }
  // Log-time order, the topics' order breaking ties (as a recorder would interleave them).
  const rank = Object.keys(channels);
  messages.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : rank.indexOf(a.topic) - rank.indexOf(b.topic)));
  for (const [sequence, { topic, time, message }] of messages.entries()) {
    const { id, write } = channels[topic]!;
    const logTime = BAG_START + time;
    const { message: changeMessage, bytes: changeBytes } = options.tamper ?? {};
    const data = write(changeMessage ? changeMessage(topic, message as Record<string, unknown>, sequence) : message);
    await writer.addMessage({
      channelId: id,
      sequence,
      logTime,
      publishTime: logTime,
      data: changeBytes ? changeBytes(topic, data, sequence) : data,
    });
  }
  await writer.end();
  await file.close();
}

function stampOf(time: bigint, frameId: string) {
  const absolute = BAG_START + time;
  return { stamp: { sec: Number(absolute / SECOND), nanosec: Number(absolute % SECOND) }, frame_id: frameId };
}
