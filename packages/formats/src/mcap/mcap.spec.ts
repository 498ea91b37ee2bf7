import { copyFile, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ImportError, type ImportedEpisode, type ImportIssue, type ImportSource } from '../importer.js';
import { mcapImporter } from './import.js';
import type { McapInspection } from '@kura/schema';
import { mcapOptionsSchema, type McapMapping } from './mapping.js';
import { decode as decodePng } from 'fast-png';
import {
  BAG_START,
  cameraFrame,
  cameraTopic,
  rawFramePixels,
  type RawCameraFormat,
  type RobotBagEncoding,
  COMMAND_FIELDS,
  commandValues,
  JOINTS,
  jointValue,
  robotBagSchedule,
  streamTimes,
  writeRobotBag,
} from './robot-bag.js';

const fixtures = fileURLToPath(new URL('../../../../test/fixtures/mcap/rosbag2/', import.meta.url));
let scratch: string;
let robotBag: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-mcap-'));
  robotBag = join(scratch, 'robot.mcap');
  await writeRobotBag(robotBag);
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function sourceOf(...paths: string[]): Promise<ImportSource> {
  return {
    files: await Promise.all(
      paths.map(async (path) => ({ path: path.split('/').pop()!, absolutePath: path, bytes: (await stat(path)).size })),
    ),
  };
}

/** Imports with `options` (parsed as the API parses them); episodes, warnings, or the ImportError. */
async function importBags(paths: string[], options: unknown = {}) {
  const warnings: ImportIssue[] = [];
  const parsed = mcapOptionsSchema.parse(options);
  const result = await mcapImporter.open(await sourceOf(...paths), { options: parsed, warn: (issue) => warnings.push(issue) });
  const episodes: ImportedEpisode[] = [];
  for await (const episode of result.episodes) episodes.push(episode);
  return { result, episodes, warnings };
}

async function refusal(paths: string[], options: unknown = {}): Promise<ImportError> {
  try {
    await importBags(paths, options);
  } catch (error) {
    if (error instanceof ImportError) return error;
    throw error;
  }
  throw new Error('the import did not fail');
}

async function inspection(path: string): Promise<McapInspection> {
  const error = await refusal([path]);
  expect(error.code).toBe('MAPPING_REQUIRED');
  return error.details!.inspection as McapInspection;
}

describe('inspecting a bag that comes without a mapping', () => {
  it('lists the topics of rosbag2 bags (zstd chunks; empty topics; service events Kura cannot decode)', async () => {
    const talker = await inspection(join(fixtures, 'talker.mcap'));
    expect(talker.topics.map((topic) => [topic.topic, topic.schemaName, topic.messageCount, topic.undecodable])).toEqual([
      ['/parameter_events', 'rcl_interfaces/msg/ParameterEvent', 0, null],
      ['/rosout', 'rcl_interfaces/msg/Log', 10, null],
      ['/topic', 'std_msgs/msg/String', 10, null],
    ]);
    expect(talker.topics[2]!.fields).toEqual([{ path: 'data', kind: 'text' }]);
    expect(talker.topics[2]!.rateHz).toBeGreaterThan(1);
    // Strings alone are not robot data: nothing to suggest.
    expect(talker.suggestedMapping).toBeNull();

    const services = await inspection(join(fixtures, 'bag_with_topics_and_service_events.mcap'));
    const event = services.topics.find((topic) => topic.topic === '/test_service1/_service_event')!;
    expect(event.undecodable).toMatch(/schema test_msgs\/srv\/BasicTypes_Event does not parse/);
    expect(services.topics.find((topic) => topic.topic === '/test_topic1')!.undecodable).toBeNull();

    const arrays = await inspection(join(fixtures, 'cdr_test_0.mcap'));
    const fields = arrays.topics.find((topic) => topic.topic === '/array_topic')!.fields;
    expect(fields).toEqual(expect.arrayContaining([{ path: 'float64_values', kind: 'numeric', size: 3 }]));
  });

  it('suggests a mapping for a robot bag that imports unchanged', async () => {
    const found = await inspection(robotBag);
    expect(found.topics.map((topic) => [topic.topic, topic.messageCount, topic.rateHz])).toEqual([
      ['/arm/command', 60, expect.any(Number)],
      ['/camera/front/image_raw/compressed', 30, expect.any(Number)],
      ['/joint_states', 200, expect.any(Number)],
      ['/task', 2, expect.any(Number)],
    ]);
    expect(found.suggestedMapping).toEqual({
      rateHz: expect.any(Number),
      time: 'log',
      features: {
        'observation.state': { topic: '/joint_states', field: 'position', names: JOINTS, namesField: 'name' },
        action: {
          topic: '/arm/command',
          field: COMMAND_FIELDS,
          namesField: 'name',
        },
        'observation.images.front': { topic: '/camera/front/image_raw/compressed', field: 'data', namesField: 'name' },
      },
      task: { topic: '/task', field: 'data' },
    });
    // Sent back as it is, it imports (the whole bag as one episode: no split was asked for).
    const { episodes, result } = await importBags([robotBag], { mapping: found.suggestedMapping });
    expect(episodes).toHaveLength(1);
    expect(result.features['observation.images.front']).toEqual({ dtype: 'image', shape: [6, 8, 3], encoding: 'png' });
  });
});

