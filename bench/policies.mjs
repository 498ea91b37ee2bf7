// `npm run bench -- policies`: evaluation steps/s in embedded mode for a trivial JS policy and a small
// ONNX MLP (2×256 hidden), and the per-call cost of the JS sandbox against calling the same function
// directly in this process, same run.
import { readFile } from 'node:fs/promises';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseJailLevel } from '../packages/jail/dist/index.js';
import { loadJailedPolicyRuntime } from '../packages/core/dist/policies/hosts/jailed-policy-runtime.js';
import { defaultPolicyRuntimeLimits, loadPolicyRuntime } from '../packages/core/dist/policies/runtimes/policy-runtime.js';
import { deployPolicy, STATE_DIMS, startScratchApi, trivialPolicy } from './support.mjs';

/** Per-call time of the sandboxed policy and of the same function called directly. */
async function callOverhead() {
  const runtime = await loadPolicyRuntime({ manifest: trivialPolicy.manifest, entry: Buffer.from(trivialPolicy.script) });
  const observation = { 'observation.state': Array.from({ length: STATE_DIMS }, (_, index) => index / 10) };
  const calls = 5000;
  for (let index = 0; index < 500; index++) await runtime.act(observation, { step: index });
  let started = performance.now();
  for (let index = 0; index < calls; index++) await runtime.act(observation, { step: index });
  const sandboxUs = ((performance.now() - started) / calls) * 1000;
  runtime.dispose();
  const direct = new Function(`${trivialPolicy.script}; return act;`)();
  started = performance.now();
  let sink = 0;
  for (let index = 0; index < calls * 20; index++) sink += (await direct(observation, { step: index }))[0];
  const directUs = ((performance.now() - started) / (calls * 20)) * 1000;
  return { sandboxUs, directUs, sink };
}

const hostSettings = {
  level: chooseJailLevel('auto').level,
  memoryBytes: 512 * 1024 ** 2,
  loadTimeoutMs: 10_000,
  cpuSeconds: 3600,
  processes: 256,
  python: { interpreter: process.env.KURA_PYTHON ?? '/usr/bin/python3', memoryBytes: 2048 * 1024 ** 2, loadTimeoutMs: 60_000 },
};

/** p50 and p99 of `calls` act() round trips after a warm-up, in µs. */
async function actPercentiles(runtime, observation, calls) {
  for (let index = 0; index < 300; index++) await runtime.act(observation, { step: index });
  const times = [];
  for (let index = 0; index < calls; index++) {
    const started = performance.now();
    await runtime.act(observation, { step: index });
    times.push((performance.now() - started) * 1000);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(calls / 2)], p99: times[Math.floor(calls * 0.99)] };
}

/**
 * The jailed policy hosts (policies/hosts): cold start (host process + load) and act() round trips of
 * the trivial policy as JS, and as Python (numpy), against the in-process isolate of the same run.
 */
