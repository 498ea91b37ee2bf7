import type { Readable } from 'node:stream';

/** Injection token of the BlobStore. */
export const BLOB_STORE = Symbol('BLOB_STORE');

export interface BlobInfo {
  key: string;
  bytes: number;
  lastModified: Date;
}

export interface ByteRange {
  /** First byte, 0-based. */
  offset: number;
  /** How many bytes; to the end of the blob when absent. */
  length?: number;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
}

/**
 * Where Kura keeps bytes: uploads, Arrow shards, videos, body models. Keys are relative
 * slash-separated paths (`datasets/ds_1/versions/3/shards/0.arrow`). Every operation streams;
 * nothing here holds a whole blob in memory.
 *
 * Adapters: filesystem (embedded mode) and S3 (services mode). Both pass one contract suite.
 */
/** Told the local file a blob is being written to (see BlobStore.put). */
export type LocalFileListener = (path: string) => Promise<void>;

export interface BlobStore {
  readonly kind: 'filesystem' | 's3';
  /**
   * Writes a blob from a stream; visible to readers only once complete (never half-written). A
   * store that writes a local file calls `onLocalFile` with it once it exists, before its first byte
   * (an upload converted as it arrives reads it there); others never call it.
   */
  put(params: { key: string; body: Readable | Buffer; contentType?: string; onLocalFile?: LocalFileListener }): Promise<{ bytes: number }>;
  /** Reads a blob or a byte range of it. Throws BlobNotFoundError when absent; a range past the end is BlobRangeError. */
  get(params: { key: string; range?: ByteRange }): Promise<Readable>;
  /** Size and date of a blob, or undefined when there is none. */
  head(params: { key: string }): Promise<BlobInfo | undefined>;
  /** Deletes a blob; deleting an absent key is not an error (idempotent). */
  delete(params: { key: string }): Promise<void>;
  /** Every blob whose key starts with `prefix`, in key order. */
  list(params: { prefix: string }): AsyncIterable<BlobInfo>;
  /** Starts a multipart write (parts of ≥ 5 MiB except the last, as S3 requires). */
  createMultipartUpload(params: { key: string; contentType?: string }): Promise<{ uploadId: string }>;
  /** Writes one part (1-based number, up to 10,000); writing the same number again replaces it. */
  uploadPart(params: {
    key: string;
    uploadId: string;
    partNumber: number;
    body: Readable | Buffer;
    bytes?: number;
  }): Promise<CompletedPart>;
  /** Joins the parts, in partNumber order, into the blob. */
  completeMultipartUpload(params: { key: string; uploadId: string; parts: CompletedPart[] }): Promise<{ bytes: number }>;
  abortMultipartUpload(params: { key: string; uploadId: string }): Promise<void>;
  /**
   * A URL a client can PUT one part to directly, bypassing the API (S3 only: the filesystem store
   * has none, and parts then go through the API).
   */
  /**
   * The blob as a file on this machine, when the store keeps it as one (filesystem store), so a
   * worker can read it in place instead of copying it out first.
   */
  localPath?(params: { key: string }): Promise<string | undefined>;
  /**
   * Stores a finished local file as the blob, taking it over: the filesystem store renames it into
   * place when it is on the same filesystem (no copy). The file is gone afterwards.
   */
  adoptFile?(params: { key: string; path: string }): Promise<{ bytes: number }>;
  presignUploadPart?(params: { key: string; uploadId: string; partNumber: number; expiresInSeconds: number }): Promise<string>;
  /** Throws when the store cannot be used (for /health). */
  ping(): Promise<void>;
}

export class BlobNotFoundError extends Error {
  override name = 'BlobNotFoundError';
  constructor(readonly key: string) {
    super(`blob "${key}" does not exist`);
  }
}

export class BlobRangeError extends Error {
  override name = 'BlobRangeError';
  constructor(
    readonly key: string,
    readonly range: ByteRange,
    readonly size: number,
  ) {
    super(
      `range offset ${range.offset}${range.length !== undefined ? ` length ${range.length}` : ''} is outside blob "${key}" of ${size} bytes`,
    );
  }
}

export class InvalidBlobKeyError extends Error {
  override name = 'InvalidBlobKeyError';
}

const keyPattern = /^[A-Za-z0-9._\-=]+(\/[A-Za-z0-9._\-=]+)*$/;

/** Rejects keys that could escape the store's root or differ between adapters. */
export function assertValidBlobKey(key: string): void {
  if (key.length > 1024 || !keyPattern.test(key) || key.split('/').some((part) => part === '.' || part === '..')) {
    throw new InvalidBlobKeyError(`invalid blob key "${key}": use relative paths of letters, digits and . _ - =`);
  }
}

/** Smallest part S3 accepts, except for the last part of an upload. */
export const MIN_MULTIPART_PART_BYTES = 5 * 1024 * 1024;

/** Highest part number S3 accepts. */
export const MAX_MULTIPART_PART_NUMBER = 10_000;

/**
 * The inclusive byte span a range selects in a blob of `size` bytes. Like HTTP, a length running
 * past the end is clamped. Undefined when the range selects no bytes (an empty blob, or length 0).
 * Both adapters use this so that they agree on edge cases.
 *
 * @throws BlobRangeError when the offset is negative or not inside the blob (offset 0 of an empty
 * blob is allowed), or when a number is not a non-negative integer.
 */
export function resolveByteRange(params: { key: string; range: ByteRange; size: number }): { start: number; end: number } | undefined {
  const { key, range, size } = params;
  const lengthIsValid = range.length === undefined || (Number.isSafeInteger(range.length) && range.length >= 0);
  const offsetIsInside = Number.isSafeInteger(range.offset) && range.offset >= 0 && (range.offset < size || range.offset === 0);
  if (!lengthIsValid || !offsetIsInside) throw new BlobRangeError(key, range, size);
  if (size === 0 || range.length === 0) return undefined;
  return { start: range.offset, end: Math.min(size, range.offset + (range.length ?? size)) - 1 };
}

/** Rejects a part number S3 would refuse, so that both adapters refuse the same ones. */
export function assertValidPartNumber(partNumber: number): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_MULTIPART_PART_NUMBER) {
    throw new Error(`invalid multipart part number ${partNumber}: use an integer from 1 to ${MAX_MULTIPART_PART_NUMBER}`);
  }
}

/** The parts of a completion request in partNumber order; throws on an empty list or a repeated number. */
export function sortCompletedParts(params: { key: string; uploadId: string; parts: CompletedPart[] }): CompletedPart[] {
  const { key, uploadId, parts } = params;
  if (parts.length === 0) throw new Error(`cannot complete multipart upload "${uploadId}" of "${key}" without parts`);
  for (const part of parts) assertValidPartNumber(part.partNumber);
  const sorted = [...parts].sort((first, second) => first.partNumber - second.partNumber);
  sorted.forEach((part, index) => {
    if (index > 0 && sorted[index - 1]?.partNumber === part.partNumber) {
      throw new Error(`cannot complete multipart upload "${uploadId}" of "${key}": part ${part.partNumber} is listed twice`);
    }
  });
  return sorted;
}
