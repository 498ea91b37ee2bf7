/**
 * Kura's domains and infrastructure: configuration, database, blob store, job queue, auth, robots
 * and datasets. Apps (api, worker) wire these into processes.
 */
export * from './config/config.js';
export * from './logging/logger.js';
export * from './errors/app-error.js';
export * from './database/prisma.js';
export * from './database/migrations.js';
export * from './database/embedded-postgres.js';
