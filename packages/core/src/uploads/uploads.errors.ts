import { formatNames } from '@kura/schema';
import { bodyInterrupted } from '../blobs/store-body.js';
import { AppError, notFound } from '../errors/app-error.js';

export const uploadNotFound = (id: string) => notFound('UPLOAD_NOT_FOUND', 'upload', id);

export const uploadChecksumMismatch = (expected: string, actual: string) =>
  new AppError({
    code: 'UPLOAD_CHECKSUM_MISMATCH',
    kind: 'invalid',
    message: `the body's sha256 is ${actual}, but Content-SHA256 says ${expected}; nothing was stored`,
    details: { expected, actual },
  });

export const uploadEmpty = () => new AppError({ code: 'UPLOAD_EMPTY', kind: 'invalid', message: 'the upload body is empty' });

export const uploadTooLarge = (limit: number) =>
  new AppError({
    code: 'PAYLOAD_TOO_LARGE',
    kind: 'too_large',
    message: `the upload is larger than ${limit} bytes; use a multipart upload`,
    details: { limit },
  });

export const uploadNotOwned = (datasetId: string) =>
  new AppError({
    code: 'FORBIDDEN',
    kind: 'forbidden',
    message: `only the owner of dataset "${datasetId}" or an admin may upload to it`,
    details: { datasetId },
  });

/**
 * Stripe's rule: a key names one request. Reused with another body or dataset it is a client's
 * mistake (two uploads under one key), not a repeat, so it is refused rather than answered with the first.
 */
export const idempotencyKeyReused = (params: { idempotencyKey: string; uploadId: string; difference: string }) =>
  new AppError({
    code: 'IDEMPOTENCY_KEY_REUSED',
    kind: 'conflict',
    message: `Idempotency-Key "${params.idempotencyKey}" was used for upload ${params.uploadId}, ${params.difference}; send a new key for a new upload`,
    details: { uploadId: params.uploadId },
    location: { field: 'Idempotency-Key' },
  });

export const uploadInterrupted = (error: unknown) => bodyInterrupted('UPLOAD_INTERRUPTED', error);

/** What the upload declares (Content-Length) is over the limit: refused before a byte is read. */
export const uploadDeclaredTooLarge = (declared: number, limit: number) =>
  new AppError({
    code: 'PAYLOAD_TOO_LARGE',
    kind: 'too_large',
    message: `the upload declares ${declared} bytes, more than ${limit}; use a multipart upload`,
    details: { limit },
  });

/** A JSON body that is not a resumable upload's start (`details`: its zod issues). */
export const multipartStartInvalid = (details: Record<string, unknown>) =>
  new AppError({
    code: 'VALIDATION_FAILED',
    kind: 'invalid',
    message:
      'a JSON body starts a resumable upload: { "multipart": true, "bytes", "sha256" }; to send a file, use a non-JSON Content-Type (e.g. application/octet-stream)',
    details,
  });

export const contentSha256Invalid = () =>
  new AppError({
    code: 'VALIDATION_FAILED',
    kind: 'invalid',
    message: 'Content-SHA256 must be 64 hex digits',
    location: { field: 'Content-SHA256' },
  });

export const idempotencyKeyInvalid = () =>
  new AppError({
    code: 'VALIDATION_FAILED',
    kind: 'invalid',
    message: 'Idempotency-Key must be 1 to 255 characters',
    location: { field: 'Idempotency-Key' },
  });

export const uploadPartNotOctetStream = () =>
  new AppError({
    code: 'UNSUPPORTED_MEDIA_TYPE',
    kind: 'unsupported_media_type',
    message: 'send the part bytes with Content-Type: application/octet-stream',
  });

export const uploadPartNumberInvalid = () =>
  new AppError({
    code: 'UPLOAD_PART_INVALID',
    kind: 'invalid',
    message: 'the part number must be a positive integer',
    location: { field: 'partNumber' },
  });

export const uploadPartNotFound = (partNumber: number, parts: number) =>
  new AppError({
    code: 'UPLOAD_PART_INVALID',
    kind: 'invalid',
    message: `part ${partNumber} does not exist: this upload has parts 1 to ${parts}`,
    location: { field: 'partNumber' },
  });

/** A part of another size than planned; `arrived`: its byte count, or "more" when it overran. */
export const uploadPartSize = (partNumber: number, bytes: number, arrived: number | 'more', cause?: unknown) =>
  new AppError({
    code: 'UPLOAD_PART_SIZE',
    kind: 'invalid',
    message: `part ${partNumber} must be ${bytes} bytes; ${arrived} arrived`,
    ...(cause === undefined ? {} : { cause }),
  });

export const uploadPartsIncomplete = (expected: number, got: number) =>
  new AppError({
    code: 'UPLOAD_PARTS_INCOMPLETE',
    kind: 'invalid',
    message: `complete needs each of parts 1 to ${expected} exactly once; got ${got}`,
    location: { field: 'parts' },
  });

export const uploadPartsInvalid = (error: unknown) =>
  new AppError({
    code: 'UPLOAD_PARTS_INVALID',
    kind: 'invalid',
    message: `the parts could not be joined: ${(error as Error).message}`,
    location: { field: 'parts' },
    cause: error,
  });

export const uploadNotWaitingForParts = (id: string, status: string) =>
  new AppError({
    code: 'UPLOAD_NOT_RESUMABLE',
    kind: 'conflict',
    message: `upload "${id}" is ${status}, not waiting for parts`,
    details: { status },
  });

export const uploadNotMultipart = (id: string) =>
  new AppError({
    code: 'UPLOAD_NOT_RESUMABLE',
    kind: 'conflict',
    message: `upload "${id}" was not started as a multipart upload`,
  });

/** Options without `format`: each format takes its own, and detection happens only once the bytes are stored, too late for a 400. */
export const uploadOptionsNeedFormat = () =>
  new AppError({
    code: 'VALIDATION_FAILED',
    kind: 'invalid',
    message: `options need a format: pass format (one of ${formatNames.join(', ')}) with them`,
    location: { field: 'format' },
  });

/** Options the format's options schema refuses, located at the first (`options.topics[0]`). */
export const uploadOptionsInvalid = (format: string, issues: Array<{ path: string; code: string; message: string }>) =>
  new AppError({
    code: 'VALIDATION_FAILED',
    kind: 'invalid',
    message: `invalid options for ${format}: ${issues[0]!.path}: ${issues[0]!.message}`,
    details: { issues },
    location: { field: issues[0]!.path },
  });
