import { link, open, type FileHandle } from 'node:fs/promises';
import { writeChunksFully, type FormatName, type ImportIssue } from '@kura/formats';
import type { ConversionHandlers, ConversionOutcome, ConvertedShard } from './conversion-handlers.js';

/** Most warnings kept for the replay: the ingest keeps 1,000 and counts the rest, so these are enough. */
const KEPT_WARNINGS = 1001;

/** A writer this far behind the body gives the early conversion up rather than hold more of it in memory. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

type Recorded = { kind: 'format'; format: FormatName } | { kind: 'warning'; issue: ImportIssue } | { kind: 'shard'; shard: ConvertedShard };

/**
 * Handlers that only remember what a conversion said, in order: a conversion started before its
 * upload exists (nothing may be written for it yet) is handed over to the ingest job by replaying them.
 */
export class RecordedConversion {
  private readonly events: Recorded[] = [];
  private keptWarnings = 0;
  private droppedWarnings = 0;
  private readonly flushing: Array<Promise<void>> = [];

  readonly handlers: ConversionHandlers = {
    format: async (format) => void this.events.push({ kind: 'format', format }),
    warning: (issue) => {
      if (this.keptWarnings >= KEPT_WARNINGS) return void this.droppedWarnings++;
      this.keptWarnings++;
      this.events.push({ kind: 'warning', issue });
    },
    // No upload to show progress on yet.
    progress: async () => undefined,
    shard: async (shard) => {
      this.events.push({ kind: 'shard', shard });
      // Written to disk now, while the child goes on: adopting it at the replay is then quick.
      this.flushing.push(flushToDisk(shard.path));
    },
  };

  async replay(handlers: ConversionHandlers): Promise<void> {
    await Promise.all(this.flushing);
    let lastWarning: ImportIssue | undefined;
    for (const event of this.events) {
      if (event.kind === 'format') await handlers.format(event.format);
      else if (event.kind === 'shard') await handlers.shard(event.shard);
      else handlers.warning((lastWarning = event.issue));
    }
    // Counted, not kept: the ingest keeps fewer than were recorded and only counts the rest.
    for (let dropped = 0; lastWarning && dropped < this.droppedWarnings; dropped++) handlers.warning(lastWarning);
  }
}

/**
 * An upload converted while it is received (ConversionChildren.startArriving). The jailed child
 * reads `rawPath` as it grows: a hard link to the file the blob store writes the body to (no copy),
 * or, where the store writes none (S3), a file the body's chunks are written to in order, without
 * holding the body back. Until the upload is recorded and its ingest job runs, what the child makes
 * is only remembered; the job then replays it (or, when the dataset moved on meanwhile, abandons it
 * and converts the stored upload as usual).
 */
export class ArrivingConversion {
  private how: 'undecided' | 'linked' | 'written' = 'undecided';
  private file: FileHandle | undefined;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private writing: Promise<void> | undefined;
  /** Set once the conversion is given up: the body broke off, the upload was refused, or writing failed. */
  private released: Promise<void> | undefined;
  /** How the child's conversion ended (never rejects). */
  readonly result: Promise<{ outcome: ConversionOutcome } | { error: unknown }>;

  constructor(
    private readonly parts: {
      /** The file the child reads (read-only to it; it waits for it to appear). */
      rawPath: string;
      finished: Promise<ConversionOutcome>;
      recorded: RecordedConversion;
      /** Ends the child and removes its folder. */
      release: () => Promise<void>;
      /** Gives the child its whole deadline again from now. */
      restartDeadline: () => void;
    },
  ) {
    this.result = parts.finished.then(
      (outcome) => ({ outcome }),
      (error: unknown) => ({ error }),
    );
  }

  /** The local file the body is being stored in, before any of it is: linked for the child to read (chunks are then not written). */
  async share(path: string): Promise<void> {
    if (this.how !== 'undecided' || this.released) return;
    try {
      await link(path, this.parts.rawPath);
      this.how = 'linked';
    } catch {
      // Another filesystem: the chunks are written instead.
    }
  }

  /** A chunk of the body, in order. Never waits: a writer too far behind gives the conversion up instead. */
  write(chunk: Buffer): void {
    if (this.released || this.how === 'linked') return;
    this.how = 'written';
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > MAX_QUEUED_BYTES) return void this.abandon();
    this.writing ??= this.drain().finally(() => (this.writing = undefined));
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.released) {
        const batch = this.queue;
        this.queue = [];
        this.file ??= await open(this.parts.rawPath, 'wx');
        await writeChunksFully(this.file, batch);
        for (const chunk of batch) this.queuedBytes -= chunk.length;
      }
    } catch {
      void this.abandon(); // a full disk under the spare: the stored upload is converted as usual
    }
  }

  /** All of the body has come and is stored: false when the conversion was given up meanwhile. */
  async arrived(): Promise<boolean> {
    while (this.writing) await this.writing;
    await this.close();
    if (this.released) return false;
    this.parts.restartDeadline();
    return true;
  }

  /** Gives the conversion up: ends the child and removes its files. */
  abandon(): Promise<void> {
    this.released ??= (async () => {
      this.queue = [];
      while (this.writing) await this.writing;
      await this.close();
      await this.parts.release();
    })();
    return this.released;
  }

  /**
   * Hands what the child made to `handlers` as a conversion in the ingest job would have, then frees
   * its folder. Rejects with the child's error when it failed.
   */
  async replay(handlers: ConversionHandlers): Promise<ConversionOutcome> {
    try {
      const result = await this.result;
      if ('error' in result) throw result.error;
      await this.parts.recorded.replay(handlers);
      return result.outcome;
    } finally {
      await this.abandon();
    }
  }

  private async close(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    await file?.close().catch(() => undefined);
  }
}

/** fsyncs a file (a failure is left for whoever adopts it to meet again). */
async function flushToDisk(path: string): Promise<void> {
  try {
    const file = await open(path, 'r');
    await file.sync().finally(() => file.close());
  } catch {
    // The blob store's adoption syncs the file again and reports what fails.
  }
}
