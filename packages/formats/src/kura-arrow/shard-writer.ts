import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { writeFully } from '../file-writes.js';
import {
  Binary,
  Bool,
  Dictionary,
  Float32,
  Float64,
  Int32,
  Int64,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchReader,
  Struct,
  Utf8,
  makeData,
  vectorFromArray,
  type Data,
  type DataType,
  type FixedSizeList,
  type Field,
  type Schema,
  type Vector,
} from 'apache-arrow';
import { kuraArrowSchema, valuesPerStep, type Feature, type FeatureSpec } from '@kura/schema';
import type { FeatureValues, ImportedEpisode } from '../importer.js';

/** Long episodes are split into record batches of at most this many steps. */
export const MAX_BATCH_STEPS = 1000;

/** An episode as it goes into a shard: its dataset-wide index and where its videos are kept. */
export interface ShardEpisode {
  episodeIndex: number;
  episode: ImportedEpisode;
  /** Used for timestamps when the episode has none: step / fps. */
  fps: number;
  /** Blob key of each video feature's file. */
  videoBlobs?: Record<string, string>;
}

/** Where an episode ended up in the shard file. */
export interface WrittenEpisode {
  episodeIndex: number;
  batchStart: number;
  batchCount: number;
  /** Byte range of its record batches (metadata and bodies), contiguous in the file. */
  byteOffset: number;
  byteLength: number;
  /** sha256 of that byte range. */
  checksum: string;
}

/**
 * Writes episodes to an Arrow IPC file (DESIGN.md): one record batch per episode, or per chunk of
 * ≤ MAX_BATCH_STEPS steps of a long one, so that any episode is a byte range of the file. The task
 * dictionary holds the tasks of this shard only and is written once, before the batches (pyarrow
 * and Arrow C++ refuse dictionary deltas in the file format).
 */
export async function writeShard(params: {
  path: string;
  features: FeatureSpec;
  episodes: ShardEpisode[];
}): Promise<{ episodes: WrittenEpisode[]; bytes: number; sha256: string }> {
  const schema = kuraArrowSchema(params.features);
  const tasks = new Map<string, number>();
  for (const { episode } of params.episodes)
    for (const task of episode.stepTasks ?? (episode.task ? [episode.task] : [])) if (!tasks.has(task)) tasks.set(task, tasks.size);
  const dictionary = vectorFromArray([...tasks.keys()], new Utf8());

  const writer = new RecordBatchFileWriter();
  const file = await open(params.path, 'w');
  const hash = createHash('sha256');
  let bytes = 0;
  // The writer yields many small buffers (one per column buffer); writing them in ~4 MiB runs saves syscalls.
  const drained = (async () => {
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const writePending = async () => {
      if (pendingBytes === 0) return;
      await writeFully(file, pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes));
      pending = [];
      pendingBytes = 0;
    };
    for await (const chunk of writer as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      pending.push(chunk);
      pendingBytes += chunk.byteLength;
      if (pendingBytes >= 4 * 1024 * 1024) await writePending();
    }
    await writePending();
  })();
  // Its failure (ENOSPC) is awaited below; until then it must not count as an unhandled rejection.
  let drainFailed = false;
  drained.catch(() => (drainFailed = true));
  const batchCounts: number[] = [];
  try {
    writer.reset(undefined, schema);
    for (const item of params.episodes) {
      // A failed write closed the writer's queue: say why (the write's error), not that it is closed.
      if (drainFailed) await drained;
      let batches = 0;
      for (let start = 0; start < item.episode.length; start += MAX_BATCH_STEPS) {
        writer.write(buildBatch({ schema, item, start, end: Math.min(item.episode.length, start + MAX_BATCH_STEPS), tasks, dictionary }));
        batches++;
      }
      batchCounts.push(batches);
      // Let the drain write this episode's bytes out before building the next one, so the writer's
      // queue does not hold the whole shard.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (!drainFailed) writer.finish();
    await drained;
    await file.sync();
  } finally {
    await file.close();
  }

  // The footer knows each batch's offset and length; episodes are runs of consecutive batches.
  const handle = await open(params.path, 'r');
  let footer: Awaited<ReturnType<typeof RecordBatchReader.from>>['footer'];
  try {
    const reader = await RecordBatchReader.from(handle);
    await reader.open();
    footer = reader.footer;
  } finally {
    await handle.close();
  }
  if (!footer) throw new Error(`${params.path} has no Arrow footer`);
  const ranges: Array<{ episodeIndex: number; batchStart: number; batchCount: number; byteOffset: number; byteLength: number }> = [];
  let batchIndex = 0;
  for (const [position, item] of params.episodes.entries()) {
    const count = batchCounts[position]!;
    const first = footer.getRecordBatch(batchIndex);
    const last = footer.getRecordBatch(batchIndex + count - 1);
    if (!first || !last) throw new Error(`record batch ${batchIndex} missing from the footer of ${params.path}`);
    const byteOffset = Number(first.offset);
    const byteLength = Number(last.offset) + last.metaDataLength + Number(last.bodyLength) - byteOffset;
    ranges.push({ episodeIndex: item.episodeIndex, batchStart: batchIndex, batchCount: count, byteOffset, byteLength });
    batchIndex += count;
  }
  const checksums = await checksumRanges(params.path, ranges);
  const written: WrittenEpisode[] = ranges.map((range, position) => ({ ...range, checksum: checksums[position]! }));
  return { episodes: written, bytes, sha256: hash.digest('hex') };
}

