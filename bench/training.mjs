// `npm run bench -- training`: training on the platform, each figure against a baseline measured in
// the same run. (1) Handing a training set over: a real training run through the api (embedded
// mode) with a trainer that prints the time and exits, on a published dataset of 14-dim state and
// action at 1× and 4×; the `preparing` phase (record's startedAt → the trainer's first line) against
// `cp -r` of the same bytes of .npy, the api's peak RSS at both sizes, and a floor (read the Arrow
// shards, write the columns' bytes, nothing else). (2) Jail start and `import torch` in the jail vs
// outside it. (3) examples/trainers/bc-mlp on 100,000 generated steps, in the jail and outside it.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { RecordBatchReader } from 'apache-arrow';
import { DatasetStatsAccumulator } from '../packages/formats/dist/stats/index.js';
import { chooseJailLevel } from '../packages/jail/dist/index.js';
import { runTrainerProcess } from '../packages/core/dist/training/trainer-process.js';
import { npyHeader } from '../packages/core/dist/training/npy-writer.js';
import { peakRss, upload } from './ingest.mjs';
import { apiClient, freePort, percentile, startApi, STATE_DIMS, tarGz, waitForHealthy } from './support.mjs';

const PYTHON = process.env.KURA_PYTHON ?? '/usr/bin/python3';
const STEPS_PER_EPISODE = 100;
/** Episodes uploaded at 1× (100 steps each; about 10 % are held out and never handed to a trainer). */
const EPISODES_1X = Number(process.env.KURA_BENCH_TRAINING_EPISODES ?? 2000);
const UPLOAD_EPISODES = 1000;
const RUNS = 3;
const level = chooseJailLevel('auto').level;
const median = (values) => percentile(values, 0.5);
const seconds = (started) => Number(process.hrtime.bigint() - started) / 1e9;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MB = 1e6;
/**
 * bc-mlp's defaults but one thread and 2 epochs: with its default `threads: 2` on this 2-core shared
 * machine torch's OpenMP threads spin against each other (one epoch took 67 s against 14 s with one
 * thread), and 20 epochs run past trainer.json's 600 CPU seconds (TRAINING_CPU_LIMIT).
 */
const BC_MLP_HYPERPARAMETERS = JSON.parse(process.env.KURA_BENCH_BC_MLP_HYPERPARAMETERS ?? '{"threads": 1, "epochs": 2}');

/** The bytes of each .npy a training set of `steps` steps holds (two 14-dim float32 features + the index files). */
function npySizes(steps) {
  const header = 256;
  return {
    'observation.state.npy': header + steps * STATE_DIMS * 4,
    'action.npy': header + steps * STATE_DIMS * 4,
    'episode_index.npy': header + steps * 8,
    'step_index.npy': header + steps * 4,
    'timestamp.npy': header + steps * 8,
    'source_index.npy': header + steps * 2,
    'task_index.npy': header + steps * 4,
  };
}

/** Kura NDJSON of `episodes` episodes of 14-dim state and action. */
async function writeNdjson(path, firstEpisode, episodes) {
  const out = createWriteStream(path);
  for (let episode = firstEpisode; episode < firstEpisode + episodes; episode++) {
    for (let step = 0; step < STEPS_PER_EPISODE; step++) {
      const vector = (offset) =>
        Array.from({ length: STATE_DIMS }, (_, index) => Math.round(Math.sin(episode + step / 10 + index + offset) * 1e4) / 1e4);
      const line = JSON.stringify({
        episode,
        step,
        timestamp: step / 30,
        observation: { state: vector(0) },
        action: vector(1),
        language: `task ${episode % 10}`,
      });
      if (!out.write(`${line}\n`)) await new Promise((resolve) => out.once('drain', resolve));
    }
  }
  await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
}

async function until(call, path, done) {
  for (;;) {
    const body = await call(path);
    if (done(body)) return body;
    await sleep(100);
  }
}

