import { link, open, type FileHandle } from 'node:fs/promises';
import { writeChunksFully, type FormatName, type ImportIssue } from '@kura/formats';
import type { ConversionHandlers, ConversionOutcome, ConvertedShard } from './conversion-handlers.js';

/** Most warnings kept for the replay: the ingest keeps 1,000 and counts the rest, so these are enough. */
const KEPT_WARNINGS = 1001;

/** A writer this far behind the body gives the early conversion up rather than hold more of it in memory. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

type Recorded = { kind: 'format'; format: FormatName } | { kind: 'warning'; issue: ImportIssue } | { kind: 'shard'; shard: ConvertedShard };

/**
 * Handlers that hold what a conversion says, in order, until someone takes it over: a conversion
 * started before its upload exists (nothing may be written for it yet) is handed to the ingest job,
 * which gets what was held and, from then on, each event as it comes.
 */
export class RecordedConversion {
  private events: Recorded[] = [];
  private keptWarnings = 0;
  private droppedWarnings = 0;
  private readonly flushing: Array<Promise<void>> = [];
  /** Who takes the events once forward() was called. */
  private target: ConversionHandlers | undefined;
  /** Events are handled one after another; it rejects once one of them failed. */
  private delivered: Promise<void> = Promise.resolve();

  readonly handlers: ConversionHandlers = {
    format: (format) => this.deliver({ kind: 'format', format }),
    // Not waited for, as handlers' warnings never are; a failure shows in the next event's.
    warning: (issue) => void this.deliver({ kind: 'warning', issue }).catch(() => undefined),
    // No upload to show progress on before the job takes over; the job's own after.
    progress: async (episodes, expected) => this.target?.progress(episodes, expected),
    shard: (shard) => this.deliver({ kind: 'shard', shard }),
  };

  /** Hands what was held to `handlers`, and every later event as it comes. */
  forward(handlers: ConversionHandlers): Promise<void> {
    this.delivered = this.delivered.then(async () => {
      await Promise.all(this.flushing);
      let lastWarning: ImportIssue | undefined;
      for (const event of this.events) {
        if (event.kind === 'warning') lastWarning = event.issue;
        await apply(handlers, event);
      }
      // Counted, not kept: the ingest keeps fewer than were held and only counts the rest.
      for (let dropped = 0; lastWarning && dropped < this.droppedWarnings; dropped++) handlers.warning(lastWarning);
      this.events = [];
      this.target = handlers;
    });
    return this.delivered;
  }

  /** Settles once every event so far was handled (rejects when one failed). */
  settled(): Promise<void> {
    return this.delivered;
  }

  private deliver(event: Recorded): Promise<void> {
    this.delivered = this.delivered.then(() => (this.target ? apply(this.target, event) : this.hold(event)));
    return this.delivered;
  }

  private hold(event: Recorded): void {
    if (event.kind === 'warning') {
      if (this.keptWarnings >= KEPT_WARNINGS) return void this.droppedWarnings++;
      this.keptWarnings++;
    }
    // Written to disk now, while the child goes on: adopting it later is then quick.
    if (event.kind === 'shard') this.flushing.push(flushToDisk(event.shard.path));
    this.events.push(event);
  }
}

async function apply(handlers: ConversionHandlers, event: Recorded): Promise<void> {
  if (event.kind === 'format') await handlers.format(event.format);
  else if (event.kind === 'shard') await handlers.shard(event.shard);
  else handlers.warning(event.issue);
}

/**
 * An upload converted while it is received (ConversionChildren.startArriving). The jailed child
 * reads `rawPath` as it grows: a hard link to the file the blob store writes the body to (no copy),
 * or, where the store writes none (S3), a file the body's chunks are written to in order, without
 * holding the body back. Until the upload is recorded and its ingest job runs, what the child makes
 * is only held; the job then takes it over as it goes on (or, when the dataset moved on meanwhile,
 * abandons it and converts the stored upload as usual).
 */
export class ArrivingConversion {
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
      /**
       * How it gets there: `shared`, the store's own file is linked (share); `written`, the chunks
       * are written to it (write). Decided ahead: a body's first chunks pass before the store has
       * its file, and must not go both ways.
       */
      feed: 'shared' | 'written';
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

  /** The local file the body is being stored in, before any of it is (feed `shared`): linked for the child to read. */
  async share(path: string): Promise<void> {
    if (this.parts.feed !== 'shared' || this.released) return;
    // Another filesystem: the stored upload is converted after the 202 instead.
    await link(path, this.parts.rawPath).catch(() => this.abandon());
  }

  /** A chunk of the body, in order (feed `written`). Never waits: a writer too far behind gives the conversion up instead. */
  write(chunk: Buffer): void {
    if (this.released || this.parts.feed !== 'written') return;
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
   * Hands what the child made so far to `handlers`, then the rest as it comes, as a conversion in
   * the ingest job would have; frees its folder at the end. Rejects with the conversion's error when
   * it failed (then some shards may have been handed over already).
   */
  async replay(handlers: ConversionHandlers): Promise<ConversionOutcome> {
    try {
      await this.parts.recorded.forward(handlers);
      const result = await this.result;
      await this.parts.recorded.settled();
      if ('error' in result) throw result.error;
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
