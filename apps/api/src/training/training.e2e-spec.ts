// Training on the platform (#11) through the api: a developer who may download only the public
// sample of a `sample` dataset trains bc-mlp (examples/trainers/bc-mlp) on all its non-held-out
// episodes, gets a ranked policy that beats the zero and mean-action baselines on the held-out
// episodes, calls it through act — and reads no non-sample episode by any path.
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { episodeBucket } from '@kura/core';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOf, tarGzOfFolder } from '../../../../test/support/archives.js';
import { createDataset, publish, uploadAndWait } from '../../../../test/support/datasets.js';
import { runKura } from '../../../../test/support/cli.js';
import { deployPolicy } from '../../../../test/support/policies.js';

const bcMlp = fileURLToPath(new URL('../../../../examples/trainers/bc-mlp', import.meta.url));
const fixture = (path: string) => fileURLToPath(new URL(`../../../../test/fixtures/${path}`, import.meta.url));
const STATE = 6;
const ACTION = 3;
const EPISODES = 150;
const LENGTH = 30;

/** A seeded generator (mulberry32), so the dataset is the same every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Episodes whose action is a smooth function of the state (learnable), with a non-zero mean. */
function learnableEpisodes(): { ndjson: string; actions: Map<number, number[][]> } {
  const next = random(7);
  const weights = Array.from({ length: ACTION }, () => Array.from({ length: STATE }, () => next() * 2 - 1));
  const lines: string[] = [];
  const actions = new Map<number, number[][]>();
  for (let episode = 0; episode < EPISODES; episode++) {
    const steps: number[][] = [];
    for (let step = 0; step < LENGTH; step++) {
      const state = Array.from({ length: STATE }, () => next() * 4 - 2);
      const action = weights.map((row, index) => Math.tanh(row.reduce((sum, weight, column) => sum + weight * state[column]!, 0)) + index);
      steps.push(action);
      lines.push(JSON.stringify({ episode, step, timestamp: step / 10, observation: { state }, action, language: 'reach' }));
    }
    actions.set(episode, steps);
  }
  return { ndjson: `${lines.join('\n')}\n`, actions };
}

