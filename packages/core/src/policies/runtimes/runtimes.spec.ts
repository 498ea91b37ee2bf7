/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import type { PolicyManifest, PolicyObservation } from '@kura/schema';
import { loadPolicyRuntime, type PolicyRuntime, type PolicyRuntimeLimits } from './policy-runtime.js';

const fixtures = new URL('./fixtures/', import.meta.url);
const state = [0.5, -1, 2, 4];
const observation: PolicyObservation = { 'observation.state': state };

function manifest(overrides: Partial<PolicyManifest> = {}): PolicyManifest {
  return {
    name: 'test-policy',
    runtime: 'js',
    entry: 'policy.js',
    observation: ['observation.state'],
    action: { shape: [3] },
    ...overrides,
  };
}

function loadJs(
  script: string,
  options: { shape?: [number] | [number, number]; limits?: Partial<PolicyRuntimeLimits> } = {},
): Promise<PolicyRuntime> {
  return loadPolicyRuntime({
    manifest: manifest({ action: { shape: options.shape ?? [3] } }),
    entry: Buffer.from(script),
    // Generous time limits unless a test is about time: a loaded CI machine must not turn a memory or
    // output check into a timeout.
    limits: { callTimeoutMs: 5_000, loadTimeoutMs: 10_000, ...options.limits },
  });
}

/** Loads a policy whose act() runs `body` (with `observation` and `context` in scope). */
function loadAct(body: string, options: Parameters<typeof loadJs>[1] = {}): Promise<PolicyRuntime> {
  return loadJs(`function act(observation, context) {\n${body}\n}`, options);
}

async function actionOf(runtime: PolicyRuntime, input: PolicyObservation = observation, step = 0): Promise<number[]> {
  return Array.from(await runtime.act(input, { step, task: 'pick the cube', episode: 3 }));
}

function rssMb(): number {
  return process.memoryUsage().rss / (1024 * 1024);
}

