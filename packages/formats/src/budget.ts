import type { ErrorLocation } from '@kura/schema';
import { ImportError } from './import-error.js';

/**
 * What reading one upload may decode (root README, "Resource budgets"). Checked from headers and
 * shapes before the memory is taken, so a small file that declares a huge array fails coded instead
 * of filling the child's memory.
 */
export interface IngestLimits {
  /** Longest NDJSON / JSON Lines line, and largest JSON metadata file (info.json, features.json), in bytes. */
  maxLineBytes: number;
  /**
   * Largest array decoded at once, in bytes: one HDF5 read (a dataset, or a batch of camera frames),
   * one parquet page, one TFRecord record, one feature of an NDJSON episode.
   */
  maxTensorBytes: number;
  /** Bytes the whole upload may decode to, per byte of upload (beyond `decodedFloorBytes`). */
  maxExpansion: number;
  /** Bytes any upload may decode to, however small. */
  decodedFloorBytes: number;
  /** Steps the whole upload may hold, per byte of upload (beyond `stepsFloor`). */
  stepsPerByte: number;
  /** Steps any upload may hold, however small. */
  stepsFloor: number;
}

/** The defaults: far above what real recordings need, far below what fills the child's memory. */
export const defaultIngestLimits: IngestLimits = {
  maxLineBytes: 64 * 1024 ** 2,
  maxTensorBytes: 1024 ** 3,
  maxExpansion: 100,
  decodedFloorBytes: 256 * 1024 ** 2,
  stepsPerByte: 1,
  stepsFloor: 100_000,
};

/** The limit a budget refused, as `details.limit` of INGEST_LIMIT_EXCEEDED. */
export type IngestLimitName = 'lineBytes' | 'tensorBytes' | 'decodedBytes' | 'steps';

/** The environment variables that set each limit (packages/core/src/config/config.ts), for messages. */
const variables: Record<IngestLimitName, string> = {
  lineBytes: 'KURA_INGEST_MAX_LINE_BYTES',
  tensorBytes: 'KURA_INGEST_MAX_TENSOR_BYTES',
  decodedBytes: 'KURA_INGEST_MAX_EXPANSION, KURA_INGEST_DECODED_FLOOR_BYTES',
  steps: 'KURA_INGEST_STEPS_PER_BYTE, KURA_INGEST_STEPS_FLOOR',
};

/**
 * The resource budget of one upload. Importers ask before they allocate (`reserveBytes` from a
 * declared size, `reserveSteps` from a declared length); the ingest settles each episode read
 * (`settleEpisode`), which covers whatever an importer could not tell beforehand. The upload's
 * usage is the larger of the two counts, so nothing is counted twice.
 */
export class IngestBudget {
  readonly limits: IngestLimits;
  /** Bytes the upload may decode to: `maxExpansion` × its size + `decodedFloorBytes`. */
  readonly maxDecodedBytes: number;
  /** Steps the upload may hold: `stepsPerByte` × its size + `stepsFloor`. */
  readonly maxSteps: number;
  private reservedBytes = 0;
  private settledBytes = 0;
  private reservedSteps = 0;
  private settledSteps = 0;
  private readonly reservedKeys = new Set<string>();

  constructor(
    /** Bytes of the upload's files (after extraction), the measure of every relative limit. */
    readonly sourceBytes: number,
    limits: Partial<IngestLimits> = {},
  ) {
    this.limits = { ...defaultIngestLimits, ...limits };
    this.maxDecodedBytes = Math.floor(this.limits.maxExpansion * sourceBytes + this.limits.decodedFloorBytes);
    this.maxSteps = Math.floor(this.limits.stepsPerByte * sourceBytes + this.limits.stepsFloor);
  }

  /** A budget for the source with the given limits (the defaults where none is given). */
  static forSource(source: { files: ReadonlyArray<{ bytes: number }> }, limits: Partial<IngestLimits> = {}): IngestBudget {
    return new IngestBudget(
      source.files.reduce((total, file) => total + file.bytes, 0),
      limits,
    );
  }

