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