describe('JS policy runtime', () => {
  // A well-behaved policy that must keep answering while hostile ones fail around it.
  let bystander: PolicyRuntime;
  const bystanderScript = `function act(observation) { const s = observation['observation.state']; return [s[0] * 2, s[1] * 2, s[2] * 2]; }`;

  async function expectBystanderWorks(): Promise<void> {
    expect(await actionOf(bystander)).toEqual([1, -2, 4]);
  }

  beforeAll(async () => {
    bystander = await loadJs(bystanderScript);
  });

  afterAll(() => {
    bystander.dispose();
  });

  describe('well-behaved policies', () => {
    it('passes copies of the observation and the context, and returns the checked action', async () => {
      const runtime = await loadAct(`
        const s = observation['observation.state'];
        if (!Array.isArray(s) || Object.keys(observation).length !== 1) throw new Error('unexpected observation');
        return [s[0] + s[1] + s[2] + s[3], context.step, context.task === 'pick the cube' && context.episode === 3 ? 1 : 0];`);
      expect(await actionOf(runtime, observation, 7)).toEqual([5.5, 7, 1]);
      // A Float32Array arrives as a plain array too, and extra features are not passed on.
      expect(await actionOf(runtime, { 'observation.state': Float32Array.from(state), other: [1] }, 8)).toEqual([5.5, 8, 1]);
      runtime.dispose();
    });

    it('passes images as a Uint8Array of exactly their bytes, never the rest of a pooled Buffer', async () => {
      const runtime = await loadPolicyRuntime({
        manifest: manifest({ observation: ['observation.images.front'] }),
        entry: Buffer.from(`function act(observation) {
          const bytes = observation['observation.images.front'];
          return [bytes instanceof Uint8Array ? bytes.length : -1, bytes.buffer.byteLength, bytes[1]];
        }`),
      });
      // Small Buffers share one 8 KiB pool.
      const image = Buffer.from([0xff, 0xd8, 0xff]);
      expect(image.buffer.byteLength).toBeGreaterThan(3);
      expect(Array.from(await runtime.act({ 'observation.images.front': image }, { step: 0 }))).toEqual([3, 3, 0xd8]);
      runtime.dispose();
    });

    it('returns action chunks [H, D] flattened row-major', async () => {
      const runtime = await loadAct(`const s = observation['observation.state']; return [[s[0], s[1], s[2]], [10, 20, 30]];`, {
        shape: [2, 3],
      });
      expect(await actionOf(runtime)).toEqual([0.5, -1, 2, 10, 20, 30]);
      runtime.dispose();
    });

    it('keeps state between calls and calls reset() between episodes', async () => {
      const runtime = await loadJs(`
        let calls = 0;
        let resets = 0;
        function act() { calls += 1; return [calls, resets, 0]; }
        function reset() { calls = 0; resets += 1; }`);
      await runtime.act(observation, { step: 0 });
      expect(await actionOf(runtime)).toEqual([2, 0, 0]);
      await runtime.reset();
      expect(await actionOf(runtime)).toEqual([1, 1, 0]);
      runtime.dispose();
    });

    it('finds act declared with const, accepts typed arrays, and resets without a reset()', async () => {
      const runtime = await loadJs(`const act = (observation) => Float64Array.of(1, 2, 3);`);
      expect(await actionOf(runtime)).toEqual([1, 2, 3]);
      await runtime.reset();
      runtime.dispose();
    });

    it('runs concurrent calls one at a time, in order', async () => {
      const runtime = await loadJs(`let calls = 0; function act(observation, context) { calls += 1; return [calls, context.step, 0]; }`);
      const actions = await Promise.all([0, 1, 2, 3].map((step) => runtime.act(observation, { step })));
      expect(actions.map((action) => Array.from(action))).toEqual([
        [1, 0, 0],
        [2, 1, 0],
        [3, 2, 0],
        [4, 3, 0],
      ]);
      runtime.dispose();
    });

    it('refuses calls after dispose()', async () => {
      const runtime = await loadJs(bystanderScript);
      runtime.dispose();
      runtime.dispose();
      await expect(runtime.act(observation, { step: 0 })).rejects.toMatchObject({ code: 'POLICY_DISPOSED' });
      await expect(runtime.reset()).rejects.toMatchObject({ code: 'POLICY_DISPOSED' });
    });
  });

  describe('scripts that cannot be loaded', () => {
    it('POLICY_NO_ACT when the script defines no act function', async () => {
      await expect(loadJs(`var act = 42; function step() { return [0, 0, 0]; }`)).rejects.toMatchObject({
        name: 'PolicyError',
        code: 'POLICY_NO_ACT',
        message: expect.stringContaining('act(observation, context)'),
      });
    });

    it('POLICY_SYNTAX_ERROR with the line, and for bytes that are not UTF-8', async () => {
      await expect(loadJs(`function act() {\n  return [1, 2, 3;\n}`)).rejects.toMatchObject({
        code: 'POLICY_SYNTAX_ERROR',
        message: expect.stringMatching(/policy\.js:2/),
      });
      await expect(loadPolicyRuntime({ manifest: manifest(), entry: Buffer.from([0x66, 0xff, 0xfe]) })).rejects.toMatchObject({
        code: 'POLICY_SYNTAX_ERROR',
      });
    });

    it('POLICY_THREW when the top level throws', async () => {
      await expect(loadJs(`throw new TypeError('weights missing'); function act() {}`)).rejects.toMatchObject({
        code: 'POLICY_THREW',
        message: expect.stringContaining('TypeError: weights missing'),
      });
    });

    it('POLICY_BAD_MANIFEST for a manifest the schema refuses', async () => {
      await expect(
        loadPolicyRuntime({ manifest: manifest({ action: { shape: [0] } }), entry: Buffer.from(bystanderScript) }),
      ).rejects.toMatchObject({ code: 'POLICY_BAD_MANIFEST', message: expect.stringContaining('action.shape') });
    });

    it('POLICY_BAD_OBSERVATION when a listed feature is missing', async () => {
      const runtime = await loadJs(bystanderScript);
      await expect(runtime.act({ 'observation.joints': state }, { step: 0 })).rejects.toMatchObject({
        code: 'POLICY_BAD_OBSERVATION',
        message: expect.stringContaining('"observation.state"'),
      });
      runtime.dispose();
    });
  });

  describe('hostile policies are contained', () => {
    it('POLICY_TIMEOUT for an endless loop at the top level', async () => {
      const started = Date.now();
      await expect(loadJs(`while (true) {} function act() {}`, { limits: { loadTimeoutMs: 200 } })).rejects.toMatchObject({
        code: 'POLICY_TIMEOUT',
      });
      expect(Date.now() - started).toBeLessThan(5000);
      await expectBystanderWorks();
    });

    it('POLICY_TIMEOUT for an endless loop in act(), without blocking the event loop, and the runtime keeps working', async () => {
      const runtime = await loadAct(`if (context.step === 1) { while (true) {} } return [1, 2, 3];`, { limits: { callTimeoutMs: 300 } });
      const looping = runtime.act(observation, { step: 1 });
      const timerStarted = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 20));
      // The timer fired while the policy was still looping: the host's event loop was free.
      expect(Date.now() - timerStarted).toBeLessThan(250);
      await expect(looping).rejects.toMatchObject({ code: 'POLICY_TIMEOUT', message: expect.stringContaining('300 ms') });
      expect(await actionOf(runtime, observation, 2)).toEqual([1, 2, 3]);
      await expectBystanderWorks();
      runtime.dispose();
    });

    it('POLICY_TIMEOUT for an endless chain of microtasks queued by act()', async () => {
      const runtime = await loadAct(
        `Promise.resolve().then(function again() { return Promise.resolve().then(again); }); return [1, 2, 3];`,
        {
          limits: { callTimeoutMs: 100 },
        },
      );
      await expect(runtime.act(observation, { step: 0 })).rejects.toMatchObject({ code: 'POLICY_TIMEOUT' });
      await expectBystanderWorks();
      runtime.dispose();
    });

    it('POLICY_MEMORY_LIMIT for a memory bomb in act(); later calls fail with POLICY_DISPOSED', async () => {
      const rssBefore = rssMb();
      const runtime = await loadAct(`const hoard = []; while (true) hoard.push({ step: context.step, data: [Math.random()] });`, {
        limits: { memoryMb: 32, callTimeoutMs: 10_000 },
      });
      await expect(runtime.act(observation, { step: 0 })).rejects.toMatchObject({ code: 'POLICY_MEMORY_LIMIT' });
      await expect(runtime.act(observation, { step: 1 })).rejects.toMatchObject({
        code: 'POLICY_DISPOSED',
        message: expect.stringContaining('POLICY_MEMORY_LIMIT'),
      });
      runtime.dispose();
      expect(rssMb() - rssBefore).toBeLessThan(100);
      await expectBystanderWorks();
    });

    it('POLICY_MEMORY_LIMIT for a memory bomb at the top level and for typed arrays beyond the limit', async () => {
      await expect(
        // A time limit a loaded machine cannot reach first: this is about memory.
        loadJs(`const hoard = []; while (true) hoard.push('x'.repeat(1000) + hoard.length);`, {
          limits: { memoryMb: 32, loadTimeoutMs: 10_000 },
        }),
      ).rejects.toMatchObject({
        code: 'POLICY_MEMORY_LIMIT',
      });
      const runtime = await loadAct(
        `const buffers = []; for (let i = 0; i < 100; i++) buffers.push(new Float64Array(1e6)); return [1, 2, 3];`,
        {
          // Zeroing 8 MB buffers can pass the 50 ms call limit on a loaded machine before the memory limit is reached.
          limits: { memoryMb: 32, callTimeoutMs: 10_000 },
        },
      );
      await expect(runtime.act(observation, { step: 0 })).rejects.toMatchObject({ code: 'POLICY_MEMORY_LIMIT' });
      runtime.dispose();
      await expectBystanderWorks();
    });

    it('memory the limit does not count is out of reach: no WebAssembly, SharedArrayBuffer or resizable ArrayBuffer', async () => {
      const runtime = await loadAct(`
        const viaPrototype = Object.getPrototypeOf(new Uint8Array(1).buffer).constructor;
        return [
          typeof WebAssembly === 'undefined' && typeof SharedArrayBuffer === 'undefined' && typeof Atomics === 'undefined' ? 1 : 0,
          new ArrayBuffer(8, { maxByteLength: 2 ** 32 }).resizable || new viaPrototype(8, { maxByteLength: 2 ** 32 }).resizable ? 1 : 0,
          typeof ArrayBuffer.prototype.resize === 'function' || new ArrayBuffer(8).byteLength !== 8 || !(new ArrayBuffer(8) instanceof ArrayBuffer) ? 1 : 0,
        ];`);
      expect(await actionOf(runtime)).toEqual([1, 0, 0]);
      runtime.dispose();
    });

    it('no way out to the host: process, require, timers and the network do not exist', async () => {
      const runtime = await loadAct(`
        const viaConstructor = this === undefined ? Function('return typeof process')() : this.constructor.constructor('return typeof process')();
        const viaGlobal = [globalThis.process, globalThis.require, globalThis.module, globalThis.setTimeout, globalThis.setImmediate,
          globalThis.fetch, globalThis.XMLHttpRequest, globalThis.Buffer, globalThis.__dirname].every((value) => value === undefined);
        return [viaConstructor === 'undefined' ? 1 : 0, viaGlobal ? 1 : 0, typeof require === 'undefined' ? 1 : 0];`);
      expect(await actionOf(runtime)).toEqual([1, 1, 1]);
      const escaping = await loadAct(
        `return this.constructor.constructor('return process')().mainModule.require('fs').readFileSync('/etc/passwd');`,
      );
      await expect(escaping.act(observation, { step: 0 })).rejects.toMatchObject({
        code: 'POLICY_THREW',
        message: 'act() threw ReferenceError: process is not defined',
      });
      const requiring = await loadAct(`return require('child_process').execSync('id');`);
      await expect(requiring.act(observation, { step: 0 })).rejects.toMatchObject({
        code: 'POLICY_THREW',
        message: expect.stringContaining('ReferenceError: require is not defined'),
      });
      escaping.dispose();
      requiring.dispose();
      await expectBystanderWorks();
    });

    it('the checking harness is out of reach: act() has no caller and no stack frame yields a function', async () => {
      const runtime = await loadJs(`
        function act(observation, context) {
          Error.prepareStackTrace = (error, frames) => frames.filter((frame) => frame.getFunction() !== undefined && frame.getFunction() !== act).length;
          const reachable = new Error().stack;
          Error.prepareStackTrace = undefined;
          return [act.caller === null ? 1 : 0, reachable, arguments.callee.caller === null ? 1 : 0];
        }`);
      expect(await actionOf(runtime)).toEqual([1, 0, 1]);
      runtime.dispose();
    });

    it('prototype pollution by the script does not change how its output is checked', async () => {
      const pollution = `
        Array.isArray = () => true;
        Number.isFinite = () => true;
        Reflect.apply = () => [1, 2, 3];
        Object.defineProperty(Array.prototype, '2', { get: () => 3, configurable: true });
        Object.defineProperty(Object.prototype, 'kind', { get: () => 'ok', set() {}, configurable: true });
        Object.defineProperty(Object.prototype, 'values', { get: () => new Float32Array(3), set() {}, configurable: true });
        Float32Array = function () { return [1, 2, 3]; };
        String.prototype.slice = () => 'sliced';
        Object.getPrototypeOf = () => null;
      `;
      const cases: Array<[string, RegExp]> = [
        [`return { length: 3, 0: 1, 1: 2, 2: 3 };`, /returned an object, expected an array of 3 numbers/],
        [`return [1, NaN, 3];`, /act\(\)\[1\] is NaN/],
        [`return [1, 2];`, /act\(\)\[2\] is undefined, expected a number|returned 2 numbers/],
        [`return 'abc';`, /returned a string/],
      ];
      for (const [output, message] of cases) {
        const runtime = await loadJs(`${pollution}\nfunction act() { ${output} }`);
        await expect(runtime.act(observation, { step: 0 })).rejects.toMatchObject({
          code: 'POLICY_BAD_OUTPUT',
          message: expect.stringMatching(message),
        });
        runtime.dispose();
      }
      // A correct action still comes through correctly under the same pollution.
      const honest = await loadJs(`${pollution}\nfunction act() { return [7, 8, 9]; }`);
      expect(await actionOf(honest)).toEqual([7, 8, 9]);
      honest.dispose();
      await expectBystanderWorks();
    });

    it('a giant output never reaches the host: POLICY_BAD_OUTPUT or POLICY_MEMORY_LIMIT, host memory flat', async () => {
      // The host's own heap and buffers, where a copied output would land. (RSS also counts the
      // isolates' heaps, which live in this process and are given back to the system lazily.)
      const hostHeapMb = () => {
        const usage = process.memoryUsage();
        return (usage.heapUsed + usage.arrayBuffers) / 1024 / 1024;
      };
      const hostBefore = hostHeapMb();
      const sparse = await loadAct(`const output = []; output.length = 50_000_000; return output;`);
      await expect(sparse.act(observation, { step: 0 })).rejects.toMatchObject({
        code: 'POLICY_BAD_OUTPUT',
        message: 'act() returned 50000000 numbers, expected 3 (action shape [3])',
      });
      sparse.dispose();
      const dense = await loadAct(`const output = []; for (let i = 0; i < 50_000_000; i++) output.push(i); return output;`, {
        limits: { memoryMb: 64, callTimeoutMs: 5000 },
      });
      await expect(dense.act(observation, { step: 0 })).rejects.toMatchObject({ code: 'POLICY_MEMORY_LIMIT' });
      dense.dispose();
      const rows = await loadAct(`return Array.from({ length: 2 }, () => { const row = []; row.length = 50_000_000; return row; });`, {
        shape: [2, 3],
      });
      await expect(rows.act(observation, { step: 0 })).rejects.toMatchObject({
        code: 'POLICY_BAD_OUTPUT',
        message: 'act()[0] has 50000000 numbers, expected 3 (action shape [2, 3])',
      });
      rows.dispose();
      expect(hostHeapMb() - hostBefore).toBeLessThan(100);
      await expectBystanderWorks();
    });

    it('POLICY_THREW with the policy message, truncated, for anything thrown', async () => {
      const throwing = await loadAct(`throw new RangeError('gripper out of range at step ' + context.step);`);
      await expect(throwing.act(observation, { step: 4 })).rejects.toMatchObject({
        code: 'POLICY_THREW',
        message: 'act() threw RangeError: gripper out of range at step 4',
      });
      throwing.dispose();
      const cases: Array<[string, RegExp]> = [
        [`throw 'plain string';`, /act\(\) threw plain string$/],
        [`throw { get message() { throw new Error('nope'); } };`, /could not be turned into text/],
        [
          `throw new Proxy({}, { get: (target, key) => (key === 'name' ? 'RangeError' : 'Array buffer allocation failed'), getPrototypeOf() { throw new Error('trap'); } });`,
          /threw RangeError: Array buffer allocation failed$/,
        ],
        [`throw new Error('x'.repeat(1_000_000));`, /^act\(\) threw Error: x{1000}…$/],
        [`return act(observation, context);`, /Maximum call stack size exceeded/],
      ];
      for (const [body, message] of cases) {
        // Deep recursion and large strings are slow under load: a call limit that is not what is tested here.
        const runtime = await loadAct(body, { limits: { callTimeoutMs: 10_000 } });
        await expect(runtime.act(observation, { step: 0 })).rejects.toMatchObject({
          code: 'POLICY_THREW',
          message: expect.stringMatching(message),
        });
        runtime.dispose();
      }
      await expectBystanderWorks();
    });

    it('POLICY_BAD_OUTPUT for non-finite numbers, wrong lengths, non-arrays and async act()', async () => {
      const cases: Array<[string, [number] | [number, number], string]> = [
        [`return [1, NaN, 3];`, [3], 'act()[1] is NaN (action shape [3])'],
        [`return [1, 2, Infinity];`, [3], 'act()[2] is Infinity (action shape [3])'],
        [`return [1, 2, 1e39];`, [3], 'act()[2] is 1e+39, too large for a 32-bit float (action shape [3])'],
        [`return [1, '2', 3];`, [3], 'act()[1] is a string, expected a number (action shape [3])'],
        [`return [1, 2, 3, 4, 5, 6];`, [7], 'act() returned 6 numbers, expected 7 (action shape [7])'],
        [`return 42;`, [3], 'act() returned a number, expected an array of 3 numbers (action shape [3])'],
        [`return undefined;`, [3], 'act() returned undefined, expected an array of 3 numbers (action shape [3])'],
        [`return [[1], [2], [3]];`, [3], 'act()[0] is an array, expected a number (action shape [3])'],
        [`return [1, 2, 3, 4, 5, 6];`, [2, 3], 'act() returned 6 numbers, expected 2 arrays of 3 numbers (action shape [2, 3])'],
        [`return [1, [1, 2, 3]];`, [2, 3], 'act()[0] is a number, expected an array of 3 numbers (action shape [2, 3])'],
        [`return [[1, 2, 3]];`, [2, 3], 'act() returned 1 entries, expected 2 arrays of 3 numbers (action shape [2, 3])'],
        [`return [[1, 2, 3], [4, 5]];`, [2, 3], 'act()[1] has 2 numbers, expected 3 (action shape [2, 3])'],
        [`return [[1, 2, 3], [4, -Infinity, 6]];`, [2, 3], 'act()[1][1] is -Infinity (action shape [2, 3])'],
      ];
      for (const [body, shape, message] of cases) {
        const runtime = await loadAct(body, { shape });
        await expect(runtime.act(observation, { step: 0 })).rejects.toMatchObject({ code: 'POLICY_BAD_OUTPUT', message });
        runtime.dispose();
      }
      // act() must be synchronous: a Promise is refused rather than awaited.
      const asynchronous = await loadJs(`async function act() { return [1, 2, 3]; }`);
      await expect(asynchronous.act(observation, { step: 0 })).rejects.toMatchObject({
        code: 'POLICY_BAD_OUTPUT',
        message: 'act() returned a Promise (act() must not be async), expected an array of 3 numbers (action shape [3])',
      });
      asynchronous.dispose();
      await expectBystanderWorks();
    });
  });
});

