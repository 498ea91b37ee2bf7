/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */
// Python policies (#14) through the api: uploaded, validated and served like JS and ONNX ones, in a
// jailed host; and where the jail has no namespaces, developers' code is refused, not run.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { episodeBucket } from '@kura/core';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOf } from '../../../../test/support/archives.js';
import { createDataset, publish, seedNdjson } from '../../../../test/support/datasets.js';
import { deployPolicy, uploadPolicyUntilSettled } from '../../../../test/support/policies.js';

const fixtures = fileURLToPath(new URL('../../../../test/fixtures/python-policies/', import.meta.url));

async function bundleFiles(name: string): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {};
  for (const file of await readdir(join(fixtures, name))) files[file] = await readFile(join(fixtures, name, file));
  return files;
}

describe('Python policies', () => {
  let kura: TestApp;
  let developer: { key: string };
  let user: { id: string; key: string };
  let operator: { key: string };

  beforeAll(async () => {
    kura = await startTestApp({ KURA_POLICY_CALL_TIMEOUT_MS: '1000' });
    developer = await kura.createKey('developer');
    user = await kura.createKey('user');
    operator = await kura.createKey('operator');
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  it('validates a torch policy with its weights and acts as it does in Python', async () => {
    const policyId = await deployPolicy(kura, developer.key, await bundleFiles('mlp-torch'));
    const expected = JSON.parse(await readFile(join(fixtures, 'mlp-torch', 'expected.json'), 'utf8')) as {
      cases: Array<{ observation: Record<string, number[]>; action: number[] }>;
    };
    for (const testCase of expected.cases) {
      const answer = await kura.request
        .post(`/v1/policies/${policyId}/act`)
        .set(bearer(user.key))
        .send({ observation: testCase.observation });
      expect(answer.status).toBe(200);
      (answer.body.action as number[]).forEach((value, index) => expect(value).toBeCloseTo(testCase.action[index]!, 5));
    }
  }, 60_000);

  it('keeps a session’s state in its own host and resets it at the session’s start', async () => {
    const policyId = await deployPolicy(kura, developer.key, await bundleFiles('counter-numpy'));
    const datasetId = await createDataset(kura, operator.key, 'private');
    await kura.request.post(`/v1/datasets/${datasetId}/grants`).set(bearer(operator.key)).send({ keyId: user.id });
    const session = await kura.request.post('/v1/sessions').set(bearer(user.key)).send({ policyId, datasetId });
    expect(session.status).toBe(201);
    const step = (state: number[]) =>
      kura.request
        .post(`/v1/sessions/${session.body.id}/steps`)
        .set(bearer(user.key))
        .send({ observation: { 'observation.state': state } });
    expect((await step([1.5, 0])).body.action).toEqual([3, 1]);
    expect((await step([-2, 7])).body.action).toEqual([-4, 2]);
  }, 60_000);

  it('is evaluated on held-out episodes and ranked on the leaderboard like any policy', async () => {
    // The seeded action at (episode, step) is [step, -episode]; the state's first number is episode × 1000 + step.
    const manifest = JSON.stringify({
      name: 'perfect-python',
      runtime: 'python',
      entry: 'policy.py',
      observation: ['observation.state'],
      action: { shape: [2] },
    });
    const source =
      'import math\n\ndef act(observation, context):\n    return [context["step"], -math.floor(observation["observation.state"][0] / 1000)]\n';
    const policyId = await deployPolicy(kura, developer.key, { 'policy.json': manifest, 'policy.py': source });
    let datasetId = '';
    for (;;) {
      datasetId = await createDataset(kura, operator.key, 'public');
      if (Array.from({ length: 10 }, (_, index) => episodeBucket(datasetId, index)).some((bucket) => bucket >= 90)) break;
    }
    await publish(kura, operator.key, datasetId, seedNdjson({ episodes: 10, length: 4 }));
    const created = await kura.request.post(`/v1/policies/${policyId}/evaluations`).set(bearer(developer.key)).send({ datasetId });
    expect(created.status).toBe(202);
    const evaluation = await eventually(async () => {
      const response = await kura.request.get(`/v1/evaluations/${created.body.id}`).set(bearer(developer.key));
      return ['completed', 'failed'].includes(response.body.status) ? response.body : undefined;
    }, 60_000);
    expect(evaluation).toMatchObject({ status: 'completed', metrics: { actionMse: 0, actionMae: 0 } });
    const board = (await kura.request.get(`/v1/datasets/${datasetId}/leaderboard`)).body.items as Array<{ policyId: string }>;
    expect(board.map((entry) => entry.policyId)).toContain(policyId);
  }, 120_000);

  it('rejects a Python policy that fails at import or acts wrongly, with the runtime’s code', async () => {
    const manifest = JSON.stringify({
      name: 'bad',
      runtime: 'python',
      entry: 'policy.py',
      observation: ['observation.state'],
      action: { shape: [2] },
    });
    const cases: Array<[string, string]> = [
      ['def act(observation, context:\n    return [0, 0]\n', 'POLICY_SYNTAX_ERROR'],
      ['raise RuntimeError("no weights")\n', 'POLICY_THREW'],
      ['x = 1\n', 'POLICY_NO_ACT'],
      ['def act(observation, context):\n    return [0, 0, 0]\n', 'POLICY_BAD_OUTPUT'],
      ['def act(observation, context):\n    while True: pass\n', 'POLICY_TIMEOUT'],
    ];
    for (const [source, code] of cases) {
      const { policy } = await uploadPolicyUntilSettled(
        kura,
        developer.key,
        await tarGzOf({ 'policy.json': manifest, 'policy.py': source }),
        60_000,
      );
      expect(policy.status).toBe('rejected');
      expect(policy.errors.map((error) => error.code)).toEqual([code]);
    }
  }, 120_000);
});

describe('developers’ code where the jail has no namespaces', () => {
  let kura: TestApp;

  beforeAll(async () => {
    kura = await startTestApp({ KURA_SANDBOX: 'process' });
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  it('refuses policy uploads SANDBOX_UNAVAILABLE (503), naming the cause and the fix, and says so on /health', async () => {
    const developer = await kura.createKey('developer');
    const upload = await kura.request
      .post('/v1/policies')
      .set(bearer(developer.key))
      .set('Content-Type', 'application/octet-stream')
      .send(await tarGzOf({ 'policy.json': '{}', 'policy.js': 'function act() { return [0]; }' }));
    expect(upload.status).toBe(503);
    expect(upload.body.error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(upload.body.error.message).toMatch(/bubblewrap.*KURA_SANDBOX=unsafe-none/s);
    expect((await kura.request.get('/health')).body.sandbox).toMatchObject({ level: 'process' });
  });
});
