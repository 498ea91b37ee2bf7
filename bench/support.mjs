import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

const root = fileURLToPath(new URL('../', import.meta.url));

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The built api (embedded mode unless the environment says otherwise), as `npm start` runs it. */
export function startApi(environment) {
  // KURA_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the api during a bench.
  const nodeArgs = (process.env.KURA_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, 'apps/api/dist/main.js'], {
    cwd: root,
    env: { ...process.env, ...environment },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    child,
    stop: async () => {
      child.kill('SIGINT');
      await exited;
    },
  };
}

export async function waitForHealthy(baseUrl, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${baseUrl}/health`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the api did not become healthy');
}

/** A .tar.gz of `{ path: content }` (policy bundles). */
export async function tarGz(entries) {
  const archive = pack();
  const chunks = [];
  archive.on('data', (chunk) => chunks.push(chunk));
  const done = new Promise((resolve) => archive.on('end', resolve));
  for (const [name, content] of Object.entries(entries)) archive.entry({ name }, content);
  archive.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** `call(path, body?, contentType?)`: GET without a body, POST with one; the JSON reply, or a thrown error naming the status. */
export function apiClient(base, key) {
  return async (path, body, contentType = 'application/json') => {
    const response = await fetch(`${base}${path}`, {
      method: body ? 'POST' : 'GET',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': contentType },
      ...(body ? { body: contentType === 'application/json' ? JSON.stringify(body) : body } : {}),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
}

/** A percentile of the values (`fraction` 0.5 → p50). */
export function percentile(values, fraction) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

const TICKS_PER_S = 100;

/** CPU seconds (user + system) used so far by a process and, apart, by all its descendants (Linux /proc). */
export function cpuSeconds(pid) {
  const processes = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the command name (which may hold spaces) start at ") ".
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
      processes.set(Number(entry), { ppid: Number(fields[1]), seconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S });
    } catch {
      // gone meanwhile
    }
  }
  let descendants = 0;
  const isDescendant = (candidate) => {
    for (let parent = processes.get(candidate)?.ppid; parent; parent = processes.get(parent)?.ppid) if (parent === pid) return true;
    return false;
  };
  for (const [candidate, { seconds }] of processes) if (isDescendant(candidate)) descendants += seconds;
  return { own: processes.get(pid)?.seconds ?? 0, descendants };
}

/**
 * The built api in embedded mode on a scratch data folder, with an admin key: `call` speaks JSON to
 * it; `stop()` ends it and removes the folder.
 */
export async function startScratchApi(name) {
  const scratch = await mkdtemp(join(tmpdir(), `kura-bench-${name}-`));
  await chmod(scratch, 0o755);
  const key = `kura_${'b'.repeat(43)}`;
  const port = await freePort();
  const api = startApi({
    KURA_DATA_DIR: join(scratch, 'data'),
    HOST: '127.0.0.1',
    KURA_ADMIN_KEY: key,
    LOG_LEVEL: 'warn',
    PORT: String(port),
  });
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await api.stop();
    await rm(scratch, { recursive: true, force: true });
  };
  try {
    await waitForHealthy(base);
  } catch (error) {
    await stop();
    throw error;
  }
  return { api, port, base, key, call: apiClient(base, key), stop };
}

/** Uploads a public policy bundle (`{ path: content }`) and waits until it is ready. */
export async function deployPolicy(call, files) {
  let policy = await call('/v1/policies?access=public', await tarGz(files), 'application/octet-stream');
  while (policy.status === 'validating') {
    await new Promise((resolve) => setTimeout(resolve, 50));
    policy = await call(`/v1/policies/${policy.id}`);
  }
  if (policy.status !== 'ready') throw new Error(`policy ${policy.id}: ${JSON.stringify(policy.errors)}`);
  return policy;
}

/** The state size of the benches' policies (a bimanual arm's 14 joints). */
export const STATE_DIMS = 14;

/** The benches' trivial JS policy: halves the state; its manifest and script. */
export const trivialPolicy = {
  script: `function act(observation) { const s = observation['observation.state']; const out = new Array(${STATE_DIMS}); for (let i = 0; i < ${STATE_DIMS}; i++) out[i] = s[i] * 0.5; return out; }`,
  manifest: {
    name: 'trivial',
    runtime: 'js',
    entry: 'policy.js',
    observation: ['observation.state'],
    observationShapes: { 'observation.state': [STATE_DIMS] },
    action: { shape: [STATE_DIMS] },
  },
};
