import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, eventually, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { deployPolicy } from '../../../../test/support/policies.js';
import { seedDataset } from '../../../../test/support/datasets.js';

describe('GET /v1/usage: metered act calls, inference time and slice bytes per key', () => {
  let kura: TestApp;
  let user: { id: string; key: string };
  let developer: { id: string; key: string };

  beforeAll(async () => {
    kura = await startTestApp();
    user = await kura.createKey('user');
    developer = await kura.createKey('developer');
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  it('counts each key’s use, shows a key its own and admins anyone’s', async () => {
    const policyId = await deployPolicy(kura, developer.key, {
      'policy.json': JSON.stringify({
        name: 'one',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        action: { shape: [1] },
      }),
      'policy.js': 'function act() { return [1]; }',
    });
    for (let call = 0; call < 3; call++) {
      expect(
        (
          await kura.request
            .post(`/v1/policies/${policyId}/act`)
            .set(bearer(user.key))
            .send({ observation: { 'observation.state': [0] } })
        ).status,
      ).toBe(200);
    }
    const operator = await kura.createKey('operator');
    const { datasetId } = await seedDataset(kura, operator.key, { episodes: 4, length: 3 });
    const slice = await kura.request
      .post('/v1/slices')
      .set(bearer(developer.key))
      .send({ sources: [{ datasetId }] });
    const download = await getBytes(kura, `/v1/slices/${slice.body.id}/data`, bearer(developer.key));
    expect(download.status).toBe(200);

    const own = (await kura.request.get('/v1/usage').set(bearer(user.key))).body;
    expect(own.items).toEqual([{ keyId: user.id, actCalls: 3, sessionSteps: 0, inferenceMs: expect.any(Number), bytesServed: 0 }]);
    expect(own.items[0].inferenceMs).toBeGreaterThan(0);
    const developerUsage = await eventually(async () => {
      const items = (await kura.request.get(`/v1/usage?keyId=${developer.id}`).set(bearer(kura.adminKey))).body.items as Array<{
        bytesServed: number;
      }>;
      return items[0]?.bytesServed ? items[0] : undefined;
    });
    expect(developerUsage).toMatchObject({ keyId: developer.id, actCalls: 0, bytesServed: download.body.length });
    expect((await kura.request.get(`/v1/usage?keyId=${developer.id}`).set(bearer(user.key))).status).toBe(403);
    expect((await kura.request.get('/v1/usage')).status).toBe(401);
    const future = (await kura.request.get('/v1/usage?from=2999-01-01T00:00:00Z&to=2999-01-02T00:00:00Z').set(bearer(user.key))).body;
    expect(future.items).toEqual([]);
  });
});
