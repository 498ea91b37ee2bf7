// `npm run docs:api`: regenerates the generated blocks of docs/api.md — each endpoint's request table
// (from the app's OpenAPI document) and the error-code table (from the sources) — and keeps the prose.
// Exits 1 when prose is still needed: an endpoint section it had to add, or one for a route no longer served.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from '../apps/api/dist/app.js';
import { buildOpenApiDocument } from '../apps/api/dist/http/openapi.js';
import { updateApiReference } from '../apps/api/dist/reference/api-reference.js';
import { collectErrorCodes } from '../apps/api/dist/reference/error-codes.js';
import { createLogger, loadConfig } from '../packages/core/dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const referencePath = join(root, 'docs', 'api.md');

const dataDir = await mkdtemp(join(tmpdir(), 'kura-docs-'));
let document;
try {
  // The document comes from the controllers' metadata: the app is built but never started, so
  // nothing connects to this database.
  const databaseUrl = 'postgresql://unused@127.0.0.1:1/unused';
  const config = loadConfig({ KURA_DATA_DIR: dataDir, DATABASE_URL: databaseUrl });
  const app = await createApp({ config, logger: createLogger('silent'), databaseUrl });
  document = buildOpenApiDocument(app);
  await app.close();
} finally {
  await rm(dataDir, { recursive: true, force: true });
}

const update = updateApiReference({
  markdown: await readFile(referencePath, 'utf8'),
  document,
  errorCodes: collectErrorCodes(root),
});
await writeFile(referencePath, update.markdown);

console.log(`docs/api.md: request tables and error codes regenerated`);
if (update.newCodes.length > 0)
  console.log(`new error codes (their meaning is the code's message; say it better): ${update.newCodes.join(', ')}`);
if (update.removedCodes.length > 0) console.log(`error codes no longer defined, removed: ${update.removedCodes.join(', ')}`);
if (update.added.length > 0) console.log(`endpoints added under "Endpoints to describe" (write their prose): ${update.added.join(', ')}`);
if (update.unknown.length > 0) console.log(`sections for routes the app does not serve (remove or fix them): ${update.unknown.join(', ')}`);
if (update.added.length > 0 || update.unknown.length > 0) process.exitCode = 1;