/** The trivial trainer: prints the time it started (a metric line) and exits; the run then fails TRAINING_OUTPUT_MISSING. */
const clockTrainer = {
  'trainer.json': JSON.stringify({
    name: 'clock',
    runtime: 'python',
    entry: 'train.py',
    features: ['observation.state', 'action'],
    resources: { cpuSeconds: 60, memoryMb: 512, wallSeconds: 120 },
  }),
  'train.py': 'import json, time\nprint(json.dumps({"step": 1, "startedAt": time.time()}), flush=True)\n',
};

/** `cp -r` of a folder holding files of the training set's sizes (written once before), median of `RUNS`. */
async function timeCopy(scratch, sizes) {
  const source = join(scratch, 'npy-source');
  await mkdir(source);
  const block = Buffer.alloc(1 << 20);
  for (let index = 0; index < block.length; index++) block[index] = (index * 2654435761) >>> 24;
  for (const [name, bytes] of Object.entries(sizes)) {
    const file = await open(join(source, name), 'w');
    for (let written = 0; written < bytes; written += block.length) await file.write(block, 0, Math.min(block.length, bytes - written));
    await file.close();
  }
  const times = [];
  for (let run = 0; run < RUNS; run++) {
    const target = join(scratch, 'npy-copy');
    const started = process.hrtime.bigint();
    execFileSync('cp', ['-r', source, target]);
    times.push(seconds(started));
    await rm(target, { recursive: true, force: true });
  }
  await rm(source, { recursive: true, force: true });
  return median(times);
}

/**
 * The floor of materialising: read the dataset's Arrow shard files and write the same columns'
 * bytes into seven files (header space, then each batch's values as Arrow holds them), nothing else:
 * no episode list, no held-out filter, no statistics. With `checks`, also what Kura must do besides:
 * a sha256 of the bytes read and the statistics of the numeric columns (one thread). Median of
 * `RUNS`; bytes written and seconds.
 */
async function timeFloor(scratch, shardDirectory, { checks = false } = {}) {
  const shards = (await readdir(shardDirectory)).sort().map((name) => join(shardDirectory, name));
  const columns = ['observation.state', 'action', 'episode_index', 'step_index', 'timestamp'];
  const times = [];
  let bytes = 0;
  for (let run = 0; run < RUNS; run++) {
    const folder = join(scratch, 'floor');
    await mkdir(folder);
    const started = process.hrtime.bigint();
    const files = await Promise.all([...columns, 'source_index', 'task_index'].map((name) => open(join(folder, `${name}.npy`), 'w')));
    const positions = files.map(() => 256);
    const pending = files.map(() => []);
    const pendingBytes = files.map(() => 0);
    const flush = async (index) => {
      const chunk = Buffer.concat(pending[index]);
      await files[index].write(chunk, 0, chunk.length, positions[index]);
      positions[index] += chunk.length;
      pending[index] = [];
      pendingBytes[index] = 0;
    };
    const add = async (index, view) => {
      pending[index].push(Buffer.from(view.buffer, view.byteOffset, view.byteLength));
      pendingBytes[index] += view.byteLength;
      if (pendingBytes[index] >= 1 << 20) await flush(index);
    };
    const stats = new DatasetStatsAccumulator();
    for (const shard of shards) {
      const bytes = await readFile(shard);
      if (checks) createHash('sha256').update(bytes).digest('hex');
      const reader = RecordBatchReader.from(bytes);
      for (const batch of reader) {
        for (const [index, name] of columns.entries()) {
          const data = batch.getChild(name).data[0];
          const values = data.children.length > 0 ? data.children[0].values : data.values;
          await add(index, values);
          if (checks && data.children.length > 0)
            stats.numeric(name, STATE_DIMS).addColumn(values.subarray(0, batch.numRows * STATE_DIMS), batch.numRows);
        }
        await add(5, new Int16Array(batch.numRows));
        await add(6, new Int32Array(batch.numRows));
      }
    }
    for (let index = 0; index < files.length; index++) await flush(index);
    await Promise.all(files.map((file) => file.close()));
    times.push(seconds(started));
    bytes = positions.reduce((sum, position) => sum + position, 0);
    await rm(folder, { recursive: true, force: true });
  }
  return { bytes, seconds: median(times) };
}

