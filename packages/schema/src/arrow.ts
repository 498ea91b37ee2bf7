import {
  Binary,
  Bool,
  Dictionary,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  Int64,
  Schema,
  Struct,
  Utf8,
  type DataType,
} from 'apache-arrow';
import { isNumericDtype, numericDtypeTable } from './dtypes.js';
import type { Feature, FeatureSpec } from './features.js';

/** Columns every Kura shard has, before the feature columns (DESIGN.md, "Unified episode format"). */
export const stepColumns = [
  'episode_index',
  'step_index',
  'timestamp',
  'is_first',
  'is_last',
  'is_terminal',
  'reward',
  'discount',
  'language_instruction',
] as const;

/** Number of values per step of a numeric feature (1 for a scalar). */
export function valuesPerStep(feature: Pick<Feature, 'shape'>): number {
  return feature.shape.reduce((product, dimension) => product * dimension, 1);
}

/** The Arrow type of one numeric dtype. */
export function arrowNumericType(dtype: Feature['dtype']): DataType {
  if (!isNumericDtype(dtype)) throw new Error(`${dtype} is not a numeric dtype`);
  return numericDtypeTable[dtype].arrowType();
}

/** The Arrow type of a video frame reference: the blob of the video and the frame's time in it. */
export const videoFrameType = () => new Struct([new Field('blob', new Utf8(), false), new Field('timestamp_s', new Float64(), false)]);

/** The Arrow field of one feature; its spec (shape, names, encoding) rides along as field metadata. */
export function featureField(name: string, feature: Feature): Field {
  const metadata = new Map([['kura.feature', JSON.stringify(feature)]]);
  const dtype = feature.dtype;
  if (isNumericDtype(dtype))
    return new Field(name, new FixedSizeList(valuesPerStep(feature), new Field('item', arrowNumericType(dtype), false)), false, metadata);
  switch (dtype) {
    case 'image':
      return new Field(name, new Binary(), false, metadata);
    case 'video':
      return new Field(name, videoFrameType(), false, metadata);
    case 'string':
      return new Field(name, new Utf8(), true, metadata);
  }
}

/**
 * The Arrow schema of a dataset's shards: the step columns, then one column per feature in name
 * order (so two uploads with the same spec produce the same schema). The feature spec is kept in
 * the schema metadata under `kura.features`.
 */
export function kuraArrowSchema(features: FeatureSpec): Schema {
  const names = Object.keys(features).sort();
  return new Schema(
    [
      new Field('episode_index', new Int64(), false),
      new Field('step_index', new Int32(), false),
      new Field('timestamp', new Float64(), false),
      new Field('is_first', new Bool(), false),
      new Field('is_last', new Bool(), false),
      new Field('is_terminal', new Bool(), false),
      new Field('reward', new Float32(), true),
      new Field('discount', new Float32(), true),
      // A fixed dictionary id: every shard of a dataset then has the same schema bytes, so a slice can
      // forward record batches from several shards under one stream schema.
      new Field('language_instruction', new Dictionary(new Utf8(), new Int32(), 0), true),
      ...names.map((name) => featureField(name, features[name]!)),
    ],
    new Map([['kura.features', JSON.stringify(Object.fromEntries(names.map((name) => [name, features[name]])))]]),
  );
}

/**
 * Schema metadata key of a slice's source episode ids (Arrow IPC and Parquet downloads): JSON
 * `{ "<datasetId>": { "<episode_index>": "<source episode id>" } }`, every episode of the slice.
 */
export const SOURCE_EPISODES_METADATA = 'kura.source_episodes';

/** Source episode ids by dataset, then by episode index. */
export type SourceEpisodes = Record<string, Record<string, string>>;

/** The source episode ids a schema's metadata carries (`SOURCE_EPISODES_METADATA`), if any. */
export function sourceEpisodesOf(metadata: Map<string, string>): SourceEpisodes | undefined {
  const text = metadata.get(SOURCE_EPISODES_METADATA);
  return text === undefined ? undefined : (JSON.parse(text) as SourceEpisodes);
}
