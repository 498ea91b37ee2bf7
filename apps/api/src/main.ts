// `npm start`: Kura's HTTP API. Embedded mode (default) also runs Postgres and the job runner in
// this process; with DATABASE_URL / REDIS_URL / S3_* set it uses those services instead.
import { applyMigrations, createLogger, JobsService, KeysService, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '@kura/core';
import { loadConfigOrExit } from './config-or-exit.js';
import { createApp } from './app.js';

const startedAt = Date.now();
const config = loadConfigOrExit();
const logger = createLogger(config.logLevel);
let embedded: EmbeddedPostgresHandle | undefined;
let shuttingDown = false;

async function shutdown(signal: string, app?: { close(): Promise<void> }): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  logger.info({ signal }, 'shutting down');
  const force = setTimeout(() => {
    logger.error('shutdown took too long; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs + 10_000);
  force.unref();
  try {
    await app?.close();
    await embedded?.stop();
    process.exit(0);
  } catch (error) {
    logger.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
}

let appHandle: { close(): Promise<void> } | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(signal, appHandle));

try {
  let databaseUrl: string;
  if (config.database.kind === 'embedded') {
    embedded = await startEmbeddedPostgres({ ...config.database, logger });
    databaseUrl = embedded.url;
  } else {
    databaseUrl = config.database.url;
  }
  await applyMigrations({ databaseUrl, logger });
  const app = await createApp({ config, logger, databaseUrl, databaseOutage: embedded ? () => embedded?.outage() : undefined });
  appHandle = app;
  await app.init();
  await app.get(KeysService).bootstrapAdminKey();
  if (config.jobs.runInThisProcess) await app.get(JobsService).startConsuming();
  else await app.get(JobsService).recover();
  await app.listen(config.http.port, config.http.host);
  logger.info(
    {
      port: config.http.port,
      database: config.database.kind,
      queue: config.queue.kind,
      blobs: config.blobs.kind,
      startupMs: Date.now() - startedAt,
    },
    `Kura is listening on http://${config.http.host === '0.0.0.0' ? 'localhost' : config.http.host}:${config.http.port}`,
  );
} catch (error) {
  logger.fatal({ err: error }, 'Kura could not start');
  await embedded?.stop().catch(() => undefined);
  process.exit(1);
}
