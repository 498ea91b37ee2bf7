import { open } from 'node:fs/promises';
import { MetadataVersion, Utf8, vectorFromArray, type Dictionary, type Schema } from 'apache-arrow';
import { FileBlock, Footer } from 'apache-arrow/ipc/metadata/file';
import { kuraArrowSchema, type FeatureSpec } from '@kura/schema';
import { writeChunksFully } from '../file-writes.js';
import { ShardBatchEncoder, encodeDictionaryMessage, type ShardEpisode } from './shard-batch-encoder.js';
import type { ImportedEpisode } from '../importer.js';
import { hashShard, type EpisodeRange } from './shard-hash.js';

export { hashShard, type EpisodeRange, type ShardHashes } from './shard-hash.js';

/** Long episodes are split into record batches of at most this many steps. */
export const MAX_BATCH_STEPS = 1000;

export type { ShardEpisode } from './shard-batch-encoder.js';

export interface WrittenEpisode extends EpisodeRange {
  /** sha256 of that byte range. */
  checksum: string;
}

/** writeShardUnhashed, then hashShard: the file with its sha256 and each episode's checksum. */
export async function writeShard(params: ShardParams): Promise<{ episodes: WrittenEpisode[]; bytes: number; sha256: string }> {
  const written = await writeShardUnhashed(params);
  const { sha256, checksums } = await hashShard(params.path, written.episodes);
  return {
    episodes: written.episodes.map((episode, index) => ({ ...episode, checksum: checksums[index]! })),
    bytes: written.bytes,
    sha256,
  };
}

interface ShardParams {
  path: string;
  features: FeatureSpec;
  episodes: ShardEpisode[];
}

/** writeShardUnhashed's file of the given episodes: a ShardBuilder given them all, then written. */
export async function writeShardUnhashed(params: ShardParams): Promise<{ episodes: EpisodeRange[]; bytes: number }> {
  const builder = new ShardBuilder(params.features);
  for (const item of params.episodes) builder.add(item);
  return builder.write(params.path);
}

/**
 * A shard made episode by episode, for an Arrow IPC file (DESIGN.md): one record batch per episode,
 * or per chunk of ≤ MAX_BATCH_STEPS steps of a long one, so that any episode is a byte range of the
 * file. The task dictionary holds the tasks of this shard only and is written once, before the
 * batches (pyarrow and Arrow C++ refuse dictionary deltas in the file format); tasks take their
 * dictionary ids in the order they first appear, so each episode is encoded as it is added and only
 * its bytes are kept, not the episode. (Keeping the episodes themselves until the shard was written
 * made every one of them survive garbage collections: 0.8 s of 4.4 for 100,000 short episodes.)
 * The layout is apache-arrow's file writer's: magic, dictionary, batches, end-of-stream marker,
 * footer (schema and blocks), magic. The caller hashes the file (hashShard), e.g. on another thread
 * while it goes on converting.
 */
export class ShardBuilder {
  private readonly schema: Schema;
  private readonly tasks = new Map<string, number>();
  private readonly encoder: ShardBatchEncoder;
  /** The encoded batches, in order, and their blocks and episodes' ranges with offsets from the first batch. */
  private readonly batches: Uint8Array[] = [];
  private readonly blocks: Array<{ metadataLength: number; bodyLength: number; offset: number }> = [];
  private readonly ranges: EpisodeRange[] = [];
  private batchBytes = 0;

  constructor(features: FeatureSpec) {
    this.schema = kuraArrowSchema(features);
    this.encoder = new ShardBatchEncoder(this.schema, this.tasks);
  }

  /** Episodes added so far. */
  get episodeCount(): number {
    return this.ranges.length;
  }

  add(item: ShardEpisode): void {
    const { episode } = item;
    for (const task of episode.stepTasks ?? (episode.task ? [episode.task] : []))
      if (!this.tasks.has(task)) this.tasks.set(task, this.tasks.size);
    const byteOffset = this.batchBytes;
    const batchStart = this.blocks.length;
    for (let start = 0; start < episode.length; start += MAX_BATCH_STEPS) {
      const batch = this.encoder.encode(item, start, Math.min(episode.length, start + MAX_BATCH_STEPS));
      this.blocks.push({ metadataLength: batch.metadataLength, bodyLength: batch.bodyLength, offset: this.batchBytes });
      this.keep(batch.bytes);
      this.batchBytes += batch.bytes.byteLength;
    }
    this.ranges.push({
      episodeIndex: item.episodeIndex,
      batchStart,
      batchCount: this.blocks.length - batchStart,
      byteOffset,
      byteLength: this.batchBytes - byteOffset,
    });
  }

  /** Keeps a batch's bytes; consecutive batches of one slab (see ShardBatchEncoder) become one view, one chunk to write. */
  private keep(bytes: Buffer): void {
    const last = this.batches[this.batches.length - 1];
    if (last && last.buffer === bytes.buffer && last.byteOffset + last.byteLength === bytes.byteOffset)
      this.batches[this.batches.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.byteLength + bytes.byteLength);
    else this.batches.push(bytes);
  }

  /** Writes the file; the episodes' ranges are then offsets in it. */
  async write(path: string): Promise<{ episodes: EpisodeRange[]; bytes: number }> {
    const dictionaryField = this.schema.fields.find((field) => field.name === 'language_instruction')!;
    const dictionaryId = (dictionaryField.type as Dictionary).id;
    const dictionary = encodeDictionaryMessage(vectorFromArray([...this.tasks.keys()], new Utf8()), dictionaryId);
    const dictionaryBlocks = [new FileBlock(dictionary.metadataLength, dictionary.bodyLength, FILE_MAGIC_PADDED.byteLength)];
    const batchesAt = FILE_MAGIC_PADDED.byteLength + dictionary.bytes.byteLength;
    const recordBatchBlocks = this.blocks.map((block) => new FileBlock(block.metadataLength, block.bodyLength, batchesAt + block.offset));
    const footer = Footer.encode(new Footer(this.schema, MetadataVersion.V5, recordBatchBlocks, dictionaryBlocks));
    const footerLength = Buffer.alloc(4);
    footerLength.writeInt32LE(footer.byteLength);
    const chunks = [FILE_MAGIC_PADDED, dictionary.bytes, ...this.batches, ARROW_STREAM_END, footer, footerLength, FILE_MAGIC];

    const file = await open(path, 'w');
    try {
      // Consecutive batches are already one view per slab (keep), so these are few, large chunks.
      await writeChunksFully(file, chunks);
      // Not fsynced here: whoever keeps the file makes it durable (the blob store as it adopts it),
      // and the converter goes on with the next shard meanwhile instead of waiting for the disk.
    } finally {
      await file.close();
    }
    const bytes = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    return { episodes: this.ranges.map((range) => ({ ...range, byteOffset: batchesAt + range.byteOffset })), bytes };
  }
}

const FILE_MAGIC = Buffer.from('ARROW1', 'latin1');
/** The magic and two bytes of padding: the first message starts 8-aligned. */
const FILE_MAGIC_PADDED = Buffer.concat([FILE_MAGIC, Buffer.alloc(2)]);
/** The end-of-stream marker of the Arrow IPC stream format (continuation, then a zero length); files have it before the footer. */
export const ARROW_STREAM_END = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

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
