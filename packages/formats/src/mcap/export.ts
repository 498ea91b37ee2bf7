import { McapWriter, type IWritable } from '@mcap/core';
import { DataType, type Field, type RecordBatch, type Schema, type Vector } from 'apache-arrow';
import { sourceEpisodesOf, type Feature, type McapMapping } from '@kura/schema';
import { lz4 } from './lz4.js';
import { MAPPING_METADATA } from './mapping.js';

/** Episodes follow each other on the file's clock with this much between them. */
const EPISODE_GAP_NS = 1_000_000_000n;
/** The file's clock starts here (1 s after the epoch: some tools read 0 as "no time"). */
const CLOCK_START_NS = 1_000_000_000n;

const encoder = new TextEncoder();
const time = { type: 'object', properties: { sec: { type: 'integer' }, nsec: { type: 'integer' } } };
const stepFields = { timestamp: time, episode: { type: 'integer' }, step: { type: 'integer' } };
const schemas = {
  'kura.Values': {
    type: 'object',
    description: "A numeric feature's values at one step",
    properties: { ...stepFields, data: { type: 'array', items: { type: 'number' } } },
  },
  // Foxglove's CompressedImage (JSON), so the cameras show in its image panel.
  'foxglove.CompressedImage': {
    type: 'object',
    properties: {
      timestamp: time,
      frame_id: { type: 'string' },
      data: { type: 'string', contentEncoding: 'base64' },
      format: { type: 'string' },
    },
  },
  'kura.Step': {
    type: 'object',
    description: "A step's reward, discount and terminal flag",
    properties: { ...stepFields, reward: { type: 'number' }, discount: { type: 'number' }, isTerminal: { type: 'boolean' } },
  },
  'kura.Episode': {
    type: 'object',
    description: 'The start of an episode',
    properties: { timestamp: time, episode: { type: 'integer' }, dataset: { type: 'string' }, sourceEpisode: { type: 'string' } },
  },
  'kura.Task': { type: 'object', properties: { timestamp: time, data: { type: 'string' } } },
};

/** `observation.images.top` → `/observation/images/top`. */
export const topicOf = (feature: string) => `/${feature.replace(/\./g, '/')}`;

class Collected implements IWritable {
  chunks: Uint8Array[] = [];
  private written = 0n;
  write(buffer: Uint8Array): Promise<void> {
    this.chunks.push(buffer.slice());
    this.written += BigInt(buffer.byteLength);
    return Promise.resolve();
  }
  position(): bigint {
    return this.written;
  }
  take(): Buffer {
    const out = Buffer.concat(this.chunks);
    this.chunks = [];
    return out;
  }
}

/**
 * A slice as an MCAP file that opens in Foxglove: one JSON channel per feature (`/observation/state`:
 * `kura.Values`; cameras as `foxglove.CompressedImage`), `/kura/step` (reward, terminal),
 * `/kura/episode` at each episode's start and `/kura/task` when the task changes; log times are the
 * steps' timestamps, episodes one after another 1 s apart. The `kura.mapping` metadata record is
 * the mapping that imports the file back into the same rows. lz4 chunks.
 */