/** (1) The hand-off of a training set at `scale`× through a real run. */
async function handOff(scale) {
  const scratch = await mkdtemp(join(tmpdir(), 'kura-bench-training-'));
  await chmod(scratch, 0o755);
  const key = `kura_${'t'.repeat(43)}`;
  const environment = {
    KURA_DATA_DIR: join(scratch, 'data'),
    KURA_TRAINING_DIR: join(scratch, 'runs'),
    HOST: '127.0.0.1',
    KURA_ADMIN_KEY: key,
    LOG_LEVEL: 'warn',
  };
  try {
    // Ingest and the trainer's upload (not measured).
    let port = await freePort();
    let api = startApi({ ...environment, PORT: String(port) });
    let call = apiClient(`http://127.0.0.1:${port}`, key);
    let datasetId;
    let trainerId;
    try {
      await waitForHealthy(`http://127.0.0.1:${port}`);
      const robot = await call('/v1/robots', { name: 'bench', robotType: 'bench', controlFrequencyHz: 30, actionSpace: 'joint_position' });
      datasetId = (await call('/v1/datasets', { name: `training-${scale}`, robotId: robot.id, access: 'private' })).id;
      const file = join(scratch, 'part.ndjson');
      for (let first = 0; first < EPISODES_1X * scale; first += UPLOAD_EPISODES) {
        await writeNdjson(file, first, Math.min(UPLOAD_EPISODES, EPISODES_1X * scale - first));
        const accepted = await upload(port, key, datasetId, file, (await stat(file)).size);
        const result = await until(call, `/v1/uploads/${accepted.id}`, (body) => ['published', 'failed'].includes(body.status));
        if (result.status === 'failed') throw new Error(JSON.stringify(result.errors));
      }
      await rm(file, { force: true });
      let trainer = await call('/v1/trainers', await tarGz(clockTrainer), 'application/octet-stream');
      trainer = await until(call, `/v1/trainers/${trainer.id}`, (body) => body.status !== 'validating');
      if (trainer.status !== 'ready') throw new Error(`trainer: ${JSON.stringify(trainer.errors)}`);
      trainerId = trainer.id;
    } finally {
      await api.stop();
    }

    // A fresh api, so its peak RSS is that of the runs (boot included: `idle` says how much that is).
    port = await freePort();
    api = startApi({ ...environment, PORT: String(port) });
    call = apiClient(`http://127.0.0.1:${port}`, key);
    try {
      await waitForHealthy(`http://127.0.0.1:${port}`);
      await sleep(1000);
      const idleRss = await peakRss(api.child.pid);
      const prepare = [];
      let training;
      for (let run = 0; run < RUNS; run++) {
        training = await call('/v1/trainings', { trainerId, sources: [{ datasetId }] });
        training = await until(call, `/v1/trainings/${training.id}`, (body) => ['succeeded', 'failed', 'cancelled'].includes(body.status));
        if (training.error?.code !== 'TRAINING_OUTPUT_MISSING') throw new Error(`training: ${JSON.stringify(training.error)}`);
        const metrics = await call(`/v1/trainings/${training.id}/metrics`);
        const trainerStarted = metrics.series.startedAt[0][1];
        prepare.push(trainerStarted - Date.parse(training.startedAt) / 1000);
      }
      const rss = await peakRss(api.child.pid);
      const sizes = npySizes(training.stepCount);
      const npyBytes = Object.values(sizes).reduce((sum, bytes) => sum + bytes, 0);
      const cpSeconds = await timeCopy(scratch, sizes);
      const shards = join(scratch, 'data', 'blobs', 'datasets', datasetId, 'shards');
      const floor = await timeFloor(scratch, shards);
      const checked = await timeFloor(scratch, shards, { checks: true });
      const prepareSeconds = median(prepare);
      return {
        size: `${scale}×`,
        'steps handed': training.stepCount,
        episodes: training.episodeCount,
        '.npy MB': +(npyBytes / MB).toFixed(1),
        'preparing s (runs)': `${prepareSeconds.toFixed(2)} (${prepare.map((value) => value.toFixed(2)).join(', ')})`,
        'MB/s': +(npyBytes / MB / prepareSeconds).toFixed(1),
        'steps/s': Math.round(training.stepCount / prepareSeconds),
        'cp -r s': +cpSeconds.toFixed(3),
        'cp MB/s': +(npyBytes / MB / cpSeconds).toFixed(0),
        'ratio to cp': +(cpSeconds / prepareSeconds).toFixed(3),
        'floor s': +floor.seconds.toFixed(3),
        'floor MB/s': +(floor.bytes / MB / floor.seconds).toFixed(0),
        'ratio to floor': +(npyBytes / prepareSeconds / (floor.bytes / floor.seconds)).toFixed(3),
        'floor + checks s': +checked.seconds.toFixed(3),
        'ratio to floor + checks': +(npyBytes / prepareSeconds / (checked.bytes / checked.seconds)).toFixed(3),
        'api idle / peak RSS MB': `${(idleRss / MB).toFixed(0)} / ${(rss / MB).toFixed(0)}`,
      };
    } finally {
      await api.stop();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Runs `code/<entry>` in the jail as a training run does (same mounts, limits, environment): wall seconds and the result. */
async function jailed(folder, entry, resources) {
  const out = join(folder, `out-${Math.random().toString(36).slice(2)}`);
  await mkdir(out);
  await chmod(out, 0o777);
  const started = process.hrtime.bigint();
  const result = await runTrainerProcess({
    level,
    interpreter: PYTHON,
    entry,
    codeDir: join(folder, 'code'),
    dataDir: join(folder, 'data'),
    outDir: out,
    resources,
    processes: 64, // KURA_TRAINING_PROCESSES' default
    output: { maxBytes: 512 * 1024 * 1024, maxFiles: 1000 }, // the defaults
    guarded: false,
    env: { KURA_POLICY_NAME: 'bench', KURA_TRAINING_ID: 'trn_bench' },
    signal: new globalThis.AbortController().signal,
  });
  const returned = seconds(started);
  await rm(out, { recursive: true, force: true });
  if (result.outcome !== 'ok') throw new Error(`${entry} in the jail: ${result.outcome} ${result.exit.stderr}`);
  // wall: spawn → exit of the jailed process (the jail's own clock); returned: until runTrainerProcess
  // resolves, which also waits out its /out watch (a 250 ms sleep).
  const step = result.metrics.series.get('seconds')?.at(-1)?.[0];
  return { wall: result.exit.durationMs / 1000, returned, metrics: { ...result.metrics.latest(), step } };
}

/** The same script outside the jail: same interpreter, flags, working directory and environment (host paths). */
async function outside(folder, entry) {
  const out = join(folder, `out-${Math.random().toString(36).slice(2)}`);
  await mkdir(out);
  const started = process.hrtime.bigint();
  const child = spawn(PYTHON, ['-I', '-B', join(folder, 'code', entry)], {
    cwd: join(folder, 'code'),
    env: {
      PATH: process.env.PATH,
      KURA_DATA_DIR: join(folder, 'data'),
      KURA_OUT_DIR: out,
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
      OMP_NUM_THREADS: '4',
      OPENBLAS_NUM_THREADS: '4',
      MKL_NUM_THREADS: '4',
      KURA_POLICY_NAME: 'bench',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  const wall = seconds(started);
  await rm(out, { recursive: true, force: true });
  if (code !== 0) throw new Error(`${entry} outside the jail: exit ${code} ${stderr}`);
  const metrics = {};
  for (const line of stdout.split('\n')) if (line.startsWith('{')) Object.assign(metrics, JSON.parse(line));
  return { wall, metrics };
}

/** (2) Jail start + `import torch`, and a bare interpreter, in the jail and outside; medians of 7 after one warm-up each. */
async function torchImport() {
  const folder = await mkdtemp(join(tmpdir(), 'kura-bench-torch-'));
  await chmod(folder, 0o755);
  try {
    await mkdir(join(folder, 'code'), { mode: 0o755 });
    await mkdir(join(folder, 'data'), { mode: 0o755 });
    await writeFile(join(folder, 'code', 'bare.py'), 'pass\n');
    await writeFile(join(folder, 'code', 'import_torch.py'), 'import torch\n');
    const resources = { cpuSeconds: 600, memoryMb: 2048, wallSeconds: 900 }; // bc-mlp's trainer.json
    const rows = [];
    for (const [name, entry] of [
      ['python3 (nothing imported)', 'bare.py'],
      ['python3 -c "import torch"', 'import_torch.py'],
    ]) {
      await jailed(folder, entry, resources);
      await outside(folder, entry);
      const inside = [];
      const returned = [];
      const host = [];
      for (let run = 0; run < 7; run++) {
        const result = await jailed(folder, entry, resources);
        inside.push(result.wall);
        returned.push(result.returned);
        host.push((await outside(folder, entry)).wall);
      }
      rows.push({
        command: name,
        'jail ms (p50)': Math.round(median(inside) * 1000),
        'outside ms (p50)': Math.round(median(host) * 1000),
        'jail cost ms': Math.round((median(inside) - median(host)) * 1000),
        'runTrainerProcess returns ms (p50)': Math.round(median(returned) * 1000),
        'jail min–max ms': `${Math.round(Math.min(...inside) * 1000)}–${Math.round(Math.max(...inside) * 1000)}`,
        'outside min–max ms': `${Math.round(Math.min(...host) * 1000)}–${Math.round(Math.max(...host) * 1000)}`,
      });
    }
    return rows;
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** A seeded generator (mulberry32). */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 2 ** 32;
  };
}

async function writeNpy(path, descr, array, rowShape) {
  const rows = rowShape.length ? array.length / rowShape.reduce((a, b) => a * b, 1) : array.length;
  await writeFile(path, Buffer.concat([npyHeader(descr, rows, rowShape), Buffer.from(array.buffer, array.byteOffset, array.byteLength)]));
}

/** A training set as Kura writes it: 1,000 episodes × 100 steps, action a smooth function of the state. */
async function writeTrainingSet(data, steps) {
  const next = random(7);
  const weights = Array.from({ length: STATE_DIMS }, () => Array.from({ length: STATE_DIMS }, () => next() * 2 - 1));
  const state = new Float32Array(steps * STATE_DIMS);
  const action = new Float32Array(steps * STATE_DIMS);
  for (let step = 0; step < steps; step++) {
    for (let index = 0; index < STATE_DIMS; index++) state[step * STATE_DIMS + index] = next() * 4 - 2;
    for (let row = 0; row < STATE_DIMS; row++) {
      let sum = 0;
      for (let column = 0; column < STATE_DIMS; column++) sum += weights[row][column] * state[step * STATE_DIMS + column];
      action[step * STATE_DIMS + row] = Math.tanh(sum / 2) + row / 10;
    }
  }
  const stats = (values) => {
    const mean = Array.from({ length: STATE_DIMS }, () => 0);
    const square = Array.from({ length: STATE_DIMS }, () => 0);
    for (let index = 0; index < values.length; index++) {
      mean[index % STATE_DIMS] += values[index] / steps;
      square[index % STATE_DIMS] += (values[index] * values[index]) / steps;
    }
    return { count: steps, mean, std: mean.map((m, index) => Math.sqrt(Math.max(0, square[index] - m * m))) };
  };
  const episodeIndex = BigInt64Array.from({ length: steps }, (_, step) => BigInt(Math.floor(step / STEPS_PER_EPISODE)));
  const stepIndex = Int32Array.from({ length: steps }, (_, step) => step % STEPS_PER_EPISODE);
  await writeNpy(join(data, 'observation.state.npy'), '<f4', state, [STATE_DIMS]);
  await writeNpy(join(data, 'action.npy'), '<f4', action, [STATE_DIMS]);
  await writeNpy(join(data, 'episode_index.npy'), '<i8', episodeIndex, []);
  await writeNpy(join(data, 'step_index.npy'), '<i4', stepIndex, []);
  await writeNpy(
    join(data, 'timestamp.npy'),
    '<f8',
    Float64Array.from(stepIndex, (step) => step / 30),
    [],
  );
  await writeNpy(join(data, 'source_index.npy'), '<i2', new Int16Array(steps), []);
  await writeNpy(join(data, 'task_index.npy'), '<i4', new Int32Array(steps).fill(-1), []);
  const feature = (name) => ({ file: `${name}.npy`, dtype: 'float32', shape: [STATE_DIMS] });
  await writeFile(
    join(data, 'meta.json'),
    JSON.stringify({
      format: 'kura.training-set/1',
      steps,
      episodes: steps / STEPS_PER_EPISODE,
      features: { 'observation.state': feature('observation.state'), action: feature('action') },
      tasks: [],
      sources: [],
      stats: { 'observation.state': stats(state), action: stats(action) },
      fps: 30,
      robotId: null,
    }),
  );
  await writeFile(join(data, 'hyperparameters.json'), JSON.stringify(BC_MLP_HYPERPARAMETERS));
}

/** (3) bc-mlp (BC_MLP_HYPERPARAMETERS) on 100,000 steps, in the jail and outside; `RUNS` of each, interleaved. */
async function bcMlp() {
  const folder = await mkdtemp(join(tmpdir(), 'kura-bench-bc-mlp-'));
  await chmod(folder, 0o755);
  try {
    await cp(fileURLToPath(new URL('../examples/trainers/bc-mlp', import.meta.url)), join(folder, 'code'), { recursive: true });
    await mkdir(join(folder, 'data'), { mode: 0o755 });
    const steps = 100_000;
    await writeTrainingSet(join(folder, 'data'), steps);
    const resources = JSON.parse(await readFile(join(folder, 'code', 'trainer.json'), 'utf8')).resources;
    const runs = { jail: [], outside: [] };
    for (let run = 0; run < RUNS; run++) {
      runs.jail.push(await jailed(folder, 'train.py', resources));
      runs.outside.push(await outside(folder, 'train.py'));
    }
    return Object.entries(runs).map(([where, results]) => {
      const middle = [...results].sort((a, b) => a.wall - b.wall)[results.length >> 1];
      return {
        where,
        'wall s (p50)': +middle.wall.toFixed(2),
        'wall s (runs)': results.map((result) => result.wall.toFixed(2)).join(', '),
        'trainer s': middle.metrics.seconds,
        'optimiser steps': middle.metrics.step,
        'optimiser steps/s': Math.round(middle.metrics.step / middle.metrics.seconds),
        'samples/s': Math.round(middle.metrics.stepsPerSecond),
        'final loss': +(middle.metrics.loss ?? NaN).toFixed(4),
        'validation MSE': +(middle.metrics.validationMse ?? NaN).toFixed(4),
      };
    });
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

export async function benchTraining() {
  const load = () => execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ');
  console.log(`jail level ${level}; load average at start ${load()}`);
  const parts = (process.env.KURA_BENCH_TRAINING_PARTS ?? '1,2,3').split(',');
  if (parts.includes('1')) {
    const scales = (process.env.KURA_BENCH_SCALES ?? '1,4').split(',').map(Number);
    const rows = [];
    for (const scale of scales) rows.push(await handOff(scale));
    console.table(rows);
    console.log(
      "(1) preparing = the run record's startedAt → the clock trainer's first line (unpack the trainer, plan the slice, write the .npy files and meta.json, start the jail and python3); target ≥ 0.5 × cp",
    );
    console.log(`load average ${load()}`);
  }
  if (parts.includes('2')) {
    console.table(await torchImport());
    console.log(
      '(2) runTrainerProcess (mounts, limits and environment of a run) vs the same python3 -I -B outside; ms from spawn to exit, medians of 7 after a warm-up',
    );
    console.log(`load average ${load()}`);
  }
  if (parts.includes('3')) {
    console.table(await bcMlp());
    console.log(
      `(3) bc-mlp (2×256 MLP, batch 256, AdamW 1e-3, 5 % validation episodes; hyperparameters ${JSON.stringify(BC_MLP_HYPERPARAMETERS)}) on 100,000 steps; wall = spawn → exit; trainer s and samples/s are its own final metrics (import torch excluded, ONNX export included)`,
    );
    console.log(`load average ${load()}`);
  }
}
