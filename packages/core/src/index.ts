/**
 * Kura's domains and infrastructure. Apps (api, worker) wire them into processes through
 * CoreModule; each domain's public surface is its folder's index.ts.
 */
export * from './config/config.js';
export * from './logging/logger.js';
export * from './errors/app-error.js';
export * from './errors/outages.js';
export * from './database/prisma.js';
export * from './database/migrations.js';
export * from './database/embedded-postgres.js';
export * from './database/database.tokens.js';
export * from './core.module.js';
export * from './jobs/index.js';
export * from './auth/index.js';
export * from './blobs/index.js';
export * from './usage/index.js';
export * from './ledger/index.js';
export * from './edge/index.js';
export * from './robots/index.js';
export * from './datasets/index.js';
export * from './slices/index.js';
export * from './uploads/index.js';
export * from './policies/index.js';
export * from './training/index.js';
export * from './inference/index.js';
export * from './health/index.js';
