import { readFile } from 'node:fs/promises';
import { MAPPING_REQUIRED, type Feature, type FeatureSpec } from '@kura/schema';
import { IngestBudget } from '../budget.js';
import { optionsPath } from '../format.js';
import { imageEncoding, imageShape } from '../image-header.js';
import { episodeBytes } from '../kura-arrow/shard-writer.js';
import { ImportError, type ImportContext, type ImportedEpisode, type Importer, type ImportSource, type SourceFile } from '../importer.js';
import { Aligner, type AlignedFeature } from './align.js';
import { Bag, MCAP_MAGIC, SQLITE_MAGIC, startsWith, type BagMessage } from './bag.js';
import { channelDecoder, headerStamp, numbersOf, valueAt } from './decode.js';
import { inspectBag } from './inspect.js';
import { rawImageAt, rawImageShape, rawImageToPng } from './raw-image.js';
import { defaultMaxAgeS, MAPPING_METADATA, mcapMappingSchema, type MappedFeature, type McapMapping, type McapOptions } from './mapping.js';

/** A mapping shipped inside the upload (an archive of bags), used when the upload's options have none. */
export const MAPPING_FILE = 'kura-mapping.json';
/** When messages are timed by their header stamp, a tick waits this long after it for samples that arrive late. */
const HEADER_LAG_NS = 1_000_000_000n;

const isBagName = (file: SourceFile) => /\.mcap$/i.test(file.path);
const isDb3Name = (file: SourceFile) => /\.db3$/i.test(file.path);

/** Uploads of up to this many files have every file's first bytes looked at; larger ones go by names alone. */
const SNIFFED_FILES = 64;

/** The bags of an upload, in path order: files named `.mcap`, or (small uploads) any file that begins with the MCAP magic. */
async function bagFiles(source: ImportSource): Promise<SourceFile[]> {
  const sniff = source.files.length <= SNIFFED_FILES;
  const bags: SourceFile[] = [];
  for (const file of source.files)
    if (isBagName(file) || (sniff && !isDb3Name(file) && (await startsWith(file, MCAP_MAGIC)))) bags.push(file);
  return bags.sort((a, b) => a.path.localeCompare(b.path));
}

/** A rosbag2 SQLite bag (`.db3`): recognised so that it gets its own refusal, not FORMAT_UNKNOWN. */
async function db3File(source: ImportSource): Promise<SourceFile | undefined> {
  const sniff = source.files.length <= SNIFFED_FILES;
  for (const file of source.files) if (isDb3Name(file) || (sniff && (await startsWith(file, SQLITE_MAGIC)))) return file;
  return undefined;
}

/** How one mapped feature reads a message of its topic. */
interface FeatureReader extends AlignedFeature {
  mapped: MappedFeature;
  spec: Feature;
  read(message: unknown, file: string): Float32Array | Uint8Array;
}

export const mcapImporter: Importer<McapOptions> = {
  format: 'mcap',
  looksFor: 'files beginning with the MCAP magic bytes (ROS 2 bags), or a rosbag2 .db3',

  async detect(source) {
    return (await bagFiles(source)).length > 0 || (await db3File(source)) !== undefined;
  },

  async open(source, context) {
    const bags = await bagFiles(source);
    const db3 = await db3File(source);
    if (bags.length === 0 && db3)
      throw new ImportError(
        'ROSBAG_DB3_UNSUPPORTED',
        `${db3.path} is a rosbag2 SQLite bag; Kura reads MCAP: convert it with \`ros2 bag convert\` (output storage_id: mcap) or \`mcap convert ${db3.path} out.mcap\`, then upload the .mcap`,
        { file: db3.path },
      );
    if (bags.length === 0) throw new ImportError('MCAP_NOT_MCAP', 'the upload holds no MCAP file', {});
    const budget = IngestBudget.of(context, source);
    const mapping = context.options?.mapping ?? (await mappingFile(source)) ?? (await embeddedMapping(bags[0]!, budget));
    if (!mapping) {
      const bag = await Bag.open(bags[0]!, budget);
      try {
        const inspection = await inspectBag(bag, bags.length);
        throw new ImportError(
          MAPPING_REQUIRED,
          `${bags[0]!.path} is a bag of ${inspection.topics.length} topics: say which topic is which feature (options.mapping); the upload's inspection lists them and suggests a mapping`,
          { file: bags[0]!.path },
          { inspection },
        );
      } finally {
        await bag.close();
      }
    }
    const first = await Bag.open(bags[0]!, budget);
    let readers: FeatureReader[];
    try {
      readers = await featureReaders(first, mapping);
    } finally {
      await first.close();
    }
    const features: FeatureSpec = Object.fromEntries(readers.map((reader) => [reader.name, reader.spec]));
    return {
      features,
      featuresFile: bags[0]!.path,
      ...(mapping.rateHz ? { fps: mapping.rateHz } : {}),
      episodes: episodesOf(bags, mapping, readers, context, budget),
    };
  },
};

