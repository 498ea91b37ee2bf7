/**
 * `@kura/core/edge-runtime`: what the edge runner (@kura/edge) shares with the server, without Nest,
 * Prisma or any service: package verification, the usage log's hash chain, and policies loaded in
 * the same jailed hosts and called with the same observation checks and normalization.
 */
export * from './edge/edge-package.js';
export * from './edge/usage-chain.js';
export * from './edge/packaged-policy.js';
export type { JsonObservation } from './inference/observation.js';
export { isPolicyError } from './policies/runtimes/policy-runtime.js';
export { AppError, statusByKind } from './errors/app-error.js';
export { answerOpenpiFrames } from './inference/openpi-frames.js';
