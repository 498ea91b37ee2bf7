import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLogger, MemoryQuotaCounters, QuotaService, UsageMeter, UsageRepository, type AppError, type Principal } from '@kura/core';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { deployPolicy } from '../../../../test/support/policies.js';
import { createDataset } from '../../../../test/support/datasets.js';

/** Quota windows are clock minutes: start a minute-bound check with enough of the minute left. */
async function awayFromMinuteEdge(neededMs = 8000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < neededMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

describe('quotas on keys: actPerMinute and stepsPerDay → 429 with Retry-After', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let developer: { id: string; key: string };
  let policyId: string;

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    developer = await kura.createKey('developer');
    policyId = await deployPolicy(kura, developer.key, {
      'policy.json': JSON.stringify({
        name: 'quota',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        observationShapes: { 'observation.state': [2] },
        action: { shape: [2] },
      }),
      'policy.js': 'function act(o) { return [o["observation.state"][0], 1]; }',
    });
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  const userWithQuota = async (quota: Record<string, number | null> | undefined) => {
    const response = await kura.request
      .post('/v1/keys')
      .set(bearer(kura.adminKey))
      .send({ name: `quota-${Math.random().toString(36).slice(2, 8)}`, role: 'user', ...(quota ? { quota } : {}) });
    expect(response.status).toBe(201);
    return response.body as { id: string; key: string; quota: unknown };
  };
  const setQuota = (id: string, quota: Record<string, number | null> | null) =>
    kura.request.patch(`/v1/keys/${id}`).set(bearer(kura.adminKey)).send({ quota });
  const act = (key: string) =>
    kura.request
      .post(`/v1/policies/${policyId}/act`)
      .set(bearer(key))
      .send({ observation: { 'observation.state': [1, 2] } });
  const openSession = async (user: { id: string; key: string }) => {
    const datasetId = await createDataset(kura, operator.key, 'private');
    await kura.request.post(`/v1/datasets/${datasetId}/grants`).set(bearer(operator.key)).send({ keyId: user.id });
    const session = await kura.request.post('/v1/sessions').set(bearer(user.key)).send({ policyId, datasetId });
    expect(session.status).toBe(201);
    return session.body.id as string;
  };
  const step = (key: string, sessionId: string) =>
    kura.request
      .post(`/v1/sessions/${sessionId}/steps`)
      .set(bearer(key))
      .send({ observation: { 'observation.state': [1, 2] } });

  it('admins set, change and remove quotas; they show on the key', async () => {
    const user = await userWithQuota({ actPerMinute: 5 });
    expect(user.quota).toEqual({ actPerMinute: 5 });
    const changed = await setQuota(user.id, { actPerMinute: null, stepsPerDay: 100 });
    expect(changed.status).toBe(200);
    expect(changed.body.quota).toEqual({ stepsPerDay: 100 });
    expect((await kura.request.get(`/v1/keys/${user.id}`).set(bearer(kura.adminKey))).body.quota).toEqual({ stepsPerDay: 100 });
    expect((await setQuota(user.id, null)).body.quota).toBeNull();
    const renamed = await kura.request.patch(`/v1/keys/${user.id}`).set(bearer(kura.adminKey)).send({ name: 'robot cell 3' });
    expect(renamed.body).toMatchObject({ name: 'robot cell 3', quota: null });

    const negative = await setQuota(user.id, { actPerMinute: -1 });
    expect(negative.status).toBe(400);
    expect(negative.body.error.code).toBe('VALIDATION_FAILED');
    expect(JSON.stringify(negative.body.error.details)).toContain('actPerMinute');
    expect((await setQuota(user.id, { callsPerHour: 3 })).status).toBe(400);
    expect((await kura.request.patch(`/v1/keys/${user.id}`).set(bearer(user.key)).send({ quota: null })).status).toBe(403);
    const unknown = await setQuota('key_000000000000aaaaaaaaaaaa', null);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('KEY_NOT_FOUND');
  });

  it('refuses act calls past actPerMinute with 429, Retry-After and the quota named; other keys go on', async () => {
    await awayFromMinuteEdge();
    const limited = await userWithQuota({ actPerMinute: 3 });
    const free = await userWithQuota(undefined);
    for (let call = 0; call < 3; call++) expect((await act(limited.key)).status).toBe(200);
    const refused = await act(limited.key);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota: 'actPerMinute', limit: 3 } });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(retryAfter).toBe(refused.body.error.details.retryAfterS);
    for (let call = 0; call < 5; call++) expect((await act(free.key)).status).toBe(200);
    // Refused calls are not metered as calls.
    const usage = (await kura.request.get('/v1/usage').set(bearer(limited.key))).body.items[0];
    expect(usage.actCalls).toBe(3);
    // A raised quota holds from the next request.
    await setQuota(limited.id, { actPerMinute: 4 });
    expect((await act(limited.key)).status).toBe(200);
    expect((await act(limited.key)).status).toBe(429);
    await setQuota(limited.id, null);
    expect((await act(limited.key)).status).toBe(200);
  });

  it('limits session steps per day; a refused step is not recorded and the session still ends', async () => {
    const user = await userWithQuota({ stepsPerDay: 2 });
    const sessionId = await openSession(user);
    expect((await step(user.key, sessionId)).status).toBe(200);
    expect((await step(user.key, sessionId)).status).toBe(200);
    const refused = await step(user.key, sessionId);
    expect(refused.status).toBe(429);
    expect(refused.body.error.details).toMatchObject({ quota: 'stepsPerDay', limit: 2 });
    const secondsToMidnight = Math.ceil((86_400_000 - (Date.now() % 86_400_000)) / 1000);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(secondsToMidnight - 5);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(secondsToMidnight);
    expect((await kura.request.get(`/v1/sessions/${sessionId}`).set(bearer(user.key))).body).toMatchObject({
      status: 'open',
      stepCount: 2,
    });
    // Act calls are not session steps.
    expect((await act(user.key)).status).toBe(200);
    const ended = await kura.request.post(`/v1/sessions/${sessionId}/end`).set(bearer(user.key)).send({});
    expect(ended.status).toBe(200);
  });

  it('counts session steps against actPerMinute too, and a step refused there gives its daily unit back', async () => {
    await awayFromMinuteEdge();
    const user = await userWithQuota({ actPerMinute: 2, stepsPerDay: 5 });
    const sessionId = await openSession(user);
    expect((await step(user.key, sessionId)).status).toBe(200);
    expect((await step(user.key, sessionId)).status).toBe(200);
    const refused = await step(user.key, sessionId);
    expect(refused.status).toBe(429);
    expect(refused.body.error.details.quota).toBe('actPerMinute');
    expect((await act(user.key)).status).toBe(429);
    await setQuota(user.id, { stepsPerDay: 5 });
    // 2 of 5 daily steps used: the one refused by the minute quota did not count.
    for (let call = 0; call < 3; call++) expect((await step(user.key, sessionId)).status).toBe(200);
    const daily = await step(user.key, sessionId);
    expect(daily.status).toBe(429);
    expect(daily.body.error.details.quota).toBe('stepsPerDay');
  });

  it('a restarted process starts the day from the metered steps, not from zero', async () => {
    const user = await userWithQuota({ stepsPerDay: 3 });
    const sessionId = await openSession(user);
    for (let call = 0; call < 3; call++) expect((await step(user.key, sessionId)).status).toBe(200);
    // What a new process has: fresh in-memory counters, and the steps metered in Postgres (after a flush).
    const meter = kura.app.get(UsageMeter);
    await meter.flush();
    const restarted = new QuotaService(new MemoryQuotaCounters(), kura.app.get(UsageRepository), meter, createLogger('silent'));
    const principal: Principal = { kind: 'key', keyId: user.id, role: 'user', name: 'x', quota: { stepsPerDay: 3 } };
    const refusal = (await restarted.charge(principal, 'step').catch((error: unknown) => error)) as AppError;
    expect(refusal.code).toBe('QUOTA_EXCEEDED');
    // Steps counted but not yet flushed count as well.
    const other = await userWithQuota({ stepsPerDay: 1 });
    meter.record(other.id, { sessionSteps: 1 });
    const fresh = new QuotaService(new MemoryQuotaCounters(), kura.app.get(UsageRepository), meter, createLogger('silent'));
    const otherPrincipal: Principal = { kind: 'key', keyId: other.id, role: 'user', name: 'y', quota: { stepsPerDay: 1 } };
    expect(((await fresh.charge(otherPrincipal, 'step').catch((error: unknown) => error)) as AppError).code).toBe('QUOTA_EXCEEDED');
  });
});