/** What the step at `tick` (ns from BAG_START) must hold: each stream's latest message at or before it. */
function expectedStep(tick: bigint, episode: [bigint, bigint]) {
  const latest = (times: bigint[]) => times.filter((time) => time <= tick).at(-1);
  const joint = latest(streamTimes(episode, { period: robotBagSchedule.jointPeriod }))!;
  const command = latest(streamTimes(episode, { rateHz: robotBagSchedule.commandRateHz }))!;
  const cameraTimes = robotBagSchedule.episodes.flatMap((span) =>
    streamTimes(span, { rateHz: robotBagSchedule.cameraRateHz }, robotBagSchedule.cameraOffset),
  );
  const camera = latest(cameraTimes.filter((time) => time >= episode[0] && time < episode[1]));
  return {
    state: JOINTS.map((_, index) => Math.fround(jointValue(Number(joint) / 1e9, index))),
    action: commandValues(Number(command) / 1e9).map(Math.fround),
    frame: camera === undefined ? undefined : cameraFrame(cameraTimes.indexOf(camera)),
    frameNumber: camera === undefined ? -1 : cameraTimes.indexOf(camera),
  };
}

const aligned: McapMapping = {
  rateHz: 10,
  time: 'log',
  splitGapS: 1,
  features: {
    'observation.state': { topic: '/joint_states', field: 'position', names: JOINTS, namesField: 'name' },
    action: { topic: '/arm/command', field: COMMAND_FIELDS, namesField: 'name' },
    'observation.images.front': { topic: '/camera/front/image_raw/compressed', namesField: 'name' },
  },
  task: { topic: '/task', field: 'data' },
};