export async function* batchesToMcap(params: { schema: Schema; batches: AsyncIterable<RecordBatch> }): AsyncGenerator<Buffer> {
  const out = new Collected();
  const writer = new McapWriter({
    writable: out,
    startChannelId: 1,
    chunkSize: 1024 * 1024,
    compressChunk: (data) => ({ compression: 'lz4', compressedData: lz4.compress(data) }),
  });
  await writer.start({ profile: '', library: 'kura' });
  const schemaIds = new Map<string, number>();
  for (const [name, schema] of Object.entries(schemas))
    schemaIds.set(name, await writer.registerSchema({ name, encoding: 'jsonschema', data: encoder.encode(JSON.stringify(schema)) }));
  const channel = (topic: string, schema: keyof typeof schemas) =>
    writer.registerChannel({ topic, schemaId: schemaIds.get(schema)!, messageEncoding: 'json', metadata: new Map() });

  const features: Array<{ field: Field; feature: Feature; channelId: number; image: boolean }> = [];
  const skipped: string[] = [];
  for (const field of params.schema.fields) {
    const spec = field.metadata.get('kura.feature');
    if (!spec) continue;
    const feature = JSON.parse(spec) as Feature;
    const type = field.type as DataType;
    if (DataType.isBinary(type))
      features.push({ field, feature, channelId: await channel(topicOf(field.name), 'foxglove.CompressedImage'), image: true });
    else if (DataType.isFixedSizeList(type))
      features.push({ field, feature, channelId: await channel(topicOf(field.name), 'kura.Values'), image: false });
    else skipped.push(field.name);
  }
  const stepChannel = await channel('/kura/step', 'kura.Step');
  const episodeChannel = await channel('/kura/episode', 'kura.Episode');
  const taskChannel = await channel('/kura/task', 'kura.Task');
  const mapping: McapMapping = {
    ...(features.length > 0 ? { reference: topicOf(features[0]!.field.name) } : { rateHz: 1 }),
    time: 'log',
    markerTopic: '/kura/episode',
    features: Object.fromEntries(
      features.map(({ field }) => [field.name, { topic: topicOf(field.name), field: 'data', namesField: 'name' }]),
    ),
    task: { topic: '/kura/task', field: 'data' },
  };
  await writer.addMetadata({
    name: MAPPING_METADATA,
    metadata: new Map([
      ['mapping', JSON.stringify(mapping)],
      ...(skipped.length > 0 ? ([['skipped', skipped.join(',')]] as Array<[string, string]>) : []),
    ]),
  });

  const sourceEpisodes = sourceEpisodesOf(params.schema.metadata);
  let episodeKey: string | undefined;
  let offset = CLOCK_START_NS;
  let lastTime = CLOCK_START_NS - EPISODE_GAP_NS;
  let task: string | null = null;
  let sequence = 0;
  for await (const batch of params.batches) {
    const column = (name: string): Vector | null => batch.getChild(name);
    const episodes = column('episode_index')!;
    const steps = column('step_index')!;
    const timestamps = column('timestamp')!;
    const datasets = column('dataset_id');
    const tasks = column('language_instruction');
    const extras = (['reward', 'discount', 'is_terminal'] as const).map((name) => [name, column(name)] as const);
    const featureColumns = features.map((feature) => column(feature.field.name)!);
    for (let row = 0; row < batch.numRows; row++) {
      const episode = Number(episodes.get(row));
      const dataset = datasets ? String(datasets.get(row)) : undefined;
      const seconds = Number(timestamps.get(row));
      const stepTime = BigInt(Math.round(seconds * 1e9));
      const key = `${dataset ?? ''}/${episode}`;
      if (key !== episodeKey) {
        episodeKey = key;
        offset = lastTime + EPISODE_GAP_NS - stepTime;
        task = null;
        // Half the gap before the episode's first step: a reader that orders equal times differently still meets it first.
        const logTime = offset + stepTime - EPISODE_GAP_NS / 2n;
        const sourceEpisode = sourceEpisodes?.[dataset ?? Object.keys(sourceEpisodes)[0] ?? '']?.[String(episode)];
        await add(episodeChannel, logTime, {
          timestamp: stamp(logTime),
          episode,
          ...(dataset ? { dataset } : {}),
          ...(sourceEpisode ? { sourceEpisode } : {}),
        });
      }
      const logTime = offset + stepTime;
      lastTime = logTime;
      const rowTask = tasks ? (tasks.get(row) as string | null) : null;
      if (rowTask !== null && rowTask !== task) {
        task = rowTask;
        await add(taskChannel, logTime, { timestamp: stamp(logTime), data: rowTask });
      }
      const step = Number(steps.get(row));
      for (const [index, { field, feature, channelId, image }] of features.entries()) {
        const value = featureColumns[index]!.get(row) as Uint8Array | { toArray(): ArrayLike<number | bigint> } | null;
        if (value === null) continue;
        if (image)
          await add(channelId, logTime, {
            timestamp: stamp(logTime),
            frame_id: field.name,
            data: Buffer.from(value as Uint8Array).toString('base64'),
            format: feature.encoding === 'png' ? 'png' : 'jpeg',
          });
        else
          await add(channelId, logTime, {
            timestamp: stamp(logTime),
            episode,
            step,
            data: Array.from((value as { toArray(): ArrayLike<number | bigint> }).toArray(), Number),
          });
      }
      const extra: Record<string, unknown> = {};
      for (const [name, values] of extras) {
        const value = values?.get(row) as number | boolean | null | undefined;
        if (value !== null && value !== undefined) extra[name === 'is_terminal' ? 'isTerminal' : name] = value;
      }
      await add(stepChannel, logTime, { timestamp: stamp(logTime), episode, step, ...extra });
    }
    const bytes = out.take();
    if (bytes.length > 0) yield bytes;
  }
  await writer.end();
  yield out.take();

  async function add(channelId: number, logTime: bigint, message: unknown): Promise<void> {
    await writer.addMessage({
      channelId,
      sequence: sequence++,
      logTime,
      publishTime: logTime,
      data: encoder.encode(JSON.stringify(message)),
    });
  }
}

const stamp = (time: bigint) => ({ sec: Number(time / 1_000_000_000n), nsec: Number(time % 1_000_000_000n) });
