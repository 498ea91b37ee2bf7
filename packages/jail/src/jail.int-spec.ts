import { describe, expect, it, beforeAll, afterAll } from '@jest/globals';
import { createServer, type Server } from 'node:net';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseJailLevel, startJailed, type JailLevel, type JailLimits, type JailMount } from './jail.js';

const behaviours = fileURLToPath(new URL('./testing/behaviours.mjs', import.meta.url));
const limits: JailLimits = {
  memoryBytes: 1024 * 1024 * 1024,
  cpuSeconds: 20,
  fileSizeBytes: 64 * 1024 * 1024,
  wallClockMs: 30_000,
  maxMessageBytes: 1024 * 1024,
};

let scratch: string;
let inside: string; // mounted read-only
let output: string; // mounted writable
let canary: string; // never mounted
let server: Server;
let port: number;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-jail-'));
  inside = join(scratch, 'inside');
  output = join(scratch, 'out');
  await mkdir(inside);
  await mkdir(output);
  await writeFile(join(inside, 'data.txt'), 'upload bytes');
  canary = join(scratch, 'canary.txt');
  await writeFile(canary, 'CANARY-SECRET');
  server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  server.close();
  await rm(scratch, { recursive: true, force: true });
});

async function run(
  level: JailLevel,
  args: string[],
  options: { limits?: Partial<JailLimits>; mounts?: JailMount[]; env?: Record<string, string> } = {},
) {
  const child = startJailed({
    level,
    script: behaviours,
    args,
    mounts: options.mounts ?? [{ path: behaviours }, { path: inside }, { path: output, writable: true }],
    limits: { ...limits, ...options.limits },
    env: options.env,
  });
  const messages: unknown[] = [];
  for await (const message of child.messages()) messages.push(message);
  return { exit: await child.exit, messages };
}

describe('choosing a level', () => {
  it('takes bubblewrap on this machine (root, user namespaces work) and honours explicit settings', () => {
    expect(chooseJailLevel('auto').level).toBe('bwrap');
    expect(chooseJailLevel('bwrap').level).toBe('bwrap');
    expect(chooseJailLevel('process')).toEqual({ level: 'process', reason: 'KURA_SANDBOX=process' });
    expect(chooseJailLevel('unsafe-none').level).toBe('unsafe-none');
  });
});

