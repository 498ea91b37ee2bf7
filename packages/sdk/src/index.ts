/**
 * Kura's TypeScript client: `new KuraClient({ url, apiKey })` covers the API (robots, datasets,
 * uploads with resumable parts, slices and their downloads, policies, evaluations, inference,
 * sessions, usage, keys), with retries and backoff on 5xx and network errors.
 */
export * from './client.js';
export * from './errors.js';
export { poll } from './poll.js';
export { retryDelayMs, defaultRetryPolicy, type RetryPolicy, type RequestOptions } from './http.js';
export type { UploadOptions, UploadPhase } from './uploads.js';
export type { DownloadProgress } from './downloads.js';
