// `npm run worker`: runs Kura's background jobs from the BullMQ queue. Start as many as you like,
// on any machines that reach the same Postgres, Redis and object store as the api.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConfigError, CoreModule, JobsService, applyMigrations, createLogger, loadConfig, type KuraConfig } from '@kura/core';

function loadWorkerConfig(): KuraConfig {
  try {
    const config = loadConfig();
    // A worker shares state with the api; embedded Postgres and an in-process queue live inside the api process.
    const missing = [
      config.database.kind === 'embedded' ? 'DATABASE_URL' : '',
      config.queue.kind === 'in-process' ? 'REDIS_URL' : '',
    ].filter(Boolean);
    if (missing.length > 0)
      throw new ConfigError(
        missing.map((name) => `${name}: required by the worker (services mode); in embedded mode the api runs the jobs itself`),
      );
    return config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

const config = loadWorkerConfig();
const logger = createLogger(config.logLevel).child({ component: 'worker' });
const databaseUrl = config.database.kind === 'external' ? config.database.url : '';

@Module({ imports: [CoreModule.forRoot({ config, logger, databaseUrl })] })
class WorkerModule {}

// Safe beside a starting api: the runner takes an advisory lock.
await applyMigrations({ databaseUrl, logger });
const app = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'worker shutting down: finishing running jobs');
    const force = setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 10_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'worker shutdown failed');
        process.exit(1);
      },
    );
  });
}
try {
  await app.get(JobsService).startConsuming();
  logger.info(
    { queue: config.queue.kind === 'bullmq' ? config.queue.name : undefined, concurrency: config.jobs.concurrency },
    'worker ready',
  );
} catch (error) {
  logger.fatal({ err: error }, 'worker could not start');
  await app.close().catch(() => undefined);
  process.exit(1);
}
