// Hostile trainers against the jail they run in: each is contained with a code, and what a run may
// carry out (metrics, log, /out) stays within its caps. The real jail (bubblewrap) and Debian's Python.
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chooseJailLevel } from '@kura/jail';
import { trainingLimits } from '@kura/schema';
import { runTrainerProcess, type TrainerProcessParams } from './trainer-process.js';

const level = chooseJailLevel('bwrap').level;
const MiB = 1024 * 1024;

describe(`trainers in the jail (level ${level})`, () => {
  let root: string;
  let canary: string;
  let runs = 0;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'kura-trainer-'));
    await chmod(root, 0o711);
    // Outside every folder a run is given: it must never be readable from inside.
    canary = join(root, 'canary.txt');
    await writeFile(canary, 'kura-canary-secret', { mode: 0o644 });
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Runs `script` as a trainer with small limits; returns the outcome, metrics, log and /out's files. */
  async function run(script: string, overrides: Partial<TrainerProcessParams> = {}) {
    const folder = join(root, `run-${runs++}`);
    const [code, data, out] = ['code', 'data', 'out'].map((name) => join(folder, name)) as [string, string, string];
    for (const path of [folder, code, data, out]) await mkdir(path, { recursive: true, mode: 0o755 });
    await chmod(out, 0o777);
    await writeFile(join(code, 'train.py'), script);
    await writeFile(join(data, 'meta.json'), '{"format": "test"}');
    const result = await runTrainerProcess({
      level,
      interpreter: '/usr/bin/python3',
      entry: 'train.py',
      codeDir: code,
      dataDir: data,
      outDir: out,
      resources: { cpuSeconds: 20, memoryMb: 512, wallSeconds: 30 },
      processes: 32,
      output: { maxBytes: 8 * MiB, maxFiles: 50 },
      guarded: false,
      signal: new AbortController().signal,
      ...overrides,
    });
    return { ...result, out, files: await readdir(out) };
  }

  it('runs a trainer: JSON number lines are metrics, /data is read-only, /out keeps what it writes', async () => {
    const result = await run(`
import json, os
print(json.dumps({"step": 1, "loss": 0.5}))
print("plain text")
print(json.dumps({"step": 2, "loss": 0.25}))
print(json.dumps({"note": "not numbers"}))
print(open(os.path.join(os.environ["KURA_DATA_DIR"], "meta.json")).read())
try:
    open(os.path.join(os.environ["KURA_DATA_DIR"], "x"), "w")
    print("data writable")
except OSError as e:
    print("data read-only", e.errno)
open(os.path.join(os.environ["KURA_OUT_DIR"], "model.onnx"), "wb").write(b"model")
`);
    expect(result.outcome).toBe('ok');
    expect(result.metrics.toJSON()).toEqual({
      series: {
        loss: [
          [1, 0.5],
          [2, 0.25],
        ],
      },
      truncated: false,
    });
    expect(result.log).toContain('plain text');
    expect(result.log).toContain('data read-only');
    expect(result.files).toEqual(['model.onnx']);
  }, 60_000);

  it('has no network, and sees nothing of the host outside its folders', async () => {
    const result = await run(`
import json, os, socket
found = 0
needle = ("kura-canary-" + "secret").encode()  # not literally in this file
try:
    socket.create_connection(("127.0.0.1", 5432), timeout=2)
    print("connected")
except OSError:
    pass
for base in ["/", "/work", "/root", "/tmp", "${root}"]:
    for folder, dirs, files in os.walk(base):
        if folder.startswith(("/proc", "/sys", "/usr", "/dev")):
            dirs[:] = []
            continue
        for name in files:
            try:
                if needle in open(os.path.join(folder, name), "rb").read(1 << 20):
                    found += 1
            except OSError:
                pass
print(json.dumps({"canaries": found}))
`);
    expect(result.outcome).toBe('ok');
    expect(result.log).not.toContain('connected');
    expect(result.metrics.latest()).toEqual({ canaries: 0 });
  }, 60_000);

  it('stops a run that writes past its output cap, or leaves too many files', async () => {
    const big = await run(`
import os
with open(os.path.join(os.environ["KURA_OUT_DIR"], "model.onnx"), "wb") as f:
    while True:
        f.write(b"x" * (1 << 20))
`);
    expect(['output-too-large', 'file-size']).toContain(big.outcome);
    const many = await run(`
import os, time
for index in range(10_000):
    open(os.path.join(os.environ["KURA_OUT_DIR"], f"f{index}"), "w").close()
time.sleep(5)
`);
    expect(many.outcome).toBe('output-too-large');
  }, 60_000);

  it('contains a memory bomb, a CPU spin, a sleeper past its wall clock, and a fork bomb', async () => {
    const memory = await run('blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n');
    expect(memory.outcome).toBe('memory');
    const cpu = await run('while True:\n    pass\n', { resources: { cpuSeconds: 2, memoryMb: 512, wallSeconds: 30 } });
    expect(cpu.outcome).toBe('cpu');
    const sleeper = await run('import time\ntime.sleep(60)\n', { resources: { cpuSeconds: 20, memoryMb: 512, wallSeconds: 2 } });
    expect(sleeper.outcome).toBe('timeout');
    const forks = await run(`
import os, time
children = 0
for _ in range(1000):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
    except OSError:
        break
print('{"children": %d}' % children)
`);
    expect(forks.metrics.latest().children).toBeLessThan(32);
  }, 120_000);

  it('keeps a flood of output within the log cap, and a guarded run to its metric lines and a short tail', async () => {
    const flood = await run(`
import sys
line = "y" * 1023 + "\\n"
for _ in range(100 * 1024):
    sys.stdout.write(line)
`);
    expect(flood.outcome).toBe('ok');
    expect(flood.log.length).toBeLessThanOrEqual(trainingLimits.maxLogBytes + 200);
    const guarded = await run(
      `
import json
print(json.dumps({"step": 1, "loss": 1.5}))
for index in range(10_000):
    print("episode data", index)
raise SystemExit("failed at the end")
`,
      { guarded: true },
    );
    expect(guarded.outcome).toBe('failed');
    expect(guarded.log).toContain('{"step": 1, "loss": 1.5}');
    expect(guarded.log).not.toContain('episode data 0\n');
    expect(guarded.log.length).toBeLessThan(trainingLimits.guardedLogTailBytes + 200);
  }, 60_000);

  it('leaves a link it made in /out as a link (the runner refuses links when it takes the output)', async () => {
    const result = await run(`
import os
os.symlink("${canary}", os.path.join(os.environ["KURA_OUT_DIR"], "model.onnx"))
`);
    expect(result.outcome).toBe('ok');
    expect((await lstat(join(result.out, 'model.onnx'))).isSymbolicLink()).toBe(true);
  }, 60_000);

  it('is killed at once when its run is cancelled', async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 1500);
    const started = Date.now();
    const result = await run('import time\ntime.sleep(60)\n', { signal: abort.signal });
    expect(result.outcome).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);
});
