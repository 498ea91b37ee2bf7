import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ARROW_STREAM_END } from '@kura/formats';
import { AsyncByteQueue, DataType, RecordBatchReader, RecordBatchStreamWriter, type RecordBatch, type Schema } from 'apache-arrow';
import { BLOB_STORE, type BlobStore } from '../../blobs/blob-store.js';
import { readBlobBytes } from '../../blobs/json-blobs.js';
import { EpisodesRepository, type EpisodeRecord } from './episodes.repository.js';
import { shardCorrupt } from './episodes.errors.js';

export { ARROW_STREAM_END };

/** What precedes a shard's record batches: its schema and its task dictionary. */
export interface ShardPrelude {
  /** The shard's schema as an IPC stream schema message. */
  schemaMessage: Buffer;
  /** The dictionary batch messages at the start of the file, as they are there. */
  dictionaryMessages: Buffer;
  schema: Schema;
  /** The shard's task texts, by dictionary index. */
  tasks: string[];
}

const PRELUDE_CACHE_SIZE = 512;

/**
 * Reads episodes out of Arrow shards with ranged reads: the shard's prelude (schema + dictionary,
 * a few KB, cached) and the byte range of each episode's record batches recorded at ingest. An
 * episode's bytes are checked against the checksum recorded then.
 */
@Injectable()
export class ShardReader {
  private readonly preludes = new Map<string, Promise<ShardPrelude>>();

  constructor(
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly episodes: EpisodesRepository,
  ) {}

  prelude(shardKey: string): Promise<ShardPrelude> {
    let prelude = this.preludes.get(shardKey);
    if (prelude) {
      // Refresh its place: the map's order is the eviction order.
      this.preludes.delete(shardKey);
      this.preludes.set(shardKey, prelude);
      return prelude;
    }
    prelude = this.loadPrelude(shardKey);
    prelude.catch(() => this.preludes.delete(shardKey));
    this.preludes.set(shardKey, prelude);
    if (this.preludes.size > PRELUDE_CACHE_SIZE) this.preludes.delete(this.preludes.keys().next().value!);
    return prelude;
  }

  /**
   * The bytes of episodes that lie back to back in one shard, read as one range and streamed; each
   * episode is checked against its checksum as its last byte passes (a mismatch ends the stream).
   */
  async *streamEpisodes(episodes: readonly EpisodeRecord[]): AsyncGenerator<Buffer> {
    const first = episodes[0]!;
    const last = episodes[episodes.length - 1]!;
    const start = Number(first.byteOffset);
    const length = Number(last.byteOffset + last.byteLength) - start;
    let index = 0;
    let remaining = Number(first.byteLength);
    let hash = createHash('sha256');
    for await (const data of await this.blobs.get({ key: first.shardKey, range: { offset: start, length } })) {
      let chunk = data as Buffer;
      while (chunk.length > 0) {
        const episode = episodes[index];
        if (!episode) throw new Error(`shard ${first.shardKey}: more bytes than the episodes' ranges`);
        const part = chunk.length <= remaining ? chunk : chunk.subarray(0, remaining);
        hash.update(part);
        remaining -= part.length;
        chunk = chunk.subarray(part.length);
        if (remaining === 0) {
          const checksum = hash.digest('hex');
          if (checksum !== episode.checksum) throw shardCorrupt(episode, checksum);
          index++;
          hash = createHash('sha256');
          remaining = Number(episodes[index]?.byteLength ?? 0);
        }
      }
      yield data as Buffer;
    }
    if (index !== episodes.length) throw new Error(`shard ${first.shardKey}: fewer bytes than the episodes' ranges`);
  }

  /** An episode's record batches, decoded (its task column refers to the shard's dictionary). */
  async decode(episode: EpisodeRecord): Promise<RecordBatch[]> {
    return (await this.decodeSpan([episode]))[0]!;
  }

