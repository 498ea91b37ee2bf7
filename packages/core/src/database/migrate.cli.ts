// `npm run db:migrate`: applies pending migrations to DATABASE_URL (or the embedded database).
import { loadConfig } from '../config/config.js';
import { createLogger } from '../logging/logger.js';
import { applyMigrations } from './migrations.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';

const config = loadConfig();
const logger = createLogger(config.logLevel);
const embedded = config.database.kind === 'embedded' ? await startEmbeddedPostgres({ ...config.database, logger }) : undefined;
try {
  const databaseUrl = config.database.kind === 'external' ? config.database.url : embedded!.url;
  const { applied } = await applyMigrations({ databaseUrl, logger });
  logger.info({ applied }, applied.length ? 'migrations applied' : 'database is up to date');
} finally {
  await embedded?.stop();
}
