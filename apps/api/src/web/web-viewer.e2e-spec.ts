import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../../../../test/support/app.js';

// A stand-in for apps/web/dist (what `vite build` writes), so these tests do not depend on a build.
const INDEX = '<!doctype html><html><head><title>Kura</title></head><body><div id="app" data-marker="viewer-index"></div></body></html>';
const SCRIPT = 'console.log("viewer");';

describe('web viewer: static files at / and client routes, next to the API', () => {
  let kura: TestApp;
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kura-web-'));
    const dist = join(scratch, 'dist');
    await mkdir(join(dist, 'assets'), { recursive: true });
    await writeFile(join(dist, 'index.html'), INDEX);
    await writeFile(join(dist, 'assets', 'index-Ab12Cd34.js'), SCRIPT);
    await writeFile(join(dist, 'assets', 'index-Ef56Gh78.css'), 'body { margin: 0 }');
    await writeFile(join(dist, 'robots.txt'), 'User-agent: *\n');
    // Beside the served folder, never reachable through it.
    await writeFile(join(scratch, 'secret.txt'), 'not for the web');
    kura = await startTestApp({}, { webDirectory: dist });
  }, 60_000);
  afterAll(async () => {
    await kura.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it.each([
    '/',
    '/index.html',
    '/datasets',
    '/datasets/ds_0193f2c4a1b2_9f8e7d6c5b4a',
    '/datasets/ds_x/episodes/12',
    '/datasets/ds_x/leaderboard',
    '/policies',
    '/policies/pol_1',
    '/trainings',
    '/trainings/trn_1',
  ])('answers the client route %s with index.html (HTML, revalidated, with a CSP)', async (path) => {
    const response = await kura.request.get(path);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.text).toBe(INDEX);
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(response.headers['content-security-policy']).toContain("default-src 'self'");
  });

  it('serves hashed assets with their content type and a year-long immutable cache; other files are revalidated', async () => {
    const script = await kura.request.get('/assets/index-Ab12Cd34.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toMatch(/^(text|application)\/javascript/);
    expect(script.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(script.text).toBe(SCRIPT);
    const style = await kura.request.get('/assets/index-Ef56Gh78.css');
    expect(style.headers['content-type']).toMatch(/^text\/css/);
    const robots = await kura.request.get('/robots.txt');
    expect(robots.status).toBe(200);
    expect(robots.headers['content-type']).toMatch(/^text\/plain/);
    expect(robots.headers['cache-control']).toBe('public, max-age=0, must-revalidate');
    // Conditional requests work (ETag from the static server).
    const again = await kura.request.get('/assets/index-Ab12Cd34.js').set('If-None-Match', script.headers.etag!);
    expect(again.status).toBe(304);
  });

  it('leaves /v1, /health, /docs and /metrics to the API: unknown API paths stay JSON 404s', async () => {
    const unknown = await kura.request.get('/v1/no-such-thing');
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/json/);
    expect(unknown.body.error.code).toBe('ROUTE_NOT_FOUND');
    expect((await kura.request.get('/v1/datasets')).body).toEqual({ items: [], nextCursor: null });
    expect((await kura.request.get('/health')).body.status).toBe('ok');
    const docs = await kura.request.get('/docs/json');
    expect(docs.status).toBe(200);
    expect(docs.body.paths['/v1/datasets/{id}/episodes/{episodeIndex}/videos/{feature}']).toBeDefined();
    expect((await kura.request.get('/metrics')).text).toContain('kura_http_request_duration_seconds');
  });

  it('falls through to a JSON 404 for files that do not exist, for other methods, and for paths outside its folder', async () => {
    for (const path of ['/assets/missing-123.js', '/favicon.ico', '/assets/', '/%2e%2e/secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt']) {
      const response = await kura.request.get(path);
      expect({ path, status: response.status, code: response.body?.error?.code }).toEqual({ path, status: 404, code: 'ROUTE_NOT_FOUND' });
      expect(response.text).not.toContain('not for the web');
    }
    const post = await kura.request.post('/datasets').send({});
    expect(post.status).toBe(404);
    expect(post.body.error.code).toBe('ROUTE_NOT_FOUND');
  });
});

describe('web viewer: not built', () => {
  let kura: TestApp;

  beforeAll(async () => {
    kura = await startTestApp({}, { webDirectory: join(tmpdir(), `kura-web-missing-${Date.now()}`, 'dist') });
  }, 60_000);
  afterAll(async () => {
    await kura.close();
  });

  it('answers / and the viewer routes with a short text saying how to build it; the API works as before', async () => {
    for (const path of ['/', '/datasets/ds_1']) {
      const response = await kura.request.get(path);
      expect(response.status).toBe(503);
      expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(response.text).toContain('not built');
      expect(response.text).toContain('npm run build');
    }
    expect((await kura.request.get('/assets/index-1.js')).body.error.code).toBe('ROUTE_NOT_FOUND');
    expect((await kura.request.get('/v1/datasets')).status).toBe(200);
  });
});
