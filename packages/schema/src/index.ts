/**
 * The Kura format and the contracts shared by the server, workers, the SDK and the web viewer:
 * request schemas, reply views, feature specs and job payloads. Depends on nothing else in the repository.
 */
export * from './errors.js';
export * from './pagination.js';
export * from './keys.js';
export * from './robots.js';
export * from './features.js';
export * from './datasets.js';
export * from './formats.js';
export * from './jobs.js';
export * from './arrow.js';
export * from './dtypes.js';
export * from './slices.js';
export * from './policies.js';
export * from './uploads.js';
export * from './mcap.js';
export * from './inference.js';
export * from './usage.js';
export * from './ledger.js';
export * from './edge.js';
export * from './text.js';
export * from './training.js';