/** `kura-mapping.json` of an archive, checked as `options.mapping` is. */
async function mappingFile(source: ImportSource): Promise<McapMapping | undefined> {
  const file = source.files.find((candidate) => candidate.path === MAPPING_FILE || candidate.path.endsWith(`/${MAPPING_FILE}`));
  if (!file) return undefined;
  if (file.bytes > 1024 * 1024) throw new ImportError('MAPPING_INVALID', `${file.path} is larger than 1 MiB`, { file: file.path });
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file.absolutePath, 'utf8'));
  } catch (error) {
    throw new ImportError('MAPPING_INVALID', `${file.path} is not JSON: ${(error as Error).message}`, { file: file.path });
  }
  const parsed = mcapMappingSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ImportError('MAPPING_INVALID', `${file.path}: ${issue.message}`, {
      file: file.path,
      field: optionsPath(issue).replace(/^options/, 'mapping'),
    });
  }
  return parsed.data;
}

/** The mapping a bag carries in its `kura.mapping` metadata (Kura's own MCAP export writes it), checked as options are. */
async function embeddedMapping(file: SourceFile, budget: IngestBudget): Promise<McapMapping | undefined> {
  const bag = await Bag.open(file, budget);
  let text: string | undefined;
  try {
    text = (await bag.metadata(MAPPING_METADATA))?.get('mapping');
  } finally {
    await bag.close();
  }
  if (text === undefined) return undefined;
  const parsed = mcapMappingSchema.safeParse(safeJson(text));
  if (!parsed.success)
    throw new ImportError(
      'MAPPING_INVALID',
      `${file.path}: its ${MAPPING_METADATA} metadata is not a mapping: ${parsed.error.issues[0]!.message}`,
      {
        file: file.path,
      },
    );
  return parsed.data;
}

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};

/** An image's bytes: as the message holds them, or base64 text (JSON messages: Foxglove's CompressedImage). */
function imageBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string' && value.length > 0 && /^[A-Za-z0-9+/]+=*$/.test(value.slice(0, 64))) {
    const bytes = Buffer.from(value, 'base64');
    return imageEncoding(bytes) ? bytes : undefined;
  }
  return undefined;
}

