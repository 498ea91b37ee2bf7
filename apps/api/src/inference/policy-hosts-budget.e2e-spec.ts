// Every warm policy instance is a host process: one api process keeps at most KURA_POLICY_HOSTS_MAX of
// them, making room from idle ones, and says 503 POLICY_HOSTS_BUSY when all are in a call.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PolicyPool } from '@kura/core';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { deployPolicy } from '../../../../test/support/policies.js';

describe('the policy host budget', () => {
  let kura: TestApp;
  let user: { key: string };
  let policies: string[];

  const act = (policyId: string) =>
    kura.request
      .post(`/v1/policies/${policyId}/act`)
      .set(bearer(user.key))
      .send({ observation: { 'observation.state': [1] } });

  beforeAll(async () => {
    kura = await startTestApp({ KURA_POLICY_HOSTS_MAX: '2', KURA_POLICY_CALL_TIMEOUT_MS: '2000' });
    const developer = await kura.createKey('developer');
    user = await kura.createKey('user');
    policies = [];
    for (const name of ['first', 'second', 'third'])
      policies.push(
        await deployPolicy(kura, developer.key, {
          'policy.json': JSON.stringify({
            name,
            runtime: 'js',
            entry: 'policy.js',
            observation: ['observation.state'],
            action: { shape: [1] },
          }),
          // Busy for 600 ms when asked with 1, at once otherwise (validation's synthetic observation is zeros).
          'policy.js':
            'function act(o) { if (o["observation.state"][0] === 1) { const t = Date.now(); while (Date.now() - t < 600) {} } return [7]; }',
        }),
      );
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  it('keeps at most the budget of hosts, unloading idle ones to load others', async () => {
    const pool = kura.app.get(PolicyPool);
    for (const policyId of [...policies, ...policies]) {
      const answer = await act(policyId);
      expect(answer.status).toBe(200);
      expect(answer.body.action).toEqual([7]);
      expect(pool.liveHosts()).toBeLessThanOrEqual(2);
    }
  }, 60_000);

  it('answers 503 POLICY_HOSTS_BUSY when every host is in a call, and serves again after', async () => {
    // Promise.all sends them now (a supertest request starts when it is awaited).
    const busy = Promise.all([act(policies[0]!), act(policies[1]!)]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const refused = await act(policies[2]!);
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatchObject({ code: 'POLICY_HOSTS_BUSY', details: { maxHosts: 2 } });
    for (const answer of await busy) expect(answer.status).toBe(200);
    expect((await act(policies[2]!)).status).toBe(200);
  }, 60_000);
});