describe('aligning topics onto steps', () => {
  const mapping = aligned;

  it("gives each step every feature's latest sample at or before its tick, episodes split at the gap", async () => {
    const { episodes, result, warnings } = await importBags([robotBag], { mapping });
    expect(warnings).toEqual([]);
    expect(result.fps).toBe(10);
    expect(result.features['observation.state']).toEqual({ dtype: 'float32', shape: [6], names: JOINTS });
    expect(episodes.map((episode) => [episode.sourceId, episode.length, episode.task])).toEqual([
      ['robot.mcap#0', 9, 'pick up the cube'],
      ['robot.mcap#1', 9, 'put it in the box'],
    ]);
    for (const [index, episode] of episodes.entries()) {
      const span = robotBagSchedule.episodes[index]!;
      // Ticks every 100 ms from the episode's first sample; the first (the camera has nothing yet) is skipped.
      expect(episode.metadata).toMatchObject({ sync: { leadingTicksSkipped: 1 } });
      expect(Array.from(episode.timestamp!)).toEqual(Array.from({ length: 9 }, (_, step) => Math.round(step * 100) / 1000));
      const state = (episode.features['observation.state'] as { values: Float32Array }).values;
      const action = (episode.features.action as { values: Float32Array }).values;
      const frames = (episode.features['observation.images.front'] as { frames: Uint8Array[] }).frames;
      for (let step = 0; step < episode.length; step++) {
        const expected = expectedStep(span[0] + BigInt(step + 1) * 100_000_000n, span);
        expect(Array.from(state.subarray(step * 6, step * 6 + 6))).toEqual(expected.state);
        expect(Array.from(action.subarray(step * 6, step * 6 + 6))).toEqual(expected.action);
        expect(Buffer.from(frames[step]!).equals(Buffer.from(expected.frame!))).toBe(true);
      }
    }
  });

  it.each<RobotBagEncoding>(['ros2idl', 'ros1msg', 'protobuf'])(
    'reads the same messages in %s as in ROS 2 .msg: same steps, header stamps too',
    async (encoding) => {
      const path = join(scratch, `robot-${encoding}.mcap`);
      await writeRobotBag(path, { encoding });
      const found = await inspection(path);
      expect(found.topics.map((topic) => [topic.topic, topic.undecodable])).toEqual([
        ['/arm/command', null],
        ['/camera/front/image_raw/compressed', null],
        ['/joint_states', null],
        ['/task', null],
      ]);
      expect(found.suggestedMapping?.features).toEqual((await inspection(robotBag)).suggestedMapping?.features);
      const reference = await importBags([robotBag], { mapping });
      for (const time of ['log', 'header'] as const) {
        const { episodes, warnings } = await importBags([path], { mapping: { ...mapping, time } });
        expect(warnings).toEqual([]);
        // Everything but the file's name: steps, values, frames, tasks, sync reports.
        const unnamed = (list: ImportedEpisode[]) =>
          list.map(({ sourceId, sourceEpisode: _, file: __, ...rest }) => ({ ...rest, id: sourceId.split('#')[1] }));
        expect(unnamed(episodes)).toEqual(unnamed(reference.episodes));
      }
    },
  );

  it.each<[RawCameraFormat, number]>([
    ['rgb8', 3],
    ['bgr8', 3],
    ['mono8', 1],
    ['16UC1', 1],
  ])('turns a raw %s camera into PNG frames with its exact pixels (rows padded, BGR swapped, 16-bit kept)', async (format, channels) => {
    const path = join(scratch, `raw-${format}.mcap`);
    await writeRobotBag(path, { camera: format });
    const found = await inspection(path);
    const camera = found.topics.find((topic) => topic.topic === cameraTopic(format))!;
    expect(camera.fields).toEqual([
      expect.objectContaining({ path: 'header.stamp.sec' }),
      expect.objectContaining({ path: 'header.stamp.nanosec' }),
      { path: 'header.frame_id', kind: 'text' },
      { path: 'data', kind: 'image', encoding: 'raw', pixelFormat: format, convertible: true },
    ]);
    const suggested = found.suggestedMapping!;
    expect(suggested.features['observation.images.front']).toEqual({ topic: cameraTopic(format), field: 'data', namesField: 'name' });
    const { episodes, result } = await importBags([path], {
      mapping: {
        ...mapping,
        features: { ...mapping.features, 'observation.images.front': suggested.features['observation.images.front'] },
      },
    });
    expect(result.features['observation.images.front']).toEqual({ dtype: 'image', shape: [6, 8, channels], encoding: 'png' });
    expect(episodes.map((episode) => episode.length)).toEqual([9, 9]);
    for (const [index, episode] of episodes.entries()) {
      const span = robotBagSchedule.episodes[index]!;
      const frames = (episode.features['observation.images.front'] as { frames: Uint8Array[] }).frames;
      for (let step = 0; step < episode.length; step++) {
        const png = decodePng(frames[step]!);
        expect([png.width, png.height, png.channels, png.depth]).toEqual([8, 6, channels, format === '16UC1' ? 16 : 8]);
        const { frameNumber } = expectedStep(span[0] + BigInt(step + 1) * 100_000_000n, span);
        expect(Array.from(png.data)).toEqual(rawFramePixels(frameNumber, format));
      }
    }
  });

  it('refuses a raw camera in a pixel format it does not convert, naming the format; the suggestion leaves that camera out', async () => {
    const path = join(scratch, 'raw-bayer.mcap');
    await writeRobotBag(path, { camera: 'bayer_rggb8' });
    const found = await inspection(path);
    expect(found.topics.find((topic) => topic.topic === cameraTopic('bayer_rggb8'))!.fields.at(-1)).toEqual({
      path: 'data',
      kind: 'image',
      encoding: 'raw',
      pixelFormat: 'bayer_rggb8',
      convertible: false,
    });
    expect(Object.keys(found.suggestedMapping!.features)).toEqual(['observation.state', 'action']);
    const error = await refusal([path], {
      mapping: { ...mapping, features: { ...mapping.features, 'observation.images.front': { topic: cameraTopic('bayer_rggb8') } } },
    });
    expect(error.code).toBe('MCAP_IMAGE_UNSUPPORTED');
    expect(error.message).toContain('"bayer_rggb8"');
    expect(error.location).toEqual({ file: 'raw-bayer.mcap', field: 'mapping.features.observation.images.front' });
  });

  it('drops and counts ticks whose sample is too old, and takes a reference topic as the clock', async () => {
    // At the ticks the camera's latest frame is 30 or 64 ms old, in turn: with maxAgeS 0.05 every other tick goes, and the report says for whom.
    const strict = await importBags([robotBag], {
      mapping: {
        ...mapping,
        features: { ...mapping.features, 'observation.images.front': { ...mapping.features['observation.images.front'], maxAgeS: 0.05 } },
      },
    });
    const sync = strict.episodes[0]!.metadata!.sync as { features: Record<string, { ticksDropped: number }> };
    expect(sync.features['observation.images.front']!.ticksDropped).toBe(4);
    expect(strict.episodes[0]!.length + sync.features['observation.images.front']!.ticksDropped).toBe(9);
    expect(strict.warnings.map((warning) => warning.code)).toContain('MCAP_TICKS_DROPPED');

    // Ticks at the camera's messages: each step's frame is the one of its own tick.
    const { rateHz: _, ...rest } = mapping;
    const byCamera = await importBags([robotBag], { mapping: { ...rest, reference: '/camera/front/image_raw/compressed' } });
    expect(byCamera.episodes.map((episode) => episode.length)).toEqual([15, 15]);
    const cameraTimes = streamTimes(robotBagSchedule.episodes[0]!, { rateHz: 15 }, robotBagSchedule.cameraOffset);
    expect(Array.from(byCamera.episodes[0]!.timestamp!)).toEqual(cameraTimes.map((time) => Number(time - cameraTimes[0]!) / 1e9));
  });

  it('splits at a marker topic, and reads the same bag from its stream when the summary is gone', async () => {
    const marked = await importBags([robotBag], {
      mapping: { ...mapping, splitGapS: undefined, markerTopic: '/task', task: 'fixed task' },
    });
    // Without the gap split, the first episode runs on into the gap until its state is older than
    // maxAgeS (two ticks: 0.2 s), so two more steps, then ticks are dropped until the marker.
    expect(marked.episodes.map((episode) => [episode.length, episode.task])).toEqual([
      [11, 'fixed task'],
      [9, 'fixed task'],
    ]);
    // Cut the file before its summary: streamed, the same episodes, and a warning that it ends early.
    const whole = await stat(robotBag);
    const cut = join(scratch, 'cut.mcap');
    await copyFile(robotBag, cut);
    const handle = await open(cut, 'r+');
    await handle.truncate(whole.size - 200);
    await handle.close();
    const streamed = await importBags([cut], { mapping });
    expect(streamed.episodes.map((episode) => episode.length)).toEqual([9, 9]);
    expect(streamed.warnings.map((warning) => warning.code)).toEqual(['MCAP_TRUNCATED']);
  });
});