describe('training on the platform', () => {
  let kura: TestApp;
  let operator: { key: string };
  let developer: { id: string; key: string };
  let stranger: { key: string };
  let datasetId: string;
  let actions: Map<number, number[][]>;
  let trainerId: string;

  const waitFor = <T>(path: string, key: string, done: (body: Record<string, unknown>) => boolean, timeoutMs: number) =>
    eventually(async () => {
      const response = await kura.request.get(path).set(bearer(key));
      return done(response.body as Record<string, unknown>) ? (response.body as T) : undefined;
    }, timeoutMs);
  const settledTraining = (id: string, timeoutMs = 240_000) =>
    waitFor<Record<string, unknown> & { status: string }>(
      `/v1/trainings/${id}`,
      developer.key,
      (body) => ['succeeded', 'failed', 'cancelled'].includes(body.status as string),
      timeoutMs,
    );
  const uploadTrainer = async (bundle: Buffer) => {
    const accepted = await kura.request
      .post('/v1/trainers')
      .set(bearer(developer.key))
      .set('Content-Type', 'application/octet-stream')
      .send(bundle);
    expect(accepted.status).toBe(202);
    return waitFor<{ id: string; status: string; errors: Array<{ code: string; location?: unknown }> }>(
      `/v1/trainers/${accepted.body.id}`,
      developer.key,
      (body) => body.status !== 'validating',
      60_000,
    );
  };
  const train = async (body: Record<string, unknown>) => {
    const created = await kura.request.post('/v1/trainings').set(bearer(developer.key)).send(body);
    if (created.status !== 202) throw new Error(`training: ${created.status} ${JSON.stringify(created.body)}`);
    return created.body as { id: string; status: string; beyondAccessEpisodes: number; episodeCount: number };
  };
  const evaluation = (policyId: string) =>
    kura.request
      .post(`/v1/policies/${policyId}/evaluations`)
      .set(bearer(developer.key))
      .send({ datasetId })
      .then((created) =>
        waitFor<{ status: string; metrics: { actionMse: number } }>(
          `/v1/evaluations/${created.body.id}`,
          developer.key,
          (body) => ['completed', 'failed'].includes(body.status as string),
          120_000,
        ),
      );

  /** The episodes the developer sees of the dataset, ascending. */
  const publicSample = async () => {
    const listed = await kura.request.get(`/v1/datasets/${datasetId}/episodes?limit=500`).set(bearer(developer.key));
    return (listed.body.items as Array<{ episodeIndex: number }>).map((item) => item.episodeIndex).sort((a, b) => a - b);
  };

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    developer = await kura.createKey('developer');
    stranger = await kura.createKey('developer');
    datasetId = await createDataset(kura, operator.key, 'sample');
    const episodes = learnableEpisodes();
    actions = episodes.actions;
    await publish(kura, operator.key, datasetId, episodes.ndjson);
    const trainer = await uploadTrainer(await tarGzOfFolder(bcMlp, 'bc-mlp'));
    expect(trainer).toMatchObject({ status: 'ready', errors: [] });
    trainerId = trainer.id;
  }, 120_000);
  afterAll(async () => {
    await kura.close();
  });

  it('is driven from the kura command line: push the trainer, train with --wait (step and loss on a terminal), show, logs', async () => {
    await kura.app.listen(0, '127.0.0.1');
    const home = await mkdtemp(join(tmpdir(), 'kura-cli-'));
    const env = {
      XDG_CONFIG_HOME: home,
      KURA_URL: `http://127.0.0.1:${(kura.app.getHttpServer().address() as AddressInfo).port}`,
      KURA_API_KEY: developer.key,
    };
    try {
      const pushed = await runKura(['trainers', 'push', bcMlp, '--json'], env);
      expect(pushed.code).toBe(0);
      expect(pushed.json()).toMatchObject({ status: 'ready', name: 'bc-mlp' });
      const hyperparameters = JSON.stringify({ epochs: 3, hidden: 32, threads: 1, logEvery: 5 });
      const trained = await runKura(
        [
          'train',
          '--trainer',
          pushed.json().id as string,
          '--dataset',
          datasetId,
          '--hyperparameters',
          hyperparameters,
          '--policy-name',
          'cli-bc',
          '--wait',
        ],
        env,
        { tty: true },
      );
      expect(trained.code).toBe(0);
      // The status line is rewritten in place on a terminal; step and loss show as they come in.
      expect(trained.stdout).toMatch(/training trn_\w+: running/);
      expect(trained.stdout).toMatch(/training trn_\w+: succeeded step \d+ loss \d/);
      const id = /training (trn_\w+): succeeded/.exec(trained.stdout)![1]!;
      const shown = await runKura(['trainings', 'show', id, '--json'], env);
      expect(shown.json()).toMatchObject({ id, status: 'succeeded' });
      const logs = await runKura(['trainings', 'logs', id], env);
      expect(logs.code).toBe(0);
      expect(logs.stdout).toContain('"loss"');
      expect(logs.stderr).toContain('guarded');
      const cancelled = await runKura(['trainings', 'cancel', id], env);
      expect(cancelled.code).toBe(1);
      expect(cancelled.stderr).toMatch(/^kura: TRAINING_FINISHED: /);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 300_000);

  it('trains bc-mlp on every non-held-out episode, and the policy beats the zero and mean-action baselines', async () => {
    const heldOut = [...actions.keys()].filter((episode) => episodeBucket(datasetId, episode) >= 90);
    // What the developer may download: the public sample (buckets 0–9, plus one guaranteed episode).
    const sample = await publicSample();
    expect(sample.length).toBeLessThanOrEqual([...actions.keys()].filter((episode) => episodeBucket(datasetId, episode) < 10).length + 1);
    expect(heldOut.length).toBeGreaterThan(0);
    const created = await train({
      trainerId,
      sources: [{ datasetId }],
      hyperparameters: { epochs: 40, hidden: 64, threads: 1, learningRate: 0.003 },
      policyName: 'reach-bc',
    });
    expect(created).toMatchObject({ status: 'queued', episodeCount: EPISODES - heldOut.length });
    expect(created.beyondAccessEpisodes).toBe(EPISODES - heldOut.length - sample.length);
    const done = await settledTraining(created.id);
    expect(done).toMatchObject({ status: 'succeeded', error: null });
    const policyId = done.policyId as string;
    expect((done.latestMetrics as Record<string, number>).loss).toBeGreaterThan(0);
    const metrics = await kura.request.get(`/v1/trainings/${created.id}/metrics`).set(bearer(developer.key));
    expect((metrics.body.series.loss as unknown[]).length).toBeGreaterThan(3);

    // Registered as the developer's policy, evaluated automatically on the held-out episodes.
    const policy = await kura.request.get(`/v1/policies/${policyId}`).set(bearer(developer.key));
    expect(policy.body).toMatchObject({
      status: 'ready',
      name: 'reach-bc',
      version: 1,
      access: 'private',
      runtime: 'onnx',
      trainedBy: { trainingId: created.id, trainerId, sources: [{ datasetId, version: 1, weight: 1 }] },
    });
    const [evaluationId] = done.evaluationIds as string[];
    const trained = await waitFor<{ status: string; metrics: { actionMse: number } }>(
      `/v1/evaluations/${evaluationId}`,
      developer.key,
      (body) => ['completed', 'failed'].includes(body.status as string),
      120_000,
    );
    expect(trained.status).toBe('completed');

    // The baselines, on the same held-out episodes: nothing at all, and the mean action of the training episodes.
    const trainingActions = [...actions].filter(([episode]) => episodeBucket(datasetId, episode) < 90).flatMap(([, steps]) => steps);
    const mean = Array.from(
      { length: ACTION },
      (_, index) => trainingActions.reduce((sum, action) => sum + action[index]!, 0) / trainingActions.length,
    );
    const baseline = async (name: string, action: number[]) =>
      evaluation(
        await deployPolicy(kura, developer.key, {
          'policy.json': JSON.stringify({
            name,
            runtime: 'js',
            entry: 'policy.js',
            observation: ['observation.state'],
            action: { shape: [ACTION] },
          }),
          'policy.js': `function act() { return ${JSON.stringify(action)}; }`,
        }),
      );
    const zero = await baseline('zero', [0, 0, 0]);
    const meanAction = await baseline('mean-action', mean);
    expect(trained.metrics.actionMse).toBeLessThan(zero.metrics.actionMse);
    expect(trained.metrics.actionMse).toBeLessThan(meanAction.metrics.actionMse * 0.5);
    const board = (await kura.request.get(`/v1/datasets/${datasetId}/leaderboard`).set(bearer(developer.key))).body.items as Array<{
      policyId: string;
    }>;
    expect(board.map((entry) => entry.policyId)).toContain(policyId);

    // Served through act like any policy.
    const act = await kura.request
      .post(`/v1/policies/${policyId}/act`)
      .set(bearer(developer.key))
      .send({ observation: { 'observation.state': [0.1, -0.2, 0.3, 0, 1, -1] } });
    expect(act.status).toBe(200);
    expect(act.body.action).toHaveLength(ACTION);

    // It read data beyond the developer's access: its log is guarded.
    const log = await kura.request.get(`/v1/trainings/${created.id}/logs`).set(bearer(developer.key));
    expect(log.status).toBe(200);
    expect(log.headers['x-kura-log-guarded']).toBe('true');
    expect(log.text).toContain('"loss"');

    // And still no path of the developer's reaches a non-sample episode.
    expect(await publicSample()).toEqual(sample);
    const slice = await kura.request
      .post('/v1/slices')
      .set(bearer(developer.key))
      .send({ sources: [{ datasetId }] });
    expect(slice.status).toBe(201);
    expect(slice.body.episodeCount).toBe(sample.length);
    expect(await kura.request.get(`/v1/trainings/${created.id}`).set(bearer(stranger.key))).toMatchObject({ status: 404 });
  }, 600_000);

  it('trains on the RLDS bridge fixture: bc-mlp on state and action, and camera frames handed over decoded', async () => {
    const bridgeId = await createDataset(kura, operator.key, 'public');
    const upload = await uploadAndWait(kura, operator.key, bridgeId, await tarGzOfFolder(fixture('rlds/bridge_debug'), 'bridge_dataset'));
    expect(upload).toMatchObject({ status: 'published', episodeCount: 25 });
    const features = (await kura.request.get(`/v1/datasets/${bridgeId}`).set(bearer(developer.key))).body.features as Record<
      string,
      { dtype: string; shape: number[] }
    >;
    const camera = Object.keys(features).find((name) => features[name]!.dtype === 'image')!;
    const heldOut = Array.from({ length: 25 }, (_, episode) => episode).filter((episode) => episodeBucket(bridgeId, episode) >= 90);

    const bc = await settledTraining(
      (await train({ trainerId, sources: [{ datasetId: bridgeId }], hyperparameters: { epochs: 5, hidden: 32 } })).id,
    );
    expect(bc).toMatchObject({ status: 'succeeded', episodeCount: 25 - heldOut.length, stepCount: (25 - heldOut.length) * 10 });
    const act = await kura.request
      .post(`/v1/policies/${bc.policyId as string}/act`)
      .set(bearer(developer.key))
      .send({ observation: { 'observation.state': [0, 0, 0, 0, 0, 0, 1] } });
    expect(act.status).toBe(200);
    expect(act.body.action).toHaveLength(7);

    const viewer = await uploadTrainer(
      await tarGzOf({
        'trainer.json': JSON.stringify({
          name: 'frames',
          runtime: 'python',
          entry: 'train.py',
          features: [camera, 'action'],
          resources: { cpuSeconds: 60, memoryMb: 1024, wallSeconds: 120 },
        }),
        'train.py': [
          'import json, numpy as np',
          `meta = json.load(open("/data/meta.json"))`,
          `frames = np.load("/data/" + meta["features"]["${camera}"]["file"], mmap_mode="r")`,
          'print(json.dumps({"rows": frames.shape[0], "height": frames.shape[1], "width": frames.shape[2], "channels": frames.shape[3], "uint8": int(frames.dtype == np.uint8), "mean": float(frames.mean()), "std": float(frames.std())}))',
          'raise SystemExit(1)',
        ].join('\n'),
      }),
    );
    const seen = await settledTraining((await train({ trainerId: viewer.id, sources: [{ datasetId: bridgeId }] })).id, 120_000);
    expect(seen).toMatchObject({ status: 'failed', error: { code: 'TRAINING_FAILED' } });
    const [height, width] = features[camera]!.shape;
    expect(seen.latestMetrics).toMatchObject({ rows: (25 - heldOut.length) * 10, height, width, channels: 3, uint8: 1 });
    // Real camera frames: neither blank nor noise.
    const { mean, std } = seen.latestMetrics as { mean: number; std: number };
    expect(mean).toBeGreaterThan(20);
    expect(mean).toBeLessThan(235);
    expect(std).toBeGreaterThan(5);
  }, 300_000);

  it('never hands over a held-out episode; a dry run takes only what the caller may download and keeps its whole log', async () => {
    const spy = await uploadTrainer(
      await tarGzOf({
        'trainer.json': JSON.stringify({
          name: 'spy',
          runtime: 'python',
          entry: 'train.py',
          features: ['observation.state'],
          resources: { cpuSeconds: 60, memoryMb: 1024, wallSeconds: 120 },
        }),
        'train.py': [
          'import json, numpy as np',
          'episodes = np.unique(np.load("/data/episode_index.npy"))',
          'for episode in episodes: print(json.dumps({"step": int(episode), "episode": int(episode)}))',
          'print("debugging output")',
          'raise SystemExit(1)',
        ].join('\n'),
      }),
    );
    expect(spy.status).toBe('ready');
    for (const dryRun of [false, true]) {
      const created = await train({ trainerId: spy.id, sources: [{ datasetId }], dryRun });
      const done = await settledTraining(created.id, 120_000);
      expect(done).toMatchObject({ status: 'failed', error: { code: 'TRAINING_FAILED' } });
      const seen = (
        (await kura.request.get(`/v1/trainings/${created.id}/metrics`).set(bearer(developer.key))).body.series.episode as Array<
          [number, number]
        >
      ).map(([, episode]) => episode);
      expect(seen.length).toBe(done.episodeCount);
      expect(seen.filter((episode) => episodeBucket(datasetId, episode) >= 90)).toEqual([]);
      if (dryRun) expect(seen.sort((a, b) => a - b)).toEqual(await publicSample());
      const log = await kura.request.get(`/v1/trainings/${created.id}/logs`).set(bearer(developer.key));
      expect(log.headers['x-kura-log-guarded']).toBe(dryRun ? 'false' : 'true');
      expect(log.text).toContain('debugging output');
    }
  }, 300_000);

  it('refuses a link out of /out, and cancels a run within seconds while uploads and act go on', async () => {
    const manifest = (name: string) =>
      JSON.stringify({
        name,
        runtime: 'python',
        entry: 'train.py',
        features: ['observation.state'],
        resources: { cpuSeconds: 60, memoryMb: 512, wallSeconds: 120 },
      });
    const linker = await uploadTrainer(
      await tarGzOf({
        'trainer.json': manifest('linker'),
        'train.py': [
          'import json, os',
          'os.symlink("/etc/passwd", "/out/model.onnx")',
          'json.dump({"name": "x", "runtime": "onnx", "entry": "model.onnx", "observation": ["observation.state"], "action": {"shape": [3]}}, open("/out/policy.json", "w"))',
        ].join('\n'),
      }),
    );
    const linked = await settledTraining((await train({ trainerId: linker.id, sources: [{ datasetId }] })).id, 120_000);
    expect(linked).toMatchObject({
      status: 'failed',
      policyId: null,
      error: { code: 'TRAINING_OUTPUT_INVALID', location: { file: 'model.onnx' } },
    });

    const sleeper = await uploadTrainer(
      await tarGzOf({ 'trainer.json': manifest('sleeper'), 'train.py': 'import time\nprint("started", flush=True)\ntime.sleep(600)\n' }),
    );
    const created = await train({ trainerId: sleeper.id, sources: [{ datasetId }] });
    await waitFor(`/v1/trainings/${created.id}`, developer.key, (body) => body.status === 'running', 60_000);
    // Meanwhile an upload publishes and a policy acts.
    const other = await createDataset(kura, operator.key, 'public');
    await publish(kura, operator.key, other, learnableEpisodes().ndjson.split('\n').slice(0, 30).join('\n') + '\n');
    const zero = await deployPolicy(kura, developer.key, {
      'policy.json': JSON.stringify({
        name: 'still-acting',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        action: { shape: [1] },
      }),
      'policy.js': 'function act() { return [0]; }',
    });
    expect(
      (
        await kura.request
          .post(`/v1/policies/${zero}/act`)
          .set(bearer(developer.key))
          .send({ observation: { 'observation.state': [1] } })
      ).status,
    ).toBe(200);
    const cancelledAt = Date.now();
    expect((await kura.request.post(`/v1/trainings/${created.id}/cancel`).set(bearer(developer.key))).status).toBe(202);
    const cancelled = await settledTraining(created.id, 30_000);
    expect(cancelled.status).toBe('cancelled');
    expect(Date.now() - cancelledAt).toBeLessThan(10_000);
    expect((await kura.request.post(`/v1/trainings/${created.id}/cancel`).set(bearer(developer.key))).body.error.code).toBe(
      'TRAINING_FINISHED',
    );
  }, 300_000);

  it('rejects trainer bundles with coded problems, and refuses runs it cannot make', async () => {
    const syntax = await uploadTrainer(
      await tarGzOf({
        'trainer.json': JSON.stringify({
          name: 'bad',
          runtime: 'python',
          entry: 'train.py',
          features: ['action'],
          resources: { cpuSeconds: 1, memoryMb: 256, wallSeconds: 1 },
        }),
        'train.py': 'def broken(:\n    pass\n',
      }),
    );
    expect(syntax).toMatchObject({
      status: 'rejected',
      errors: [{ code: 'TRAINER_SYNTAX_ERROR', location: { file: 'train.py', line: 1 } }],
    });
    const manifest = await uploadTrainer(await tarGzOf({ 'trainer.json': '{"name": "x", "runtime": "ruby"}' }));
    expect(manifest.errors[0]!.code).toBe('MANIFEST_INVALID');
    const missing = await uploadTrainer(await tarGzOf({ 'train.py': 'pass\n' }));
    expect(missing.errors.map((error) => error.code)).toEqual(['MANIFEST_MISSING']);

    const refused = await kura.request
      .post('/v1/trainings')
      .set(bearer(developer.key))
      .send({ trainerId: syntax.id, sources: [{ datasetId }] });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('TRAINER_NOT_READY');
    const privateDataset = await createDataset(kura, operator.key, 'private');
    const hidden = await kura.request
      .post('/v1/trainings')
      .set(bearer(developer.key))
      .send({ trainerId, sources: [{ datasetId: privateDataset }] });
    expect(hidden.status).toBe(422);
    expect(hidden.body.error).toMatchObject({ code: 'DATASET_NOT_FOUND', details: { location: { field: 'sources.0.datasetId' } } });
    const otherTrainer = await kura.request
      .post('/v1/trainings')
      .set(bearer(stranger.key))
      .send({ trainerId, sources: [{ datasetId }] });
    expect(otherTrainer.status).toBe(404);
  }, 180_000);
});
