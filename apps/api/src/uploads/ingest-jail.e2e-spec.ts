import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset, publish, seedNdjson } from '../../../../test/support/datasets.js';

// Parsers run in a jailed child (packages/jail) with a memory limit: an upload that needs more than
// that fails coded, located, and at once — and the api goes on serving.
describe('uploads parsed in the jail', () => {
  let kura: TestApp;
  let operator: string;

  beforeAll(async () => {
    kura = await startTestApp({ KURA_INGEST_MEMORY_MB: '300' });
    const key = await kura.request.post('/v1/keys').set(bearer(kura.adminKey)).send({ name: 'operator', role: 'operator' });
    operator = key.body.key;
  });

  afterAll(async () => {
    await kura.close();
  });

  async function waitForUpload(id: string) {
    return eventually(async () => {
      const response = await kura.request.get(`/v1/uploads/${id}`).set(bearer(operator));
      return response.body.status === 'published' || response.body.status === 'failed' ? response.body : undefined;
    }, 60_000);
  }

  it('fails a memory bomb (one NDJSON line of 25 million zeros) with INGEST_MEMORY_LIMIT and keeps serving', async () => {
    const datasetId = await createDataset(kura, operator);
    const zeros = `[${'0,'.repeat(25_000_000 - 1)}0]`;
    const body = `{"episode":0,"step":0,"observation":{"state":${zeros}},"action":[0]}\n`;
    const accepted = await kura.request
      .post(`/v1/datasets/${datasetId}/uploads?format=kura-ndjson`)
      .set(bearer(operator))
      .set('Content-Type', 'application/x-ndjson')
      .send(Buffer.from(body));
    expect(accepted.status).toBe(202);
    const done = await waitForUpload(accepted.body.id);
    expect(done.status).toBe('failed');
    expect(done.errors).toEqual([expect.objectContaining({ code: 'INGEST_MEMORY_LIMIT', message: expect.stringContaining('300 MiB') })]);
    expect((await kura.request.get('/health')).status).toBe(200);
    // The same dataset takes a good upload right after.
    const good = await publish(kura, operator, datasetId, seedNdjson({ episodes: 2, length: 3 }));
    expect(good.version).toBe(1);
  });
});
