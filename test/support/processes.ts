import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { freePort } from '@kura/core';
import { requireEnv } from './database.js';

export const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));

/** A Kura process (api or worker) started from its built entry point, as `npm start` does. */
export interface KuraProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

export function startKuraProcess(entry: 'api' | 'worker', environment: Record<string, string>): KuraProcess {
  const child = spawn(process.execPath, [`apps/${entry}/dist/main.js`], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', ...environment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  return { child, output: () => output, exited };
}

/**
 * Services mode on the test run's Redis (a queue name of its own) with filesystem blobs under
 * `dataDir`, shared by the processes of this machine; `extra` adds or overrides variables.
 */
export function servicesEnvironment(params: { databaseUrl: string; dataDir: string; adminKey: string; extra?: Record<string, string> }) {
  return {
    DATABASE_URL: params.databaseUrl,
    REDIS_URL: requireEnv('KURA_TEST_REDIS_URL'),
    KURA_QUEUE_NAME: `kura-test-${randomBytes(4).toString('hex')}`,
    KURA_DATA_DIR: params.dataDir,
    KURA_ADMIN_KEY: params.adminKey,
    ...params.extra,
  };
}

/** The built api with `environment` on a free port of 127.0.0.1, once healthy. */
export async function startApiProcess(
  environment: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ kura: KuraProcess; baseUrl: string }> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const kura = startKuraProcess('api', { ...environment, PORT: String(port), HOST: '127.0.0.1' });
  await waitForHealthy(baseUrl, kura, timeoutMs);
  return { kura, baseUrl };
}

/** A worker (`npm run worker`) with `environment`, once it has logged that it is ready. */
export async function startWorker(environment: Record<string, string>, timeoutMs = 30_000): Promise<KuraProcess> {
  const worker = startKuraProcess('worker', environment);
  const deadline = Date.now() + timeoutMs;
  while (!worker.output().includes('worker ready')) {
    if (Date.now() > deadline || worker.child.exitCode !== null) throw new Error(`worker did not start:\n${worker.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return worker;
}

/** Polls GET /health until it answers 200; returns the milliseconds it took. */
export async function waitForHealthy(baseUrl: string, process: KuraProcess, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (process.child.exitCode !== null)
      throw new Error(`Kura exited (${process.child.exitCode}) before it was healthy:\n${process.output()}`);
    try {
      const response = await fetch(`${baseUrl}/health`);
      if (response.status === 200) return Date.now() - started;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > timeoutMs) throw new Error(`Kura was not healthy within ${timeoutMs} ms:\n${process.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The built api in embedded mode, as `npm start` runs it, in a scratch folder of its own (0755: embedded Postgres runs as `postgres`). */
export async function startScratchApi(name: string, adminKey: string): Promise<{ scratch: string; kura: KuraProcess; baseUrl: string }> {
  const scratch = await mkdtemp(join(tmpdir(), `kura-${name}-`));
  await chmod(scratch, 0o755);
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const kura = startKuraProcess('api', {
    KURA_DATA_DIR: join(scratch, 'data'),
    PORT: String(port),
    HOST: '127.0.0.1',
    KURA_ADMIN_KEY: adminKey,
  });
  await waitForHealthy(baseUrl, kura, 60_000);
  return { scratch, kura, baseUrl };
}