  /** The budget the ingest passed in the context, or one with the default limits (an importer used on its own). */
  static of(context: { budget?: IngestBudget }, source: { files: ReadonlyArray<{ bytes: number }> }): IngestBudget {
    return context.budget ?? IngestBudget.forSource(source);
  }

  /** Before reading a line (or a JSON document) of `bytes` bytes. */
  checkLine(bytes: number, at: ErrorLocation, what = 'a line'): void {
    if (bytes > this.limits.maxLineBytes) throw this.exceeded('lineBytes', bytes, this.limits.maxLineBytes, at, `${what} is longer than`);
  }

  /**
   * Before decoding `bytes` at once (`what` says what, for the message): refused past
   * `maxTensorBytes`, and past the upload's decoded budget together with what it decoded so far.
   */
  reserveBytes(bytes: number, at: ErrorLocation, what: string): void {
    this.checkTensor(bytes, at, what);
    this.reservedBytes += bytes;
    this.checkDecoded(at);
  }

  /** Refuses one array of `bytes` past `maxTensorBytes` (a column that grows as it is read), counting nothing. */
  checkTensor(bytes: number, at: ErrorLocation, what: string): void {
    if (!Number.isFinite(bytes) || bytes > this.limits.maxTensorBytes)
      throw this.exceeded('tensorBytes', bytes, this.limits.maxTensorBytes, at, `${what} would decode to more than`);
  }

  /**
   * Counts `bytes` towards the upload's decoded budget once per `key`: a parquet column chunk that
   * several episodes read from is decoded piecemeal (its pages are checked one by one), but counts once.
   */
  reserveOnce(key: string, bytes: number, at: ErrorLocation): void {
    if (this.reservedKeys.has(key)) return;
    this.reservedKeys.add(key);
    this.reservedBytes += bytes;
    this.checkDecoded(at);
  }

  /** Whether `bytes` more would still fit the upload's decoded budget: checked before a long read made in pieces. */
  checkAhead(bytes: number, at: ErrorLocation): void {
    const used = Math.max(this.reservedBytes + bytes, this.settledBytes);
    if (used > this.maxDecodedBytes)
      throw this.exceeded('decodedBytes', used, this.maxDecodedBytes, at, `the upload (${this.sourceBytes} bytes) decodes to more than`);
  }

  /** Before reading an episode of `steps` steps, its length known from a header (an HDF5 shape, parquet rows). */
  reserveSteps(steps: number, at: ErrorLocation): void {
    this.reservedSteps += steps;
    this.checkSteps(at);
  }

  /** After an episode was read: what it holds in memory, and its steps. */
  settleEpisode(episode: { bytes: number; steps: number }, at: ErrorLocation): void {
    this.settledBytes += episode.bytes;
    this.settledSteps += episode.steps;
    this.checkDecoded(at);
    this.checkSteps(at);
  }

  private checkDecoded(at: ErrorLocation): void {
    const used = Math.max(this.reservedBytes, this.settledBytes);
    if (used > this.maxDecodedBytes)
      throw this.exceeded('decodedBytes', used, this.maxDecodedBytes, at, `the upload (${this.sourceBytes} bytes) decodes to more than`);
  }

  private checkSteps(at: ErrorLocation): void {
    const used = Math.max(this.reservedSteps, this.settledSteps);
    if (used > this.maxSteps) {
      throw new ImportError(
        'INGEST_LIMIT_EXCEEDED',
        `the upload (${this.sourceBytes} bytes) holds more than ${this.maxSteps} steps (${used} so far): at most ${this.limits.stepsPerByte} per byte of upload + ${this.limits.stepsFloor} (${variables.steps})`,
        at,
        { limit: 'steps', value: used, max: this.maxSteps, variables: variables.steps },
      );
    }
  }

  private exceeded(limit: IngestLimitName, value: number, max: number, at: ErrorLocation, what: string): ImportError {
    const rule =
      limit === 'decodedBytes' ? `: at most ${this.limits.maxExpansion} × its size + ${this.limits.decodedFloorBytes} bytes` : '';
    return new ImportError('INGEST_LIMIT_EXCEEDED', `${what} ${max} bytes (${value})${rule} (${variables[limit]})`, at, {
      limit,
      value,
      max,
      variables: variables[limit],
    });
  }
}
