/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { episodeBucket } from '@kura/core';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOf, zipOf } from '../../../../test/support/archives.js';
import { seedDataset } from '../../../../test/support/datasets.js';

/** A JS policy bundle: policy.json plus the script. */
const jsBundle = (script: string, manifest: Record<string, unknown> = {}, extra: Record<string, string | Buffer | { link: string }> = {}) =>
  tarGzOf({
    'policy.json': JSON.stringify({
      name: 'echo',
      runtime: 'js',
      entry: 'policy.js',
      observation: ['observation.state'],
      action: { shape: [2] },
      ...manifest,
    }),
    'policy.js': script,
    ...extra,
  });

// The seeded datasets' action at (episode, step) is [step, -episode]: this policy gets it exactly
// right from the state (state[0] = episode * 1000 + step), so its MSE is 0.
const perfect = `function act(observation, context) { const s = observation['observation.state'][0]; const episode = Math.floor(s / 1000); return [context.step, -episode]; }`;
const offByOne = `function act(observation, context) { const s = observation['observation.state'][0]; return [context.step + 1, -Math.floor(s / 1000)]; }`;

describe('policies: upload, validation, evaluation on held-out episodes, leaderboard', () => {
  let kura: TestApp;
  let developer: { id: string; key: string };
  let otherDeveloper: { id: string; key: string };
  let operator: { id: string; key: string };
  let datasetId: string;

  const upload = (bundle: Buffer, key = developer.key, access = 'public') =>
    kura.request.post(`/v1/policies?access=${access}`).set(bearer(key)).set('Content-Type', 'application/octet-stream').send(bundle);
  const settled = (id: string, key = developer.key) =>
    eventually(async () => {
      const response = await kura.request.get(`/v1/policies/${id}`).set(bearer(key));
      return response.body.status === 'validating' ? undefined : response.body;
    }, 30_000);
  const uploadSettled = async (bundle: Buffer, key = developer.key, access = 'public') => {
    const accepted = await upload(bundle, key, access);
    expect(accepted.status).toBe(202);
    return settled(accepted.body.id, key);
  };
  const evaluated = async (policyId: string, key = developer.key) => {
    const created = await kura.request.post(`/v1/policies/${policyId}/evaluations`).set(bearer(key)).send({ datasetId });
    expect(created.status).toBe(202);
    return eventually(async () => {
      const response = await kura.request.get(`/v1/evaluations/${created.body.id}`).set(bearer(key));
      return ['completed', 'failed'].includes(response.body.status) ? response.body : undefined;
    }, 60_000);
  };

  beforeAll(async () => {
    kura = await startTestApp();
    developer = await kura.createKey('developer');
    otherDeveloper = await kura.createKey('developer');
    operator = await kura.createKey('operator');
    datasetId = (await seedDataset(kura, operator.key, { episodes: 60, length: 6, stateDims: 3 })).datasetId;
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  const heldOut = () => Array.from({ length: 60 }, (_, index) => index).filter((index) => episodeBucket(datasetId, index) >= 90);

  it('validates a JS policy, numbers versions by name, evaluates it on the held-out episodes only', async () => {
    const first = await uploadSettled(await jsBundle(perfect));
    expect(first).toMatchObject({ status: 'ready', name: 'echo', version: 1, runtime: 'js', errors: [] });
    const second = await uploadSettled(await jsBundle(perfect));
    expect(second).toMatchObject({ status: 'ready', name: 'echo', version: 2 });
    const listed = await kura.request.get('/v1/policies?name=echo').set(bearer(developer.key));
    expect(listed.body.items.map((item: { version: number }) => item.version)).toEqual([1, 2]);

    const evaluation = await evaluated(first.id);
    expect(evaluation.status).toBe('completed');
    expect(evaluation.metrics).toEqual({
      actionMse: 0,
      actionMae: 0,
      perDimension: [0, 0],
      stepsEvaluated: heldOut().length * 6,
      episodesEvaluated: heldOut().length,
    });
    expect(evaluation.timing.latencyMsP99).toBeGreaterThan(0);
  });

  it('gives the same metrics for the same policy and dataset version, and ranks policies on the leaderboard', async () => {
    const good = await uploadSettled(await jsBundle(perfect, { name: 'good' }));
    const worse = await uploadSettled(await jsBundle(offByOne, { name: 'worse' }));
    const hidden = await uploadSettled(await jsBundle(offByOne, { name: 'hidden' }), otherDeveloper.key, 'private');
    const [one, two] = [await evaluated(worse.id), await evaluated(worse.id)];
    expect(one.metrics).toEqual(two.metrics);
    // Off by one in the first dimension only: MSE 1 there, 0 in the second.
    expect(one.metrics).toMatchObject({ actionMse: 0.5, actionMae: 0.5, perDimension: [1, 0] });
    await evaluated(good.id);
    await evaluated(hidden.id, otherDeveloper.key);

    const board = (await kura.request.get(`/v1/datasets/${datasetId}/leaderboard`).set(bearer(developer.key))).body.items as Array<{
      policyId: string;
      rank: number;
    }>;
    const ids = board.map((entry) => entry.policyId);
    expect(ids.indexOf(good.id)).toBeLessThan(ids.indexOf(worse.id));
    expect(ids).not.toContain(hidden.id);
    const ownersBoard = (await kura.request.get(`/v1/datasets/${datasetId}/leaderboard`).set(bearer(otherDeveloper.key))).body
      .items as Array<{ policyId: string }>;
    expect(ownersBoard.map((entry) => entry.policyId)).toContain(hidden.id);
    expect((await kura.request.get(`/v1/policies/${hidden.id}`).set(bearer(developer.key))).status).toBe(404);
  });

  it('takes a .zip bundle with the policy in a top-level folder', async () => {
    const bundle = await zipOf({
      'reach/policy.json': JSON.stringify({
        name: 'zipped',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        action: { shape: [2] },
      }),
      'reach/policy.js': perfect,
    });
    expect(await uploadSettled(bundle)).toMatchObject({ status: 'ready', name: 'zipped', version: 1 });
  });

  it('fails an evaluation whose features the dataset lacks, naming them', async () => {
    const policy = await uploadSettled(
      await jsBundle(perfect, { name: 'needs-camera', observation: ['observation.state', 'observation.images.wrist'] }),
    );
    expect(policy.status).toBe('ready');
    const evaluation = await evaluated(policy.id);
    expect(evaluation).toMatchObject({ status: 'failed', error: { code: 'EVALUATION_FEATURES_MISSING' } });
    expect(evaluation.error.message).toContain('observation.images.wrist');
  });

  it('applies z-score normalization from inline stats (and unnormalizes the action)', async () => {
    // The policy sees (state - mean) / std and answers in normalized units; Kura maps its answer back.
    const script = `function act(o, c) { const s = o['observation.state'][0] * 2 + 1000; const e = Math.round((s - c.step) / 1000); return [(c.step - 10) / 4, -e]; }`;
    const policy = await uploadSettled(
      await jsBundle(script, {
        name: 'normalized',
        normalization: {
          mode: 'zscore',
          stats: { 'observation.state': { mean: [1000, 0, 0], std: [2, 1, 1] }, action: { mean: [10, 0], std: [4, 1] } },
        },
      }),
    );
    expect(policy.status).toBe('ready');
    const evaluation = await evaluated(policy.id);
    expect(evaluation.status).toBe('completed');
    expect(evaluation.metrics.actionMse).toBeCloseTo(0, 6);
  });

  describe('ONNX models: the feature shape comes from the model', () => {
    const models = new URL('../../../../packages/core/src/policies/runtimes/fixtures/', import.meta.url);
    // arm-1x7.onnx takes [1, 7] (a batch of one, as torch.onnx.export writes it); double-any-width.onnx takes [batch, joints].
    const onnxBundle = async (model: string, manifest: Record<string, unknown> = {}) =>
      tarGzOf({
        'policy.json': JSON.stringify({
          name: 'onnx-shapes',
          runtime: 'onnx',
          entry: 'model.onnx',
          observation: ['observation.state'],
          action: { shape: [2] },
          ...manifest,
        }),
        'model.onnx': await readFile(new URL(model, models)),
      });

    it('a model with input [1, 7] and no observationShapes is ready; observationShapes resolve a dimension the model leaves open', async () => {
      expect(await uploadSettled(await onnxBundle('arm-1x7.onnx'))).toMatchObject({ status: 'ready', errors: [] });
      const declared = await uploadSettled(
        await onnxBundle('double-any-width.onnx', { action: { shape: [7] }, observationShapes: { 'observation.state': [7] } }),
      );
      expect(declared).toMatchObject({ status: 'ready', errors: [] });
    });

    it.each([
      [
        'observationShapes that disagree with the model',
        () => onnxBundle('arm-1x7.onnx', { observationShapes: { 'observation.state': [6] } }),
        'ONNX_INPUT_MISMATCH',
        'observationShapes.observation.state',
        ['"observation.state"', '[1, 7]', '[6]'],
      ],
      [
        'a normalization dataset whose feature disagrees with the model',
        () => onnxBundle('arm-1x7.onnx', { normalization: { mode: 'zscore', datasetId } }),
        'ONNX_INPUT_MISMATCH',
        'normalization.datasetId',
        ['"observation.state"', '[1, 7]', 'has shape [3]'],
      ],
      [
        'a dimension nothing fixes',
        () => onnxBundle('double-any-width.onnx', { action: { shape: [7] } }),
        'ONNX_SHAPE_UNKNOWN',
        'observationShapes.observation.state',
        ['"observation.state"', '[batch, joints]', 'observationShapes'],
      ],
    ])('%s → %s at %s', async (_name, bundle, code, field, mentions) => {
      const policy = await uploadSettled(await bundle());
      expect(policy).toMatchObject({ status: 'rejected', errors: [{ code, location: { file: 'model.onnx', field } }] });
      for (const text of mentions) expect(policy.errors[0].message).toContain(text);
    });
  });

  describe('bad bundles are rejected with a code', () => {
    it.each([
      ['no policy.json', async () => tarGzOf({ 'policy.js': perfect }), 'MANIFEST_MISSING'],
      ['policy.json not JSON', async () => tarGzOf({ 'policy.json': '{ name', 'policy.js': perfect }), 'MANIFEST_INVALID'],
      ['an unknown runtime', async () => jsBundle(perfect, { runtime: 'ruby' }), 'MANIFEST_INVALID'],
      ['an unknown manifest field', async () => jsBundle(perfect, { gpu: true }), 'MANIFEST_INVALID'],
      ['a missing entry', async () => jsBundle(perfect, { entry: 'nope.js' }), 'BUNDLE_ENTRY_MISSING'],
      ['an entry outside the bundle', async () => jsBundle(perfect, { entry: '../../etc/passwd' }), 'BUNDLE_PATH_TRAVERSAL'],
      ['a path traversal entry', async () => jsBundle(perfect, {}, { '../escape.js': 'x' }), 'BUNDLE_PATH_TRAVERSAL'],
      ['a symbolic link', async () => jsBundle(perfect, {}, { 'link.js': { link: '/etc/passwd' } }), 'BUNDLE_LINK_REFUSED'],
      ['not an archive', async () => Buffer.from('function act() {}'), 'BUNDLE_NOT_ARCHIVE'],
      ['no act()', async () => jsBundle('var x = 1;'), 'POLICY_NO_ACT'],
      ['a wrong output length', async () => jsBundle('function act() { return [1, 2, 3]; }'), 'POLICY_BAD_OUTPUT'],
      ['a string output', async () => jsBundle('function act() { return "left"; }'), 'POLICY_BAD_OUTPUT'],
      ['NaN in the output', async () => jsBundle('function act() { return [NaN, 1]; }'), 'POLICY_BAD_OUTPUT'],
      ['an act that throws', async () => jsBundle('function act() { throw new Error("boom"); }'), 'POLICY_THREW'],
      ['an endless loop', async () => jsBundle('function act() { for (;;) {} }'), 'POLICY_TIMEOUT'],
      ['an endless loop at load', async () => jsBundle('for (;;) {} function act() { return [0, 0]; }'), 'POLICY_TIMEOUT'],
      [
        'a memory bomb',
        // Typed arrays fill memory faster than the time limit runs out (the runtime tests cover act()).
        async () => jsBundle('const hoard = []; for (;;) hoard.push(new Float64Array(1e6)); function act() { return [0, 0]; }'),
        'POLICY_MEMORY_LIMIT',
      ],
      [
        'a broken ONNX model',
        async () =>
          tarGzOf({
            'policy.json': JSON.stringify({
              name: 'onnx',
              runtime: 'onnx',
              entry: 'model.onnx',
              observation: ['observation.state'],
              action: { shape: [2] },
            }),
            'model.onnx': Buffer.from('not a model'),
          }),
        'ONNX_INVALID',
      ],
    ])('%s', async (_name, bundle, code) => {
      const policy = await uploadSettled(await bundle());
      expect(policy.status).toBe('rejected');
      expect(policy.errors.map((error: { code: string }) => error.code)).toContain(code);
      // The server stays healthy and other policies unaffected.
      expect((await kura.request.get('/health')).status).toBe(200);
    });

    it('a compression bomb → BUNDLE_TOO_LARGE', async () => {
      const policy = await uploadSettled(await jsBundle(perfect, {}, { 'zeros.bin': Buffer.alloc(64 * 1024 * 1024) }));
      expect(policy.status).toBe('rejected');
      expect(policy.errors[0].code).toBe('BUNDLE_TOO_LARGE');
    });

    it('an escape attempt finds no process', async () => {
      const policy = await uploadSettled(
        await jsBundle(`function act() { const p = this.constructor.constructor('return process')(); return [p.pid, 0]; }`),
      );
      expect(policy.status).toBe('rejected');
      expect(policy.errors[0].code).toBe('POLICY_THREW');
    });

    it('refuses a bundle over the size limit with 413', async () => {
      const small = await startTestApp({ KURA_POLICY_MAX_BUNDLE_BYTES: '1000' });
      try {
        const key = (await small.createKey('developer')).key;
        const response = await small.request
          .post('/v1/policies')
          .set(bearer(key))
          .set('Content-Type', 'application/octet-stream')
          .send(Buffer.alloc(5000, 1));
        expect(response.status).toBe(413);
        expect(response.body.error.code).toBe('BUNDLE_TOO_LARGE');
      } finally {
        await small.close();
      }
    });

    it('an operator may not upload policies; nobody may evaluate a rejected one', async () => {
      expect((await upload(await jsBundle(perfect), operator.key)).status).toBe(403);
      const rejected = await uploadSettled(await jsBundle('var nothing;'));
      const response = await kura.request.post(`/v1/policies/${rejected.id}/evaluations`).set(bearer(developer.key)).send({ datasetId });
      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe('POLICY_NOT_READY');
    });
  });
});
