import { open, type FileHandle } from 'node:fs/promises';
import { McapIndexedReader, McapStreamReader, type DecompressHandlers, type IReadable, type TypedMcapRecords } from '@mcap/core';
import { decompress as zstdDecompress } from 'fzstd';
import { lz4 } from './lz4.js';
import type { IngestBudget } from '../budget.js';
import { ImportError } from '../import-error.js';
import type { SourceFile } from '../importer.js';

/** The first bytes (and last) of every MCAP file: `\x89MCAP0\r\n`. */
export const MCAP_MAGIC = Uint8Array.from([0x89, 0x4d, 0x43, 0x41, 0x50, 0x30, 0x0d, 0x0a]);
/** The first bytes of an SQLite file: what a rosbag2 `.db3` is. */
export const SQLITE_MAGIC = new TextEncoder().encode('SQLite format 3\0');

export type McapSchema = TypedMcapRecords['Schema'];
export type McapChannel = TypedMcapRecords['Channel'];

/** One message as the importer sees it: its channel (with the schema), its time in nanoseconds, its bytes. */
export interface BagMessage {
  channel: McapChannel;
  logTime: bigint;
  data: Uint8Array;
}

/**
 * Chunk compressions Kura reads (pure JavaScript: nothing to build). A chunk's uncompressed size is
 * the file's word: checked against the upload's budget before anything is allocated for it.
 */
function decompressHandlers(file: SourceFile, budget: IngestBudget): DecompressHandlers {
  const room = (size: bigint) => {
    const bytes = Number(size);
    budget.checkTensor(bytes, { file: file.path }, 'an MCAP chunk');
    budget.checkAhead(bytes, { file: file.path });
    return bytes;
  };
  return {
    zstd: (data, size) => zstdDecompress(data, new Uint8Array(room(size))),
    lz4: (data, size) => lz4.decompress(data, room(size)),
    '': (data) => data,
  };
}

/** Bytes read ahead of the reader per window: the next chunks are on their way while this one is decompressed. */
const READ_AHEAD = 2 * 1024 * 1024;

/**
 * The file as @mcap/core reads it: at the offsets its records name, one record after the other,
 * waiting for each. So the file is also read ahead in windows of `READ_AHEAD` bytes: once a read
 * reaches the second half of a window, the window after it is read in the background (two windows
 * at most), and a read that falls inside a window is served from it.
 */
class FileReadable implements IReadable {
  private windows: Array<{ offset: number; bytes: Promise<Uint8Array> }> = [];
  /** The reader's last read: where a record that turns out damaged came from. */
  lastRead: { offset: number; length: number } | undefined;

  constructor(
    private readonly file: FileHandle,
    private readonly bytes: number,
  ) {}
  size(): Promise<bigint> {
    return Promise.resolve(BigInt(this.bytes));
  }
  async read(offset: bigint, length: bigint): Promise<Uint8Array> {
    // Lengths come from the file's records: nothing past its end is allocated.
    if (offset + length > BigInt(this.bytes)) throw new Error(`a record at ${offset} claims ${length} bytes, past the end of the file`);
    const [start, size] = [Number(offset), Number(length)];
    const end = start + size;
    this.lastRead = { offset: start, length: size };
    // The windows holding this read: one, or two in a row when a record crosses from one into the next.
    const first = this.windows.findIndex((window) => start >= window.offset && start < window.offset + READ_AHEAD);
    const held = first < 0 ? [] : this.windows.slice(first, end <= this.windows[first]!.offset + READ_AHEAD ? first + 1 : first + 2);
    const covered = held.length > 0 && end <= held.at(-1)!.offset + READ_AHEAD;
    if (!covered) this.windows = [];
    const last = this.windows.at(-1);
    // Reading on from here: the next window starts where the last one ends (or where this read does).
    if (!last || end >= last.offset + READ_AHEAD / 2) {
      const from = last ? last.offset + READ_AHEAD : end;
      if (from < this.bytes) {
        const bytes = this.readAt(from, Math.min(READ_AHEAD, this.bytes - from));
        // Awaited by the read that uses it; a failure no read needs must not count as unhandled.
        bytes.catch(() => undefined);
        this.windows = [...this.windows.filter((kept) => kept.offset + READ_AHEAD > start), { offset: from, bytes }].slice(-3);
      }
    }
    if (!covered) return this.readAt(start, size);
    const parts = await Promise.all(held.map((window) => window.bytes));
    if (parts.length === 1) return parts[0]!.subarray(start - held[0]!.offset, end - held[0]!.offset);
    const joined = new Uint8Array(size);
    joined.set(parts[0]!.subarray(start - held[0]!.offset));
    joined.set(parts[1]!.subarray(0, end - held[1]!.offset), READ_AHEAD - (start - held[0]!.offset));
    return joined;
  }

