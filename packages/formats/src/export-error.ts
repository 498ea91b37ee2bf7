/**
 * Data that cannot be exported in the requested format. `code` is stable
 * (`EXPORT_UNSUPPORTED_TYPE`, `EXPORT_SCHEMA_MISMATCH`, `LEROBOT_EXPORT_VIDEO_SPLIT`, …); the message
 * names the column, episode or file concerned.
 */
export class ExportError extends Error {
  override name = 'ExportError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