  /**
   * The record batches of several episodes of one shard, in the order given (ascending offsets,
   * spanning at most `spanLimit` bytes — see {@link episodeSpans}): one ranged read for all of them,
   * each episode checked against its checksum. Gaps between them (episodes left out) are read and
   * dropped, which costs less than a read per episode.
   */
  async decodeSpan(episodes: readonly EpisodeRecord[]): Promise<RecordBatch[][]> {
    const first = episodes[0]!;
    const last = episodes[episodes.length - 1]!;
    const start = Number(first.byteOffset);
    const [prelude, bytes] = await Promise.all([
      this.prelude(first.shardKey),
      this.readRange(first.shardKey, start, Number(last.byteOffset + last.byteLength) - start),
    ]);
    const own = episodes.map((episode) => {
      if (episode.shardKey !== first.shardKey) throw new Error(`a span mixes shards ${first.shardKey} and ${episode.shardKey}`);
      const offset = Number(episode.byteOffset) - start;
      const part = bytes.subarray(offset, offset + Number(episode.byteLength));
      const checksum = createHash('sha256').update(part).digest('hex');
      if (checksum !== episode.checksum) throw shardCorrupt(episode, checksum);
      return part;
    });
    // One reader for the span (the schema and dictionary decoded once), its batches dealt out by each episode's count.
    const batches = RecordBatchReader.from([prelude.schemaMessage, prelude.dictionaryMessages, ...own, ARROW_STREAM_END]).readAll();
    const expected = episodes.reduce((sum, episode) => sum + episode.batchCount, 0);
    if (batches.length !== expected)
      throw new Error(`shard ${first.shardKey}: ${batches.length} record batches where the episodes hold ${expected}`);
    let next = 0;
    return episodes.map((episode) => batches.slice(next, (next += episode.batchCount)));
  }

  private async loadPrelude(shardKey: string): Promise<ShardPrelude> {
    const firstBatch = await this.episodes.firstBatchOffset(shardKey);
    if (firstBatch === undefined) throw new Error(`no episode refers to shard ${shardKey}`);
    const info = await this.blobs.head({ key: shardKey });
    if (!info) throw new Error(`shard ${shardKey} is missing from the blob store`);
    // File layout: magic (8 bytes), dictionary batches, record batches, footer, footer length, magic.
    // Arrow JS writes no schema message at the start of a file; the schema is in the footer.
    const head = await this.readRange(shardKey, 0, Number(firstBatch));
    const tail = await this.readRange(shardKey, info.bytes - 10, 10);
    const footerLength = tail.readInt32LE(0);
    if (head.subarray(0, 6).toString('latin1') !== 'ARROW1' || tail.subarray(4).toString('latin1') !== 'ARROW1') {
      throw new Error(`shard ${shardKey} is not an Arrow file`);
    }
    const footer = await this.readRange(shardKey, info.bytes - 10 - footerLength, footerLength);
    // The head and the footer alone make a readable file: the footer's dictionary blocks point into the head.
    const reader = RecordBatchReader.from(Buffer.concat([head, footer, tail]));
    reader.open();
    const dictionaryField = reader.schema.fields.find((field) => field.name === 'language_instruction');
    const dictionaryId = dictionaryField && DataType.isDictionary(dictionaryField.type) ? dictionaryField.type.id : undefined;
    const dictionary = dictionaryId === undefined ? undefined : reader.dictionaries.get(dictionaryId);
    return {
      schemaMessage: encodeSchemaMessage(reader.schema),
      dictionaryMessages: Buffer.from(head.subarray(8)),
      schema: reader.schema,
      tasks: dictionary ? (dictionary.toArray() as string[]) : [],
    };
  }

  private async readRange(key: string, offset: number, length: number): Promise<Buffer> {
    const bytes = await readBlobBytes(this.blobs, key, { offset, length });
    if (bytes.length !== length) throw new Error(`shard ${key}: read ${bytes.length} bytes at ${offset}, expected ${length}`);
    return bytes;
  }
}

/**
 * Groups episodes (in their order) into spans that one ranged read serves: same shard, each after
 * the previous one, at most `gapLimit` bytes between them and `spanLimit` bytes in all.
 */
export async function* episodeSpans<T>(
  items: AsyncIterable<T>,
  episodeOf: (item: T) => EpisodeRecord,
  limits: { spanLimit: number; gapLimit: number },
): AsyncGenerator<T[]> {
  let span: T[] = [];
  let start = 0n;
  let end = 0n;
  let shardKey = '';
  for await (const item of items) {
    const episode = episodeOf(item);
    const joins =
      span.length > 0 &&
      episode.shardKey === shardKey &&
      episode.byteOffset >= end &&
      episode.byteOffset - end <= BigInt(limits.gapLimit) &&
      episode.byteOffset + episode.byteLength - start <= BigInt(limits.spanLimit);
    if (!joins) {
      if (span.length > 0) yield span;
      span = [];
      start = episode.byteOffset;
      shardKey = episode.shardKey;
    }
    span.push(item);
    end = episode.byteOffset + episode.byteLength;
  }
  if (span.length > 0) yield span;
}

/** The IPC stream schema message of a schema (what a stream writer writes first). */
export function encodeSchemaMessage(schema: Schema): Buffer {
  const chunks: Uint8Array[] = [];
  const sink = new (class extends AsyncByteQueue {
    override write(value: Uint8Array): void {
      chunks.push(value);
    }
  })();
  new RecordBatchStreamWriter().reset(sink, schema);
  return Buffer.concat(chunks);
}
