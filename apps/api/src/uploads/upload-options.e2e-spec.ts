// Per-upload importer options (`?options=<JSON>`, `options` in a multipart start): checked by the
// chosen format's options schema before a byte is read, stored with the upload, shown in its status.
// Every format Kura has today takes no options (an empty strict schema), so what is tested here is
// the refusal of any option, with its location, and the storage of `{}`; how a schema with options
// locates a nested problem (`options.topics[0]`) is tested with a test-only schema in
// packages/formats/src/registry.spec.ts.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset, seedNdjson, waitForUpload } from '../../../../test/support/datasets.js';

describe('upload options', () => {
  let kura: TestApp;
  let operator: { key: string };
  const body = Buffer.from(seedNdjson({ episodes: 1, length: 3 }));

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
  });
  afterAll(async () => {
    await kura.close();
  });

  const upload = (datasetId: string, query: Record<string, string>) =>
    kura.request
      .post(`/v1/datasets/${datasetId}/uploads`)
      .query(query)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/x-ndjson')
      .send(body);
  const startMultipart = (datasetId: string, fields: Record<string, unknown>) =>
    kura.request
      .post(`/v1/datasets/${datasetId}/uploads`)
      .set(bearer(operator.key))
      .send({ multipart: true, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex'), ...fields });

  it('refuses an option the format does not take, naming it, and keeps nothing', async () => {
    const datasetId = await createDataset(kura, operator.key);
    const refused = await upload(datasetId, { format: 'kura-ndjson', options: JSON.stringify({ topics: ['/joint_states'] }) });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('VALIDATION_FAILED');
    expect(refused.body.error.details.location).toEqual({ field: 'options.topics' });
    expect(refused.body.error.details.issues).toEqual([expect.objectContaining({ path: 'options.topics', code: 'unrecognized_keys' })]);
    expect(refused.body.error.message).toContain('kura-ndjson');

    const multipart = await startMultipart(datasetId, { format: 'kura-ndjson', options: { 'camera name': 'top' } });
    expect(multipart.status).toBe(400);
    expect(multipart.body.error.details.location).toEqual({ field: 'options["camera name"]' });

    const list = await kura.request.get(`/v1/datasets/${datasetId}/uploads`).set(bearer(operator.key));
    expect(list.body.items).toEqual([]);
  });

  it('refuses options without a format, options that are not a JSON object, and text Postgres cannot store', async () => {
    const datasetId = await createDataset(kura, operator.key);
    const withoutFormat = await upload(datasetId, { options: '{}' });
    expect([withoutFormat.status, withoutFormat.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(withoutFormat.body.error.details.location).toEqual({ field: 'format' });
    const multipartWithoutFormat = await startMultipart(datasetId, { options: {} });
    expect([multipartWithoutFormat.status, multipartWithoutFormat.body.error.details.location]).toEqual([400, { field: 'format' }]);

    for (const options of ['not json', '[1]', '"text"', 'null']) {
      const refused = await upload(datasetId, { format: 'kura-ndjson', options });
      expect([options, refused.status, refused.body.error.code]).toEqual([options, 400, 'VALIDATION_FAILED']);
    }
    const nul = await startMultipart(datasetId, { format: 'kura-ndjson', options: { note: 'a\u0000b' } });
    expect([nul.status, nul.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
  });

  it('stores the options with the upload and shows them in its status; an upload without options shows null', async () => {
    const datasetId = await createDataset(kura, operator.key);
    const accepted = await upload(datasetId, { format: 'kura-ndjson', options: '{}' });
    expect(accepted.status).toBe(202);
    expect(accepted.body.options).toEqual({});
    const settled = await waitForUpload(kura, operator.key, accepted.body.id as string, 30_000);
    expect([settled.status, settled.errors]).toEqual(['published', []]);
    expect(settled.options).toEqual({});

    const plain = await kura.request
      .post(`/v1/datasets/${datasetId}/uploads`)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/x-ndjson')
      .send(Buffer.from(seedNdjson({ episodes: 1, length: 2, firstEpisode: 5 })));
    expect(plain.status).toBe(202);
    const status = await kura.request.get(`/v1/uploads/${plain.body.id as string}`).set(bearer(operator.key));
    expect(status.body.options).toBeNull();

    const multipart = await startMultipart(await createDataset(kura, operator.key), { format: 'kura-ndjson', options: {} });
    expect(multipart.status).toBe(201);
    expect(multipart.body.upload.options).toEqual({});
    const shown = await kura.request.get(`/v1/uploads/${multipart.body.upload.id as string}`).set(bearer(operator.key));
    expect(shown.body.options).toEqual({});
  });
});
