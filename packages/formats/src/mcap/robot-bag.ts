// A small ROS 2 robot bag written with @mcap/core's writer, for tests and the bench: joint states at
// 100 Hz (joint order shuffled in every other message), arm commands (Twist) at 30 Hz, a compressed
// camera at 15 Hz (3 ms after the joints), and a task per episode; episodes separated by a gap. Every
// value is a function of its time, so a test knows each step's values in advance.
import { open } from 'node:fs/promises';
import { McapWriter, type IWritable } from '@mcap/core';
import { parse as parseMessageDefinition } from '@foxglove/rosmsg';
import { MessageWriter } from '@foxglove/rosmsg2-serialization';
import { lz4 } from './lz4.js';
import { encodePng } from '../png.js';

export const JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper'];
const SECOND = 1_000_000_000n;
/** The bag's clock starts here (ns since the epoch, a whole second). */
export const BAG_START = 1_700_000_000n * SECOND;

const TIME = 'int32 sec\nuint32 nanosec';
const HEADER = `builtin_interfaces/Time stamp\nstring frame_id\n${'='.repeat(80)}\nMSG: builtin_interfaces/Time\n${TIME}`;
const schemas = {
  'sensor_msgs/msg/JointState': `std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\nfloat64[] effort\n${'='.repeat(80)}\nMSG: std_msgs/Header\n${HEADER}`,
  'geometry_msgs/msg/Twist': `geometry_msgs/Vector3 linear\ngeometry_msgs/Vector3 angular\n${'='.repeat(80)}\nMSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z`,
  'sensor_msgs/msg/CompressedImage': `std_msgs/Header header\nstring format\nuint8[] data\n${'='.repeat(80)}\nMSG: std_msgs/Header\n${HEADER}`,
  'std_msgs/msg/String': 'string data',
};

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

/** Writes the robot bag to `path` (lz4 chunks, or none): joints, commands, camera and task, in log-time order. */
export async function writeRobotBag(
  path: string,
  options: { compression?: 'lz4' | 'none'; schedule?: RobotBagSchedule; frameSize?: { width: number; height: number } } = {},
): Promise<void> {
  const schedule = options.schedule ?? robotBagSchedule;
  const file = await open(path, 'w');
  const writer = new McapWriter({
    writable: new FileWritable(file),
    chunkSize: 64 * 1024,
    ...(options.compression === 'none'
      ? {}
      : { compressChunk: (data: Uint8Array) => ({ compression: 'lz4', compressedData: lz4.compress(data) }) }),
  });
  await writer.start({ profile: 'ros2', library: 'kura-test' });
  const encoder = new TextEncoder();
  const channels: Record<string, { id: number; writer: MessageWriter }> = {};
  const channel = async (topic: string, type: keyof typeof schemas) => {
    const schemaId = await writer.registerSchema({ name: type, encoding: 'ros2msg', data: encoder.encode(schemas[type]) });
    const id = await writer.registerChannel({ topic, schemaId, messageEncoding: 'cdr', metadata: new Map() });
    channels[topic] = { id, writer: new MessageWriter(parseMessageDefinition(schemas[type], { ros2: true })) };
  };
  await channel('/joint_states', 'sensor_msgs/msg/JointState');
  await channel('/arm/command', 'geometry_msgs/msg/Twist');
  await channel('/camera/front/image_raw/compressed', 'sensor_msgs/msg/CompressedImage');
  await channel('/task', 'std_msgs/msg/String');

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
    for (const time of streamTimes(episode, { rateHz: schedule.cameraRateHz }, schedule.cameraOffset))
      messages.push({
        topic: '/camera/front/image_raw/compressed',
        time,
        message: { header: stampOf(time, 'front'), format: 'png', data: cameraFrame(frame++, options.frameSize) },
      });
  }
  // Log-time order, the topics' order breaking ties (as a recorder would interleave them).
  const rank = Object.keys(channels);
  messages.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : rank.indexOf(a.topic) - rank.indexOf(b.topic)));
  for (const [sequence, { topic, time, message }] of messages.entries()) {
    const { id, writer: messageWriter } = channels[topic]!;
    const logTime = BAG_START + time;
    await writer.addMessage({ channelId: id, sequence, logTime, publishTime: logTime, data: messageWriter.writeMessage(message) });
  }
  await writer.end();
  await file.close();
}

function stampOf(time: bigint, frameId: string) {
  const absolute = BAG_START + time;
  return { stamp: { sec: Number(absolute / SECOND), nanosec: Number(absolute % SECOND) }, frame_id: frameId };
}
