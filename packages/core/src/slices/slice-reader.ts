import { Injectable } from '@nestjs/common';
import {
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  makeData,
  vectorFromArray,
  type Data,
  type DataType,
  type Dictionary,
  type Field,
  type Int32,
  type Vector,
} from 'apache-arrow';
import {
  SOURCE_EPISODES_METADATA,
  episodeIndicesOf,
  formatEpisodeRanges,
  parseEpisodeRanges,
  type FeatureSpec,
  type SliceSteps,
  type SourceEpisodes,
} from '@kura/schema';
import { takeRows } from '@kura/formats';
import { EpisodesRepository, type EpisodeRecord } from '../datasets/episodes/episodes.repository.js';
import { ARROW_STREAM_END, ShardReader, encodeSchemaMessage, episodeSpans, type ShardPrelude } from '../datasets/episodes/shard-reader.js';
import { DATASET_ID_COLUMN, resolveSliceColumns, sliceArrowSchema } from './slice-columns.js';
import type { SliceRecord, SliceSourceRecord } from './slices.repository.js';

/** One episode of a slice, with the source it comes from. */
export interface SliceEpisode {
  source: SliceSourceRecord;
  episode: EpisodeRecord;
}

/** A slice whose stored record batches can be sent as they are: their bytes, in order. */
export interface ForwardPlan {
  kind: 'forward';
  /** Exact size of the IPC stream. */
  bytes: number;
  chunks: () => AsyncGenerator<Buffer>;
}

/** A slice whose batches are decoded, cut to its columns and steps, and encoded again. */
export interface DecodePlan {
  kind: 'decode';
  schema: Schema;
  /** Each episode's output batches, in slice order; episodes left without rows are skipped. */
  episodes: () => AsyncGenerator<{ item: SliceEpisode; batches: RecordBatch[] }>;
}

const INDEX_CHUNK = 1000;
/** Slices of up to this many episodes keep their episode rows in memory while they are read. */
const KEPT_EPISODE_LIST = 4096;
/** Plans of slices of up to this many episodes are kept, up to KEPT_PLANS of them (≤ 64k episode rows in memory). */
const KEPT_PLAN_EPISODES = 64;
const KEPT_PLANS = 1024;
/** Largest run of adjacent episodes read with one ranged read. */
const RUN_BYTES = 16 * 1024 * 1024;
/** Episodes left out between two of a span (held out, filtered) are read over when they take at most this many bytes. */
const SPAN_GAP_BYTES = 1024 * 1024;

/**
 * Reads a slice's rows from the shards: only the chosen episodes' byte ranges. When the slice takes
 * every column and step of one dataset, the stored batches are forwarded into an IPC stream without
 * decoding (each shard's task dictionary goes in as a replacement before its batches); otherwise
 * they are decoded and rebuilt with one task dictionary for the whole slice.
 */
@Injectable()
export class SliceReader {
  private readonly plans = new Map<string, Promise<ForwardPlan | DecodePlan>>();

  constructor(
    private readonly episodes: EpisodesRepository,
    private readonly shards: ShardReader,
  ) {}

  /** The slice's episodes in order: sources in order, episodes ascending within each. */
  async *sliceEpisodes(slice: SliceRecord): AsyncGenerator<SliceEpisode> {
    for (const source of slice.sources) {
      if (source.episodes === '') continue;
      const ranges = parseEpisodeRanges(source.episodes);
      if ('error' in ranges) throw new Error(`slice ${slice.id} stores invalid episode ranges: ${ranges.error}`);
      let chunk: number[] = [];
      const fetch = async function* (reader: SliceReader, indices: number[]) {
        const rows = await reader.episodes.findByIndices(source.datasetId, indices);
        if (rows.length !== indices.length) throw new Error(`slice ${slice.id}: episodes of ${source.datasetId} are missing`);
        for (const episode of rows) yield { source, episode };
      };
      for (const index of episodeIndicesOf(ranges)) {
        chunk.push(index);
        if (chunk.length === INDEX_CHUNK) {
          yield* fetch(this, chunk);
          chunk = [];
        }
      }
      if (chunk.length > 0) yield* fetch(this, chunk);
    }
  }

  /**
   * How to read the slice; `forward: false` always decodes (for formats other than the IPC stream).
   * Plans of small slices are kept: a slice and its published episodes never change, and planning
   * (a query for the episode rows, the schema message with their source ids) cost about as much as
   * sending a short episode. Who may read the slice is checked before, on every request.
   */
  plan(slice: SliceRecord, options: { forward: boolean }): Promise<ForwardPlan | DecodePlan> {
    if (slice.episodeCount > KEPT_PLAN_EPISODES) return this.makePlan(slice, options);
    const key = `${slice.id}:${options.forward}`;
    let plan = this.plans.get(key);
    if (plan) {
      // Refresh its place: the map's order is the eviction order.
      this.plans.delete(key);
      this.plans.set(key, plan);
      return plan;
    }
    plan = this.makePlan(slice, options);
    plan.catch(() => this.plans.delete(key));
    this.plans.set(key, plan);
    if (this.plans.size > KEPT_PLANS) this.plans.delete(this.plans.keys().next().value!);
    return plan;
  }

