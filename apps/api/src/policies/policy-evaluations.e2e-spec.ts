import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { episodeBucket } from '@kura/core';
import { createDataset, publish, seedNdjson } from '../../../../test/support/datasets.js';
import { deployPolicy } from '../../../../test/support/policies.js';

// The seeded datasets' action at (episode, step) is [step, -episode]; this policy gets it exactly right.
const perfect = `function act(observation, context) { const s = observation['observation.state'][0]; return [context.step, -Math.floor(s / 1000)]; }`;
const bundle = (name: string) => ({
  'policy.json': JSON.stringify({ name, runtime: 'js', entry: 'policy.js', observation: ['observation.state'], action: { shape: [2] } }),
  'policy.js': perfect,
});

describe('GET /v1/policies/:id/evaluations', () => {
  let kura: TestApp;
  let developer: { id: string; key: string };
  let operator: { id: string; key: string };
  let publicDataset: string;
  let privateDataset: string;
  let policyId: string;
  const evaluations: Record<string, string> = {};

  /** A dataset of 10 episodes, at least one of them held out (evaluations run on those; buckets come from the id). */
  const datasetWithHeldOut = async (access: 'public' | 'private') => {
    for (;;) {
      const datasetId = await createDataset(kura, operator.key, access);
      if (Array.from({ length: 10 }, (_, index) => episodeBucket(datasetId, index)).some((bucket) => bucket >= 90)) {
        await publish(kura, operator.key, datasetId, seedNdjson({ episodes: 10, length: 4 }));
        return datasetId;
      }
    }
  };
  const evaluate = async (key: string, datasetId: string) => {
    const created = await kura.request.post(`/v1/policies/${policyId}/evaluations`).set(bearer(key)).send({ datasetId });
    expect(created.status).toBe(202);
    return created.body.id as string;
  };
  const list = (key?: string, query = '') => {
    const request = kura.request.get(`/v1/policies/${policyId}/evaluations${query}`);
    return key ? request.set(bearer(key)) : request;
  };

  beforeAll(async () => {
    kura = await startTestApp();
    developer = await kura.createKey('developer');
    operator = await kura.createKey('operator');
    publicDataset = await datasetWithHeldOut('public');
    privateDataset = await datasetWithHeldOut('private');
    policyId = await deployPolicy(kura, developer.key, bundle('lister'), 'public');
    evaluations.first = await evaluate(developer.key, publicDataset);
    // Only an admin (or the operator, who has no right to evaluate) sees the private dataset.
    evaluations.private = await evaluate(kura.adminKey, privateDataset);
    evaluations.second = await evaluate(developer.key, publicDataset);
    await eventually(async () => {
      const items = (await list(kura.adminKey)).body.items as Array<{ status: string }>;
      return items.length === 3 && items.every((item) => item.status === 'completed' || item.status === 'failed') ? items : undefined;
    }, 60_000);
  }, 120_000);
  afterAll(async () => {
    await kura.close();
  });

  it('lists the policy’s evaluations oldest first, with their metrics', async () => {
    const response = await list(developer.key);
    expect(response.status).toBe(200);
    expect(response.body.nextCursor).toBeNull();
    expect(response.body.items.map((item: { id: string }) => item.id)).toEqual([evaluations.first, evaluations.second]);
    expect(response.body.items[0]).toMatchObject({
      policyId,
      datasetId: publicDataset,
      version: 1,
      status: 'completed',
      metrics: { actionMse: 0, actionMae: 0 },
    });
  });

  it('leaves out evaluations on datasets the caller may not see; admins see them all', async () => {
    const anonymous = await list();
    expect(anonymous.status).toBe(200);
    expect(anonymous.body.items.map((item: { datasetId: string }) => item.datasetId)).toEqual([publicDataset, publicDataset]);
    const admin = await list(kura.adminKey);
    expect(admin.body.items.map((item: { id: string }) => item.id)).toEqual([evaluations.first, evaluations.private, evaluations.second]);
    // The dataset's owner sees its private dataset, so its evaluation too.
    expect((await list(operator.key)).body.items).toHaveLength(3);
  });

  it('pages with limit and cursor', async () => {
    const first = await list(kura.adminKey, '?limit=2');
    expect(first.body.items).toHaveLength(2);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await list(kura.adminKey, `?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((item: { id: string }) => item.id)).toEqual([evaluations.second]);
    expect(second.body.nextCursor).toBeNull();
    expect((await list(kura.adminKey, '?cursor=nonsense')).body.error.code).toBe('INVALID_CURSOR');
  });

  it('is 404 for a policy the caller may not see, and for an unknown one', async () => {
    const hidden = await deployPolicy(kura, developer.key, bundle('hidden'), 'private');
    const anonymous = await kura.request.get(`/v1/policies/${hidden}/evaluations`);
    expect(anonymous.status).toBe(404);
    expect(anonymous.body.error.code).toBe('POLICY_NOT_FOUND');
    expect((await kura.request.get(`/v1/policies/${hidden}/evaluations`).set(bearer(developer.key))).body).toEqual({
      items: [],
      nextCursor: null,
    });
    expect((await kura.request.get('/v1/policies/pol_000000000000000000000000/evaluations')).body.error.code).toBe('POLICY_NOT_FOUND');
  });
});
