import { Bool, FixedSizeList, MetadataVersion, type DataType, type Schema, type Utf8, type Vector } from 'apache-arrow';
import { DictionaryBatch, Message, RecordBatch as RecordBatchHeader } from 'apache-arrow/ipc/metadata/message';
import { VectorAssembler } from 'apache-arrow/visitor/vectorassembler';
import { valuesPerStep, type Feature } from '@kura/schema';
import type { ImportedEpisode } from '../importer.js';

/** An episode as it goes into a shard: its dataset-wide index and where its videos are kept. */
export interface ShardEpisode {
  episodeIndex: number;
  episode: ImportedEpisode;
  /** Used for timestamps when the episode has none: step / fps. */
  fps: number;
  /** Blob key of each video feature's file. */
  videoBlobs?: Record<string, string>;
}

/**
 * Encodes a Kura shard's record batches straight into IPC message bytes, one buffer per batch.
 *
 * apache-arrow's writer costs ~60 µs a batch whatever its size (Data objects, visitors, a schema
 * comparison, a flatbuffers builder), which made an upload of 100,000 five-step episodes 6× slower
 * than the same steps as 200 episodes. A shard's layout is fixed by its schema: every batch has the
 * same field nodes and buffers, and only lengths, null counts and offsets change. So the message
 * metadata is written by hand (the flatbuffer layout below, checked against apache-arrow and
 * pyarrow in the tests) and the column values are copied from the episode into the body.
 */
/** Bytes of one slab that batches are encoded into. */
const SLAB_BYTES = 1024 * 1024;

export class ShardBatchEncoder {
  private readonly columns: ColumnEncoder[];
  private readonly nodeCount: number;
  private readonly bufferCount: number;
  /** Size of the message's flatbuffer (a multiple of 8). */
  private readonly metadataBytes: number;

  /** Batches are cut from shared slabs: one allocation per slab, not per batch (see allocate). */
  private slab = Buffer.allocUnsafe(0);
  private slabUsed = 0;

  constructor(
    schema: Schema,
    private readonly tasks: Map<string, number>,
  ) {
    this.columns = schema.fields.map((field) => columnEncoder(field.name, field.type as DataType, field.metadata));
    this.nodeCount = this.columns.reduce((sum, column) => sum + column.nodes, 0);
    this.bufferCount = this.columns.reduce((sum, column) => sum + column.buffers, 0);
    this.metadataBytes = MESSAGE_FIXED_BYTES + 16 * this.nodeCount + 16 * this.bufferCount;
  }

