import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';

describe('operations: health, docs, metrics, request ids, request errors', () => {
  let kura: TestApp;
  beforeAll(async () => {
    kura = await startTestApp({ KURA_JSON_BODY_LIMIT: '2048' });
  });
  afterAll(async () => {
    await kura.close();
  });

  it('reports health of the database, queue and blob store, and the sandbox level', async () => {
    const response = await kura.request.get('/health');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      status: 'ok',
      checks: { database: 'ok', queue: 'ok', blobs: 'ok' },
      // This machine runs as root with user namespaces, so `auto` finds bubblewrap.
      sandbox: { level: 'bwrap', reason: 'bubblewrap runs here with user namespaces' },
    });
  });

  it('serves the OpenAPI document and its UI', async () => {
    const json = await kura.request.get('/docs/json');
    expect(json.status).toBe(200);
    expect(Object.keys(json.body.paths)).toEqual(
      expect.arrayContaining(['/v1/robots', '/v1/robots/{id}/body-model', '/v1/datasets', '/v1/keys', '/health']),
    );
    const robotBody = json.body.paths['/v1/robots'].post.requestBody.content['application/json'].schema;
    expect(robotBody.required).toEqual(expect.arrayContaining(['name', 'robotType', 'controlFrequencyHz', 'actionSpace']));
    const ui = await kura.request.get('/docs');
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('swagger');
  });

  it('exposes request latency by route and job counts in Prometheus format', async () => {
    await kura.request.get('/v1/robots/rbt_missing').set(bearer(kura.adminKey));
    const response = await kura.request.get('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toContain('text/plain');
    expect(response.text).toMatch(/kura_http_request_duration_seconds_count\{method="GET",route="\/v1\/robots\/:id",status="404"\} \d+/);
    expect(response.text).toMatch(/kura_jobs\{state="failed"\} 0/);
  });

  it('echoes a caller request id and makes one otherwise', async () => {
    const given = await kura.request.get('/health').set('X-Request-Id', 'trace-123');
    expect(given.headers['x-request-id']).toBe('trace-123');
    const made = await kura.request.get('/health');
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const hostile = await kura.request.get('/health').set('X-Request-Id', 'a b\tc');
    expect(hostile.headers['x-request-id']).not.toBe('a b\tc');
  });

  it('answers malformed, oversized and non-JSON bodies and unknown routes with coded errors', async () => {
    const malformed = await kura.request
      .post('/v1/robots')
      .set(bearer(kura.adminKey))
      .set('Content-Type', 'application/json')
      .send('{"name": ');
    expect([malformed.status, malformed.body.error.code]).toEqual([400, 'INVALID_JSON']);
    const huge = await kura.request
      .post('/v1/robots')
      .set(bearer(kura.adminKey))
      .send({ name: 'x'.repeat(4096) });
    expect([huge.status, huge.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const text = await kura.request.post('/v1/robots').set(bearer(kura.adminKey)).set('Content-Type', 'text/plain').send('name=x');
    expect([text.status, text.body.error.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    const missing = await kura.request.post('/v1/robots').set(bearer(kura.adminKey));
    expect([missing.status, missing.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    const array = await kura.request.post('/v1/robots').set(bearer(kura.adminKey)).send([1, 2]);
    expect([array.status, array.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    const route = await kura.request.get('/v1/nothing-here');
    expect([route.status, route.body.error.code]).toEqual([404, 'ROUTE_NOT_FOUND']);
  });
});

describe('health when a dependency is down', () => {
  let kura: TestApp;
  beforeAll(async () => {
    // An S3 endpoint where nothing listens.
    kura = await startTestApp({
      S3_ENDPOINT: 'http://127.0.0.1:9',
      S3_BUCKET: 'nowhere',
      S3_ACCESS_KEY_ID: 'x',
      S3_SECRET_ACCESS_KEY: 'y',
    });
  });
  afterAll(async () => {
    await kura.close();
  });

  it('answers 503 naming the failing check', async () => {
    const response = await kura.request.get('/health');
    expect(response.status).toBe(503);
    expect(response.body.status).toBe('error');
    expect(response.body.checks.database).toBe('ok');
    expect(response.body.checks.queue).toBe('ok');
    expect(response.body.checks.blobs).not.toBe('ok');
  });
});
