// Text Postgres cannot store (U+0000, unpaired UTF-16 surrogates) is refused where it enters: 400
// VALIDATION_FAILED naming the field for every request string (path, query, body), and the coded
// import failure STRING_INVALID, with its location and without retries, for text inside uploads.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { seedDataset } from '../../../../test/support/datasets.js';
import { deployPolicy } from '../../../../test/support/policies.js';

interface Case {
  name: string;
  method: 'get' | 'post' | 'patch' | 'delete';
  path: () => string;
  body?: () => object;
  /** The field the 400 must name (`details.issues[0].path`). */
  field: string;
}

describe('text Postgres cannot store', () => {
  let kura: TestApp;
  let datasetId: string;
  let uploadId: string;
  let policyId: string;
  let keyId: string;
  const admin = () => bearer(kura.adminKey);

  beforeAll(async () => {
    kura = await startTestApp();
    ({ datasetId, uploadId } = await seedDataset(kura, kura.adminKey, { episodes: 1, length: 2, stateDims: 2 }));
    policyId = await deployPolicy(kura, kura.adminKey, {
      'policy.json': JSON.stringify({
        name: 'nul',
        runtime: 'js',
        entry: 'policy.js',
        observation: ['observation.state'],
        action: { shape: [2] },
      }),
      'policy.js': 'function act(o) { return [0, 0]; }',
    });
    keyId = (await kura.createKey('user')).id;
  }, 120_000);
  afterAll(async () => {
    await kura.close();
  });

  const cases: Case[] = [
    // Ids in paths.
    { name: 'a robot id', method: 'get', path: () => '/v1/robots/rob_%00', field: 'id' },
    { name: 'a dataset id', method: 'get', path: () => '/v1/datasets/ds_%00', field: 'id' },
    { name: 'a key id', method: 'get', path: () => '/v1/keys/key_%00', field: 'id' },
    { name: 'an upload id', method: 'get', path: () => '/v1/uploads/upl_%00', field: 'id' },
    { name: 'a slice id', method: 'get', path: () => '/v1/slices/slc_%00', field: 'id' },
    { name: 'a policy id', method: 'get', path: () => '/v1/policies/pol_%00', field: 'id' },
    { name: 'a session id', method: 'get', path: () => '/v1/sessions/ses_%00', field: 'id' },
    { name: 'a grant’s key id', method: 'delete', path: () => `/v1/datasets/${datasetId}/grants/key_%00`, field: 'keyId' },
    // Query values.
    { name: 'an episode task filter', method: 'get', path: () => `/v1/datasets/${datasetId}/episodes?task=pick%00`, field: 'task' },
    {
      name: 'an episode upload filter',
      method: 'get',
      path: () => `/v1/datasets/${datasetId}/episodes?uploadId=upl%00`,
      field: 'uploadId',
    },
    { name: 'a dataset list’s robot', method: 'get', path: () => '/v1/datasets?robotId=rob%00', field: 'robotId' },
    { name: 'a policy list’s name', method: 'get', path: () => '/v1/policies?name=nul%00', field: 'name' },
    { name: 'a usage key', method: 'get', path: () => '/v1/usage?keyId=key%00', field: 'keyId' },
    // Names and descriptions.
    { name: 'a robot name', method: 'post', path: () => '/v1/robots', body: () => robot({ name: 'arm\u0000' }), field: 'name' },
    { name: 'a robot type', method: 'post', path: () => '/v1/robots', body: () => robot({ robotType: 'so\u0000101' }), field: 'robotType' },
    {
      name: 'a robot name with a lone surrogate',
      method: 'post',
      path: () => '/v1/robots',
      body: () => robot({ name: 'arm\ud800' }),
      field: 'name',
    },
    {
      name: 'a dataset description',
      method: 'post',
      path: () => '/v1/datasets',
      body: () => ({ name: 'described', robotId: 'rob_x', access: 'public', description: 'two\u0000arms' }),
      field: 'description',
    },
    {
      name: 'a dataset’s robot id',
      method: 'post',
      path: () => '/v1/datasets',
      body: () => ({ name: 'robotless', robotId: 'rob_\u0000', access: 'public' }),
      field: 'robotId',
    },
    { name: 'a key name', method: 'post', path: () => '/v1/keys', body: () => ({ name: 'lab\u0000', role: 'user' }), field: 'name' },
    { name: 'a key’s new name', method: 'patch', path: () => `/v1/keys/${keyId}`, body: () => ({ name: 'lab\u0000' }), field: 'name' },
    {
      name: 'a grant’s key',
      method: 'post',
      path: () => `/v1/datasets/${datasetId}/grants`,
      body: () => ({ keyId: 'key_\u0000' }),
      field: 'keyId',
    },
    // Slice filters.
    {
      name: 'a slice task filter',
      method: 'post',
      path: () => '/v1/slices',
      body: () => ({ sources: [{ datasetId }], task: 'pick\u0000' }),
      field: 'task',
    },
    {
      name: 'a slice upload filter',
      method: 'post',
      path: () => '/v1/slices',
      body: () => ({ sources: [{ datasetId }], uploadId: `${uploadId}\u0000` }),
      field: 'uploadId',
    },
    {
      name: 'a slice source',
      method: 'post',
      path: () => '/v1/slices',
      body: () => ({ sources: [{ datasetId: `${datasetId}\u0000` }] }),
      field: 'sources.0.datasetId',
    },
    // Inference.
    {
      name: 'a session task',
      method: 'post',
      path: () => '/v1/sessions',
      body: () => ({ policyId, datasetId, task: 'fold\u0000' }),
      field: 'task',
    },
    {
      name: 'an evaluation dataset',
      method: 'post',
      path: () => `/v1/policies/${policyId}/evaluations`,
      body: () => ({ datasetId: 'ds_\u0000' }),
      field: 'datasetId',
    },
    {
      name: 'an observation key',
      method: 'post',
      path: () => `/v1/policies/${policyId}/act`,
      body: () => ({ observation: { 'observation.state\u0000': [1, 2] } }),
      field: 'observation.observation.state\\u0000',
    },
    // Uploads.
    {
      name: 'a multipart upload’s file name',
      method: 'post',
      path: () => `/v1/datasets/${datasetId}/uploads`,
      body: () => ({ multipart: true, bytes: 10, sha256: 'a'.repeat(64), fileName: 'run\u0000.ndjson' }),
      field: 'fileName',
    },
  ];

  it.each(cases.map((entry) => [entry.name, entry] as const))('%s is 400 VALIDATION_FAILED naming the field', async (_name, entry) => {
    let request = kura.request[entry.method](entry.path()).set(admin());
    if (entry.body) request = request.send(entry.body());
    const response = await request;
    expect({ status: response.status, code: response.body.error?.code, field: response.body.error?.details?.issues?.[0]?.path }).toEqual({
      status: 400,
      code: 'VALIDATION_FAILED',
      field: entry.field,
    });
  });

  it('refuses a file name in the query of a one-request upload before reading the body', async () => {
    const response = await kura.request
      .post(`/v1/datasets/${datasetId}/uploads?fileName=run%00.ndjson`)
      .set(admin())
      .set('Content-Type', 'application/x-ndjson')
      .send(Buffer.from('{}\n'));
    expect(response.status).toBe(400);
    expect(response.body.error.details.issues[0].path).toBe('fileName');
  });

  it('fails an upload with U+0000 in a task as STRING_INVALID at the episode, on its first attempt', async () => {
    const line = (step: number) =>
      JSON.stringify({
        episode: 'e1',
        step,
        timestamp: step * 0.1,
        observation: { state: [step, 1] },
        action: [0, 1],
        language: 'pick\u0000cube',
      });
    const accepted = await kura.request
      .post(`/v1/datasets/${datasetId}/uploads?format=kura-ndjson`)
      .set(admin())
      .set('Content-Type', 'application/x-ndjson')
      .send(Buffer.from(`${line(0)}\n${line(1)}\n`));
    expect(accepted.status).toBe(202);
    const settled = await eventually(async () => {
      const response = await kura.request.get(`/v1/uploads/${accepted.body.id}`).set(admin());
      return response.body.status === 'published' || response.body.status === 'failed' ? response.body : undefined;
    }, 30_000);
    expect(settled.status).toBe('failed');
    expect(settled.errors).toEqual([
      expect.objectContaining({
        code: 'STRING_INVALID',
        location: expect.objectContaining({ episode: 'e1', field: 'language_instruction' }),
      }),
    ]);
    const client = new pg.Client({ connectionString: kura.databaseUrl });
    await client.connect();
    try {
      // The upload is marked failed a moment before its job row.
      const job = await eventually(async () => {
        const { rows } = await client.query(`SELECT attempts, state FROM jobs WHERE payload->>'uploadId' = $1`, [accepted.body.id]);
        return rows.length === 1 && rows[0].state !== 'running' ? rows[0] : undefined;
      });
      expect(job).toEqual({ attempts: 1, state: 'failed' });
    } finally {
      await client.end();
    }
  });
});

function robot(overrides: Record<string, unknown>): object {
  return { name: 'arm', robotType: 'so101', controlFrequencyHz: 10, actionSpace: 'joint_position', ...overrides };
}