/** Checks every mapped topic and field against the first bag and settles each feature's shape from its topic's first message. */
async function featureReaders(bag: Bag, mapping: McapMapping): Promise<FeatureReader[]> {
  const byTopic = new Map([...bag.channels.values()].map((channel) => [channel.topic, channel]));
  const where = (name: string) => ({ file: bag.file.path, field: `mapping.features.${name}` });
  const topicsKnown = () => [...byTopic.keys()].sort().join(', ');
  for (const topic of [mapping.reference, mapping.markerTopic, typeof mapping.task === 'object' ? mapping.task.topic : undefined])
    if (topic !== undefined && !byTopic.has(topic))
      throw new ImportError('MCAP_TOPIC_MISSING', `${bag.file.path} has no topic ${topic} (it has ${topicsKnown()})`, {
        file: bag.file.path,
        field: 'mapping',
      });
  const readers: FeatureReader[] = [];
  for (const [name, mapped] of Object.entries(mapping.features)) {
    const channel = byTopic.get(mapped.topic);
    if (!channel)
      throw new ImportError('MCAP_TOPIC_MISSING', `${bag.file.path} has no topic ${mapped.topic} (it has ${topicsKnown()})`, where(name));
    const decoder = channelDecoder(channel, bag.schemaOf(channel));
    if ('undecodable' in decoder)
      throw new ImportError('MCAP_ENCODING_UNSUPPORTED', `topic ${mapped.topic}: ${decoder.undecodable}`, where(name));
    const first = await bag.first(mapped.topic);
    if (!first) throw new ImportError('MCAP_TOPIC_EMPTY', `topic ${mapped.topic} has no message in ${bag.file.path}`, where(name));
    const message = decodeOrThrow(decoder.decode, first, bag.file.path);
    const maxAgeNs = BigInt(Math.round((mapped.maxAgeS ?? defaultMaxAgeS(mapping)) * 1e9));
    const path = typeof mapped.field === 'string' ? mapped.field : undefined;
    const raw = mapped.names === undefined && !Array.isArray(mapped.field) ? rawImageAt(message, path ?? 'data') : undefined;
    if (raw) {
      const shape = rawImageShape(raw);
      if (typeof shape === 'string') throw new ImportError('MCAP_IMAGE_UNSUPPORTED', `topic ${mapped.topic}: ${shape}`, where(name));
      readers.push(
        imageReader(name, mapped, maxAgeNs, { dtype: 'image', shape, encoding: 'png' }, (decoded, file) =>
          rawFrameOf(decoded, path ?? 'data', mapped.topic, name, file, raw.encoding, shape),
        ),
      );
      continue;
    }
    const bytes = imageBytes(valueAt(message, path ?? 'data')) ?? valueAt(message, path ?? 'data');
    if (
      bytes instanceof Uint8Array &&
      (path === undefined || imageEncoding(bytes)) &&
      mapped.names === undefined &&
      !Array.isArray(mapped.field)
    ) {
      const encoding = imageEncoding(bytes);
      const shape = imageShape(bytes);
      if (!encoding || !shape)
        throw new ImportError(
          'MCAP_IMAGE_UNSUPPORTED',
          `topic ${mapped.topic}: ${path ?? 'data'} is neither a JPEG or PNG image nor the data of a raw Image (width, height, step, encoding beside it)`,
          where(name),
        );
      readers.push(
        imageReader(name, mapped, maxAgeNs, { dtype: 'image', shape, encoding }, (decoded, file) =>
          imageOf(decoded, path ?? 'data', mapped.topic, name, file, encoding, shape),
        ),
      );
      continue;
    }
    if (mapped.field === undefined)
      throw new ImportError(
        'MCAP_FIELD_MISSING',
        `topic ${mapped.topic}: say which field holds ${name} (mapping.features.${name}.field)`,
        where(name),
      );
    const read = (decoded: unknown, file: string) => numericOf(decoded, mapped, name, file);
    const size = read(message, bag.file.path).length;
    readers.push({
      name,
      kind: 'numeric',
      size,
      maxAgeNs,
      mapped,
      spec: { dtype: 'float32', shape: [size], ...(mapped.names ? { names: mapped.names } : {}) },
      read: (decoded, file) => {
        const values = read(decoded, file);
        if (values.length !== size)
          throw new ImportError(
            'MCAP_FIELD_SHAPE',
            `topic ${mapped.topic}: ${name} has ${values.length} values in a message, ${size} in the first`,
            {
              file,
              field: name,
            },
          );
        return values;
      },
    });
  }
  return readers;
}

/** An image feature's reader: one frame per message, its encoded bytes as the step's value. */
function imageReader(name: string, mapped: MappedFeature, maxAgeNs: bigint, spec: Feature, read: FeatureReader['read']): FeatureReader {
  return { name, kind: 'image', size: 0, maxAgeNs, mapped, spec, read };
}

