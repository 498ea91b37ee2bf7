import { imageEncoding } from '../image-header.js';
import type { Bag } from './bag.js';
import { channelDecoder, numbersOf } from './decode.js';
import { rawImageAt, rawImageShape } from './raw-image.js';
import type { InspectedField, InspectedTopic, MappedFeature, McapInspection, McapMapping } from '@kura/schema';

/** Fields listed per topic, at most; deeper or further ones are not shown (they can still be mapped by path). */
const MAX_FIELDS = 64;
const MAX_DEPTH = 5;
const NAMES_SHOWN = 256;
const RAW_IMAGE_KEYS = new Set(['height', 'width', 'step', 'encoding', 'is_bigendian', 'data']);

/** The numeric, image, names and text fields of a decoded message, by dotted path. */
export function fieldsOf(message: unknown): InspectedField[] {
  const fields: InspectedField[] = [];
  const walk = (value: unknown, path: string, depth: number) => {
    if (fields.length >= MAX_FIELDS || depth > MAX_DEPTH) return;
    if (value instanceof Uint8Array && path !== '') {
      const encoding = imageEncoding(value);
      if (encoding) {
        fields.push({ path, kind: 'image', encoding });
        return;
      }
    }
    const numbers = numbersOf(value);
    if (numbers && path !== '') {
      if (numbers.length > 0) fields.push({ path, kind: 'numeric', size: numbers.length });
      return;
    }
    if (typeof value === 'string' && path !== '') {
      fields.push({ path, kind: 'text' });
      return;
    }
    const raw = value !== null && typeof value === 'object' ? rawImageAt(value, 'data') : undefined;
    if (raw) {
      // The image's own fields (size, step, pixel format) describe `data`: listed as the image, not as numbers.
      for (const [key, child] of Object.entries(value as object))
        if (!RAW_IMAGE_KEYS.has(key)) walk(child, path === '' ? key : `${path}.${key}`, depth + 1);
      const convertible = typeof rawImageShape(raw) !== 'string';
      fields.push({ path: path === '' ? 'data' : `${path}.data`, kind: 'image', encoding: 'raw', pixelFormat: raw.encoding, convertible });
      return;
    }
    if (Array.isArray(value)) {
      if (value.length > 0 && value.every((item) => typeof item === 'string'))
        fields.push({ path, kind: 'names', names: value.slice(0, NAMES_SHOWN) });
      return;
    }
    if (value !== null && typeof value === 'object')
      for (const [key, child] of Object.entries(value)) walk(child, path === '' ? key : `${path}.${key}`, depth + 1);
  };
  walk(message, '', 0);
  return fields;
}

/** Every topic of a bag, with counts, rates and the fields of its first message, and a suggested mapping. */
export async function inspectBag(bag: Bag, files: number): Promise<McapInspection> {
  const times = new Map<number, { first: bigint; last: bigint; count: number }>();
  for await (const message of bag.messages(undefined)) {
    const seen = times.get(message.channel.id);
    if (!seen) times.set(message.channel.id, { first: message.logTime, last: message.logTime, count: 1 });
    else {
      if (message.logTime < seen.first) seen.first = message.logTime;
      if (message.logTime > seen.last) seen.last = message.logTime;
      seen.count++;
    }
  }
  const topics: InspectedTopic[] = [];
  for (const channel of [...bag.channels.values()].sort((a, b) => a.topic.localeCompare(b.topic))) {
    const schema = bag.schemaOf(channel);
    const decoder = channelDecoder(channel, schema);
    const seen = times.get(channel.id);
    let fields: InspectedField[] = [];
    let undecodable = 'undecodable' in decoder ? decoder.undecodable : null;
    const first = seen && !undecodable ? await bag.first(channel.topic) : undefined;
    if (first && 'decode' in decoder) {
      try {
        fields = fieldsOf(decoder.decode(first.data));
      } catch (error) {
        undecodable = `its first message does not decode: ${(error as Error).message}`;
      }
    }
    const seconds = (time: bigint) => Number(time) / 1e9;
    topics.push({
      topic: channel.topic,
      schemaName: schema?.name ?? null,
      schemaEncoding: schema?.encoding ?? null,
      messageEncoding: channel.messageEncoding,
      messageCount: seen?.count ?? 0,
      rateHz: seen && seen.count > 1 && seen.last > seen.first ? round((seen.count - 1) / seconds(seen.last - seen.first)) : null,
      startS: seen ? seconds(seen.first) : null,
      endS: seen ? seconds(seen.last) : null,
      undecodable,
      fields,
    });
  }
  return {
    file: bag.file.path,
    files,
    unindexedBecause: bag.unindexedBecause ?? null,
    topics,
    suggestedMapping: suggestMapping(topics),
  };
}