describe('reading a bag larger than the read-ahead windows', () => {
  it('gives every camera frame byte for byte, records crossing window edges included', async () => {
    const path = join(scratch, 'large.mcap');
    const size = { width: 160, height: 120 };
    // One 6 s episode: 90 noise frames of ~57 KB (5 MB), in 64 KiB chunks that straddle the 2 MiB windows.
    const schedule = { ...robotBagSchedule, episodes: [[0n, 6_000_000_000n]] as Array<[bigint, bigint]>, tasks: ['long'] };
    await writeRobotBag(path, { schedule, frameSize: size });
    expect((await stat(path)).size).toBeGreaterThan(4 * 1024 * 1024);
    const { episodes } = await importBags([path], { mapping: { ...aligned, rateHz: 15 } });
    const frames = (episodes[0]!.features['observation.images.front'] as { frames: Uint8Array[] }).frames;
    const cameraTimes = streamTimes(schedule.episodes[0]!, { rateHz: 15 }, schedule.cameraOffset);
    expect(frames.length).toBeGreaterThan(80);
    // At 15 Hz from the first sample (the joints, 3 ms before the camera), a step's frame is the one before its tick.
    frames.forEach((frame, step) => {
      const tick = BigInt(Math.round((step + 1) * (1e9 / 15)));
      const number = cameraTimes.filter((time) => time <= tick).length - 1;
      expect(Buffer.from(frame).equals(Buffer.from(cameraFrame(number, size)))).toBe(true);
    });
  });
});