  /** Plans a small slice's IPC stream in the background, so its first download finds the plan kept. */
  planAhead(slice: SliceRecord): void {
    if (slice.episodeCount <= KEPT_PLAN_EPISODES) this.plan(slice, { forward: true }).catch(() => undefined);
  }

  private async makePlan(slice: SliceRecord, options: { forward: boolean }): Promise<ForwardPlan | DecodePlan> {
    const episodes = await this.episodeSource(slice);
    const shardKeys = new Set<string>();
    let episodeBytes = 0;
    // Every output says which source episode each episode_index is (schema metadata: a few bytes per episode).
    const sourceEpisodes: SourceEpisodes = {};
    for await (const { source, episode } of episodes()) {
      shardKeys.add(episode.shardKey);
      episodeBytes += Number(episode.byteLength);
      (sourceEpisodes[source.datasetId] ??= {})[episode.episodeIndex] = episode.sourceEpisode;
    }
    const preludes = new Map<string, ShardPrelude>();
    for (const key of shardKeys) preludes.set(key, await this.shards.prelude(key));
    const multiSource = slice.sources.length > 1;
    const sourceEpisodesEntry: [string, string] = [SOURCE_EPISODES_METADATA, JSON.stringify(sourceEpisodes)];
    const sliceSchema = sliceArrowSchema(slice.columns, multiSource);
    const schema = new Schema(sliceSchema.fields, new Map([...sliceSchema.metadata, sourceEpisodesEntry]));

    if (options.forward && this.canForward(slice, schema, [...preludes.values()])) {
      const [first] = [...preludes.values()];
      // The stored schema, with the slice's source episodes added to its metadata.
      const schemaMessage = encodeSchemaMessage(
        new Schema(first!.schema.fields, new Map([...first!.schema.metadata, sourceEpisodesEntry])),
      );
      let bytes = schemaMessage.length + episodeBytes + ARROW_STREAM_END.length;
      // Each run of episodes from one shard starts with that shard's dictionary.
      let previousShard: string | undefined;
      for await (const { episode } of episodes()) {
        if (episode.shardKey !== previousShard) bytes += preludes.get(episode.shardKey)!.dictionaryMessages.length;
        previousShard = episode.shardKey;
      }
      return { kind: 'forward', bytes, chunks: () => this.forward(episodes, preludes, schemaMessage) };
    }

    // One dictionary for the slice: the sorted union of the shards' tasks.
    const tasks = [...new Set([...preludes.values()].flatMap((prelude) => prelude.tasks))].sort();
    const taskIndex = new Map(tasks.map((task, index) => [task, index]));
    const taskDictionary = vectorFromArray(tasks, new Utf8());
    const remaps = new Map([...preludes].map(([key, prelude]) => [key, Int32Array.from(prelude.tasks, (task) => taskIndex.get(task)!)]));
    const datasetDictionary = vectorFromArray(
      slice.sources.map((source) => source.datasetId),
      new Utf8(),
    );
    const sourceNames = new Map(slice.columns.map((column) => [column.name, column.from]));
    const shards = this.shards;
    return {
      kind: 'decode',
      schema,
      async *episodes() {
        // Episodes near each other in a shard are read together: one ranged read per span, not per episode.
        for await (const span of episodeSpans(episodes(), (item) => item.episode, { spanLimit: RUN_BYTES, gapLimit: SPAN_GAP_BYTES })) {
          const decoded = await shards.decodeSpan(span.map((item) => item.episode));
          for (const [position, item] of span.entries()) {
            const batches: RecordBatch[] = [];
            for (const batch of decoded[position]!) {
              const output = cutBatch({
                batch,
                schema,
                item,
                steps: slice.steps,
                multiSource,
                sourceNames,
                tasks: { indices: remaps.get(item.episode.shardKey)!, dictionary: taskDictionary },
                datasetDictionary,
              });
              if (output) batches.push(output);
            }
            if (batches.length > 0) yield { item, batches };
          }
        }
      },
    };
  }

  private canForward(slice: SliceRecord, schema: Schema, preludes: ShardPrelude[]): boolean {
    if (slice.sources.length !== 1 || slice.steps !== null || preludes.length === 0) return false;
    const [first] = preludes;
    const stored = first!.schema.fields.map((field) => field.name);
    const wanted = schema.fields.map((field) => field.name);
    const renamed = slice.columns.some((column) => Object.values(column.from).some((name) => name !== column.name));
    return (
      !renamed &&
      stored.length === wanted.length &&
      stored.every((name, index) => name === wanted[index]) &&
      preludes.every((prelude) => prelude.schemaMessage.equals(first!.schemaMessage))
    );
  }

  /**
   * The slice's episodes, replayable: small slices are listed once and kept (planning walks them
   * twice and reading once more), large ones are queried again on each walk so memory stays flat.
   */
  private async episodeSource(slice: SliceRecord): Promise<() => AsyncIterable<SliceEpisode>> {
    if (slice.episodeCount > KEPT_EPISODE_LIST) return () => this.sliceEpisodes(slice);
    const list: SliceEpisode[] = [];
    for await (const item of this.sliceEpisodes(slice)) list.push(item);
    return () => toAsync(list);
  }