  private async readAt(start: number, size: number): Promise<Uint8Array> {
    const buffer = new Uint8Array(size);
    for (let done = 0; done < buffer.length;) {
      const { bytesRead } = await this.file.read(buffer, done, buffer.length - done, start + done);
      if (bytesRead === 0) throw new Error(`the file ends at ${start + done} bytes`);
      done += bytesRead;
    }
    return buffer;
  }
}

/** Whether a file begins with `magic`. */
export async function startsWith(file: SourceFile, magic: Uint8Array): Promise<boolean> {
  if (file.bytes < magic.length) return false;
  const handle = await open(file.absolutePath, 'r');
  try {
    const head = new Uint8Array(magic.length);
    await handle.read(head, 0, magic.length, 0);
    return head.every((byte, index) => byte === magic[index]);
  } finally {
    await handle.close();
  }
}

/**
 * An MCAP file, read through its index (its summary) when it has a sound one; otherwise streamed
 * from the start (a bag cut short, or written without a summary), which recovers every message
 * before the damage and says so.
 */
export class Bag {
  private constructor(
    readonly file: SourceFile,
    private readonly budget: IngestBudget,
    private readonly handle: FileHandle | undefined,
    private readonly indexed: McapIndexedReader | undefined,
    /** Why the index could not be used, when it could not. */
    readonly unindexedBecause: string | undefined,
    readonly channels: ReadonlyMap<number, McapChannel>,
    readonly schemas: ReadonlyMap<number, McapSchema>,
    /** Messages per channel id, and the first and last log time, when the summary says (else counted by `survey`). */
    readonly counts: Map<number, number>,
    public span: { start: bigint; end: bigint } | undefined,
  ) {}

  /** The indexed reader's file, for where a damaged record was read. */
  private readable: FileReadable | undefined;
  /** Set by a streamed read that reached the end of the file before the end of the MCAP (a bag cut short). */
  truncated = false;
  /** Metadata records met by a streamed read, by name (the first of each). */
  private readonly streamedMetadata = new Map<string, ReadonlyMap<string, string>>();

  static async open(file: SourceFile, budget: IngestBudget): Promise<Bag> {
    if (!(await startsWith(file, MCAP_MAGIC)))
      throw new ImportError('MCAP_NOT_MCAP', `${file.path} does not begin with the MCAP magic bytes`, { file: file.path });
    const handle = await open(file.absolutePath, 'r');
    const readable = new FileReadable(handle, file.bytes);
    try {
      const reader = await McapIndexedReader.Initialize({
        readable,
        decompressHandlers: decompressHandlers(file, budget),
      });
      const counts = new Map<number, number>();
      for (const id of reader.channelsById.keys()) counts.set(id, Number(reader.statistics?.channelMessageCounts.get(id) ?? 0n));
      const statistics = reader.statistics;
      const span =
        statistics && statistics.messageCount > 0n ? { start: statistics.messageStartTime, end: statistics.messageEndTime } : undefined;
      if (statistics) {
        const bag = new Bag(file, budget, handle, reader, undefined, reader.channelsById, reader.schemasById, counts, span);
        bag.readable = readable;
        return bag;
      }
      await handle.close();
      return Bag.streamed(file, budget, 'its summary has no statistics');
    } catch (error) {
      await handle.close();
      if (error instanceof ImportError) throw error;
      return Bag.streamed(file, budget, (error as Error).message);
    }
  }