  /**
   * `length` zeroed bytes, consecutive batches next to each other in a slab of SLAB_BYTES (a short
   * episode's batch is a few hundred bytes). A slab lives as long as a batch cut from it.
   */
  private allocate(length: number): Buffer {
    if (length > SLAB_BYTES / 8) return Buffer.alloc(length);
    if (this.slabUsed + length > this.slab.length) {
      // Zeroed once: every range is handed out once, so its padding is already zero.
      this.slab = Buffer.alloc(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const bytes = this.slab.subarray(this.slabUsed, this.slabUsed + length);
    this.slabUsed += length;
    return bytes;
  }

  /**
   * Rows `start`–`end` of the episode as one encapsulated IPC message (continuation, metadata
   * length, metadata, body), and the sizes the file footer records.
   */
  encode(item: ShardEpisode, start: number, end: number): { bytes: Buffer; metadataLength: number; bodyLength: number } {
    const batch: BatchRows = { item, start, end, rows: end - start, tasks: this.tasks };
    let bodyLength = 0;
    for (const column of this.columns) bodyLength += column.bodyBytes(batch);
    const metadataLength = PREFIX_BYTES + this.metadataBytes;
    const bytes = this.allocate(metadataLength + bodyLength);
    const out = new BatchOutput(bytes, metadataLength, this.nodeCount);
    for (const column of this.columns) column.write(batch, out);
    if (out.bodyAt !== bodyLength || out.node !== this.nodeCount || out.buffer !== this.bufferCount) {
      throw new Error(
        `shard batch encoder: laid out ${out.bodyAt} body bytes, ${out.node} nodes, ${out.buffer} buffers; expected ${bodyLength}, ${this.nodeCount}, ${this.bufferCount}`,
      );
    }
    writeMessageHeader(bytes, this.metadataBytes, { rows: batch.rows, bodyLength, nodes: this.nodeCount, buffers: this.bufferCount });
    return { bytes, metadataLength, bodyLength };
  }
}

/** The dictionary batch message of a shard's task texts (once per shard, so apache-arrow's encoder). */
export function encodeDictionaryMessage(
  dictionary: Vector<Utf8>,
  id: number,
): { bytes: Buffer; metadataLength: number; bodyLength: number } {
  const { byteLength, nodes, bufferRegions, buffers } = VectorAssembler.assemble(dictionary);
  const header = new DictionaryBatch(new RecordBatchHeader(dictionary.length, nodes, bufferRegions, null), id, false);
  const metadata = Message.encode(Message.from(header, byteLength));
  const metadataLength = align8(8 + metadata.byteLength);
  const bytes = Buffer.alloc(metadataLength + byteLength);
  bytes.writeInt32LE(-1, 0);
  bytes.writeInt32LE(metadataLength - 8, 4);
  bytes.set(metadata, 8);
  let at = metadataLength;
  for (const buffer of buffers) {
    bytes.set(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), at);
    at += align8(buffer.byteLength);
  }
  return { bytes, metadataLength, bodyLength: byteLength };
}

// The message flatbuffer, laid out by hand (offsets from its start; little-endian):
//   0  root offset → Message table at 16
//   4  Message vtable: size 12, table size 20, fields version @16, header_type @18, header @4, bodyLength @8
//  16  Message table: soffset 12 (vtable at 4), header offset → 48, bodyLength (int64), version (int16 = V5), header_type (uint8 = RecordBatch)
//  36  RecordBatch vtable: size 10, table size 20, fields length @8, nodes @4, buffers @16
//  48  RecordBatch table: soffset 12 (vtable at 36), nodes offset → 76, length (int64), buffers offset → 84 + 16 n
//  76  nodes: count n, then n FieldNode structs {length, null_count} from 80 (8-aligned)
//  84 + 16 n  buffers: count b, then b Buffer structs {offset, length} from 88 + 16 n
// Every int64 and struct sits on an 8-byte boundary, as the flatbuffers verifier of Arrow C++ requires.
const MESSAGE_FIXED_BYTES = 88;
/** Where the FieldNode structs start, then the Buffer structs (after n nodes), in the flatbuffer. */
const NODES_AT = 80;
const buffersAt = (nodes: number) => MESSAGE_FIXED_BYTES + 16 * nodes;
/** The continuation marker and the metadata length before the flatbuffer. */
const PREFIX_BYTES = 8;
const MESSAGE_HEADER_RECORD_BATCH = 3;

function writeMessageHeader(
  bytes: Buffer,
  metadataBytes: number,
  batch: { rows: number; bodyLength: number; nodes: number; buffers: number },
): void {
  bytes.writeInt32LE(-1, 0);
  bytes.writeInt32LE(metadataBytes, 4);
  const base = PREFIX_BYTES;
  const u16 = (value: number, at: number) => bytes.writeUInt16LE(value, base + at);
  const u32 = (value: number, at: number) => bytes.writeUInt32LE(value, base + at);
  // A vtable: its size, its table's size, then each field's offset in the table.
  const vtable = (at: number, entries: number[]) => entries.forEach((value, index) => u16(value, at + 2 * index));
  u32(16, 0);
  vtable(4, [12, 20, 16, 18, 4, 8]);
  bytes.writeInt32LE(12, base + 16);
  u32(48 - 20, 20);
  writeInt64(bytes, base + 24, batch.bodyLength);
  bytes.writeInt16LE(MetadataVersion.V5, base + 32);
  bytes.writeUInt8(MESSAGE_HEADER_RECORD_BATCH, base + 34);
  vtable(36, [10, 20, 8, 4, 16]);
  bytes.writeInt32LE(12, base + 48);
  writeInt64(bytes, base + 56, batch.rows);
  // Each vector's count sits right before its first struct.
  u32(NODES_AT - 4 - 52, 52);
  u32(buffersAt(batch.nodes) - 4 - 64, 64);
  u32(batch.nodes, NODES_AT - 4);
  u32(batch.buffers, buffersAt(batch.nodes) - 4);
}

/** A non-negative int64 into zero-filled bytes (the high word is written only when it is not zero). */
function writeInt64(bytes: Buffer, at: number, value: number): void {
  if (value < 0x1_0000_0000) {
    if (value !== 0) bytes.writeUInt32LE(value, at);
    return;
  }
  bytes.writeUInt32LE(value % 0x1_0000_0000, at);
  bytes.writeUInt32LE(Math.floor(value / 0x1_0000_0000), at + 4);
}

const align8 = (bytes: number) => (bytes + 7) & ~7;
const bitmapBytes = (bits: number) => Math.ceil(bits / 8);

/** The rows of one batch, as every column encoder reads them. */
interface BatchRows {
  item: ShardEpisode;
  start: number;
  end: number;
  rows: number;
  tasks: Map<string, number>;
}

/** Where the next field node, buffer entry and body bytes go. */
class BatchOutput {
  node = 0;
  buffer = 0;
  /** Next body offset, relative to the body's start. */
  bodyAt = 0;

