import { storableText, type ErrorLocation, type ImportIssue } from '@kura/schema';

// The issue is part of the API's contract (an upload's errors and warnings), so schema defines it.
export type { ImportIssue };

/**
 * Data that cannot be imported. `code` is stable (`TFRECORD_CRC_MISMATCH`, `PARQUET_TRUNCATED`,
 * `EPISODE_SHAPE_MISMATCH`); `location` says where (file, episode, step, field).
 */
export class ImportError extends Error {
  override name = 'ImportError';
  constructor(
    readonly code: string,
    message: string,
    readonly location: ErrorLocation = {},
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  /** The issue as stored with the upload: text quoted from the upload made storable (a NUL there would fail the record itself). */
  toIssue(): ImportIssue {
    const location: ErrorLocation = { ...this.location };
    if (location.file !== undefined) location.file = storableText(location.file);
    if (typeof location.episode === 'string') location.episode = storableText(location.episode);
    if (location.field !== undefined) location.field = storableText(location.field);
    return { code: this.code, message: storableText(this.message), location, ...(this.details ? { details: this.details } : {}) };
  }
}
