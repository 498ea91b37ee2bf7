import { storableText, type ErrorLocation } from '@kura/schema';

/** A problem found in the data: what, and where. */
export interface ImportIssue {
  code: string;
  message: string;
  location: ErrorLocation;
  /** Facts a program may want beyond the message (e.g. FORMAT_UNKNOWN's container and the layouts tried), JSON-serialisable. */
  details?: Record<string, unknown>;
}

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
