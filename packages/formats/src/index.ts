/**
 * Importers (and later exporters) of robot-data formats: pure code over files and streams, one
 * folder per format, one registry. Depends on @kura/schema only.
 */
export * from './importer.js';
export * from './source.js';
export * from './registry.js';
export * from './unrecognised.js';
export * from './validate.js';
export * from './feature-map.js';
export * from './image-header.js';
export * from './kura-arrow/shard-writer.js';
export * from './stats/index.js';
export * from './png.js';
export * from './kura-arrow/take.js';
export * from './ndjson/export.js';
export * from './kura-arrow/ipc-encode.js';
export * from './export-error.js';
export * from './parquet/export.js';
export * from './lerobot/export.js';
export { batchesToMcap } from './mcap/export.js';
export * from './budget.js';
export * from './file-writes.js';
export * from './image-decode.js';