/**
 * sha256 of each byte range of the file (ascending, not overlapping), in one sequential read: a
 * read per episode cost a file open per episode, seconds for a shard of thousands of short ones.
 */
async function checksumRanges(path: string, ranges: Array<{ byteOffset: number; byteLength: number }>): Promise<string[]> {
  const first = ranges[0];
  const last = ranges[ranges.length - 1];
  if (!first || !last) return [];
  const checksums: string[] = [];
  let hash = createHash('sha256');
  let position = first.byteOffset;
  const stream = createReadStream(path, { start: first.byteOffset, end: last.byteOffset + last.byteLength - 1, highWaterMark: 1 << 20 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let at = 0;
    while (at < chunk.length) {
      const range = ranges[checksums.length];
      if (!range) break;
      if (position < range.byteOffset) {
        // A gap between two episodes' batches (none today, but nothing requires that).
        const skip = Math.min(range.byteOffset - position, chunk.length - at);
        at += skip;
        position += skip;
        continue;
      }
      const take = Math.min(range.byteOffset + range.byteLength - position, chunk.length - at);
      hash.update(chunk.subarray(at, at + take));
      at += take;
      position += take;
      if (position === range.byteOffset + range.byteLength) {
        checksums.push(hash.digest('hex'));
        hash = createHash('sha256');
      }
    }
  }
  if (checksums.length !== ranges.length) throw new Error(`${path} ended before the byte range of record batch ${checksums.length}`);
  return checksums;
}

function buildBatch(params: {
  schema: Schema;
  item: ShardEpisode;
  start: number;
  end: number;
  tasks: Map<string, number>;
  dictionary: Vector<Utf8>;
}): RecordBatch {
  const { schema, item, start, end } = params;
  const { episode } = item;
  const rows = end - start;
  const columns = new Map<string, Data>();

  columns.set(
    'episode_index',
    makeData({ type: new Int64(), length: rows, data: new BigInt64Array(rows).fill(BigInt(item.episodeIndex)) }),
  );
  const steps = new Int32Array(rows);
  for (let row = 0; row < rows; row++) steps[row] = start + row;
  columns.set('step_index', makeData({ type: new Int32(), length: rows, data: steps }));
  const timestamps = episode.timestamp ? episode.timestamp.slice(start, end) : Float64Array.from(steps, (step) => step / item.fps);
  columns.set('timestamp', makeData({ type: new Float64(), length: rows, data: timestamps }));
  const last = episode.length - 1;
  columns.set(
    'is_first',
    boolData(rows, (row) => start + row === 0),
  );
  columns.set(
    'is_last',
    boolData(rows, (row) => start + row === last),
  );
  columns.set(
    'is_terminal',
    boolData(rows, (row) =>
      episode.isTerminal ? episode.isTerminal[start + row] === 1 : start + row === last && episode.success === true,
    ),
  );
  columns.set('reward', nullableFloat32(rows, episode.reward?.subarray(start, end)));
  columns.set('discount', nullableFloat32(rows, episode.discount?.subarray(start, end)));

  const indices = new Int32Array(rows);
  const validity = new Uint8Array(Math.ceil(rows / 8));
  let nullCount = 0;
  for (let row = 0; row < rows; row++) {
    const task = episode.stepTasks ? episode.stepTasks[start + row] : episode.task;
    const index = task ? params.tasks.get(task) : undefined;
    if (index === undefined) nullCount++;
    else {
      indices[row] = index;
      validity[row >> 3]! |= 1 << (row & 7);
    }
  }
  columns.set(
    'language_instruction',
    makeData({
      type: new Dictionary(new Utf8(), new Int32()),
      length: rows,
      nullCount,
      nullBitmap: nullCount ? validity : null,
      data: indices,
      dictionary: params.dictionary,
    }),
  );

  for (const field of schema.fields.slice(columns.size)) {
    const values = episode.features[field.name];
    const feature = JSON.parse(field.metadata.get('kura.feature') ?? '{}') as Feature;
    if (!values) throw new Error(`episode ${episode.sourceId} lacks feature ${field.name}`);
    columns.set(field.name, featureData({ field, feature, values, start, end, videoBlob: item.videoBlobs?.[field.name] }));
  }
  const children = schema.fields.map((field) => columns.get(field.name)!);
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children }));
}

