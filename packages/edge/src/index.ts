/**
 * @kura/edge: runs an exported policy offline on a robot's own computer (docs/edge.md). The `kura
 * edge` commands are built on it.
 */
export * from './edge.errors.js';
export * from './usage-log.js';
export * from './edge-runner.js';
export * from './serve.js';
export { EdgePackageError, packEdgePackage, unpackEdgePackage, verifyEdgePackage } from '@kura/core/edge-runtime';
