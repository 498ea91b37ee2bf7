import { existsSync } from 'node:fs';
import { link, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImportError, type DatasetStatsJson, type FormatName, type ImportIssue } from '@kura/formats';
import type { FeatureSpec, ErrorLocation } from '@kura/schema';
import { startJailed, type JailedProcess, type JailExit, type JailLevel } from '@kura/jail';
import { ArrivingConversion, RecordedConversion } from './arriving-conversion.js';
import type { ConversionHandlers, ConversionLimits, ConversionOutcome } from './conversion-handlers.js';
import { READING_FILE, type ConversionMessage, type ConversionRequest } from './upload-conversion.js';

export type { ConversionHandlers, ConversionLimits, ConversionOutcome, ConvertedShard } from './conversion-handlers.js';

/** Where Kura's code is: the jail mounts its `packages/` and `node_modules/` read-only, nothing else of it. */
const codeRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..');
const childScript = join(codeRoot, 'packages/core/dist/uploads/ingest/ingest-child.js');

const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/**
 * Converts an upload in a jailed child (packages/jail) and hands its results to `handlers`. The
 * child's data problems come back as ImportError (coded, with their location); so does its death,
 * whatever caused it — INGEST_MEMORY_LIMIT, INGEST_TIMEOUT, INGEST_FILE_SIZE_LIMIT, INGEST_CRASHED —
 * located at the episode it was reading. The api or worker process is never at risk.
 */
export async function convertInJail(params: {
  level: JailLevel;
  request: ConversionRequest;
  limits: ConversionLimits;
  handlers: ConversionHandlers;
}): Promise<ConversionOutcome> {
  const { request } = params;
  const child = startConversionChild(params.level, params.limits, {
    work: request.work,
    readOnly: request.rawPath.startsWith(`${request.work}/`) ? [] : [request.rawPath],
  });
  return runConversion(child, request, params.limits, params.handlers);
}

/**
 * Node flags of the child. Under the jail's heap limit (1.2 GiB at the default 2 GiB) V8 starts with
 * a small old-generation budget and ran 31 full collections on the reference upload (5 without the
 * limit): a first budget of 256 MiB brings that back to 4, −0.5 s on 1.8 s. A budget, not memory taken.
 * Numeric steps make many small objects that live for an episode or a line batch: with V8's 16 MiB
 * semi-spaces, scavenges copied them over and over (0.96 s of GC in 4.4 s for 100,000 five-step
 * episodes, 0.77 s for the same steps as 200 episodes); up to 64 MiB, 0.50 s and 0.23 s. Uploads of
 * images barely scavenge either way.
 */
const CHILD_NODE_OPTIONS = ['--initial-old-space-size=256', '--max-semi-space-size=64'];

function startConversionChild(level: JailLevel, limits: ConversionLimits, folders: { work: string; readOnly: string[] }): JailedProcess {
  if (!existsSync(childScript)) throw new Error(`${childScript} is missing: build Kura first (npm run build)`);
  return startJailed({
    level,
    script: childScript,
    mounts: [
      { path: join(codeRoot, 'packages') },
      { path: join(codeRoot, 'node_modules') },
      { path: folders.work, writable: true },
      ...folders.readOnly.map((path) => ({ path })),
    ],
    cwd: folders.work,
    limits: { ...limits, maxMessageBytes: MAX_MESSAGE_BYTES, openFiles: 1024 },
    nodeOptions: CHILD_NODE_OPTIONS,
  });
}

/** Sends the request to a started child and follows it to its end. */
async function runConversion(
  child: JailedProcess,
  request: ConversionRequest,
  limits: ConversionLimits,
  handlers: ConversionHandlers,
): Promise<ConversionOutcome> {
  child.send(request);
  child.endInput();

  let format: FormatName | undefined;
  let opened: { features: FeatureSpec; fps: number; expectedEpisodes: number | null } | undefined;
  let done: { steps: number; episodes: number; stats: DatasetStatsJson } | undefined;
  let failure: { issue: ImportIssue; coded: boolean } | undefined;
  let location: ErrorLocation = {};
  let lastProgress = 0;
  try {
    for await (const raw of child.messages()) {
      const message = raw as ConversionMessage;
      switch (message.type) {
        case 'format':
          format = message.format;
          await handlers.format(message.format);
          break;
        case 'opened':
          opened = message;
          break;
        case 'warning':
          handlers.warning(message.issue);
          break;
        case 'episode':
          location = { file: message.file, episode: message.count };
          if (Date.now() - lastProgress > 1000) {
            lastProgress = Date.now();
            await handlers.progress(message.count, opened?.expectedEpisodes ?? null);
          }
          break;
        case 'shard':
          await handlers.shard(message);
          break;
        case 'done':
          done = message;
          break;
        case 'failed':
          failure = message;
          break;
      }
    }
  } catch (error) {
    child.kill(); // the parent could not take a shard over: the child's work is moot
    await child.exit;
    throw error;
  }
  const exit = await child.exit;
  if (failure?.coded) {
    const { issue } = failure;
    throw new ImportError(issue.code, issue.message, issue.location, issue.details);
  }
  if (exit.outcome === 'ok' && done && opened && format) return { format, ...opened, ...done };
  throw deathError(exit, failure, (await lastReading(request.work)) ?? location, limits);
}