describe('bwrap level', () => {
  it('sees its mounts read-only, never a file outside them', async () => {
    expect((await run('bwrap', ['read', join(inside, 'data.txt')])).messages).toEqual([{ read: 'upload bytes' }]);
    expect((await run('bwrap', ['read', canary])).messages).toEqual([{ error: 'ENOENT' }]);
    expect((await run('bwrap', ['read', '/etc/passwd'])).messages).toEqual([{ error: 'ENOENT' }]);
    expect((await run('bwrap', ['write', join(inside, 'data.txt')])).messages).toEqual([{ error: 'EROFS' }]);
    expect((await run('bwrap', ['write', join(output, 'result.txt')])).messages).toEqual([{ wrote: true }]);
    expect(await readFile(join(output, 'result.txt'), 'utf8')).toBe('written');
  });

  it('keeps its own tree read-only: only /tmp and /dev/shm take files, each within the tmpfs cap', async () => {
    // The root and /dev are tmpfs in memory: a file there would escape every limit.
    for (const path of ['/evil', '/dev/evil', '/usr/evil'])
      expect((await run('bwrap', ['write', path])).messages).toEqual([{ error: 'EROFS' }]);
    for (const path of ['/tmp/scratch', '/dev/shm/scratch', '/dev/null'])
      expect((await run('bwrap', ['write', path])).messages).toEqual([{ wrote: true }]);
    // 4 MiB into a 1 MiB /dev/shm: refused (ENOSPC) or the child ended, never stored.
    const big = await run('bwrap', ['write-big-file', '/dev/shm/big'], { limits: { tmpBytes: 1024 * 1024 } });
    expect(big.exit.outcome).not.toBe('ok');
  });

  it('sees a host device only when it is given as one (how a GPU is passed to a trainer)', async () => {
    const mounts = [{ path: behaviours }, { path: inside }, { path: output, writable: true }];
    expect((await run('bwrap', ['read', '/dev/fuse'], { mounts })).messages).toEqual([{ error: 'ENOENT' }]);
    const given = await run('bwrap', ['read', '/dev/fuse'], { mounts: [...mounts, { path: '/dev/fuse', device: true }] });
    // The node is there and opens; fuse refuses a read before it is mounted (EPERM), which is its own answer.
    expect(given.messages).toHaveLength(1);
    expect(given.messages[0]).not.toEqual({ error: 'ENOENT' });
  });

  it('has no network and none of the parent environment', async () => {
    process.env.KURA_JAIL_TEST_SECRET = 'do-not-pass';
    try {
      expect((await run('bwrap', ['connect', String(port)])).messages).toEqual([{ error: 'ECONNREFUSED' }]);
      const { messages } = await run('bwrap', ['environment'], { env: { KURA_JOB: 'ingest' } });
      expect(messages).toEqual([{ environment: { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', KURA_JOB: 'ingest' }, uid: 65534 }]);
      expect(JSON.stringify(messages)).not.toContain('do-not-pass');
    } finally {
      delete process.env.KURA_JAIL_TEST_SECRET;
    }
  });
});

describe.each<JailLevel>(['bwrap', 'process'])('limits at level %s', (level) => {
  it('exchanges messages both ways', async () => {
    const child = startJailed({ level, script: behaviours, args: ['echo'], mounts: [{ path: behaviours }], limits });
    child.send({ n: 1 });
    child.send({ n: 2 });
    child.send({ stop: true });
    const messages: unknown[] = [];
    for await (const message of child.messages()) messages.push(message);
    expect(messages).toEqual([{ echo: { n: 1 } }, { echo: { n: 2 } }]);
    expect((await child.exit).outcome).toBe('ok');
  });

  it('ends a child that takes more memory than allowed: memory', async () => {
    const buffers = await run(level, ['allocate-buffers'], { limits: { memoryBytes: 256 * 1024 * 1024 } });
    expect(buffers.exit.outcome).toBe('memory');
    const heap = await run(level, ['allocate-heap'], { limits: { memoryBytes: 256 * 1024 * 1024 } });
    expect(heap.exit.outcome).toBe('memory');
  });

  it('ends a child past its CPU time (cpu) and past its deadline (timeout)', async () => {
    const spin = await run(level, ['spin'], { limits: { cpuSeconds: 1 } });
    expect(spin.exit.outcome).toBe('cpu');
    const sleep = await run(level, ['sleep'], { limits: { wallClockMs: 500 } });
    expect(sleep.exit.outcome).toBe('timeout');
    expect(sleep.exit.durationMs).toBeLessThan(10_000);
  });

  it('starts the deadline again for a child started ahead of its work, and says whether it runs', async () => {
    const child = startJailed({
      level,
      script: behaviours,
      args: ['sleep'],
      mounts: [{ path: behaviours }],
      limits: { ...limits, wallClockMs: 400 },
    });
    expect(child.alive).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.restartDeadline(1500);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(child.alive).toBe(true); // past its first deadline, inside the new one
    const exit = await child.exit;
    expect(exit.outcome).toBe('timeout');
    expect(exit.durationMs).toBeGreaterThanOrEqual(1600);
    expect(child.alive).toBe(false);
  });

  it('ends a child writing a file past its size limit (file-size) or a message past its cap', async () => {
    const big = await run(level, ['write-big-file', join(output, `big-${level}.bin`)], { limits: { fileSizeBytes: 1024 * 1024 } });
    expect(big.exit.outcome).toBe('file-size');
    const message = await run(level, ['huge-message', String(4 * 1024 * 1024)]);
    expect(message.exit.outcome).toBe('message-too-large');
  });

  it('tells a chosen exit code from success', async () => {
    expect((await run(level, ['exit', '3'])).exit).toMatchObject({ outcome: 'failed', exitCode: 3 });
    expect((await run(level, ['exit', '0'])).exit.outcome).toBe('ok');
  });
});

describe('process level', () => {
  it('passes none of the parent environment', async () => {
    process.env.KURA_JAIL_TEST_SECRET = 'do-not-pass';
    try {
      const { messages } = await run('process', ['environment']);
      expect((messages[0] as { environment: Record<string, string> }).environment).toEqual({
        PATH: '/usr/bin:/bin',
        HOME: '/tmp',
        LANG: 'C.UTF-8',
      });
    } finally {
      delete process.env.KURA_JAIL_TEST_SECRET;
    }
  });
});
