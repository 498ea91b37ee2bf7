import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../../../../test/support/app.js';
import {
  documentedErrorCodes,
  documentedRoutes,
  operationsOf,
  routesOutsideOpenApi,
  undescribedMarker,
  updateApiReference,
} from './api-reference.js';
import { collectErrorCodes } from './error-codes.js';

// docs/api.md cannot drift from the app: every route it serves has a section and every section a
// route, every error code the sources define is in the table, and the generated blocks are current.
const repositoryRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const referencePath = fileURLToPath(new URL('../../../../docs/api.md', import.meta.url));
const regenerate = 'run `npm run docs:api` and describe what it added';

/** `GET /v1/robots/:id` for each route Express holds, Swagger UI's own files left out (`GET /docs` stands for them). */
function servedRoutes(kura: TestApp): string[] {
  const routes = kura.app
    .getHttpAdapter()
    .getInstance()
    .router.stack.flatMap(({ route }) => (route ? route.stack.map((handler) => `${handler.method.toUpperCase()} ${route.path}`) : []));
  const swaggerUiFile = (route: string) => route.startsWith('GET /docs/') && route !== 'GET /docs/json' && route !== 'GET /docs/yaml';
  return [...new Set(routes)].filter((route) => !swaggerUiFile(route)).sort();
}

/** The status a WebSocket upgrade at `path` gets without a key (101 would mean it was accepted). */
async function upgradeStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('error', reject);
  });
}

/** `line 12: "…" (docs/api.md) vs "…" (generated)`, or `none`. */
function firstDifference(written: string, generated: string): string {
  const writtenLines = written.split('\n');
  const generatedLines = generated.split('\n');
  const index = writtenLines.findIndex((line, position) => line !== generatedLines[position]);
  if (index === -1 && writtenLines.length === generatedLines.length) return 'none';
  const at = index === -1 ? writtenLines.length : index;
  return `stale (${regenerate}): line ${at + 1} is "${writtenLines[at] ?? ''}", generated "${generatedLines[at] ?? ''}"`;
}

describe('docs/api.md', () => {
  let kura: TestApp;
  let markdown: string;

  beforeAll(async () => {
    kura = await startTestApp();
    markdown = await readFile(referencePath, 'utf8');
  });
  afterAll(async () => {
    await kura.close();
  });

  it('has a section for every route the app serves, and none for a route it does not', async () => {
    const served = [...servedRoutes(kura), 'GET /v1/sessions/:id/ws'].sort();
    const documented = documentedRoutes(markdown);
    expect({ undocumented: served.filter((route) => !documented.includes(route)), hint: regenerate }).toEqual({
      undocumented: [],
      hint: regenerate,
    });
    expect({ notServed: documented.filter((route) => !served.includes(route)) }).toEqual({ notServed: [] });
    expect(new Set(documented).size).toBe(documented.length);

    // The WebSocket route lives outside Express: an upgrade there reaches the session socket (401
    // without a key), while any other path is refused as unknown.
    await kura.app.listen(0, '127.0.0.1');
    const { port } = kura.app.getHttpServer().address() as AddressInfo;
    expect(await upgradeStatus(port, '/v1/sessions/ses_1/ws')).toBe(401);
    expect(await upgradeStatus(port, '/v1/sessions/ses_1/socket')).toBe(404);
  });

  it('describes every endpoint in prose (no section left as the generator added it)', () => {
    expect(markdown.includes(undescribedMarker)).toBe(false);
  });

  it('lists every error code the sources define, and no other', () => {
    const defined = collectErrorCodes(repositoryRoot).map((code) => code.code);
    const listed = documentedErrorCodes(markdown);
    expect({ missing: defined.filter((code) => !listed.includes(code)), hint: regenerate }).toEqual({ missing: [], hint: regenerate });
    expect({ stale: listed.filter((code) => !defined.includes(code)) }).toEqual({ stale: [] });
    // The scan finds codes however they are written: an AppError, an importer error, a `…Code` union.
    expect(defined).toEqual(expect.arrayContaining(['DATASET_NOT_FOUND', 'EPISODE_SHAPE_MISMATCH', 'POLICY_TIMEOUT', 'FORBIDDEN']));
  });

  it('has request tables and error statuses as the app and sources give them today', async () => {
    const document = (await kura.request.get('/docs/json').expect(200)).body;
    const served = servedRoutes(kura);
    expect(
      operationsOf(document)
        .map(({ route }) => route)
        .sort(),
    ).toEqual(served.filter((route) => !routesOutsideOpenApi.includes(route)));
    const update = updateApiReference({ markdown, document, errorCodes: collectErrorCodes(repositoryRoot) });
    // A difference here means a zod schema, a decorator or an error's kind changed: regenerate.
    expect(firstDifference(markdown, update.markdown)).toBe('none');
  });
});