  constructor(
    readonly bytes: Buffer,
    /** Where the body starts in `bytes`. */
    private readonly bodyStart: number,
    nodeCount: number,
  ) {
    this.buffersAt = PREFIX_BYTES + buffersAt(nodeCount);
  }

  private readonly buffersAt: number;

  addNode(length: number, nullCount: number): void {
    const at = PREFIX_BYTES + NODES_AT + 16 * this.node++;
    writeInt64(this.bytes, at, length);
    writeInt64(this.bytes, at + 8, nullCount);
  }

  /** A field node without nulls, and its validity buffer (empty: nothing is null). */
  addField(length: number): void {
    this.addNode(length, 0);
    this.addBuffer(0);
  }

  /** Records a body buffer of `length` bytes and returns where in `bytes` it starts (zeroed). */
  addBuffer(length: number): number {
    const at = this.buffersAt + 16 * this.buffer++;
    writeInt64(this.bytes, at, this.bodyAt);
    writeInt64(this.bytes, at + 8, length);
    const position = this.bodyStart + this.bodyAt;
    this.bodyAt += align8(length);
    return position;
  }

  /** A validity buffer: none when nothing is null. */
  addValidity(rows: number, isValid: ((row: number) => boolean) | null): void {
    if (!isValid) {
      this.addBuffer(0);
      return;
    }
    const at = this.addBuffer(bitmapBytes(rows));
    for (let row = 0; row < rows; row++) if (isValid(row)) this.bytes[at + (row >> 3)]! |= 1 << (row & 7);
  }

  addBits(count: number, bit: (index: number) => boolean): void {
    const at = this.addBuffer(bitmapBytes(count));
    for (let index = 0; index < count; index++) if (bit(index)) this.bytes[at + (index >> 3)]! |= 1 << (index & 7);
  }

