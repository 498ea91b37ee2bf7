import { z } from 'zod';
import { featureNamePattern } from './features.js';

// ROS 2 bags (MCAP): the mapping an upload's options give (which topic is which feature, the step
// clock, episodes and task) and the inspection of a bag that came without one (docs/mcap.md).

const topic = z.string().min(1).max(500);
const fieldPath = z
  .string()
  .min(1)
  .max(500)
  .regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/, 'a dotted field path like "position" or "twist.linear.x"');

/** How one Kura feature is read from a topic. */
export const mappedFeatureSchema = z.strictObject({
  topic,
  /**
   * The field(s) holding the values: one path (`position`), or several whose values are joined
   * (`["linear.x", "angular.z"]`). Images: the encoded bytes of a CompressedImage, or the pixels of a
   * raw Image (`data`, the default; a raw image is stored as PNG).
   */
  field: z.union([fieldPath, z.array(fieldPath).min(1).max(64)]).optional(),
  /** Joint order: pick the values by these names out of `namesField` (JointState's `name`), whatever order each message has. */
  names: z.array(z.string().min(1).max(200)).min(1).max(4096).optional(),
  namesField: fieldPath.default('name'),
  /** A sample older than this at a tick drops the tick (counted in the episode's sync report). */
  maxAgeS: z.number().positive().max(3600).optional(),
});
export type MappedFeature = z.infer<typeof mappedFeatureSchema>;

/**
 * `options.mapping` of an MCAP upload (docs/mcap.md): the step clock (`rateHz`, or a `reference`
 * topic whose messages are the ticks), the time of a message (`log` time, or its `header` stamp),
 * each feature's topic and fields, and how the bag is cut into episodes and given a task.
 */
export const mcapMappingSchema = z
  .strictObject({
    rateHz: z.number().positive().max(10_000).optional(),
    reference: topic.optional(),
    time: z.enum(['log', 'header']).default('log'),
    features: z
      .record(z.string().regex(featureNamePattern, 'a Kura feature name like "observation.state"'), mappedFeatureSchema)
      .refine((features) => Object.keys(features).length > 0 && Object.keys(features).length <= 64, 'one to 64 features'),
    /** A new episode where no mapped topic has a message for longer than this. */
    splitGapS: z.number().positive().max(86_400).optional(),
    /** A new episode at each message of this topic. */
    markerTopic: topic.optional(),
    /** The task of every step, or a topic of strings (`std_msgs/String`: field `data`) whose latest message is the step's task. */
    task: z.union([z.string().min(1).max(2000), z.strictObject({ topic, field: fieldPath.default('data') })]).optional(),
  })
  .refine((mapping) => (mapping.rateHz === undefined) !== (mapping.reference === undefined), {
    message: 'give the step clock: rateHz or a reference topic, one of the two',
    path: ['rateHz'],
  });
export type McapMapping = z.infer<typeof mcapMappingSchema>;

/** The options of an MCAP upload: without `mapping` the upload ends `needs_mapping` with an inspection of the bag. */
export const mcapOptionsSchema = z.strictObject({ mapping: mcapMappingSchema.optional() });
export type McapOptions = z.infer<typeof mcapOptionsSchema>;

/** What a field of a topic's first message holds, as the inspection shows it. */
export type InspectedField =
  | { path: string; kind: 'numeric'; size: number }
  | { path: string; kind: 'image'; encoding: 'jpeg' | 'png' }
  /** A raw `sensor_msgs/Image` (its `data`): imported as PNG when its pixel format is one Kura converts (docs/mcap.md). */
  | { path: string; kind: 'image'; encoding: 'raw'; pixelFormat: string; convertible: boolean }
  | { path: string; kind: 'names'; names: string[] }
  | { path: string; kind: 'text' };

export interface InspectedTopic {
  topic: string;
  schemaName: string | null;
  schemaEncoding: string | null;
  messageEncoding: string;
  messageCount: number;
  /** Messages per second over the topic's own first to last message; null with fewer than two. */
  rateHz: number | null;
  /** Log times of its first and last message, seconds since the epoch. */
  startS: number | null;
  endS: number | null;
  /** Null when Kura decodes its messages; else why not (the topic cannot be mapped). */
  undecodable: string | null;
  fields: InspectedField[];
}

/** `inspection` of an upload that ended `needs_mapping`. */
export interface McapInspection {
  file: string;
  files: number;
  /** Null when the bag's summary was read; else why it was streamed (cut short, no summary). */
  unindexedBecause: string | null;
  topics: InspectedTopic[];
  /** A mapping that can be sent back unchanged as `options.mapping`, or null when nothing looks like robot data. */
  suggestedMapping: McapMapping | null;
}

/** A field as the CLI and the viewer list it: `position[6]`, `data (jpeg image)`, `data (raw bgr8 image)`, `name (names)`. */
export function inspectedFieldLabel(field: InspectedField): string {
  if (field.kind === 'numeric') return `${field.path}[${field.size}]`;
  if (field.kind !== 'image') return `${field.path} (${field.kind})`;
  if (field.encoding !== 'raw') return `${field.path} (${field.encoding} image)`;
  return `${field.path} (raw ${field.pixelFormat} image${field.convertible ? '' : ', a pixel format Kura does not convert'})`;
}
