// Starts what the tests talk to, once per run: Postgres (DATABASE_URL's server, or embedded) with a
// migrated template database, Redis (REDIS_URL, 127.0.0.1:6379, or a redis-server started here) and
// s3rver. Tests find them through KURA_TEST_* variables, which worker processes inherit.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import S3rver from 's3rver';
import { applyMigrations, createLogger, freePort, startEmbeddedPostgres } from '@kura/core';

export const TEST_BUCKET = 'kura-test';

export interface TestInfrastructure {
  stop(): Promise<void>;
}

declare global {
  var kuraTestInfrastructure: TestInfrastructure | undefined;
}

export default async function globalSetup(): Promise<void> {
  const logger = createLogger('warn');
  const scratch = await mkdtemp(join(tmpdir(), 'kura-test-'));
  // The postgres system user runs the embedded server as root and must reach its folder.
  await chmod(scratch, 0o755);
  const stops: Array<() => Promise<void>> = [];

  // Postgres
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const embedded = await startEmbeddedPostgres({ directory: join(scratch, 'pg'), logger });
    stops.push(() => embedded.stop());
    adminUrl = embedded.adminUrl;
  }
  const template = `kura_template_${randomBytes(4).toString('hex')}`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE "${template}"`));
  await applyMigrations({ databaseUrl: withDatabase(adminUrl, template), logger });
  stops.push(() =>
    withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`)).then(() => undefined),
  );
  process.env.KURA_TEST_PG_ADMIN_URL = adminUrl;
  process.env.KURA_TEST_PG_TEMPLATE = template;

  // Redis
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (await redisAnswers(redisUrl)) {
    process.env.KURA_TEST_REDIS_URL = redisUrl;
  } else {
    const started = await startRedisServer(scratch);
    stops.push(started.stop);
    process.env.KURA_TEST_REDIS_URL = started.url;
  }

  // S3-compatible store
  const s3Port = await freePort();
  const s3 = new S3rver({
    port: s3Port,
    address: '127.0.0.1',
    directory: join(scratch, 's3'),
    silent: true,
    configureBuckets: [{ name: TEST_BUCKET, configs: [] }],
  });
  await s3.run();
  stops.push(() => s3.close());
  process.env.KURA_TEST_S3_ENDPOINT = `http://127.0.0.1:${s3Port}`;
  process.env.KURA_TEST_S3_BUCKET = TEST_BUCKET;

  globalThis.kuraTestInfrastructure = {
    stop: async () => {
      for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error('test teardown:', error));
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function startRedisServer(scratch: string): Promise<{ url: string; stop: () => Promise<void> }> {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(
      'The tests need Redis: none answers at REDIS_URL or 127.0.0.1:6379, and redis-server is not installed (apt-get install redis-server).',
    );
  }
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', scratch],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 100 && !(await redisAnswers(url)); attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}
