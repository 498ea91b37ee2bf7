import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import supertest from 'supertest';
import { createLogger, generateKey, JobsService, KeysService, loadConfig, type KuraConfig } from '@kura/core';
import { createApp } from '../../apps/api/src/app.js';
import { createTestDatabase, requireEnv } from './database.js';

export interface TestApp {
  app: NestExpressApplication;
  config: KuraConfig;
  request: ReturnType<typeof supertest>;
  adminKey: string;
  dataDir: string;
  databaseUrl: string;
  /** Creates a key with the role and returns it. */
  createKey(role: 'admin' | 'operator' | 'developer' | 'user', name?: string): Promise<{ id: string; key: string }>;
  close(): Promise<void>;
}

/**
 * The API as `npm start` builds it, on a database of its own, a temporary data folder and the
 * in-process queue (jobs run in this process), driven over HTTP with supertest. `webDirectory`
 * replaces the built web viewer (apps/web/dist) that it serves at `/`.
 */
export async function startTestApp(environment: Record<string, string> = {}, options: { webDirectory?: string } = {}): Promise<TestApp> {
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'kura-e2e-'));
  await chmod(dataDir, 0o755);
  const adminKey = generateKey();
  const config = loadConfig({
    KURA_DATA_DIR: dataDir,
    DATABASE_URL: database.url,
    KURA_ADMIN_KEY: adminKey,
    KURA_JOB_BACKOFF_MS: '20',
    ...environment,
  });
  const logger = createLogger(process.env.KURA_TEST_LOG_LEVEL ?? 'silent');
  const app = await createApp({ config, logger, databaseUrl: database.url, ...options });
  await app.init();
  await app.get(KeysService).bootstrapAdminKey();
  await app.get(JobsService).startConsuming();
  const request = supertest(app.getHttpServer());
  return {
    app,
    config,
    request,
    adminKey,
    dataDir,
    databaseUrl: database.url,
    async createKey(role, name = `${role}-${Math.random().toString(36).slice(2, 8)}`) {
      const response = await request.post('/v1/keys').set('Authorization', `Bearer ${adminKey}`).send({ name, role });
      if (response.status !== 201) throw new Error(`could not create a ${role} key: ${response.status} ${JSON.stringify(response.body)}`);
      return { id: response.body.id, key: response.body.key };
    },
    async close() {
      await app.close();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

/** The environment that puts a test app's blobs in the test S3 store (s3rver, started by the global setup). */
export const s3Environment = () => ({
  S3_ENDPOINT: requireEnv('KURA_TEST_S3_ENDPOINT'),
  S3_BUCKET: requireEnv('KURA_TEST_S3_BUCKET'),
  S3_ACCESS_KEY_ID: 'S3RVER',
  S3_SECRET_ACCESS_KEY: 'S3RVER',
});

/** Polls until `check` returns a value (not undefined) or the timeout passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A GET whose body is kept as bytes, whatever its type. */
export async function getBytes(
  kura: TestApp,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const response = await kura.request
    .get(path)
    .set(headers)
    .buffer(true)
    .parse((res, done) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done(null, Buffer.concat(chunks)));
      res.on('error', (error) => done(error, Buffer.alloc(0)));
    });
  return { status: response.status, headers: response.headers, body: response.body as Buffer };
}
