/**
 * @jest-environment ./packages/core/src/policies/runtimes/testing/node-typed-arrays-environment.mjs
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { tableFromIPC } from 'apache-arrow';
import pg from 'pg';
import { bearer, eventually, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { deployPolicy } from '../../../../test/support/policies.js';
import { tarGzOf } from '../../../../test/support/archives.js';
import { createDataset, seedDataset } from '../../../../test/support/datasets.js';

describe('sessions: steps recorded durably, the session becomes an episode', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let user: { id: string; key: string };
  let developer: { id: string; key: string };
  let policyId: string;

  const deploy = (manifest: Record<string, unknown>, script: string) =>
    deployPolicy(kura, developer.key, {
      'policy.json': JSON.stringify({ runtime: 'js', entry: 'policy.js', ...manifest }),
      'policy.js': script,
    });
  /** A dataset of the operator's that the user may write sessions into. */
  const writableDataset = async (app: TestApp = kura) => {
    const datasetId = await createDataset(app, operator.key, 'private');
    expect((await app.request.post(`/v1/datasets/${datasetId}/grants`).set(bearer(operator.key)).send({ keyId: user.id })).status).toBe(
      201,
    );
    return datasetId;
  };
  const start = (datasetId: string, body: Record<string, unknown> = {}) =>
    kura.request
      .post('/v1/sessions')
      .set(bearer(user.key))
      .send({ policyId, datasetId, task: 'stack the cups', ...body });
  const step = (sessionId: string, state: number[], reward?: number) =>
    kura.request
      .post(`/v1/sessions/${sessionId}/steps`)
      .set(bearer(user.key))
      .send({ observation: { 'observation.state': state }, ...(reward !== undefined ? { reward } : {}) });

  /** A step recorded as another process records it: the step row, and the session's count moved on, in one transaction. */
  const recordedElsewhere = async (
    client: pg.Client,
    sessionId: string,
    stepIndex: number,
    step: { state: number[]; action: number[] },
  ) => {
    await client.query('BEGIN');
    await client.query('INSERT INTO session_steps (session_id, step_index, observation, action, timestamp) VALUES ($1, $2, $3, $4, 0.5)', [
      sessionId,
      stepIndex,
      JSON.stringify({ 'observation.state': step.state }),
      JSON.stringify(step.action),
    ]);
    await client.query('UPDATE sessions SET step_count = $2 WHERE id = $1', [sessionId, stepIndex + 1]);
    await client.query('COMMIT');
  };

  beforeAll(async () => {
    // A generous call limit: these tests are about recording, and 12 hosts share 2 cores here.
    kura = await startTestApp({ KURA_POLICY_CALL_TIMEOUT_MS: '5000' });
    operator = await kura.createKey('operator');
    user = await kura.createKey('user');
    developer = await kura.createKey('developer');
    // Remembers its steps: the action says how many steps this session's instance has seen.
    policyId = await deploy(
      { name: 'stateful', observation: ['observation.state'], observationShapes: { 'observation.state': [2] }, action: { shape: [2] } },
      'let seen = 0; function reset() { seen = 0; } function act(o) { seen++; return [o["observation.state"][0] * 2, seen]; }',
    );
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  it('runs steps, ends, and ingests the session as an episode with its task, rewards and success', async () => {
    const datasetId = await writableDataset();
    const session = await start(datasetId);
    expect(session.status).toBe(201);
    expect(session.body).toMatchObject({ status: 'open', stepCount: 0, policyId, datasetId });
    const actions = [];
    for (const [index, state] of [
      [0.5, 1],
      [1.5, 2],
      [2.5, 3],
    ].entries()) {
      const response = await step(session.body.id, state, index === 2 ? 1 : 0);
      expect(response.status).toBe(200);
      expect(response.body.stepIndex).toBe(index);
      actions.push(response.body.action);
    }
    expect(actions).toEqual([
      [1, 1],
      [3, 2],
      [5, 3],
    ]);
    const ended = await kura.request.post(`/v1/sessions/${session.body.id}/end`).set(bearer(user.key)).send({ success: true });
    expect(ended.status).toBe(200);
    expect(ended.body.uploadId).toMatch(/^upl_/);
    const again = await kura.request.post(`/v1/sessions/${session.body.id}/end`).set(bearer(user.key)).send({});
    expect(again.body.uploadId).toBe(ended.body.uploadId);

    const upload = await eventually(async () => {
      const response = await kura.request.get(`/v1/uploads/${ended.body.uploadId}`).set(bearer(operator.key));
      return ['published', 'failed'].includes(response.body.status) ? response.body : undefined;
    }, 30_000);
    expect(upload).toMatchObject({ status: 'published', episodeCount: 1, stepCount: 3, errors: [] });
    const episodes = (await kura.request.get(`/v1/datasets/${datasetId}/episodes`).set(bearer(operator.key))).body.items;
    expect(episodes).toEqual([expect.objectContaining({ length: 3, task: 'stack the cups', success: true })]);
    const slice = await kura.request
      .post('/v1/slices')
      .set(bearer(kura.adminKey))
      .send({ sources: [{ datasetId }], columns: ['observation.state', 'action', 'reward'] });
    const table = tableFromIPC((await getBytes(kura, `/v1/slices/${slice.body.id}/data`, bearer(kura.adminKey))).body);
    expect(
      table
        .getChild('action')!
        .toArray()
        .map((row: Float32Array) => Array.from(row)),
    ).toEqual(actions);
    expect(Array.from(table.getChild('reward')!.toArray() as Float32Array)).toEqual([0, 0, 1]);

    const late = await step(session.body.id, [1, 1]);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('SESSION_ENDED');
  });

  it('gives each session its own policy instance, reset at its start', async () => {
    const datasetId = await writableDataset();
    const first = (await start(datasetId)).body.id;
    const second = (await start(datasetId)).body.id;
    expect((await step(first, [1, 1])).body.action).toEqual([2, 1]);
    expect((await step(first, [1, 1])).body.action).toEqual([2, 2]);
    expect((await step(second, [1, 1])).body.action).toEqual([2, 1]);
  });

  it('stops recording when the grant to its dataset is revoked, and keeps the steps taken before', async () => {
    const datasetId = await writableDataset();
    const session = (await start(datasetId)).body.id;
    expect((await step(session, [1, 1])).status).toBe(200);
    expect((await kura.request.delete(`/v1/datasets/${datasetId}/grants/${user.id}`).set(bearer(operator.key))).status).toBe(204);
    // The right is re-read at most once a second per session.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const refused = await step(session, [1, 1]);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'SESSION_DATASET_NOT_WRITABLE', details: { datasetId } });
    const ended = await kura.request.post(`/v1/sessions/${session}/end`).set(bearer(user.key)).send({});
    expect(ended.status).toBe(200);
    const upload = await eventually(async () => {
      const response = await kura.request.get(`/v1/uploads/${ended.body.uploadId}`).set(bearer(operator.key));
      return ['published', 'failed'].includes(response.body.status) ? response.body : undefined;
    }, 30_000);
    expect(upload).toMatchObject({ status: 'published', stepCount: 1 });
  });

  it('refuses datasets it cannot write or that do not fit, unknown sessions, and bad observations', async () => {
    const foreign = await createDataset(kura, operator.key, 'public');
    const notWritable = await start(foreign);
    expect(notWritable.status).toBe(403);
    expect(notWritable.body.error.code).toBe('SESSION_DATASET_NOT_WRITABLE');

    // The seeded dataset's action has 2 numbers: a policy acting in 3 does not fit it.
    const seeded = await seedDataset(kura, operator.key, { episodes: 1, length: 2, access: 'private' });
    await kura.request.post(`/v1/datasets/${seeded.datasetId}/grants`).set(bearer(operator.key)).send({ keyId: user.id });
    const wide = await deploy(
      { name: 'wide', observation: ['observation.state'], action: { shape: [3] } },
      'function act() { return [0, 0, 0]; }',
    );
    const mismatch = await kura.request.post('/v1/sessions').set(bearer(user.key)).send({ policyId: wide, datasetId: seeded.datasetId });
    expect(mismatch.status).toBe(422);
    expect(mismatch.body.error.code).toBe('SESSION_DATASET_MISMATCH');

    expect(
      (
        await kura.request
          .post('/v1/sessions')
          .set(bearer(user.key))
          .send({ policyId: 'pol_000000000000aaaaaaaaaaaa', datasetId: seeded.datasetId })
      ).body.error.code,
    ).toBe('POLICY_NOT_FOUND');
    expect((await step('ses_000000000000aaaaaaaaaaaa', [1, 1])).status).toBe(404);
    // A policy that failed validation runs nowhere: not in a session, not through act.
    const accepted = await kura.request
      .post('/v1/policies?access=public')
      .set(bearer(developer.key))
      .set('Content-Type', 'application/octet-stream')
      .send(
        await tarGzOf({
          'policy.json': JSON.stringify({
            name: 'broken',
            runtime: 'js',
            entry: 'policy.js',
            observation: ['observation.state'],
            action: { shape: [2] },
          }),
          'policy.js': 'var nothing;',
        }),
      );
    await eventually(async () => {
      const policy = await kura.request.get(`/v1/policies/${accepted.body.id}`).set(bearer(developer.key));
      return policy.body.status === 'rejected' ? true : undefined;
    }, 30_000);
    const notReady = await kura.request
      .post('/v1/sessions')
      .set(bearer(user.key))
      .send({ policyId: accepted.body.id, datasetId: await writableDataset() });
    expect(notReady.status).toBe(409);
    expect(notReady.body.error).toMatchObject({ code: 'POLICY_NOT_READY', details: { status: 'rejected' } });
    const actNotReady = await kura.request
      .post(`/v1/policies/${accepted.body.id}/act`)
      .set(bearer(user.key))
      .send({ observation: { 'observation.state': [1, 2] } });
    expect(actNotReady.body.error.code).toBe('POLICY_NOT_READY');
    const session = (await start(await writableDataset())).body.id;
    const bad = await step(session, [1, 2, 3]);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('OBSERVATION_INVALID');
    expect((await kura.request.get(`/v1/sessions/${session}`).set(bearer(user.key))).body.stepCount).toBe(0);
    const stranger = await kura.createKey('user');
    expect((await kura.request.get(`/v1/sessions/${session}`).set(bearer(stranger.key))).status).toBe(404);
  });

  it('refuses a step unlike the session’s feature without recording it, so ending still yields a good episode', async () => {
    // No observationShapes: only the session's first step (or the dataset's spec) says what a step holds.
    const free = await deploy(
      { name: 'free', observation: ['observation.state'], action: { shape: [2] } },
      'function act(o) { return [o["observation.state"].length, 0]; }',
    );
    const datasetId = await writableDataset();
    const session = (await kura.request.post('/v1/sessions').set(bearer(user.key)).send({ policyId: free, datasetId })).body.id;
    expect((await step(session, [1, 2])).status).toBe(200);
    for (const state of [[1, 2, 3], Array.from({ length: 60_000 }, () => 7)]) {
      const refused = await step(session, state);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toMatchObject({
        code: 'OBSERVATION_INVALID',
        details: { location: { field: 'observation.observation.state' } },
      });
    }
    expect((await step(session, [3, 4])).body.stepIndex).toBe(1);
    const ended = await kura.request.post(`/v1/sessions/${session}/end`).set(bearer(user.key)).send({ success: true });
    const upload = await eventually(async () => {
      const response = await kura.request.get(`/v1/uploads/${ended.body.uploadId}`).set(bearer(operator.key));
      return ['published', 'failed'].includes(response.body.status) ? response.body : undefined;
    }, 30_000);
    expect(upload).toMatchObject({ status: 'published', episodeCount: 1, stepCount: 2, errors: [] });

    // A dataset with features sets the shape from the first step on.
    const seeded = await seedDataset(kura, operator.key, { episodes: 1, length: 2, stateDims: 3, access: 'private' });
    await kura.request.post(`/v1/datasets/${seeded.datasetId}/grants`).set(bearer(operator.key)).send({ keyId: user.id });
    const into = (await kura.request.post('/v1/sessions').set(bearer(user.key)).send({ policyId: free, datasetId: seeded.datasetId })).body
      .id;
    const first = await step(into, [1, 2]);
    expect(first.status).toBe(400);
    expect(first.body.error.message).toMatch(/holds 3 numbers per step \(set by the dataset’s features\)/);
    expect((await step(into, [1, 2, 3])).status).toBe(200);
  });

  it('answers 404 for another key’s session whatever its state (its state would tell it exists)', async () => {
    const session = (await start(await writableDataset())).body.id;
    expect((await step(session, [1, 1])).status).toBe(200);
    expect((await kura.request.post(`/v1/sessions/${session}/end`).set(bearer(user.key)).send({})).status).toBe(200);
    const stranger = await kura.createKey('user');
    const asStranger = [
      await kura.request
        .post(`/v1/sessions/${session}/steps`)
        .set(bearer(stranger.key))
        .send({ observation: { 'observation.state': [1, 1] } }),
      await kura.request.post(`/v1/sessions/${session}/end`).set(bearer(stranger.key)).send({}),
      await kura.request.get(`/v1/sessions/${session}`).set(bearer(stranger.key)),
    ];
    expect(asStranger.map((response) => [response.status, response.body.error?.code])).toEqual([
      [404, 'SESSION_NOT_FOUND'],
      [404, 'SESSION_NOT_FOUND'],
      [404, 'SESSION_NOT_FOUND'],
    ]);
  });

  it('runs an ONNX policy whose input only its normalization dataset sizes, as validation did', async () => {
    // double-any-width.onnx (make-onnx-models.mjs): action = 2 · state, input [batch, joints].
    const model = new URL('../../../../packages/core/src/policies/runtimes/fixtures/double-any-width.onnx', import.meta.url);
    const stats = await seedDataset(kura, operator.key, { episodes: 1, length: 2, stateDims: 3 });
    const anyWidth = await deployPolicy(kura, developer.key, {
      'policy.json': JSON.stringify({
        name: 'any-width',
        runtime: 'onnx',
        entry: 'model.onnx',
        observation: ['observation.state'],
        action: { shape: [3] },
        normalization: { mode: 'zscore', datasetId: stats.datasetId },
      }),
      'model.onnx': await readFile(model),
    });
    const session = await start(await writableDataset(), { policyId: anyWidth });
    expect(session.status).toBe(201);
    const response = await step(session.body.id, [1, 2, 3]);
    expect(response.status).toBe(200);
    expect(response.body.action).toHaveLength(3);
  });

  it('records concurrent steps of many sessions (grouped commits), each in its own order', async () => {
    const datasetId = await writableDataset();
    const sessions = await Promise.all(Array.from({ length: 12 }, async () => (await start(datasetId)).body.id as string));
    await Promise.all(
      sessions.map(async (sessionId, index) => {
        for (let stepIndex = 0; stepIndex < 5; stepIndex++) {
          const response = await step(sessionId, [index, stepIndex]);
          expect(response.status).toBe(200);
          expect(response.body).toEqual({ action: [index * 2, stepIndex + 1], stepIndex });
        }
      }),
    );
    const client = new pg.Client({ connectionString: kura.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query(
        'SELECT session_id, array_agg(step_index ORDER BY step_index) AS steps, max(s.step_count) AS count FROM session_steps JOIN sessions s ON s.id = session_id WHERE session_id = ANY($1) GROUP BY session_id',
        [sessions],
      );
      expect(rows).toHaveLength(12);
      for (const row of rows) expect(row).toMatchObject({ steps: [0, 1, 2, 3, 4], count: 5 });
    } finally {
      await client.end();
    }
  });

  it('notices a session ended or stepped by another process (409), and then carries on from Postgres', async () => {
    const sessionId = (await start(await writableDataset())).body.id as string;
    expect((await step(sessionId, [1, 1])).status).toBe(200);
    const client = new pg.Client({ connectionString: kura.databaseUrl });
    await client.connect();
    try {
      // Another process recorded step 1 meanwhile: this process's idea of the count is stale.
      await recordedElsewhere(client, sessionId, 1, { state: [9, 9], action: [0, 0] });
      const conflict = await step(sessionId, [2, 2]);
      expect(conflict.status).toBe(409);
      expect(conflict.body.error).toMatchObject({ code: 'SESSION_STEP_CONFLICT', details: { step: 1 } });
      const next = await step(sessionId, [3, 3]);
      expect(next.status).toBe(200);
      expect(next.body.stepIndex).toBe(2);
      // Another process ended it.
      await client.query("UPDATE sessions SET status = 'ended', ended_at = now() WHERE id = $1", [sessionId]);
      const ended = await step(sessionId, [4, 4]);
      expect(ended.status).toBe(409);
      expect(ended.body.error.code).toBe('SESSION_ENDED');
      const { rows } = await client.query('SELECT count(*)::int AS n FROM session_steps WHERE session_id = $1', [sessionId]);
      expect(rows[0].n).toBe(3);
    } finally {
      await client.end();
    }
  });

  it('replies to a step sent again with its stepIndex with the recorded action, and records it once', async () => {
    const sessionId = (await start(await writableDataset())).body.id as string;
    const indexed = (stepIndex: number, state: number[], reward?: number) =>
      kura.request
        .post(`/v1/sessions/${sessionId}/steps`)
        .set(bearer(user.key))
        .send({ observation: { 'observation.state': state }, stepIndex, ...(reward !== undefined ? { reward } : {}) });
    // -0 and 0.1: the recorded observation (jsonb) is compared as JSON, as it was sent.
    const first = await indexed(0, [0.1, -0], 0.5);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ action: [0.2, 1], stepIndex: 0 });
    const again = await indexed(0, [0.1, -0], 0.5);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ action: [0.2, 1], stepIndex: 0, replayed: true });
    // The policy ran once for step 0: its instance counts this as its second call.
    const second = await indexed(1, [2, 2]);
    expect(second.body).toEqual({ action: [4, 2], stepIndex: 1 });

    for (const [stepIndex, state, reward, why] of [
      [0, [5, 5], 0.5, 'recorded with another observation'],
      [0, [0.1, 0], undefined, 'recorded with another observation or reward'],
      [5, [1, 1], undefined, 'has no step 4 yet'],
    ] as const) {
      const refused = await indexed(stepIndex, [...state], reward);
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatchObject({ code: 'SESSION_STEP_CONFLICT', details: { step: stepIndex, nextStep: 2 } });
      expect(refused.body.error.message).toContain(why);
    }
    expect((await indexed(-1, [1, 1])).status).toBe(400);

    // The same retry landed through another process first: its recorded step is the reply.
    const client = new pg.Client({ connectionString: kura.databaseUrl });
    await client.connect();
    try {
      await recordedElsewhere(client, sessionId, 2, { state: [3, 3], action: [6, 7] });
      const landedElsewhere = await indexed(2, [3, 3]);
      expect(landedElsewhere.status).toBe(200);
      expect(landedElsewhere.body).toEqual({ action: [6, 7], stepIndex: 2, replayed: true });
      const { rows } = await client.query('SELECT step_index FROM session_steps WHERE session_id = $1 ORDER BY step_index', [sessionId]);
      expect(rows.map((row) => row.step_index)).toEqual([0, 1, 2]);
    } finally {
      await client.end();
    }
    expect((await kura.request.get(`/v1/sessions/${sessionId}`).set(bearer(user.key))).body.stepCount).toBe(3);
  });

  it('ends idle sessions as truncated and ingests them', async () => {
    const quick = await startTestApp({ KURA_SESSION_IDLE_S: '1' });
    try {
      const quickOperator = await quick.createKey('operator');
      const quickUser = await quick.createKey('user');
      const quickDeveloper = await quick.createKey('developer');
      const idlePolicy = await deployPolicy(quick, quickDeveloper.key, {
        'policy.json': JSON.stringify({
          name: 'idle',
          runtime: 'js',
          entry: 'policy.js',
          observation: ['observation.state'],
          action: { shape: [1] },
        }),
        'policy.js': 'function act() { return [1]; }',
      });
      const datasetId = await createDataset(quick, quickOperator.key, 'private');
      await quick.request.post(`/v1/datasets/${datasetId}/grants`).set(bearer(quickOperator.key)).send({ keyId: quickUser.id });
      const session = (await quick.request.post('/v1/sessions').set(bearer(quickUser.key)).send({ policyId: idlePolicy, datasetId })).body
        .id;
      for (let index = 0; index < 2; index++) {
        expect(
          (
            await quick.request
              .post(`/v1/sessions/${session}/steps`)
              .set(bearer(quickUser.key))
              .send({ observation: { 'observation.state': [index] } })
          ).status,
        ).toBe(200);
      }
      const truncated = await eventually(async () => {
        const response = await quick.request.get(`/v1/sessions/${session}`).set(bearer(quickUser.key));
        return response.body.uploadId ? response.body : undefined;
      }, 15_000);
      expect(truncated.status).toBe('truncated');
      const upload = await eventually(async () => {
        const response = await quick.request.get(`/v1/uploads/${truncated.uploadId}`).set(bearer(quickOperator.key));
        return ['published', 'failed'].includes(response.body.status) ? response.body : undefined;
      }, 30_000);
      expect(upload).toMatchObject({ status: 'published', stepCount: 2 });
    } finally {
      await quick.close();
    }
  });
});
