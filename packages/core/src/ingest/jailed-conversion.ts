import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImportError, type DatasetStatsJson, type FormatName, type ImportIssue } from '@kura/formats';
import type { FeatureSpec, ErrorLocation } from '@kura/schema';
import { startJailed, type JailExit, type JailLevel, type JailLimits } from '@kura/jail';
import type { ConversionMessage, ConversionRequest, ConvertedEpisode, VideoFile } from './upload-conversion.js';

/** Where Kura's code is: the jail mounts its `packages/` and `node_modules/` read-only, nothing else of it. */
const codeRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const childScript = join(codeRoot, 'packages/core/dist/ingest/ingest-child.js');

export interface ConversionLimits {
  memoryBytes: number;
  cpuSeconds: number;
  wallClockMs: number;
  /** Largest file the child may write: an extracted file or a shard. */
  fileSizeBytes: number;
}

export interface ConvertedShard {
  number: number;
  path: string;
  bytes: number;
  sha256: string;
  episodes: ConvertedEpisode[];
  videos: VideoFile[];
}

/** What the parent does with the child's news, in the order it comes. */
export interface ConversionHandlers {
  format(format: FormatName): Promise<void>;
  warning(issue: ImportIssue): void;
  progress(episodes: number, expected: number | null): Promise<void>;
  /** Takes the shard file (and the videos its episodes first used) into the blob store. */
  shard(shard: ConvertedShard): Promise<void>;
}

export interface ConversionOutcome {
  format: FormatName;
  features: FeatureSpec;
  fps: number;
  steps: number;
  episodes: number;
  stats: DatasetStatsJson;
}

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
  if (!existsSync(childScript)) throw new Error(`${childScript} is missing: build Kura first (npm run build)`);
  const { request, limits } = params;
  const jailLimits: JailLimits = { ...limits, maxMessageBytes: MAX_MESSAGE_BYTES, openFiles: 1024 };
  const child = startJailed({
    level: params.level,
    script: childScript,
    mounts: [
      { path: join(codeRoot, 'packages') },
      { path: join(codeRoot, 'node_modules') },
      { path: request.work, writable: true },
      ...(request.rawPath.startsWith(`${request.work}/`) ? [] : [{ path: request.rawPath }]),
    ],
    cwd: request.work,
    limits: jailLimits,
  });
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
          await params.handlers.format(message.format);
          break;
        case 'opened':
          opened = message;
          break;
        case 'warning':
          params.handlers.warning(message.issue);
          break;
        case 'episode':
          location = { file: message.file, episode: message.count };
          if (Date.now() - lastProgress > 1000) {
            lastProgress = Date.now();
            await params.handlers.progress(message.count, opened?.expectedEpisodes ?? null);
          }
          break;
        case 'shard':
          await params.handlers.shard(message);
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
  throw deathError(exit, failure, location, limits);
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