  /**
   * The stored bytes, in IPC stream order. Episodes next to each other in a shard are read as one
   * range (up to RUN_BYTES), streamed through and checked episode by episode on the way.
   */
  private async *forward(
    episodes: () => AsyncIterable<SliceEpisode>,
    preludes: Map<string, ShardPrelude>,
    schemaMessage: Buffer,
  ): AsyncGenerator<Buffer> {
    let previousShard: string | undefined;
    // Gapless spans: their bytes go out as they are.
    for await (const span of episodeSpans(episodes(), (item) => item.episode, { spanLimit: RUN_BYTES, gapLimit: 0 })) {
      const shardKey = span[0]!.episode.shardKey;
      if (previousShard === undefined) yield schemaMessage;
      if (shardKey !== previousShard) yield preludes.get(shardKey)!.dictionaryMessages;
      previousShard = shardKey;
      yield* this.shards.streamEpisodes(span.map((item) => item.episode));
    }
    yield ARROW_STREAM_END;
  }
}

async function* toAsync<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

/** Rows of a batch kept by `steps`: step ≥ start, < stop, and (step − start) a multiple of stride. */
function selectedRows(stepIndex: Int32Array, rowCount: number, steps: SliceSteps | null): Int32Array {
  // Value buffers may be padded past the last row, so the batch's row count bounds the loop.
  if (!steps) {
    const all = new Int32Array(rowCount);
    for (let row = 0; row < rowCount; row++) all[row] = row;
    return all;
  }
  const rows: number[] = [];
  for (let row = 0; row < rowCount; row++) {
    const step = stepIndex[row]!;
    if (step >= steps.start && (steps.stop === null || step < steps.stop) && (step - steps.start) % steps.stride === 0) rows.push(row);
  }
  return Int32Array.from(rows);
}

function cutBatch(params: {
  batch: RecordBatch;
  schema: Schema;
  item: SliceEpisode;
  steps: SliceSteps | null;
  multiSource: boolean;
  /** Output column → (datasetId → source column). */
  sourceNames: Map<string, Record<string, string>>;
  // The same dictionary vectors for every batch, so that the IPC writer writes each once.
  tasks: { indices: Int32Array; dictionary: Vector<Utf8> };
  datasetDictionary: Vector<Utf8>;
}): RecordBatch | undefined {
  const { batch, schema, item } = params;
  const stepIndex = (batch.getChild('step_index')!.data[0] as Data).values as Int32Array;
  const rows = selectedRows(stepIndex, batch.numRows, params.steps);
  if (rows.length === 0) return undefined;
  const children: Data[] = [];
  for (const field of schema.fields as Array<Field<DataType>>) {
    if (field.name === DATASET_ID_COLUMN) {
      const indices = new Int32Array(rows.length).fill(item.source.position);
      children.push(
        makeData({ type: field.type as Dictionary<Utf8, Int32>, length: rows.length, data: indices, dictionary: params.datasetDictionary }),
      );
      continue;
    }
    const sourceName = params.sourceNames.get(field.name)?.[item.source.datasetId] ?? field.name;
    const data = batch.getChild(sourceName)?.data[0] as Data | undefined;
    if (!data) throw new Error(`episode ${item.episode.episodeIndex} of ${item.source.datasetId} has no column "${sourceName}"`);
    const remap =
      field.name === 'language_instruction' ? { indices: params.tasks.indices, dictionary: params.tasks.dictionary } : undefined;
    // Output fields carry the slice's dictionary ids and names; the data is the source's rows.
    // Every row kept: the decoded column serves as it is (only the task ids need the slice's dictionary).
    const taken = params.steps === null && !remap ? data : takeRows(data, rows, remap);
    children.push(taken.clone(field.type));
  }
  const struct = makeData({ type: new Struct(schema.fields), length: rows.length, children });
  return new RecordBatch(schema, struct);
}

/**
 * An unsaved slice of whole episodes of one dataset version (for reading them inside Kura: statistics,
 * evaluations), with every column or the ones named.
 */
export function wholeEpisodesOf(params: {
  datasetId: string;
  version: number;
  features: FeatureSpec;
  episodes: number[];
  columns?: string[];
}): SliceRecord {
  return {
    id: `${params.datasetId}@${params.version}`,
    ownerKeyId: null,
    columns: resolveSliceColumns([{ datasetId: params.datasetId, features: params.features }], params.columns),
    steps: null,
    request: null,
    episodeCount: params.episodes.length,
    stepCount: 0n,
    withheldHeldOut: 0,
    withheldGrant: 0,
    createdAt: new Date(0),
    sources: [
      {
        position: 0,
        datasetId: params.datasetId,
        version: params.version,
        weight: 1,
        episodes: formatEpisodeRanges(params.episodes),
        episodeCount: params.episodes.length,
        stepCount: 0n,
        sampleOnly: false,
        includesHeldOut: false,
      },
    ],
  };
}
