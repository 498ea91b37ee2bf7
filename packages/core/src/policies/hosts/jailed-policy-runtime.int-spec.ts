/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */
// Policies in jailed host processes (#14): what a policy does ends with a code in its own host, and a
// bystander policy keeps answering. Runs the built host (packages/core/dist): `npm test` builds first.
import { readFile, writeFile, mkdtemp, rm, chmod, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chooseJailLevel } from '@kura/jail';
import type { PolicyManifest } from '@kura/schema';
import { defaultPolicyRuntimeLimits, type PolicyRuntime } from '../runtimes/policy-runtime.js';
import { HOST_GRACE_MS, loadJailedPolicyRuntime, type PolicyHostSettings } from './jailed-policy-runtime.js';

const repository = fileURLToPath(new URL('../../../../../', import.meta.url));
const fixtures = join(repository, 'packages/core/src/policies/runtimes/fixtures');
const pythonFixtures = join(repository, 'test/fixtures/python-policies');
const host: PolicyHostSettings = {
  level: chooseJailLevel('bwrap').level,
  memoryBytes: 512 * 1024 * 1024,
  loadTimeoutMs: 10_000,
  cpuSeconds: 3600,
  processes: 256,
  python: { interpreter: '/usr/bin/python3', memoryBytes: 2048 * 1024 * 1024, loadTimeoutMs: 60_000 },
};
const limits = { ...defaultPolicyRuntimeLimits };
const state = (values: number[]) => ({ 'observation.state': values });

const jsPolicy = (source: string, observation = ['observation.state']) =>
  loadJailedPolicyRuntime({
    manifest: { name: 'p', runtime: 'js', entry: 'policy.js', observation, action: { shape: [2] } },
    entry: Buffer.from(source),
    limits,
    host,
  });

let scratch: string;
let bystander: PolicyRuntime;
const opened: PolicyRuntime[] = [];
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-hosts-'));
  await chmod(scratch, 0o755);
  bystander = await jsPolicy('function act(o) { return [o["observation.state"][0] + 1, 0]; }');
}, 30_000);
afterAll(async () => {
  bystander.dispose();
  for (const runtime of opened) runtime.dispose();
  await rm(scratch, { recursive: true, force: true });
});

/**
 * The bystander still answers, and well within the hostile calls' deadlines (2 s and more): it is
 * never queued behind them. Usually in under 1 ms; the bound leaves room for a machine busy with
 * other suites.
 */
async function bystanderAnswers(): Promise<void> {
  const started = performance.now();
  expect(Array.from(await bystander.act(state([1, 0]), { step: 0 }))).toEqual([2, 0]);
  expect(performance.now() - started).toBeLessThan(1000);
}

/** A Python policy of this source (state [2] → action [2], 2 s a call) in a bundle of its own. */
async function pythonPolicy(source: string): Promise<PolicyRuntime> {
  const bundleDir = await mkdtemp(join(scratch, 'python-'));
  await chmod(bundleDir, 0o755);
  await writeFile(join(bundleDir, 'policy.py'), source);
  const policy = await loadJailedPolicyRuntime({
    manifest: { name: 'hostile', runtime: 'python', entry: 'policy.py', observation: ['observation.state'], action: { shape: [2] } },
    entry: Buffer.alloc(0),
    bundleDir,
    limits: { ...limits, callTimeoutMs: 2000 },
    host,
  });
  opened.push(policy);
  return policy;
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string; ms: number }> {
  const started = performance.now();
  try {
    await promise;
  } catch (error) {
    return { code: (error as { code: string }).code, message: (error as Error).message, ms: performance.now() - started };
  }
  return { code: '(answered)', message: '', ms: performance.now() - started };
}