const round = (value: number) => Math.round(value * 1000) / 1000;

/**
 * A first mapping from what the topics hold: a JointState's positions (by joint name) as the state,
 * a command topic's numbers as the action, each image topic (compressed, or raw in a pixel format Kura
 * converts) as a camera, a string topic
 * named like a task as the task; the clock at the state's rate.
 */
export function suggestMapping(topics: InspectedTopic[]): McapMapping | null {
  // ROS's own plumbing (logs, parameters, transforms' bookkeeping, service events) is never robot data.
  const plumbing = /^\/(rosout|rosout_agg|parameter_events|events\/)|\/_service_event$/;
  const usable = topics.filter((topic) => topic.undecodable === null && topic.messageCount > 0 && !plumbing.test(topic.topic));
  const numeric = (topic: InspectedTopic) => topic.fields.filter((field) => field.kind === 'numeric');
  const features: Record<string, MappedFeature> = {};
  const rates: number[] = [];
  const use = (name: string, topic: InspectedTopic, feature: Omit<MappedFeature, 'topic' | 'namesField'>) => {
    features[name] = { topic: topic.topic, namesField: 'name', ...feature };
    if (topic.rateHz) rates.push(topic.rateHz);
  };

  const jointStates = usable.find(
    (topic) => /JointState$/.test(topic.schemaName ?? '') && numeric(topic).some((field) => field.path === 'position'),
  );
  const actionLike = usable.find(
    (topic) => topic !== jointStates && /cmd|command|action|target|goal/i.test(topic.topic) && numeric(topic).length > 0,
  );
  const stateTopic =
    jointStates ??
    usable.find((topic) => topic !== actionLike && numeric(topic).length > 0 && !topic.fields.some((field) => field.kind === 'image'));
  if (stateTopic) use('observation.state', stateTopic, numericFeature(stateTopic));
  if (actionLike) use('action', actionLike, numericFeature(actionLike));
  const taken = new Set<string>();
  for (const topic of usable) {
    const image = topic.fields.find((field) => field.kind === 'image' && (field.encoding !== 'raw' || field.convertible));
    if (!image) continue;
    const base = cameraName(topic.topic);
    let name = `observation.images.${base}`;
    for (let index = 2; taken.has(name); index++) name = `observation.images.${base}_${index}`;
    taken.add(name);
    use(name, topic, { field: image.path });
  }
  if (Object.keys(features).length === 0) return null;
  const taskTopic = usable.find(
    (topic) => /task|instruction|language/i.test(topic.topic) && topic.fields.some((field) => field.kind === 'text'),
  );
  const stateRate = stateTopic?.rateHz ?? Math.max(...rates, 0);
  return {
    ...(stateRate > 0 ? { rateHz: Math.max(1, Math.round(stateRate)) } : { reference: Object.values(features)[0]!.topic }),
    time: 'log',
    features,
    ...(taskTopic ? { task: { topic: taskTopic.topic, field: taskTopic.fields.find((field) => field.kind === 'text')!.path } } : {}),
  };
}

/** The numeric fields of a topic as a mapped feature: positions by joint name for a JointState, else every numeric field in order. */
function numericFeature(topic: InspectedTopic): Omit<MappedFeature, 'topic' | 'namesField'> {
  const names = topic.fields.find((field) => field.kind === 'names' && field.path === 'name');
  const position = topic.fields.find((field) => field.kind === 'numeric' && field.path === 'position');
  if (position && names?.kind === 'names' && names.names.length > 0) return { field: 'position', names: names.names };
  const paths = topic.fields
    .filter((field) => field.kind === 'numeric' && !/(^|\.)(header|stamp)(\.|$)/.test(field.path))
    .map((field) => field.path);
  return { field: paths.length === 1 ? paths[0]! : paths.slice(0, 64) };
}

/** `front` from `/camera/front/image_raw/compressed`: the last segment that is not a generic image word. */
function cameraName(topic: string): string {
  const generic = new Set(['image_raw', 'compressed', 'image', 'color', 'rgb', 'image_color', 'image_rect', 'camera']);
  const segments = topic.split('/').filter(Boolean);
  const named = [...segments].reverse().find((segment) => !generic.has(segment)) ?? segments[0] ?? 'camera';
  return named.replace(/[^A-Za-z0-9_]/g, '_').replace(/^[^A-Za-z]+/, '') || 'camera';
}
