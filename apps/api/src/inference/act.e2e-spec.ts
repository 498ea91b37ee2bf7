/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { deployPolicy } from '../../../../test/support/policies.js';
import { tinyJpeg } from '../../../../test/support/datasets.js';

// The linear ONNX fixture (policies/runtimes/testing/make-onnx-models.mjs): action = W·state + b, state [4] → action [3].
const linearModel = fileURLToPath(new URL('../../../../packages/core/src/policies/runtimes/fixtures/linear-4x3.onnx', import.meta.url));
// What torch.onnx.export writes for a 7-joint arm: input [1, 7], action [Σ joint, Σ (i + 1) · joint_i + 0.5].
const armModel = fileURLToPath(new URL('../../../../packages/core/src/policies/runtimes/fixtures/arm-1x7.onnx', import.meta.url));

describe('POST /v1/policies/:id/act', () => {
  let kura: TestApp;
  let developer: { key: string };
  let user: { key: string };

  const deploy = (files: Record<string, string | Buffer>, access: 'public' | 'private' = 'public') =>
    deployPolicy(kura, developer.key, files, access);
  const act = (policyId: string, body: unknown, key = user.key) =>
    kura.request
      .post(`/v1/policies/${policyId}/act`)
      .set(bearer(key))
      .send(body as object);

  let counter: string;
  let chunked: string;
  let camera: string;
  let onnx: string;

  beforeAll(async () => {
    kura = await startTestApp();
    developer = await kura.createKey('developer');
    user = await kura.createKey('user');
    const manifest = (fields: Record<string, unknown>) =>
      JSON.stringify({
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        observationShapes: { 'observation.state': [2] },
        ...fields,
      });
    // Counts its calls in a global: a warm instance keeps counting, a fresh one would start again.
    counter = await deploy({
      'policy.json': manifest({ name: 'counter', action: { shape: [3] } }),
      'policy.js':
        'let calls = 0; function act(o, c) { calls++; return [o["observation.state"][0] + o["observation.state"][1], calls, c.task === "pick" ? 1 : 0]; }',
    });
    chunked = await deploy({
      'policy.json': manifest({
        name: 'chunk',
        action: { shape: [2, 2] },
        normalization: { mode: 'zscore', stats: { action: { mean: [10, 20], std: [2, 4] } } },
      }),
      'policy.js': 'function act() { return [[0, 0], [1, -1]]; }',
    });
    camera = await deploy({
      'policy.json': JSON.stringify({
        name: 'camera',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.images.top'],
        action: { shape: [1] },
      }),
      'policy.js': 'function act(o) { const image = o["observation.images.top"]; return [image.length + (image[0] === 0xff ? 0.5 : 0)]; }',
    });
    onnx = await deploy({
      'policy.json': JSON.stringify({
        name: 'linear',
        runtime: 'onnx',
        entry: 'model.onnx',
        observation: ['observation.state'],
        observationShapes: { 'observation.state': [4] },
        action: { shape: [3] },
      }),
      'model.onnx': await readFile(linearModel),
    });
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  it('returns the action, the policy id and the latency, from a warm instance', async () => {
    const first = await act(counter, { observation: { 'observation.state': [1.5, 2] }, task: 'pick' });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ action: [3.5, 1, 1], policyId: counter, latencyMs: expect.any(Number) });
    const second = await act(counter, { observation: { 'observation.state': [[1], [1]] } });
    expect(second.body.action).toEqual([2, 2, 0]);
  });

  it('shapes an action chunk [H, D] and unnormalizes it', async () => {
    const response = await act(chunked, { observation: { 'observation.state': [0, 0] } });
    expect(response.status).toBe(200);
    expect(response.body.action).toEqual([
      [10, 20],
      [12, 16],
    ]);
  });

  it('passes images as their encoded bytes', async () => {
    const jpeg = tinyJpeg(10);
    const response = await act(camera, { observation: { 'observation.images.top': jpeg } });
    expect(response.status).toBe(200);
    expect(response.body.action).toEqual([Buffer.from(jpeg, 'base64').length + 0.5]);
  });

  it('runs ONNX policies', async () => {
    const response = await act(onnx, { observation: { 'observation.state': [1, 0, 0, 0] } });
    expect(response.status).toBe(200);
    expect(response.body.action).toHaveLength(3);
  });

  it('runs an ONNX model exported with input [1, 7] whose manifest gives no shapes: the model says [7]', async () => {
    const arm = await deploy({
      'policy.json': JSON.stringify({
        name: 'arm',
        runtime: 'onnx',
        entry: 'model.onnx',
        observation: ['observation.state'],
        action: { shape: [2] },
      }),
      'model.onnx': await readFile(armModel),
    });
    const response = await act(arm, { observation: { 'observation.state': [1, 2, 3, 4, 5, 6, 7] } });
    expect(response.status).toBe(200);
    expect(response.body.action).toEqual([28, 140.5]);
    const short = await act(arm, { observation: { 'observation.state': [1, 2, 3, 4, 5, 6] } });
    expect(short.status).toBe(422);
    expect(short.body.error).toMatchObject({ code: 'POLICY_BAD_OBSERVATION', message: expect.stringContaining('[1, 7]') });
  });

  it.each([
    [{ observation: {} }, 'OBSERVATION_INVALID', 'observation.observation.state'],
    [{ observation: { 'observation.state': [1, 2, 3] } }, 'OBSERVATION_INVALID', 'observation.observation.state'],
    [{ observation: { 'observation.state': [1, 'two'] } }, 'OBSERVATION_INVALID', 'observation.observation.state.1'],
    [{ observation: { 'observation.state': [1, 2], 'observation.extra': [1] } }, 'OBSERVATION_INVALID', 'observation.observation.extra'],
    [{ observation: { 'observation.state': 'aGVsbG8=' } }, 'OBSERVATION_INVALID', 'observation.observation.state'],
  ])('refuses %j with 400 %s at %s', async (body, code, field) => {
    const response = await act(counter, body);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code, details: { location: { field } } });
  });

  it('refuses a body with unknown fields, a caller without the role, and unknown or private policies', async () => {
    expect((await act(counter, { observation: { 'observation.state': [1, 2] }, extra: 1 })).status).toBe(400);
    const operator = await kura.createKey('operator');
    expect((await act(counter, { observation: { 'observation.state': [1, 2] } }, operator.key)).status).toBe(403);
    expect((await kura.request.post(`/v1/policies/${counter}/act`).send({ observation: {} })).status).toBe(401);
    expect((await act('pol_000000000000aaaaaaaaaaaa', { observation: {} })).status).toBe(404);
    const hidden = await deploy(
      {
        'policy.json': JSON.stringify({
          name: 'hidden',
          runtime: 'js',
          entry: 'policy.js',
          observation: ['observation.state'],
          action: { shape: [1] },
        }),
        'policy.js': 'function act() { return [1]; }',
      },
      'private',
    );
    expect((await act(hidden, { observation: { 'observation.state': [1] } })).status).toBe(404);
    expect((await act(hidden, { observation: { 'observation.state': [1] } }, developer.key)).status).toBe(200);
  });

  it('answers 422 with the sandbox code when the policy fails, and keeps serving', async () => {
    const flaky = await deploy({
      'policy.json': JSON.stringify({
        name: 'flaky',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        action: { shape: [1] },
      }),
      'policy.js': 'function act(o) { if (o["observation.state"][0] > 0) for (;;) {} return [0]; }',
    });
    const stuck = await act(flaky, { observation: { 'observation.state': [1] } });
    expect(stuck.status).toBe(422);
    expect(stuck.body.error.code).toBe('POLICY_TIMEOUT');
    expect((await act(flaky, { observation: { 'observation.state': [0] } })).body.action).toEqual([0]);
  });
});