  addBytes(source: ArrayBufferView): void {
    const at = this.addBuffer(source.byteLength);
    this.bytes.set(new Uint8Array(source.buffer, source.byteOffset, source.byteLength), at);
  }
}

/** One column: how many field nodes and buffers it has, its body size for a batch, and its bytes. */
interface ColumnEncoder {
  nodes: number;
  buffers: number;
  bodyBytes(batch: BatchRows): number;
  write(batch: BatchRows, out: BatchOutput): void;
}

const fixed = (bytesPerRow: (batch: BatchRows) => number, write: (batch: BatchRows, out: BatchOutput) => void): ColumnEncoder => ({
  nodes: 1,
  buffers: 2,
  bodyBytes: (batch) => align8(bytesPerRow(batch)),
  write: (batch, out) => {
    out.addField(batch.rows);
    write(batch, out);
  },
});

const boolColumn = (bit: (batch: BatchRows, step: number) => boolean): ColumnEncoder =>
  fixed(
    (batch) => bitmapBytes(batch.rows),
    (batch, out) => out.addBits(batch.rows, (row) => bit(batch, batch.start + row)),
  );

/** A nullable float32 column; NaN (the importers' "no value") is null. */
function nullableFloat32Column(values: (batch: BatchRows) => Float32Array | undefined): ColumnEncoder {
  const nulls = (batch: BatchRows) => {
    const source = values(batch);
    if (!source) return batch.rows;
    let count = 0;
    for (let step = batch.start; step < batch.end; step++) if (Number.isNaN(source[step]!)) count++;
    return count;
  };
  return {
    nodes: 1,
    buffers: 2,
    bodyBytes: (batch) => (nulls(batch) > 0 ? align8(bitmapBytes(batch.rows)) : 0) + align8(4 * batch.rows),
    write: (batch, out) => {
      const source = values(batch);
      const nullCount = nulls(batch);
      out.addNode(batch.rows, nullCount);
      out.addValidity(batch.rows, nullCount > 0 ? (row) => source !== undefined && !Number.isNaN(source[batch.start + row]!) : null);
      const at = out.addBuffer(4 * batch.rows);
      if (source)
        for (let row = 0; row < batch.rows; row++) {
          const value = source[batch.start + row]!;
          if (!Number.isNaN(value)) out.bytes.writeFloatLE(value, at + 4 * row);
        }
    },
  };
}

const taskOf = (batch: BatchRows, step: number): string | null | undefined => {
  const { episode } = batch.item;
  return episode.stepTasks ? episode.stepTasks[step] : episode.task;
};

const taskIndex = (batch: BatchRows, step: number): number | undefined => {
  const task = taskOf(batch, step);
  return task ? batch.tasks.get(task) : undefined;
};

/** The task column: int32 indices into the shard's dictionary, null where a step has no task. */
const taskColumn: ColumnEncoder = {
  nodes: 1,
  buffers: 2,
  bodyBytes: (batch) => (taskNulls(batch) > 0 ? align8(bitmapBytes(batch.rows)) : 0) + align8(4 * batch.rows),
  write: (batch, out) => {
    const nullCount = taskNulls(batch);
    out.addNode(batch.rows, nullCount);
    out.addValidity(batch.rows, nullCount > 0 ? (row) => taskIndex(batch, batch.start + row) !== undefined : null);
    const at = out.addBuffer(4 * batch.rows);
    for (let row = 0; row < batch.rows; row++) out.bytes.writeInt32LE(taskIndex(batch, batch.start + row) ?? 0, at + 4 * row);
  },
};

function taskNulls(batch: BatchRows): number {
  let count = 0;
  for (let step = batch.start; step < batch.end; step++) if (taskIndex(batch, step) === undefined) count++;
  return count;
}

function columnEncoder(name: string, type: DataType, metadata: Map<string, string>): ColumnEncoder {
  switch (name) {
    case 'episode_index':
      return fixed(
        (batch) => 8 * batch.rows,
        (batch, out) => {
          const at = out.addBuffer(8 * batch.rows);
          for (let row = 0; row < batch.rows; row++) writeInt64(out.bytes, at + 8 * row, batch.item.episodeIndex);
        },
      );
    case 'step_index':
      return fixed(
        (batch) => 4 * batch.rows,
        (batch, out) => {
          const at = out.addBuffer(4 * batch.rows);
          for (let row = 0; row < batch.rows; row++) out.bytes.writeInt32LE(batch.start + row, at + 4 * row);
        },
      );
    case 'timestamp':
      return fixed(
        (batch) => 8 * batch.rows,
        (batch, out) => {
          const at = out.addBuffer(8 * batch.rows);
          const { episode, fps } = batch.item;
          for (let row = 0; row < batch.rows; row++) {
            const step = batch.start + row;
            out.bytes.writeDoubleLE(episode.timestamp ? episode.timestamp[step]! : step / fps, at + 8 * row);
          }
        },
      );
    case 'is_first':
      return boolColumn((_batch, step) => step === 0);
    case 'is_last':
      return boolColumn((batch, step) => step === batch.item.episode.length - 1);
    case 'is_terminal':
      return boolColumn((batch, step) => {
        const { episode } = batch.item;
        return episode.isTerminal ? episode.isTerminal[step] === 1 : step === episode.length - 1 && episode.success === true;
      });
    case 'reward':
      return nullableFloat32Column((batch) => batch.item.episode.reward);
    case 'discount':
      return nullableFloat32Column((batch) => batch.item.episode.discount);
    case 'language_instruction':
      return taskColumn;
    default:
      return featureColumn(name, type, JSON.parse(metadata.get('kura.feature') ?? '{}') as Feature);
  }
}

function featureValues(batch: BatchRows, name: string) {
  const values = batch.item.episode.features[name];
  if (!values) throw new Error(`episode ${batch.item.episode.sourceId} lacks feature ${name}`);
  return values;
}

function featureColumn(name: string, type: DataType, feature: Feature): ColumnEncoder {
  if (type instanceof FixedSizeList) {
    const perStep = valuesPerStep(feature);
    const isBool = type.children[0]!.type instanceof Bool;
    const tensor = (batch: BatchRows) => {
      const values = featureValues(batch, name);
      if (values.kind !== 'tensor') throw new Error(`feature ${name} holds ${values.kind} values, not a tensor`);
      return values.values.subarray(batch.start * perStep, batch.end * perStep);
    };
    return {
      // The list and its item child.
      nodes: 2,
      buffers: 3,
      bodyBytes: (batch) => {
        const values = tensor(batch);
        return align8(isBool ? bitmapBytes(values.length) : values.byteLength);
      },
      write: (batch, out) => {
        const values = tensor(batch);
        out.addField(batch.rows);
        out.addField(values.length);
        if (isBool) out.addBits(values.length, (index) => Number(values[index]) !== 0);
        else out.addBytes(values);
      },
    };
  }
  if (feature.dtype === 'image') {
    const frames = (batch: BatchRows) => {
      const values = featureValues(batch, name);
      if (values.kind !== 'image') throw new Error(`feature ${name} holds ${values.kind} values, not images`);
      return values.frames;
    };
    const dataBytes = (batch: BatchRows) => {
      const all = frames(batch);
      let total = 0;
      for (let step = batch.start; step < batch.end; step++) total += all[step]!.byteLength;
      return total;
    };
    return {
      nodes: 1,
      buffers: 3,
      bodyBytes: (batch) => align8(4 * (batch.rows + 1)) + align8(dataBytes(batch)),
      write: (batch, out) => {
        const all = frames(batch);
        out.addField(batch.rows);
        const offsets = out.addBuffer(4 * (batch.rows + 1));
        const data = out.addBuffer(dataBytes(batch));
        let at = 0;
        for (let row = 0; row < batch.rows; row++) {
          const frame = all[batch.start + row]!;
          out.bytes.set(frame, data + at);
          at += frame.byteLength;
          out.bytes.writeInt32LE(at, offsets + 4 * (row + 1));
        }
      },
    };
  }
  if (feature.dtype === 'video') {
    const blobOf = (batch: BatchRows) => {
      const blob = batch.item.videoBlobs?.[name];
      if (!blob) throw new Error(`no blob recorded for the video of ${name}`);
      return Buffer.from(blob, 'utf8');
    };
    const times = (batch: BatchRows) => {
      const values = featureValues(batch, name);
      if (values.kind !== 'video') throw new Error(`feature ${name} holds ${values.kind} values, not video frames`);
      return values.timestamps.subarray(batch.start, batch.end);
    };
    return {
      // The struct, its blob (utf8) and timestamp_s (float64) children.
      nodes: 3,
      buffers: 6,
      bodyBytes: (batch) => align8(4 * (batch.rows + 1)) + align8(blobOf(batch).byteLength * batch.rows) + align8(8 * batch.rows),
      write: (batch, out) => {
        const blob = blobOf(batch);
        out.addField(batch.rows);
        out.addField(batch.rows);
        const offsets = out.addBuffer(4 * (batch.rows + 1));
        const data = out.addBuffer(blob.byteLength * batch.rows);
        for (let row = 0; row < batch.rows; row++) {
          out.bytes.set(blob, data + row * blob.byteLength);
          out.bytes.writeInt32LE((row + 1) * blob.byteLength, offsets + 4 * (row + 1));
        }
        out.addField(batch.rows);
        out.addBytes(times(batch));
      },
    };
  }
  throw new Error(`feature ${name}: no shard encoding for dtype ${feature.dtype}`);
}