async function hostCosts() {
  const observation = { 'observation.state': Array.from({ length: STATE_DIMS }, (_, index) => index / 10) };
  const folder = await mkdtemp(join(tmpdir(), 'kura-bench-hosts-'));
  await chmod(folder, 0o755);
  const rows = [];
  try {
    await writeFile(
      join(folder, 'policy.py'),
      'import numpy as np\n\ndef act(observation, context):\n    return observation["observation.state"] * 0.5\n',
    );
    const variants = {
      'in process (isolated-vm)': () => loadPolicyRuntime({ manifest: trivialPolicy.manifest, entry: Buffer.from(trivialPolicy.script) }),
      'jailed host, JS': () =>
        loadJailedPolicyRuntime({
          manifest: trivialPolicy.manifest,
          entry: Buffer.from(trivialPolicy.script),
          limits: defaultPolicyRuntimeLimits,
          host: hostSettings,
        }),
      'jailed host, ONNX MLP 14→256→256→14': async () =>
        loadJailedPolicyRuntime({
          manifest: { ...trivialPolicy.manifest, runtime: 'onnx', entry: 'model.onnx' },
          entry: await readFile(new URL('../packages/core/src/policies/runtimes/fixtures/mlp-14x256x256x14.onnx', import.meta.url)),
          limits: defaultPolicyRuntimeLimits,
          host: hostSettings,
        }),
      'jailed host, Python (numpy)': () =>
        loadJailedPolicyRuntime({
          manifest: { ...trivialPolicy.manifest, runtime: 'python', entry: 'policy.py' },
          entry: Buffer.alloc(0),
          bundleDir: folder,
          limits: defaultPolicyRuntimeLimits,
          host: hostSettings,
        }),
    };
    for (const [name, load] of Object.entries(variants)) {
      const started = performance.now();
      const runtime = await load();
      const coldMs = performance.now() - started;
      const { p50, p99 } = await actPercentiles(runtime, observation, 3000);
      runtime.dispose();
      rows.push({ where: name, 'cold start ms': +coldMs.toFixed(1), 'act p50 µs': +p50.toFixed(1), 'act p99 µs': +p99.toFixed(1) });
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  return rows;
}

export async function benchPolicies() {
  const overhead = await callOverhead();
  const hosts = await hostCosts();
  const { call, stop } = await startScratchApi('policies');
  const rows = [];
  try {
    const robot = await call('/v1/robots', { name: 'bench', robotType: 'bench', controlFrequencyHz: 30, actionSpace: 'joint_position' });
    const datasetId = (await call('/v1/datasets', { name: 'policies-bench', robotId: robot.id, access: 'public' })).id;
    // 400 episodes × 100 steps of 14-dim state and action: ~40 held-out episodes, ~4,000 evaluated steps.
    const lines = [];
    for (let episode = 0; episode < 400; episode++)
      for (let step = 0; step < 100; step++) {
        const vector = (offset) => Array.from({ length: STATE_DIMS }, (_, index) => Math.sin(episode + step / 10 + index + offset));
        lines.push(JSON.stringify({ episode, step, observation: { state: vector(0) }, action: vector(1) }));
      }
    let upload = await call(`/v1/datasets/${datasetId}/uploads?format=kura-ndjson`, `${lines.join('\n')}\n`, 'application/x-ndjson');
    while (upload.status !== 'published') {
      if (upload.status === 'failed') throw new Error(JSON.stringify(upload.errors));
      await new Promise((resolve) => setTimeout(resolve, 100));
      upload = await call(`/v1/uploads/${upload.id}`);
    }

    const mlp = await readFile(new URL('../packages/core/src/policies/runtimes/fixtures/mlp-14x256x256x14.onnx', import.meta.url));
    const bundles = {
      'trivial JS': { 'policy.json': JSON.stringify(trivialPolicy.manifest), 'policy.js': trivialPolicy.script },
      'ONNX MLP 2×256': {
        'policy.json': JSON.stringify({
          name: 'mlp',
          runtime: 'onnx',
          entry: 'model.onnx',
          observation: ['observation.state'],
          observationShapes: { 'observation.state': [STATE_DIMS] },
          action: { shape: [STATE_DIMS] },
        }),
        'model.onnx': mlp,
      },
    };
    for (const [name, files] of Object.entries(bundles)) {
      const policy = await deployPolicy(call, files);
      let evaluation = await call(`/v1/policies/${policy.id}/evaluations`, { datasetId });
      while (evaluation.status === 'queued' || evaluation.status === 'running') {
        await new Promise((resolve) => setTimeout(resolve, 50));
        evaluation = await call(`/v1/evaluations/${evaluation.id}`);
      }
      if (evaluation.status !== 'completed') throw new Error(`${name}: ${JSON.stringify(evaluation.error)}`);
      const seconds = (Date.parse(evaluation.finishedAt) - Date.parse(evaluation.startedAt)) / 1000;
      rows.push({
        policy: name,
        steps: evaluation.metrics.stepsEvaluated,
        'evaluation s': +seconds.toFixed(2),
        'steps/s': Math.round(evaluation.metrics.stepsEvaluated / seconds),
        'call p50 ms': evaluation.timing.latencyMsP50,
        'call p99 ms': evaluation.timing.latencyMsP99,
      });
    }
  } finally {
    await stop();
  }
  console.table(rows);
  console.table([
    {
      'sandboxed act() µs': +overhead.sandboxUs.toFixed(1),
      'direct call µs': +overhead.directUs.toFixed(2),
      'overhead per call µs': +(overhead.sandboxUs - overhead.directUs).toFixed(1),
    },
  ]);
  console.log('sandbox: a fresh isolated-vm isolate per policy, arguments and result copied, checked inside the isolate');
  console.table(hosts);
  console.log(
    `policy hosts (jail level ${hostSettings.level}): one process per instance; act = observation over a pipe, action back. Targets: host hop ≤ 0.3 ms p50 over in-process; Python act p50 ≤ 0.5 ms`,
  );
  return rows;
}