describe(`policy hosts (level ${host.level})`, () => {
  it('acts through the host as in the api process, and carries typed arrays and images', async () => {
    const policy = await jsPolicy(
      'function act(o) { const s = o["observation.state"]; return [s[0] * 2, o["observation.images.front"].length]; }',
      ['observation.state', 'observation.images.front'],
    );
    opened.push(policy);
    const action = await policy.act(
      { 'observation.state': new Float32Array([1.25, 3]), 'observation.images.front': new Uint8Array([0xff, 0xd8, 1, 2]) },
      { step: 0 },
    );
    expect(Array.from(action)).toEqual([2.5, 4]);
  });

  it('stops an ONNX model that loops within the call limit plus a grace, starts a new host, and others keep answering', async () => {
    const policy = await loadJailedPolicyRuntime({
      manifest: { name: 'loop', runtime: 'onnx', entry: 'model.onnx', observation: ['observation.state'], action: { shape: [4] } },
      entry: await readFile(join(fixtures, 'loop-forever.onnx')),
      limits,
      host,
    });
    opened.push(policy);
    const call = policy.act(state([1, 2, 3, 4]), { step: 0 });
    await bystanderAnswers();
    const timedOut = await failure(call);
    expect(timedOut.code).toBe('POLICY_TIMEOUT');
    // The kill is due at 300 ms; the rest is slack for a machine busy with other suites.
    expect(timedOut.ms).toBeLessThan(limits.callTimeoutMs + HOST_GRACE_MS + 1000);
    // The next call gets a new host (which loops again).
    expect((await failure(policy.act(state([1, 2, 3, 4]), { step: 1 }))).code).toBe('POLICY_TIMEOUT');
    await bystanderAnswers();
  });

  it('contains an ONNX model that allocates 10 GB in its host', async () => {
    const policy = await loadJailedPolicyRuntime({
      manifest: { name: 'huge', runtime: 'onnx', entry: 'model.onnx', observation: ['observation.state'], action: { shape: [4] } },
      entry: await readFile(join(fixtures, 'allocate-huge.onnx')),
      limits: { ...limits, callTimeoutMs: 5000 },
      host,
    });
    opened.push(policy);
    expect(['POLICY_THREW', 'POLICY_MEMORY_LIMIT']).toContain((await failure(policy.act(state([1, 2, 3, 4]), { step: 0 }))).code);
    await bystanderAnswers();
  });

  it('kills only its host for one allocation larger than the isolate (new Array(5e7).fill(0))', async () => {
    const policy = await jsPolicy('let calls = 0; function act() { calls++; if (calls === 1) new Array(5e7).fill(0); return [calls, 0]; }');
    opened.push(policy);
    expect((await failure(policy.act(state([0, 0]), { step: 0 }))).code).toMatch(/^POLICY_(MEMORY_LIMIT|TIMEOUT)$/);
    await bystanderAnswers();
    // A new host, a fresh policy: its first call again.
    expect((await failure(policy.act(state([0, 0]), { step: 1 }))).code).toMatch(/^POLICY_(MEMORY_LIMIT|TIMEOUT)$/);
  });

  it('runs Python policies (numpy, torch weights, reset) with their expected actions', async () => {
    for (const name of ['mlp-torch', 'counter-numpy', 'npz-linear']) {
      const bundleDir = join(scratch, name);
      await cp(join(pythonFixtures, name), bundleDir, { recursive: true });
      const manifest = JSON.parse(await readFile(join(bundleDir, 'policy.json'), 'utf8')) as PolicyManifest;
      const expected = JSON.parse(await readFile(join(bundleDir, 'expected.json'), 'utf8')) as {
        cases: Array<{ resetBefore: boolean; observation: Record<string, number[]>; context: { step: number }; action: number[] }>;
      };
      const policy = await loadJailedPolicyRuntime({
        manifest,
        entry: Buffer.alloc(0),
        bundleDir,
        limits: { ...limits, callTimeoutMs: 1000 },
        host,
      });
      opened.push(policy);
      for (const testCase of expected.cases) {
        if (testCase.resetBefore) await policy.reset();
        const action = Array.from(await policy.act(testCase.observation, testCase.context));
        action.forEach((value, index) => expect(value).toBeCloseTo(testCase.action[index]!, 5));
      }
    }
  }, 120_000);

  it.each([
    ['an action of NaN', '{"type": "action", "length": 2}', "struct.pack('<2f', float('nan'), 0.0)", 'POLICY_CRASHED', /not an answer/],
    ['an action of the wrong size', '{"type": "action", "length": 3}', "struct.pack('<3f', 1, 2, 3)", 'POLICY_CRASHED', /not an answer/],
    [
      'an error with a code of its own and a huge message',
      `{"type": "error", "code": "INTERNAL_ERROR", "message": "${'x'.repeat(100_000)}"}`,
      "b''",
      'POLICY_CRASHED',
      /^x{1000}…$/,
    ],
  ])(
    'a Python policy that writes its own answer (%s) to the channel is checked like any other',
    async (_name, header, body, code, message) => {
      const policy = await pythonPolicy(
        `import os, struct\n\ndef act(observation, context):\n    header = ${JSON.stringify(header)}.encode()\n    body = ${body}\n    os.write(3, struct.pack('<II', len(header), len(body)) + header + body)\n    return [0.0, 0.0]\n`,
      );
      const failed = await failure(policy.act(state([0, 0]), { step: 0 }));
      expect(failed.code).toBe(code);
      expect(failed.message).toMatch(message);
    },
    60_000,
  );

  it.each([
    ['reads /etc/shadow', 'open("/etc/shadow").read()', ['POLICY_THREW']],
    ['reads the api’s environment', `open("/proc/${process.pid}/environ").read()`, ['POLICY_THREW']],
    ['reads Kura’s data folder', `open(${JSON.stringify(join(tmpdir(), 'kura-host-canary'))}).read()`, ['POLICY_THREW']],
    ['connects to Postgres', 'import socket; socket.create_connection(("127.0.0.1", 5432), timeout=0.2)', ['POLICY_THREW']],
    ['connects to Redis', 'import socket; socket.create_connection(("127.0.0.1", 6379), timeout=0.2)', ['POLICY_THREW']],
    ['connects to the outside', 'import socket; socket.create_connection(("1.1.1.1", 443), timeout=0.2)', ['POLICY_THREW']],
    ['resolves a name', 'import socket; socket.getaddrinfo("example.com", 80)', ['POLICY_THREW']],
    ['writes outside its /tmp', 'open("/usr/kura-was-here", "w").write("x")', ['POLICY_THREW']],
    [
      'fills its /tmp',
      'open("/tmp/fill", "wb").write(b"0" * (200 * 1024 * 1024))',
      ['POLICY_THREW', 'POLICY_MEMORY_LIMIT', 'POLICY_CRASHED'],
    ],
    ['runs a shell', 'import os\nassert os.system("cat /etc/shadow > /tmp/x") == 0 and open("/tmp/x").read()', ['POLICY_THREW']],
    ['runs a subprocess', 'import subprocess; subprocess.run(["cat", "/etc/shadow"], check=True)', ['POLICY_THREW']],
    ['forks without end', 'import os\nwhile True: os.fork()', ['POLICY_THREW', 'POLICY_TIMEOUT', 'POLICY_CRASHED']],
    [
      'kills its parent with ctypes',
      'import ctypes, os; ctypes.CDLL(None).kill(os.getppid(), 9); ctypes.CDLL(None).kill(1, 9)',
      ['(answered)', 'POLICY_THREW', 'POLICY_CRASHED', 'POLICY_TIMEOUT'],
    ],
    [
      'prints a million lines',
      'import sys\nfor i in range(1000000): print(i)\nraise RuntimeError("printed")',
      ['POLICY_THREW', 'POLICY_TIMEOUT'],
    ],
  ])(
    'a Python policy that %s is contained with a code',
    async (_name, body, codes) => {
      await writeFile(join(tmpdir(), 'kura-host-canary'), 'CANARY');
      const policy = await pythonPolicy(
        `def act(observation, context):\n${body
          .split('\n')
          .map((line) => `    ${line}`)
          .join('\n')}\n    return [0.0, 0.0]\n`,
      );
      const failed = await failure(policy.act(state([0, 0]), { step: 0 }));
      expect(codes).toContain(failed.code);
      expect(failed.message).not.toContain('CANARY');
      await bystanderAnswers();
    },
    60_000,
  );
});