describe('JS policy runtime: several steps in one call (actMany)', () => {
  it('acts on each in order, as act() one after the other would, and names the step that failed', async () => {
    const runtime = await loadJs(
      'let calls = 0; function act(o, c) { calls++; if (o["observation.state"][0] < 0) throw new Error("negative"); return [o["observation.state"][0], c.step, calls]; }',
    );
    const calls = [5, 6, 7].map((value, step) => ({ observation: { 'observation.state': [value, 0, 0] }, context: { step } }));
    expect((await runtime.actMany!(calls)).map((action) => Array.from(action))).toEqual([
      [5, 0, 1],
      [6, 1, 2],
      [7, 2, 3],
    ]);
    const failing = [1, -1, 2].map((value, step) => ({ observation: { 'observation.state': [value, 0, 0] }, context: { step } }));
    await expect(runtime.actMany!(failing)).rejects.toMatchObject({ code: 'POLICY_THREW', details: { callIndex: 1 } });
    // It stopped at the failing step: the third was never called.
    expect(Array.from(await runtime.act({ 'observation.state': [9, 0, 0] }, { step: 9 }))).toEqual([9, 9, 6]);
    runtime.dispose();
  });
});

describe('ONNX policy runtime', () => {
  // The same numbers as make-onnx-models.mjs: action = W · state + b.
  const weights = [
    [1, 2, 3, 4],
    [-1, 0.5, 0, 2],
    [0.25, -0.5, 1, -1],
  ];
  const bias = [0.5, -1, 2];

  function onnxManifest(overrides: Partial<PolicyManifest> = {}): PolicyManifest {
    return manifest({ runtime: 'onnx', entry: 'model.onnx', ...overrides });
  }

  async function fixture(name: string): Promise<Buffer> {
    return readFile(new URL(name, fixtures));
  }

  it('computes W · state + b with the linear model', async () => {
    const runtime = await loadPolicyRuntime({ manifest: onnxManifest(), entry: await fixture('linear-4x3.onnx') });
    const expected = weights.map((row, index) =>
      row.reduce((sum, weight, column) => sum + weight * (state[column] ?? 0), bias[index] ?? 0),
    );
    const action = await runtime.act(observation, { step: 0 });
    expect(action).toHaveLength(3);
    action.forEach((value, index) => expect(value).toBeCloseTo(expected[index] ?? NaN, 5));
    // A Float32Array observation gives the same action.
    expect(Array.from(await runtime.act({ 'observation.state': Float32Array.from(state) }, { step: 1 }))).toEqual(Array.from(action));
    await runtime.reset();
    runtime.dispose();
    await expect(runtime.act(observation, { step: 2 })).rejects.toMatchObject({ code: 'POLICY_DISPOSED' });
  });

  it('runs the 2×256 MLP used by the bench', async () => {
    const runtime = await loadPolicyRuntime({
      manifest: onnxManifest({ action: { shape: [14] } }),
      entry: await fixture('mlp-14x256x256x14.onnx'),
    });
    const input = { 'observation.state': Array.from({ length: 14 }, (_, index) => Math.sin(index)) };
    const first = await runtime.act(input, { step: 0 });
    expect(first).toHaveLength(14);
    expect(first.every((value) => Number.isFinite(value))).toBe(true);
    expect(new Set(first).size).toBeGreaterThan(1);
    expect(Array.from(await runtime.act(input, { step: 1 }))).toEqual(Array.from(first));
    runtime.dispose();
  });

  it('POLICY_BAD_OUTPUT at load when the model declares an output of the wrong size', async () => {
    await expect(loadPolicyRuntime({ manifest: onnxManifest(), entry: await fixture('wrong-output-4x5.onnx') })).rejects.toMatchObject({
      code: 'POLICY_BAD_OUTPUT',
      message: expect.stringContaining('shape [1, 5], 5 numbers per call, expected 3 (action shape [3])'),
    });
  });

  it('POLICY_BAD_OUTPUT at the call when the output size shows only then, or is not finite', async () => {
    const runtime = await loadPolicyRuntime({
      manifest: onnxManifest({ observation: ['observation.state', 'observation.layout'], action: { shape: [2, 2] } }),
      entry: await fixture('reshape-by-input.onnx'),
    });
    expect(Array.from(await runtime.act({ ...observation, 'observation.layout': [2, 2] }, { step: 0 }))).toEqual(state);
    await expect(runtime.act({ ...observation, 'observation.layout': [1, 4] }, { step: 1 })).resolves.toHaveLength(4);
    runtime.dispose();
    const narrower = await loadPolicyRuntime({
      manifest: onnxManifest({ observation: ['observation.state', 'observation.layout'], action: { shape: [3] } }),
      entry: await fixture('reshape-by-input.onnx'),
    });
    await expect(narrower.act({ ...observation, 'observation.layout': [2, 2] }, { step: 0 })).rejects.toMatchObject({
      code: 'POLICY_BAD_OUTPUT',
      message: 'the model\'s output "action" has 4 numbers (shape [2, 2]), expected 3 (action shape [3])',
    });
    // A shape the model cannot take fails inside onnxruntime.
    await expect(narrower.act({ ...observation, 'observation.layout': [3, 3] }, { step: 1 })).rejects.toMatchObject({
      code: 'POLICY_THREW',
    });
    narrower.dispose();
    const linear = await loadPolicyRuntime({ manifest: onnxManifest(), entry: await fixture('linear-4x3.onnx') });
    await expect(linear.act({ 'observation.state': [3e38, 3e38, 3e38, 3e38] }, { step: 0 })).rejects.toMatchObject({
      code: 'POLICY_BAD_OUTPUT',
      message: expect.stringContaining('Infinity at index 0'),
    });
    await expect(linear.act({ 'observation.state': [1, 2, 3] }, { step: 1 })).rejects.toMatchObject({
      code: 'POLICY_BAD_OBSERVATION',
      message: 'observation "observation.state" has 3 numbers; the model\'s input takes shape [1, 4]',
    });
    linear.dispose();
  });

  it('ONNX_INVALID for a broken file', async () => {
    await expect(loadPolicyRuntime({ manifest: onnxManifest(), entry: await fixture('broken.onnx') })).rejects.toMatchObject({
      code: 'ONNX_INVALID',
      message: expect.stringContaining('model.onnx'),
    });
    await expect(loadPolicyRuntime({ manifest: onnxManifest(), entry: Buffer.from('not a model at all') })).rejects.toMatchObject({
      code: 'ONNX_INVALID',
    });
  });

  it('ONNX_TOO_LARGE over maxModelBytes', async () => {
    await expect(
      loadPolicyRuntime({ manifest: onnxManifest(), entry: await fixture('linear-4x3.onnx'), limits: { maxModelBytes: 100 } }),
    ).rejects.toMatchObject({ code: 'ONNX_TOO_LARGE', message: 'model.onnx is 326 bytes, larger than the limit of 100 bytes' });
  });

  it('ONNX_INPUT_MISMATCH naming the missing and the extra inputs', async () => {
    await expect(
      loadPolicyRuntime({ manifest: onnxManifest({ observation: ['observation.joints'] }), entry: await fixture('linear-4x3.onnx') }),
    ).rejects.toMatchObject({
      code: 'ONNX_INPUT_MISMATCH',
      message: expect.stringMatching(/no input for "observation\.joints".*does not list: "observation\.state"/),
    });
    await expect(
      loadPolicyRuntime({
        manifest: onnxManifest({ observationShapes: { 'observation.state': [5] } }),
        entry: await fixture('linear-4x3.onnx'),
      }),
    ).rejects.toMatchObject({ code: 'ONNX_INPUT_MISMATCH', message: expect.stringContaining('observationShapes gives [5]') });
  });

  describe('input shapes', () => {
    const joints = [1, 2, 3, 4, 5, 6, 7];
    const float32State = (shape: number[]) => ({ 'observation.state': { dtype: 'float32' as const, shape } });

    it('take the feature shape from the model when it fixes it: [1, 7] and [batch, 14] are features of [7] and [14]', async () => {
      const arm = await loadPolicyRuntime({ manifest: onnxManifest({ action: { shape: [2] } }), entry: await fixture('arm-1x7.onnx') });
      expect(arm.observationShapes).toEqual({ 'observation.state': [7] });
      // action = [Σ joint, Σ (i + 1) · joint_i + 0.5]
      expect(Array.from(await arm.act({ 'observation.state': joints }, { step: 0 }))).toEqual([28, 140.5]);
      await expect(arm.act({ 'observation.state': joints.slice(1) }, { step: 1 })).rejects.toMatchObject({
        code: 'POLICY_BAD_OBSERVATION',
        message: 'observation "observation.state" has 6 numbers; the model\'s input takes shape [1, 7]',
      });
      arm.dispose();
      const mlp = await loadPolicyRuntime({
        manifest: onnxManifest({ action: { shape: [14] } }),
        entry: await fixture('mlp-14x256x256x14.onnx'),
      });
      expect(mlp.observationShapes).toEqual({ 'observation.state': [14] });
      mlp.dispose();
    });

    it('ONNX_INPUT_MISMATCH naming the input and both shapes when observationShapes or the dataset disagree with the model', async () => {
      const entry = await fixture('arm-1x7.onnx');
      await expect(
        loadPolicyRuntime({ manifest: onnxManifest({ action: { shape: [2] }, observationShapes: { 'observation.state': [6] } }), entry }),
      ).rejects.toMatchObject({
        code: 'ONNX_INPUT_MISMATCH',
        message:
          'model.onnx: input "observation.state" has shape [1, 7], so its feature shape is [7] (the first axis is the batch), but policy.json\'s observationShapes gives [6]',
        details: { input: 'observation.state', modelShape: [1, 7], featureShape: [6], field: 'observationShapes.observation.state' },
      });
      await expect(
        loadPolicyRuntime({ manifest: onnxManifest({ action: { shape: [2] } }), entry, features: float32State([6]) }),
      ).rejects.toMatchObject({
        code: 'ONNX_INPUT_MISMATCH',
        message: expect.stringContaining(
          'its feature shape is [7] (the first axis is the batch), but the dataset\'s feature "observation.state" has shape [6]',
        ),
        details: { input: 'observation.state', modelShape: [1, 7], featureShape: [6] },
      });
      // Agreeing sources load.
      const agreeing = await loadPolicyRuntime({
        manifest: onnxManifest({ action: { shape: [2] }, observationShapes: { 'observation.state': [7] } }),
        entry,
        features: float32State([7]),
      });
      expect(agreeing.observationShapes).toEqual({ 'observation.state': [7] });
      agreeing.dispose();
    });

    it('ONNX_SHAPE_UNKNOWN naming the input and observationShapes for a dimension nothing fixes; observationShapes or the dataset resolve it', async () => {
      const entry = await fixture('double-any-width.onnx');
      await expect(loadPolicyRuntime({ manifest: onnxManifest({ action: { shape: [7] } }), entry })).rejects.toMatchObject({
        code: 'ONNX_SHAPE_UNKNOWN',
        message:
          'model.onnx: input "observation.state" has shape [batch, joints], whose dimension "joints" the model leaves open; give the feature\'s shape in policy.json\'s observationShapes, e.g. "observationShapes": { "observation.state": [joints] }',
        details: { input: 'observation.state', field: 'observationShapes.observation.state' },
      });
      const declared = await loadPolicyRuntime({
        manifest: onnxManifest({ action: { shape: [7] }, observationShapes: { 'observation.state': [7] } }),
        entry,
      });
      expect(declared.observationShapes).toEqual({ 'observation.state': [7] });
      expect(Array.from(await declared.act({ 'observation.state': joints }, { step: 0 }))).toEqual(joints.map((joint) => 2 * joint));
      declared.dispose();
      const fromDataset = await loadPolicyRuntime({ manifest: onnxManifest(), entry, features: float32State([3]) });
      expect(fromDataset.observationShapes).toEqual({ 'observation.state': [3] });
      fromDataset.dispose();
      await expect(
        loadPolicyRuntime({
          manifest: onnxManifest({ action: { shape: [7] }, observationShapes: { 'observation.state': [7] } }),
          entry,
          features: float32State([3]),
        }),
      ).rejects.toMatchObject({
        code: 'ONNX_INPUT_MISMATCH',
        message: expect.stringContaining('observationShapes gives [7], but the dataset\'s feature "observation.state" has shape [3]'),
      });
    });
  });

  it('ONNX_IMAGE_UNSUPPORTED for image features', async () => {
    await expect(
      loadPolicyRuntime({ manifest: onnxManifest({ observation: ['observation.images.wrist'] }), entry: await fixture('linear-4x3.onnx') }),
    ).rejects.toMatchObject({ code: 'ONNX_IMAGE_UNSUPPORTED', message: expect.stringContaining('observation.images.wrist') });
    await expect(
      loadPolicyRuntime({
        manifest: onnxManifest({ observation: ['observation.state'] }),
        entry: await fixture('linear-4x3.onnx'),
        features: { 'observation.state': { dtype: 'image', shape: [64, 64, 3] } },
      }),
    ).rejects.toMatchObject({ code: 'ONNX_IMAGE_UNSUPPORTED' });
    const runtime = await loadPolicyRuntime({ manifest: onnxManifest(), entry: await fixture('linear-4x3.onnx') });
    await expect(runtime.act({ 'observation.state': new Uint8Array(4) }, { step: 0 })).rejects.toMatchObject({
      code: 'ONNX_IMAGE_UNSUPPORTED',
    });
    runtime.dispose();
  });

  it('ONNX_EXTERNAL_DATA for a model that would read tensor data from a file on the server', async () => {
    await expect(
      loadPolicyRuntime({ manifest: onnxManifest({ action: { shape: [4] } }), entry: await fixture('external-data.onnx') }),
    ).rejects.toMatchObject({
      code: 'ONNX_EXTERNAL_DATA',
      message: expect.stringContaining('(bias)'),
    });
  });
});
