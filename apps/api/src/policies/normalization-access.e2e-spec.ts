/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */
// A policy's normalization dataset is read on its owner's behalf, with the slices' rules: another
// key's private dataset (or a sample dataset's full statistics without a grant) never reaches the
// policy, at validation or at any later use once a grant is revoked (#19: a zero observation used to
// return the private dataset's mean action).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { episodeBucket, JobsService } from '@kura/core';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOf } from '../../../../test/support/archives.js';
import { createDataset, publish, seedNdjson } from '../../../../test/support/datasets.js';
import { deployPolicy } from '../../../../test/support/policies.js';

describe("a policy's normalization dataset is read with its owner's access", () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let developer: { id: string; key: string };
  let user: { id: string; key: string };

  /** Outputs zeros: unnormalized with z-scores, the action is exactly the dataset's mean action. */
  const files = (datasetId: string) => ({
    'policy.json': JSON.stringify({
      name: `mean-${datasetId}`,
      runtime: 'js',
      entry: 'policy.js',
      observation: ['observation.state'],
      action: { shape: [2] },
      normalization: { mode: 'zscore', datasetId },
    }),
    'policy.js': 'function act() { return [0, 0]; }',
  });
  const upload = async (datasetId: string) => {
    const accepted = await kura.request
      .post('/v1/policies?access=public')
      .set(bearer(developer.key))
      .set('Content-Type', 'application/octet-stream')
      .send(await tarGzOf(files(datasetId)));
    expect(accepted.status).toBe(202);
    return eventually(async () => {
      const response = await kura.request.get(`/v1/policies/${accepted.body.id}`).set(bearer(developer.key));
      return response.body.status === 'validating' ? undefined : response.body;
    }, 30_000);
  };
  const grant = async (datasetId: string, keyId: string) =>
    expect((await kura.request.post(`/v1/datasets/${datasetId}/grants`).set(bearer(operator.key)).send({ keyId })).status).toBe(201);
  const revoke = async (datasetId: string, keyId: string) =>
    expect((await kura.request.delete(`/v1/datasets/${datasetId}/grants/${keyId}`).set(bearer(operator.key))).status).toBe(204);
  const act = (policyId: string, key = user.key) =>
    kura.request
      .post(`/v1/policies/${policyId}/act`)
      .set(bearer(key))
      .send({ observation: { 'observation.state': [0, 0, 0] } });
  /** An operator's dataset of 10 episodes, at least one held out (buckets come from the id), so it can be evaluated on. */
  const dataset = async (access: 'public' | 'sample' | 'private') => {
    for (;;) {
      const datasetId = await createDataset(kura, operator.key, access);
      if (Array.from({ length: 10 }, (_, index) => episodeBucket(datasetId, index)).some((bucket) => bucket >= 90)) {
        await publish(kura, operator.key, datasetId, seedNdjson({ episodes: 10, length: 4 }));
        return datasetId;
      }
    }
  };
  const meanAction = async (datasetId: string): Promise<number[]> => {
    const stats = await kura.request.get(`/v1/datasets/${datasetId}/stats`).set(bearer(operator.key));
    expect(stats.status).toBe(200);
    return stats.body.features.action.mean as number[];
  };

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    developer = await kura.createKey('developer');
    user = await kura.createKey('user');
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  it.each([
    ['private', /private dataset needs ownership or a grant/],
    ['sample', /grant is needed/],
  ] as const)("another key's %s dataset is rejected at validation, naming normalization.datasetId", async (access, why) => {
    const datasetId = await dataset(access);
    const policy = await upload(datasetId);
    expect(policy.status).toBe('rejected');
    expect(policy.errors).toEqual([
      {
        code: 'NORMALIZATION_DATASET_NOT_FOUND',
        message: expect.stringMatching(why),
        location: { field: 'normalization.datasetId' },
      },
    ]);
    expect(policy.errors[0].message).toContain(datasetId);
  });

  it('an unknown dataset gets the same answer as a private one (no existence probe)', async () => {
    const policy = await upload('ds_00000000000000000000000');
    expect(policy).toMatchObject({
      status: 'rejected',
      errors: [{ code: 'NORMALIZATION_DATASET_NOT_FOUND', location: { field: 'normalization.datasetId' } }],
    });
    expect(policy.errors[0].message).toMatch(/private dataset needs ownership or a grant/);
  });

  it('with a grant the policy is ready and unnormalizes with the mean; once the grant is revoked, act, sessions and evaluations refuse', async () => {
    const privateDataset = await dataset('private');
    const publicDataset = await dataset('public');
    await grant(privateDataset, developer.id);
    const policyId = await deployPolicy(kura, developer.key, files(privateDataset), 'public');

    const before = await act(policyId);
    expect(before.status).toBe(200);
    expect(before.body.action).toEqual((await meanAction(privateDataset)).map((value) => expect.closeTo(value, 4)));
    // A session of the user's, in a dataset it may write to, running the developer's policy.
    const sessionDataset = await createDataset(kura, operator.key, 'private');
    await grant(sessionDataset, user.id);
    const session = await kura.request.post('/v1/sessions').set(bearer(user.key)).send({ policyId, datasetId: sessionDataset });
    expect(session.status).toBe(201);
    const step = () =>
      kura.request
        .post(`/v1/sessions/${session.body.id}/steps`)
        .set(bearer(user.key))
        .send({ observation: { 'observation.state': [0, 0, 0] } });
    expect((await step()).status).toBe(200);

    await revoke(privateDataset, developer.id);

    // The warm instance and the pinned session instance keep their statistics; the check runs at every use.
    for (const refused of [await act(policyId), await act(policyId, developer.key), await step()]) {
      expect(refused.status).toBe(422);
      expect(refused.body.error).toMatchObject({
        code: 'NORMALIZATION_DATASET_NOT_FOUND',
        details: { datasetId: privateDataset, location: { field: 'normalization.datasetId' } },
      });
      expect(JSON.stringify(refused.body)).not.toMatch(/"action"/);
    }
    const evaluation = await kura.request
      .post(`/v1/policies/${policyId}/evaluations`)
      .set(bearer(developer.key))
      .send({ datasetId: publicDataset });
    expect(evaluation.status).toBe(202);
    const finished = await eventually(async () => {
      const response = await kura.request.get(`/v1/evaluations/${evaluation.body.id}`).set(bearer(developer.key));
      return response.body.status === 'failed' || response.body.status === 'completed' ? response.body : undefined;
    }, 30_000);
    expect(finished).toMatchObject({
      status: 'failed',
      error: { code: 'NORMALIZATION_DATASET_NOT_FOUND', location: { field: 'normalization.datasetId' } },
    });

    // Granted again, it works again: nothing was cached as refused.
    await grant(privateDataset, developer.id);
    expect((await act(policyId)).status).toBe(200);
  });

  it('an evaluation whose key lost its grant after it was created fails with DATASET_NOT_FOUND at datasetId', async () => {
    const privateDataset = await dataset('private');
    const publicDataset = await dataset('public');
    const policyId = await deployPolicy(kura, developer.key, files(publicDataset), 'public');
    // The evaluation as it was created while the developer had a grant (revoked since), queued but not yet run.
    const evaluationId = `evl_revoked${Date.now()}`;
    const client = new pg.Client({ connectionString: kura.databaseUrl });
    await client.connect();
    try {
      await client.query('INSERT INTO evaluations (id, policy_id, dataset_id, version, owner_key_id) VALUES ($1, $2, $3, 1, $4)', [
        evaluationId,
        policyId,
        privateDataset,
        developer.id,
      ]);
    } finally {
      await client.end();
    }
    await kura.app.get(JobsService).enqueue('policies.evaluate', { evaluationId }, { id: `policies.evaluate:${evaluationId}` });
    const finished = await eventually(async () => {
      const response = await kura.request.get(`/v1/evaluations/${evaluationId}`).set(bearer(developer.key));
      return response.body.status === 'failed' || response.body.status === 'completed' ? response.body : undefined;
    }, 30_000);
    expect(finished).toMatchObject({ status: 'failed', error: { code: 'DATASET_NOT_FOUND', location: { field: 'datasetId' } } });
  });
});
