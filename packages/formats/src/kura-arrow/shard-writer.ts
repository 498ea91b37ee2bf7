import { open } from 'node:fs/promises';
import { MetadataVersion, Utf8, vectorFromArray, type Dictionary } from 'apache-arrow';
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

/**
 * Writes episodes to an Arrow IPC file (DESIGN.md): one record batch per episode, or per chunk of
 * ≤ MAX_BATCH_STEPS steps of a long one, so that any episode is a byte range of the file. The task
 * dictionary holds the tasks of this shard only and is written once, before the batches (pyarrow
 * and Arrow C++ refuse dictionary deltas in the file format). The layout is apache-arrow's file
 * writer's: magic, dictionary, batches, end-of-stream marker, footer (schema and blocks), magic.
 * The caller hashes the file (hashShard), e.g. on another thread while it goes on converting.
 */
export async function writeShardUnhashed(params: ShardParams): Promise<{ episodes: EpisodeRange[]; bytes: number }> {
  const schema = kuraArrowSchema(params.features);
  const tasks = new Map<string, number>();
  for (const { episode } of params.episodes)
    for (const task of episode.stepTasks ?? (episode.task ? [episode.task] : [])) if (!tasks.has(task)) tasks.set(task, tasks.size);
  const dictionaryField = schema.fields.find((field) => field.name === 'language_instruction')!;
  const dictionaryId = (dictionaryField.type as Dictionary).id;
  const encoder = new ShardBatchEncoder(schema, tasks);

  const file = await open(params.path, 'w');
  let position = 0;
  // Batches are small for short episodes: they go to the file in runs of ~4 MiB, saving syscalls.
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    await writeChunksFully(file, pending);
    pending = [];
    pendingBytes = 0;
  };
  const append = async (bytes: Uint8Array) => {
    pending.push(bytes);
    pendingBytes += bytes.byteLength;
    position += bytes.byteLength;
    if (pendingBytes >= 4 * 1024 * 1024) await flush();
  };

  const dictionaryBlocks: FileBlock[] = [];
  const recordBatchBlocks: FileBlock[] = [];
  const written: EpisodeRange[] = [];
  try {
    await append(FILE_MAGIC_PADDED);
    const dictionary = encodeDictionaryMessage(vectorFromArray([...tasks.keys()], new Utf8()), dictionaryId);
    dictionaryBlocks.push(new FileBlock(dictionary.metadataLength, dictionary.bodyLength, position));
    await append(dictionary.bytes);
    for (const item of params.episodes) {
      const byteOffset = position;
      const batchStart = recordBatchBlocks.length;
      for (let start = 0; start < item.episode.length; start += MAX_BATCH_STEPS) {
        const batch = encoder.encode(item, start, Math.min(item.episode.length, start + MAX_BATCH_STEPS));
        recordBatchBlocks.push(new FileBlock(batch.metadataLength, batch.bodyLength, position));
        await append(batch.bytes);
      }
      written.push({
        episodeIndex: item.episodeIndex,
        batchStart,
        batchCount: recordBatchBlocks.length - batchStart,
        byteOffset,
        byteLength: position - byteOffset,
      });
    }
    const footer = Footer.encode(new Footer(schema, MetadataVersion.V5, recordBatchBlocks, dictionaryBlocks));
    await append(ARROW_STREAM_END);
    await append(footer);
    const footerLength = Buffer.alloc(4);
    footerLength.writeInt32LE(footer.byteLength);
    await append(footerLength);
    await append(FILE_MAGIC);
    await flush();
    // Not fsynced here: whoever keeps the file makes it durable (the blob store as it adopts it),
    // and the converter goes on with the next shard meanwhile instead of waiting for the disk.
  } finally {
    await file.close();
  }
  return { episodes: written, bytes: position };
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
