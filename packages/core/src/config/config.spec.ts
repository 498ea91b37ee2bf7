import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from './config.js';

const problemsOf = (environment: Record<string, string>) => {
  try {
    loadConfig(environment);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
};

describe('loadConfig', () => {
  it('defaults to embedded mode: embedded Postgres, in-process jobs, filesystem blobs under ./data', () => {
    const config = loadConfig({});
    expect(config.http.port).toBe(8080);
    expect(config.database).toMatchObject({ kind: 'embedded', directory: expect.stringMatching(/data\/pg$/) });
    expect(config.queue.kind).toBe('in-process');
    expect(config.blobs).toMatchObject({ kind: 'filesystem', directory: expect.stringMatching(/data\/blobs$/) });
    expect(config.jobs.runInThisProcess).toBe(true);
  });

  it('selects services from DATABASE_URL, REDIS_URL and S3_*', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://kura:secret@db:5432/kura',
      REDIS_URL: 'redis://redis:6379',
      S3_ENDPOINT: 'http://minio:9000',
      S3_BUCKET: 'kura',
      S3_ACCESS_KEY_ID: 'minio',
      S3_SECRET_ACCESS_KEY: 'minio123',
    });
    expect(config.database).toEqual({ kind: 'external', url: 'postgresql://kura:secret@db:5432/kura' });
    expect(config.queue).toEqual({ kind: 'bullmq', redisUrl: 'redis://redis:6379', name: 'kura-jobs' });
    expect(config.blobs).toMatchObject({ kind: 's3', endpoint: 'http://minio:9000', bucket: 'kura', forcePathStyle: true });
    // With a shared queue the api leaves jobs to workers unless told otherwise.
    expect(config.jobs.runInThisProcess).toBe(false);
    expect(loadConfig({ REDIS_URL: 'redis://redis:6379', KURA_RUN_JOBS: 'true' }).jobs.runInThisProcess).toBe(true);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://localhost/kura' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ KURA_ADMIN_KEY: 'short' }, 'KURA_ADMIN_KEY'],
    [{ KURA_JOB_CONCURRENCY: '0' }, 'KURA_JOB_CONCURRENCY'],
    [{ KURA_ARCHIVE_MAX_EXPANSION: '0' }, 'KURA_ARCHIVE_MAX_EXPANSION'],
    [{ KURA_ARCHIVE_MAX_EXPANDED_BYTES: 'lots' }, 'KURA_ARCHIVE_MAX_EXPANDED_BYTES'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ S3_ENDPOINT: 'http://minio:9000' }, 'S3_BUCKET'],
    [{ S3_BUCKET: 'kura', S3_ACCESS_KEY_ID: 'only-one' }, 'S3_SECRET_ACCESS_KEY'],
    [{ KURA_RUN_JOBS: 'maybe' }, 'KURA_RUN_JOBS'],
  ])('refuses %j naming %s', (environment, variable) => {
    const message = problemsOf(environment);
    expect(message).toContain(variable);
  });

  it("gives each job queue its declared concurrency, KURA_JOB_CONCURRENCY's, or its own variable's", () => {
    expect(loadConfig({}).jobs.concurrency).toEqual({ default: 2, ingest: 2, evaluations: 2, training: 1 });
    expect(loadConfig({ KURA_JOB_CONCURRENCY: '4' }).jobs.concurrency).toEqual({ default: 4, ingest: 4, evaluations: 4, training: 4 });
    expect(
      loadConfig({ KURA_JOB_CONCURRENCY: '4', KURA_JOB_CONCURRENCY_INGEST: '1', KURA_JOB_CONCURRENCY_EVALUATIONS: '' }).jobs.concurrency,
    ).toEqual({
      default: 4,
      ingest: 1,
      evaluations: 4,
      training: 4,
    });
    expect(problemsOf({ KURA_JOB_CONCURRENCY_EVALUATIONS: '0' })).toContain('KURA_JOB_CONCURRENCY_EVALUATIONS');
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).database.kind).toBe('embedded');
  });
});