function featureData(params: {
  field: Field;
  feature: Feature;
  values: FeatureValues;
  start: number;
  end: number;
  videoBlob: string | undefined;
}): Data {
  const { field, feature, values, start, end } = params;
  const rows = end - start;
  switch (values.kind) {
    case 'tensor': {
      const perStep = valuesPerStep(feature);
      const slice = values.values.subarray(start * perStep, end * perStep);
      const listType = field.type as FixedSizeList;
      const childType = listType.children[0]!.type as DataType;
      // makeData is typed per concrete type; the validator already matched the array to the dtype.
      const child =
        childType instanceof Bool
          ? boolData(slice.length, (index) => slice[index] !== 0)
          : makeData({ type: childType as Float32, length: slice.length, data: slice as Float32Array });
      return makeData({ type: listType, length: rows, nullCount: 0, child });
    }
    case 'image': {
      const frames = values.frames.slice(start, end);
      const offsets = new Int32Array(rows + 1);
      for (let row = 0; row < rows; row++) offsets[row + 1] = offsets[row]! + frames[row]!.byteLength;
      const data = new Uint8Array(offsets[rows]!);
      frames.forEach((frame, row) => data.set(frame, offsets[row]));
      return makeData({ type: new Binary(), length: rows, nullCount: 0, valueOffsets: offsets, data });
    }
    case 'video': {
      if (!params.videoBlob) throw new Error(`no blob recorded for the video of ${field.name}`);
      const blob = vectorFromArray(new Array<string>(rows).fill(params.videoBlob), new Utf8()).data[0]!;
      const time = makeData({ type: new Float64(), length: rows, data: values.timestamps.slice(start, end) });
      return makeData({ type: field.type as Struct, length: rows, nullCount: 0, children: [blob, time] });
    }
  }
}

function boolData(length: number, value: (index: number) => boolean): Data<Bool> {
  const bits = new Uint8Array(Math.ceil(length / 8));
  for (let index = 0; index < length; index++) if (value(index)) bits[index >> 3]! |= 1 << (index & 7);
  return makeData({ type: new Bool(), length, data: bits });
}

/** NaN (the importers' "no value") becomes null. */
function nullableFloat32(length: number, values: Float32Array | undefined): Data<Float32> {
  const data = new Float32Array(length);
  const validity = new Uint8Array(Math.ceil(length / 8));
  let nullCount = 0;
  for (let index = 0; index < length; index++) {
    const value = values?.[index];
    if (value === undefined || Number.isNaN(value)) nullCount++;
    else {
      data[index] = value;
      validity[index >> 3]! |= 1 << (index & 7);
    }
  }
  return makeData({ type: new Float32(), length, nullCount, nullBitmap: nullCount ? validity : null, data });
}

/** Approximate in-memory size of an episode, to bound how many are held before a shard is written. */
export function episodeBytes(episode: ImportedEpisode): number {
  let total = episode.length * 64;
  for (const values of Object.values(episode.features)) {
    if (values.kind === 'tensor') total += values.values.byteLength;
    else if (values.kind === 'image') for (const frame of values.frames) total += frame.byteLength;
    else total += values.timestamps.byteLength;
  }
  return total;
}