function decodeOrThrow(decode: (data: Uint8Array) => unknown, message: BagMessage, file: string): unknown {
  try {
    return decode(message.data);
  } catch (error) {
    throw new ImportError('MCAP_MESSAGE_INVALID', `a message of ${message.channel.topic} does not decode: ${(error as Error).message}`, {
      file,
      field: message.channel.topic,
    });
  }
}

/** A numeric feature's values from a message: its field(s) joined, or picked by joint name. */
function numericOf(message: unknown, mapped: MappedFeature, name: string, file: string): Float32Array {
  const paths = typeof mapped.field === 'string' ? [mapped.field] : mapped.field!;
  const parts = paths.map((path) => {
    const numbers = numbersOf(valueAt(message, path));
    if (!numbers)
      throw new ImportError('MCAP_FIELD_MISSING', `topic ${mapped.topic} has no numeric field ${path} (for ${name})`, {
        file,
        field: name,
      });
    return numbers;
  });
  if (!mapped.names) {
    const values = new Float32Array(parts.reduce((total, part) => total + part.length, 0));
    let at = 0;
    for (const part of parts) for (let index = 0; index < part.length; index++) values[at++] = part[index]!;
    return values;
  }
  const names = valueAt(message, mapped.namesField);
  if (!Array.isArray(names))
    throw new ImportError('MCAP_FIELD_MISSING', `topic ${mapped.topic} has no names field ${mapped.namesField} (for ${name})`, {
      file,
      field: name,
    });
  const values = parts[0]!;
  return Float32Array.from(mapped.names, (wanted) => {
    const index = names.indexOf(wanted);
    if (index < 0 || index >= values.length)
      throw new ImportError('MCAP_JOINT_MISSING', `topic ${mapped.topic}: a message has no value for "${wanted}" (for ${name})`, {
        file,
        field: name,
      });
    return values[index]!;
  });
}

function imageOf(
  message: unknown,
  path: string,
  topic: string,
  name: string,
  file: string,
  encoding: 'jpeg' | 'png',
  shape: [number, number, number],
): Uint8Array {
  const bytes = imageBytes(valueAt(message, path));
  const header = bytes ? imageShape(bytes) : undefined;
  if (!bytes || imageEncoding(bytes) !== encoding || !header || header.some((size, index) => size !== shape[index]))
    throw new ImportError(
      'MCAP_IMAGE_UNSUPPORTED',
      `topic ${topic}: a frame of ${name} is not a ${shape[1]}×${shape[0]} ${encoding.toUpperCase()} like the first`,
      { file, field: name },
    );
  // A copy: the decoded bytes may be a view of the whole decompressed chunk.
  return bytes.slice();
}

/** A raw frame as PNG; every frame of the topic must have the first one's pixel format and size. */
function rawFrameOf(
  message: unknown,
  path: string,
  topic: string,
  name: string,
  file: string,
  encoding: string,
  shape: [number, number, number],
): Uint8Array {
  const raw = rawImageAt(message, path);
  const found = raw ? rawImageShape(raw) : 'it is not a raw Image';
  if (!raw || typeof found === 'string' || raw.encoding !== encoding || found.some((size, index) => size !== shape[index]))
    throw new ImportError(
      'MCAP_IMAGE_UNSUPPORTED',
      `topic ${topic}: a frame of ${name} is not a ${shape[1]}×${shape[0]} ${encoding} image like the first${typeof found === 'string' ? ` (${found})` : ''}`,
      { file, field: name },
    );
  return rawImageToPng(raw);
}