  /** A bag without a usable index: schemas and channels (and counts) come from one pass over it. */
  private static async streamed(file: SourceFile, budget: IngestBudget, reason: string): Promise<Bag> {
    const bag = new Bag(file, budget, undefined, undefined, reason, new Map(), new Map(), new Map(), undefined);
    let start: bigint | undefined;
    let end: bigint | undefined;
    for await (const message of bag.streamMessages(undefined)) {
      bag.counts.set(message.channel.id, (bag.counts.get(message.channel.id) ?? 0) + 1);
      if (start === undefined || message.logTime < start) start = message.logTime;
      if (end === undefined || message.logTime > end) end = message.logTime;
    }
    if (start !== undefined && end !== undefined) bag.span = { start, end };
    return bag;
  }

  async close(): Promise<void> {
    await this.handle?.close();
  }

  schemaOf(channel: McapChannel): McapSchema | undefined {
    return this.schemas.get(channel.schemaId);
  }

  /** The messages of `topics` (every topic when undefined), in log-time order when indexed, file order when streamed. */
  async *messages(topics: readonly string[] | undefined): AsyncGenerator<BagMessage> {
    if (!this.indexed) {
      yield* this.streamMessages(topics);
      return;
    }
    try {
      for await (const message of this.indexed.readMessages({ ...(topics ? { topics } : {}), validateCrcs: true })) {
        const channel = this.channels.get(message.channelId);
        if (channel) yield { channel, logTime: message.logTime, data: message.data };
      }
    } catch (error) {
      if (error instanceof ImportError) throw error;
      const near = this.readable?.lastRead;
      throw new ImportError(
        'MCAP_CORRUPT',
        `${this.file.path} cannot be read${near ? ` (the record at byte ${near.offset}, ${near.length} bytes)` : ''}: ${(error as Error).message}`,
        { file: this.file.path },
        near ? { offset: near.offset } : undefined,
      );
    }
  }

  /** The entries of the first metadata record named `name`, if the bag has one. */
  async metadata(name: string): Promise<ReadonlyMap<string, string> | undefined> {
    if (this.indexed) {
      for await (const record of this.indexed.readMetadata({ name })) return record.metadata;
      return undefined;
    }
    return this.streamedMetadata.get(name);
  }

  /** The first message of a topic, if it has one. */
  async first(topic: string): Promise<BagMessage | undefined> {
    for await (const message of this.messages([topic])) return message;
    return undefined;
  }

  private async *streamMessages(topics: readonly string[] | undefined): AsyncGenerator<BagMessage> {
    const wanted = topics ? new Set(topics) : undefined;
    const reader = new McapStreamReader({ decompressHandlers: decompressHandlers(this.file, this.budget), validateCrcs: true });
    const channels = this.channels as Map<number, McapChannel>;
    const schemas = this.schemas as Map<number, McapSchema>;
    const handle = await open(this.file.absolutePath, 'r');
    let offset = 0;
    try {
      for await (const chunk of handle.createReadStream({ highWaterMark: 1 << 20, autoClose: false })) {
        offset += (chunk as Buffer).length;
        reader.append(chunk as Buffer);
        for (;;) {
          let record;
          try {
            record = reader.nextRecord();
          } catch (error) {
            if (error instanceof ImportError) throw error;
            throw new ImportError('MCAP_CORRUPT', `${this.file.path} is damaged near byte ${offset}: ${(error as Error).message}`, {
              file: this.file.path,
            });
          }
          if (!record) break;
          if (record.type === 'Schema') schemas.set(record.id, record);
          else if (record.type === 'Channel') channels.set(record.id, record);
          else if (record.type === 'Metadata' && !this.streamedMetadata.has(record.name))
            this.streamedMetadata.set(record.name, record.metadata);
          else if (record.type === 'Message') {
            const channel = channels.get(record.channelId);
            if (channel && (!wanted || wanted.has(channel.topic))) yield { channel, logTime: record.logTime, data: record.data };
          }
        }
      }
      if (!reader.done()) this.truncated = true;
    } finally {
      await handle.close();
    }
  }
}
