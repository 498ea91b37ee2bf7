/**
 * Kura's domains and infrastructure: configuration, database, blob store, job queue, auth, robots
 * and datasets. Apps (api, worker) wire these into processes through CoreModule.
 */
export * from './config/config.js';
export * from './logging/logger.js';
export * from './errors/app-error.js';
export * from './database/prisma.js';
export * from './database/migrations.js';
export * from './database/embedded-postgres.js';
export * from './database/database.tokens.js';
export * from './blobs/blob-store.js';
export * from './jobs/job-queue.js';
export * from './jobs/jobs.service.js';
export * from './auth/principal.js';
export * from './auth/keys.service.js';
export * from './robots/robots.service.js';
export * from './datasets/datasets.service.js';
export * from './health/health.service.js';
export * from './core.module.js';
export * from './uploads/uploads.service.js';
export * from './episodes/episodes.repository.js';
export * from './episodes/episodes.service.js';
export * from './blobs/filesystem-blob-store.js';
export * from './blobs/s3-blob-store.js';
export * from './datasets/versions.service.js';
export * from './ingest/ingest.service.js';
export * from './slices/slices.service.js';
export * from './slices/slice-download.service.js';
export { episodeBucket, SAMPLE_BUCKET_LIMIT, HELD_OUT_BUCKET_START } from './datasets/episode-buckets.js';
export * from './policies/policies.service.js';
export * from './policies/evaluations.service.js';
export * from './inference/inference.service.js';
export * from './inference/sessions.service.js';
export * from './inference/policy-pool.js';
export * from './usage/usage.service.js';
export * from './usage/usage.meter.js';
export * from './usage/quota.service.js';
export * from './usage/quota-counters.js';