describe('refusals, each with its code and where', () => {
  const base: McapMapping = {
    rateHz: 10,
    time: 'log',
    features: { 'observation.state': { topic: '/joint_states', field: 'position', names: JOINTS, namesField: 'name' } },
  };

  it('names a missing topic, field or joint', async () => {
    const topic = await refusal([robotBag], { mapping: { ...base, features: { action: { topic: '/cmd_vel', field: 'linear.x' } } } });
    expect([topic.code, topic.location.field, topic.message]).toEqual([
      'MCAP_TOPIC_MISSING',
      'mapping.features.action',
      expect.stringContaining('has no topic /cmd_vel (it has /arm/command, /camera/front/image_raw/compressed, /joint_states, /task)'),
    ]);
    const field = await refusal([robotBag], { mapping: { ...base, features: { action: { topic: '/arm/command', field: 'linear.w' } } } });
    expect([field.code, field.message]).toEqual([
      'MCAP_FIELD_MISSING',
      expect.stringContaining('/arm/command has no numeric field linear.w'),
    ]);
    const joint = await refusal([robotBag], {
      mapping: { ...base, features: { 'observation.state': { topic: '/joint_states', field: 'position', names: ['elbow', 'gripper'] } } },
    });
    expect([joint.code, joint.message]).toEqual(['MCAP_JOINT_MISSING', expect.stringContaining('no value for "elbow"')]);
    const encoding = await refusal([join(fixtures, 'bag_with_topics_and_service_events.mcap')], {
      mapping: { ...base, features: { action: { topic: '/test_service1/_service_event', field: 'x' } } },
    });
    expect(encoding.code).toBe('MCAP_ENCODING_UNSUPPORTED');
  });

  it('refuses a rosbag2 .db3 saying how to convert it, and a damaged chunk naming the file', async () => {
    const db3 = join(scratch, 'rosbag2_0.db3');
    await writeFile(db3, Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4080)]));
    expect(await mcapImporter.detect(await sourceOf(db3))).toBe(true);
    const refused = await refusal([db3]);
    expect([refused.code, refused.location.file]).toEqual(['ROSBAG_DB3_UNSUPPORTED', 'rosbag2_0.db3']);
    expect(refused.message).toContain('ros2 bag convert');

    const damaged = join(scratch, 'damaged.mcap');
    await copyFile(robotBag, damaged);
    const handle = await open(damaged, 'r+');
    // Inside the first chunk's compressed records (past the header and the first schemas).
    await handle.write(Buffer.alloc(64, 0xff), 0, 64, 2000);
    await handle.close();
    const broken = await refusal([damaged], { mapping: base });
    expect(['MCAP_CORRUPT', 'MCAP_MESSAGE_INVALID']).toContain(broken.code);
    expect(broken.location.file).toBe('damaged.mcap');

    // A chunk whose bytes still parse but no longer match its CRC: refused, naming where its record starts.
    const flipped = join(scratch, 'flipped.mcap');
    await writeRobotBag(flipped, { compression: 'none' });
    const at = Math.floor((await stat(flipped)).size / 2);
    const file = await open(flipped, 'r+');
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, at);
    await file.write(Buffer.of(byte[0]! ^ 0xff), 0, 1, at);
    await file.close();
    const crc = await refusal([flipped], { mapping: base });
    expect(crc.code).toBe('MCAP_CORRUPT');
    expect(crc.message).toMatch(/CRC/);
    const offset = crc.details!.offset as number;
    expect(offset).toBeLessThanOrEqual(at);
    expect(at - offset).toBeLessThan(128 * 1024);
    expect(crc.message).toContain(`byte ${offset}`);
  });

  it('refuses a chunk that claims a terabyte uncompressed before allocating it', async () => {
    const bomb = join(scratch, 'bomb.mcap');
    const bytes = Buffer.from(await readFile(robotBag));
    // Records after the 8-byte magic: opcode (1 byte), length (u64), body. A chunk (0x06) holds its uncompressed size after two times.
    let at = 8;
    while (bytes[at] !== 0x06) at += 9 + Number(bytes.readBigUInt64LE(at + 1));
    bytes.writeBigUInt64LE(2n ** 40n, at + 9 + 16);
    await writeFile(bomb, bytes);
    const refused = await refusal([bomb], { mapping: base });
    expect(['INGEST_LIMIT_EXCEEDED', 'MCAP_CORRUPT']).toContain(refused.code);
    expect(refused.location.file).toBe('bomb.mcap');
  });

  it('is not taken for another format, nor takes theirs', async () => {
    expect(await mcapImporter.detect(await sourceOf(robotBag))).toBe(true);
    const text = join(scratch, 'steps.ndjson');
    await writeFile(text, '{"episode": 0}\n');
    expect(await mcapImporter.detect(await sourceOf(text))).toBe(false);
    expect(Number(BAG_START)).toBeGreaterThan(0);
  });
});