/** The bags' episodes, file by file: messages of the mapped topics aligned on the mapping's clock. */
async function* episodesOf(
  bags: SourceFile[],
  mapping: McapMapping,
  readers: FeatureReader[],
  context: ImportContext<McapOptions>,
  budget: IngestBudget,
): AsyncGenerator<ImportedEpisode> {
  const featureTopics = new Set(readers.map((reader) => reader.mapped.topic));
  const taskTopic = typeof mapping.task === 'object' ? mapping.task : undefined;
  const topics = [
    ...new Set([...featureTopics, mapping.reference, mapping.markerTopic, taskTopic?.topic].filter((topic): topic is string => !!topic)),
  ];
  const fixedTask = typeof mapping.task === 'string' ? mapping.task : undefined;
  const gapNs = mapping.splitGapS ? BigInt(Math.round(mapping.splitGapS * 1e9)) : undefined;
  const lag = mapping.time === 'header' ? HEADER_LAG_NS : 0n;
  for (const file of bags) {
    const bag = await Bag.open(file, budget);
    try {
      const decoders = new Map<string, (data: Uint8Array) => unknown>();
      for (const channel of bag.channels.values()) {
        if (!topics.includes(channel.topic)) continue;
        const decoder = channelDecoder(channel, bag.schemaOf(channel));
        if ('undecodable' in decoder)
          throw new ImportError('MCAP_ENCODING_UNSUPPORTED', `topic ${channel.topic}: ${decoder.undecodable}`, { file: file.path });
        decoders.set(channel.topic, decoder.decode);
      }
      for (const topic of featureTopics)
        if (!decoders.has(topic)) throw new ImportError('MCAP_TOPIC_MISSING', `${file.path} has no topic ${topic}`, { file: file.path });
      const aligner = new Aligner(readers, mapping.rateHz);
      let episodeIndex = 0;
      let lastFeatureTime: bigint | undefined;
      let latest = 0n;
      const finish = function* () {
        aligner.advance(lastFeatureTime ?? latest);
        const id = `${file.path}#${episodeIndex}`;
        const { episode, report } = aligner.finish({ sourceId: id, sourceEpisode: id, file: file.path }, fixedTask);
        const dropped = Object.entries(report.features).filter(([, feature]) => feature.ticksDropped > 0);
        if (episode && dropped.length > 0)
          context.warn({
            code: 'MCAP_TICKS_DROPPED',
            message: `${id}: ${dropped.map(([name, feature]) => `${feature.ticksDropped} ticks dropped for a stale ${name}`).join(', ')} (the episode's metadata has its sync report)`,
            location: { file: file.path, episode: id },
          });
        if (episode) {
          budget.settleEpisode({ bytes: episodeBytes(episode), steps: episode.length }, { file: file.path, episode: id });
          episodeIndex++;
          yield episode;
        }
        lastFeatureTime = undefined;
      };
      for await (const message of bag.messages(topics)) {
        const decoded = decodeOrThrow(decoders.get(message.channel.topic)!, message, file.path);
        const time = mapping.time === 'header' ? (headerStamp(decoded) ?? message.logTime) : message.logTime;
        if (message.channel.topic === mapping.markerTopic) {
          yield* finish();
          continue;
        }
        if (taskTopic && message.channel.topic === taskTopic.topic) {
          const task = valueAt(decoded, taskTopic.field);
          if (typeof task === 'string' && task !== '') aligner.setTask(task);
        }
        if (message.channel.topic === mapping.reference) aligner.tick(time);
        if (!featureTopics.has(message.channel.topic)) continue;
        if (gapNs !== undefined && lastFeatureTime !== undefined && time - lastFeatureTime > gapNs) yield* finish();
        for (const [index, reader] of readers.entries())
          if (reader.mapped.topic === message.channel.topic) aligner.add(index, { time, value: reader.read(decoded, file.path) });
        if (lastFeatureTime === undefined || time > lastFeatureTime) lastFeatureTime = time;
        if (time > latest) latest = time;
        aligner.advance(latest - lag - 1n);
      }
      yield* finish();
      if (bag.truncated)
        context.warn({
          code: 'MCAP_TRUNCATED',
          message: `${file.path} ends before its MCAP end: the episodes above hold every message before the cut (${bag.unindexedBecause ?? 'no summary'})`,
          location: { file: file.path },
        });
    } finally {
      await bag.close();
    }
  }
}