/** The location the child last wrote into READING_FILE: as recent as its last message, or more. */
async function lastReading(work: string): Promise<ErrorLocation | undefined> {
  try {
    const reading = JSON.parse(await readFile(join(work, READING_FILE), 'utf8')) as { file?: unknown; episode?: unknown };
    if (typeof reading.file !== 'string' || typeof reading.episode !== 'number') return undefined;
    return { file: reading.file, episode: reading.episode };
  } catch {
    return undefined; // none written, or cut short
  }
}

/** The coded error for a child that did not finish: its limit, or a crash (an uncoded error is a crash too). */
function deathError(
  exit: JailExit,
  failure: { issue: ImportIssue } | undefined,
  location: ErrorLocation,
  limits: ConversionLimits,
): ImportError {
  const said = failure?.issue.message ?? '';
  const mebibytes = Math.round(limits.memoryBytes / (1024 * 1024));
  if (exit.outcome === 'memory' || /allocation failed|out of memory/i.test(said))
    return new ImportError(
      'INGEST_MEMORY_LIMIT',
      `reading the upload needed more than ${mebibytes} MiB of memory (KURA_INGEST_MEMORY_MB); an episode this large cannot be imported here`,
      location,
    );
  if (exit.outcome === 'timeout' || exit.outcome === 'cpu')
    return new ImportError(
      'INGEST_TIMEOUT',
      `reading the upload took longer than ${Math.round(limits.wallClockMs / 1000)} s (KURA_INGEST_TIMEOUT_S)`,
      location,
    );
  // The disk under the work folder is full: the server's problem, said as such (ingest.service fails the upload and frees its files).
  if (/ENOSPC|EDQUOT/.test(said))
    return new ImportError(
      'STORAGE_FULL',
      'the server ran out of disk space while importing this upload (its work folder is full)',
      location,
    );
  if (exit.outcome === 'file-size' || /EFBIG/.test(said))
    return new ImportError(
      'INGEST_FILE_SIZE_LIMIT',
      `the upload expands to a file larger than ${limits.fileSizeBytes} bytes (KURA_ARCHIVE_MAX_EXPANDED_BYTES)`,
      location,
    );
  const how = failure ? `an unexpected error: ${said}` : exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`;
  return new ImportError(
    'INGEST_CRASHED',
    `the importer stopped with ${how}; this is a Kura bug worth reporting with the upload`,
    location,
  );
}

/** How long a spare child waits for an upload before it is let go (it holds ~60 MB). */
const SPARE_IDLE_MS = 60_000;

/** Numbers spares' folders within this process (whatever ConversionChildren started them). */
let spareSequence = 0;

interface Spare {
  child: JailedProcess;
  /** Its own folder: `in/` (read-only to the child; the upload is linked there) and `work/`. */
  folder: string;
  /** Whether an upload was handed to it. */
  leased: boolean;
  /** Settles once the child has ended (and, unless leased, its folder is removed). */
  gone: Promise<void>;
}

/**
 * Conversion children of one process, with one spare started ahead: a fresh child spends ~0.4 s
 * loading its modules (apache-arrow, zod, h5wasm, hyparquet…), which a spare does while the upload
 * is still arriving. Still one child per upload, never reused: the spare was started for nobody and
 * sees only its own empty folder until the upload is linked into it (a hard link in a folder
 * mounted read-only, so the child can read the stored bytes but not change them).
 */
export class ConversionChildren {
  private spare: Spare | undefined;
  private preparing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly options: {
      level: JailLevel;
      limits: ConversionLimits;
      /** Where spares' folders go: on the same filesystem as the uploads, so they can be linked. */
      root: string;
    },
  ) {}

  /** Starts a spare when there is none (a no-op when the build is missing: the conversion will say so). */
  prepare(): Promise<void> {
    this.preparing ??= this.startSpare().finally(() => (this.preparing = undefined));
    return this.preparing;
  }

  private async startSpare(): Promise<void> {
    if (this.closed || this.spare?.child.alive || !existsSync(childScript)) return;
    const folder = join(this.options.root, `${process.pid}-${++spareSequence}`);
    await mkdir(join(folder, 'in'), { recursive: true });
    await mkdir(join(folder, 'work'));
    if (this.closed) return void (await rm(folder, { recursive: true, force: true }));
    const child = startConversionChild(
      this.options.level,
      { ...this.options.limits, wallClockMs: SPARE_IDLE_MS },
      { work: join(folder, 'work'), readOnly: [join(folder, 'in')] },
    );
    const spare: Spare = {
      child,
      folder,
      leased: false,
      // An idle spare's folder goes with it; a leased one's when the parent is done with its shards.
      gone: child.exit.then(async () => {
        if (this.spare === spare) this.spare = undefined;
        if (!spare.leased) await rm(folder, { recursive: true, force: true }).catch(() => undefined);
      }),
    };
    this.spare = spare;
  }

  /** Converts in the spare when there is one, else in a child started now; then starts the next spare. */
  async convert(request: ConversionRequest, handlers: ConversionHandlers): Promise<ConversionOutcome> {
    const spare = await this.takeSpare(request.rawPath);
    try {
      if (!spare) return await convertInJail({ level: this.options.level, request, limits: this.options.limits, handlers });
      try {
        return await runConversion(
          spare.child,
          { ...request, rawPath: join(spare.folder, 'in', 'raw'), work: join(spare.folder, 'work') },
          this.options.limits,
          handlers,
        );
      } finally {
        await releaseSpare(spare);
      }
    } finally {
      // The next one is started after, not during: on two cores its module loading slowed this one by ~20 %.
      void this.prepare().catch(() => undefined);
    }
  }

  /**
   * Starts converting an upload that is still being received, in the spare (started now when there
   * is none): the stored upload is linked as the spare's read-only `in/raw`, or its bytes written
   * there as they come (ArrivingConversion), and the child reads them as they land. Undefined when
   * no child can be had.
   */
  async startArriving(
    request: Omit<ConversionRequest, 'rawPath' | 'work' | 'arriving'>,
    bytes: number,
    feed: 'shared' | 'written',
  ): Promise<ArrivingConversion | undefined> {
    await this.prepare();
    const spare = this.leaseSpare();
    if (!spare) return undefined;
    const rawPath = join(spare.folder, 'in', 'raw');
    const recorded = new RecordedConversion();
    const finished = runConversion(
      spare.child,
      { ...request, rawPath, work: join(spare.folder, 'work'), arriving: { bytes } },
      this.options.limits,
      recorded.handlers,
    );
    // The next spare once this child is done, as after any conversion.
    void finished.catch(() => undefined).finally(() => void this.prepare().catch(() => undefined));
    return new ArrivingConversion({
      rawPath,
      feed,
      finished,
      recorded,
      release: () => releaseSpare(spare),
      restartDeadline: () => spare.child.restartDeadline(this.options.limits.wallClockMs),
    });
  }

  /** Lets the spare go (at shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await this.preparing;
    const spare = this.spare;
    this.spare = undefined;
    if (!spare) return;
    spare.child.kill();
    await spare.gone;
  }

  /** The spare, taken for one upload, when there is a live one: from now on it has its whole deadline for it. */
  private leaseSpare(): Spare | undefined {
    const spare = this.spare;
    if (!spare?.child.alive) return undefined;
    this.spare = undefined;
    spare.leased = true;
    spare.child.restartDeadline(this.options.limits.wallClockMs);
    return spare;
  }

  /** The spare with the upload linked into it; undefined when there is none or the link cannot be made (another filesystem). */
  private async takeSpare(rawPath: string): Promise<Spare | undefined> {
    const spare = this.leaseSpare();
    if (!spare) return undefined;
    try {
      await link(rawPath, join(spare.folder, 'in', 'raw'));
      return spare;
    } catch {
      spare.leased = false; // its folder goes with it
      spare.child.kill();
      return undefined;
    }
  }
}

/** Ends a leased spare's child (a no-op once it has ended, as it has unless the parent gave up on it) and removes its folder. */
async function releaseSpare(spare: Spare): Promise<void> {
  spare.child.kill();
  await spare.child.exit;
  await rm(spare.folder, { recursive: true, force: true }).catch(() => undefined);
}
