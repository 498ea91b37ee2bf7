// HTTP: malformed and oversized bodies, NUL (and unpaired surrogates) in every string a request can
// carry, forged cursors, wrong content types, Range abuse, idempotency keys reused with another body,
// multipart misuse. Each answer must be a 4xx with a code; none may be a 5xx.
import { createHash } from 'node:crypto';
import type { CaseContext, HostileCase } from '../corpus.js';
import { upload, uploadAndWait } from '../corpus.js';
import { statusOf } from '../kura.js';
import type { RequestOptions } from '../kura.js';
import type { World } from '../world.js';
import { ndjson } from '../builders.js';
import { requestCase, type RequestCase } from './requests.js';

const NUL = '\u0000';
const LONE_SURROGATE = '\ud800';
const MiB = 1024 * 1024;

const http = (spec: Omit<RequestCase, 'family'>): HostileCase => requestCase({ family: 'http', ...spec });

const robotBody = { name: 'r', robotType: 'so101', controlFrequencyHz: 10, actionSpace: 'other' };
const datasetBody = (world: World) => ({ name: `ds-${Math.random().toString(36).slice(2)}`, robotId: world.robots.a, access: 'private' });
const asOperatorA = (world: World, options: RequestOptions): RequestOptions => ({ key: world.keys.operatorA.key, ...options });
const asDeveloperA = (world: World, options: RequestOptions): RequestOptions => ({ key: world.keys.developerA.key, ...options });

/** A body with one string replaced by `bad`, by a path of keys and indices. */
function withText(body: unknown, path: Array<string | number>, bad: string): unknown {
  const copy = structuredClone(body) as Record<string | number, unknown>;
  let target: Record<string | number, unknown> = copy;
  for (const part of path.slice(0, -1)) target = target[part] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  const value = target[last];
  target[last] = typeof value === 'string' ? `${value.slice(0, 1)}${bad}${value.slice(1)}` : bad;
  return copy;
}

/** A JSON endpoint, a valid body for it, and the strings in that body. */
interface JsonEndpoint {
  name: string;
  method: string;
  path: (world: World) => string;
  /** The caller; undefined: the admin key. */
  key: (world: World) => string | undefined;
  body: (world: World) => unknown;
  strings: Array<Array<string | number>>;
}

const jsonEndpoints: JsonEndpoint[] = [
  {
    name: 'robots',
    method: 'POST',
    path: () => '/v1/robots',
    key: (world) => world.keys.operatorA.key,
    body: () => ({ ...robotBody, jointNames: ['shoulder'], cameras: ['front', { name: 'wrist' }] }),
    strings: [['name'], ['robotType'], ['jointNames', 0], ['cameras', 0], ['cameras', 1, 'name']],
  },
  {
    name: 'datasets',
    method: 'POST',
    path: () => '/v1/datasets',
    key: (world) => world.keys.operatorA.key,
    body: (world) => ({
      ...datasetBody(world),
      description: 'd',
      license: 'MIT',
      features: { 'observation.state': { dtype: 'float32', shape: [2], names: ['x', 'y'], description: 'd' } },
    }),
    strings: [
      ['name'],
      ['robotId'],
      ['description'],
      ['license'],
      ['features', 'observation.state', 'description'],
      ['features', 'observation.state', 'names', 0],
    ],
  },
  {
    name: 'keys',
    method: 'POST',
    path: () => '/v1/keys',
    key: () => undefined,
    body: () => ({ name: 'k', role: 'user' }),
    strings: [['name']],
  },
  {
    name: 'slices',
    method: 'POST',
    path: () => '/v1/slices',
    key: (world) => world.keys.developerA.key,
    body: (world) => ({
      sources: [{ datasetId: world.datasets.aPrivate }],
      episodes: '0-3',
      task: 'task',
      uploadId: 'upl_0',
      columns: ['action', { name: 'state', from: { [world.datasets.aPrivate]: 'observation.state' } }],
    }),
    strings: [['sources', 0, 'datasetId'], ['episodes'], ['task'], ['uploadId'], ['columns', 0], ['columns', 1, 'name']],
  },
  {
    name: 'sessions',
    method: 'POST',
    path: () => '/v1/sessions',
    key: (world) => world.keys.developerA.key,
    body: (world) => ({ policyId: world.policies.aPrivate, datasetId: world.datasets.aSessions, task: 'fold' }),
    strings: [['policyId'], ['datasetId'], ['task']],
  },
  {
    name: 'act',
    method: 'POST',
    path: (world) => `/v1/policies/${world.policies.aPrivate}/act`,
    key: (world) => world.keys.developerA.key,
    body: () => ({ observation: { 'observation.state': [0, 0] }, task: 'fold' }),
    strings: [['task']],
  },
  {
    name: 'evaluations',
    method: 'POST',
    path: (world) => `/v1/policies/${world.policies.aPrivate}/evaluations`,
    key: (world) => world.keys.developerA.key,
    body: (world) => ({ datasetId: world.datasets.aPrivate }),
    strings: [['datasetId']],
  },
  {
    name: 'grants',
    method: 'POST',
    path: (world) => `/v1/datasets/${world.datasets.aPrivate}/grants`,
    key: (world) => world.keys.operatorA.key,
    body: (world) => ({ keyId: world.keys.userA.id }),
    strings: [['keyId']],
  },
  {
    name: 'multipart start',
    method: 'POST',
    path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
    key: (world) => world.keys.operatorA.key,
    body: () => ({
      multipart: true,
      bytes: 10,
      sha256: 'a'.repeat(64),
      fileName: 'x.ndjson',
      featureMap: { 'observation.a': 'observation.b' },
      dropFeatures: ['observation.c'],
    }),
    strings: [['fileName'], ['featureMap', 'observation.a'], ['dropFeatures', 0]],
  },
];

/** NUL in every string of every JSON endpoint's body (a copy of the body with that one string broken). */
function nulInBodies(): HostileCase[] {
  return jsonEndpoints.flatMap((endpoint) =>
    endpoint.strings.map((path) =>
      http({
        name: `http/nul/body/${endpoint.name}.${path.join('.')}`,
        expect: '400 VALIDATION_FAILED',
        method: endpoint.method,
        path: endpoint.path,
        options: (world) => ({ key: endpoint.key(world), json: withText(endpoint.body(world), path, NUL) }),
      }),
    ),
  );
}

/** NUL in a session step's observation key: the session is the case's own. */
const nulInStepKey: HostileCase = {
  family: 'http',
  name: 'http/nul/body/steps.observation-key',
  expect: '400 VALIDATION_FAILED',
  async run({ client, world }) {
    const sessionId = await world.newSession(client);
    const reply = await client.post(`/v1/sessions/${sessionId}/steps`, {
      key: world.keys.userA.key,
      json: { observation: { [`observation.state${NUL}`]: [0, 0] } },
    });
    return statusOf(reply);
  },
};

// `:id` and other path parameters holding %00.
const nulInPaths: Array<[string, string, (world: World) => string]> = [
  ['robots/:id', 'GET', () => '/v1/robots/rbt_%00'],
  ['robots/:id/body-model', 'GET', () => '/v1/robots/%00/body-model'],
  ['datasets/:id', 'GET', () => '/v1/datasets/ds_%00'],
  ['datasets/:id/episodes', 'GET', () => '/v1/datasets/%00/episodes'],
  ['datasets/:id/stats', 'GET', () => '/v1/datasets/%00/stats'],
  ['datasets/:id/versions', 'GET', () => '/v1/datasets/%00/versions'],
  ['datasets/:id/leaderboard', 'GET', () => '/v1/datasets/%00/leaderboard'],
  ['datasets/:id/grants/:keyId', 'DELETE', (world) => `/v1/datasets/${world.datasets.aPrivate}/grants/key_%00`],
  [
    'datasets/:id/episodes/:n/videos/:feature',
    'GET',
    (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes/0/videos/observation.%00`,
  ],
  ['uploads/:id', 'GET', () => '/v1/uploads/upl_%00'],
  ['slices/:id', 'GET', () => '/v1/slices/slc_%00'],
  ['slices/:id/data', 'GET', () => '/v1/slices/%00/data'],
  ['policies/:id', 'GET', () => '/v1/policies/pol_%00'],
  ['policies/:id/evaluations', 'GET', () => '/v1/policies/%00/evaluations'],
  ['evaluations/:id', 'GET', () => '/v1/evaluations/evl_%00'],
  ['sessions/:id', 'GET', () => '/v1/sessions/ses_%00'],
  ['keys/:id', 'GET', () => '/v1/keys/key_%00'],
];

// Query values holding %00.
const nulInQueries: Array<[string, (world: World) => string]> = [
  ['robots?cursor', () => '/v1/robots?cursor=%00'],
  ['datasets?robotId', () => '/v1/datasets?robotId=rbt_%00'],
  ['episodes?task', (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?task=pick%00`],
  ['episodes?episodes', (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?episodes=0-1%00`],
  ['episodes?uploadId', (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?uploadId=upl_%00`],
  ['policies?name', () => '/v1/policies?name=a%00'],
  ['usage?keyId', () => '/v1/usage?keyId=key_%00'],
  ['uploads?status', (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads?status=failed%00`],
];

const nulInUploadQueries: Array<[string, string]> = [
  ['fileName', 'fileName=data%00.ndjson'],
  ['featureMap', `featureMap=${encodeURIComponent(JSON.stringify({ [`observation.state${NUL}`]: 'observation.x' }))}`],
  ['dropFeatures', 'dropFeatures=observation.state%00'],
  ['options', `format=kura-ndjson&options=${encodeURIComponent(JSON.stringify({ [`topic${NUL}`]: 'x' }))}`],
];

function nulCases(): HostileCase[] {
  return [
    ...nulInBodies(),
    nulInStepKey,
    http({
      name: 'http/nul/body/act.observation-key',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/policies/${world.policies.aPrivate}/act`,
      options: (world) => asDeveloperA(world, { json: { observation: { [`observation.${NUL}`]: [0, 0] } } }),
    }),
    http({
      name: 'http/nul/body/complete.parts.etag',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/uploads/${world.uploads.bMultipart}/complete`,
      options: (world) => ({ key: world.keys.operatorB.key, json: { parts: [{ partNumber: 1, etag: `"a${NUL}"` }] } }),
    }),
    http({
      name: 'http/nul/body/keys.patch.name',
      expect: '400 VALIDATION_FAILED',
      method: 'PATCH',
      path: (world) => `/v1/keys/${world.keys.userA.id}`,
      options: { json: { name: `user${NUL}` } },
    }),
    http({
      name: 'http/surrogate/body/robots.name',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/robots',
      options: (world) => asOperatorA(world, { json: { ...robotBody, name: `arm${LONE_SURROGATE}` } }),
    }),
    http({
      name: 'http/surrogate/body/datasets.features-key',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/datasets',
      options: (world) =>
        asOperatorA(world, {
          json: { ...datasetBody(world), features: { [`observation.${LONE_SURROGATE}`]: { dtype: 'float32', shape: [2] } } },
        }),
    }),
    ...nulInPaths.map(([name, method, path]) =>
      http({
        name: `http/nul/path/${name}`,
        expect: '400 VALIDATION_FAILED',
        method,
        path,
        options: (world) => ({ key: world.keys.operatorA.key }),
      }),
    ),
    ...nulInQueries.map(([name, path]) =>
      http({
        name: `http/nul/query/${name}`,
        expect: '400 VALIDATION_FAILED',
        method: 'GET',
        path,
        options: (world) => ({ key: world.keys.operatorA.key }),
      }),
    ),
    ...nulInUploadQueries.map(([name, query]) =>
      http({
        name: `http/nul/query/uploads?${name}`,
        expect: '400 VALIDATION_FAILED',
        method: 'POST',
        path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads?${query}`,
        options: (world) => asOperatorA(world, { body: ndjson() }),
      }),
    ),
  ];
}

/** Bodies that are not JSON, or JSON of the wrong shape, on JSON endpoints. */
function malformedJsonCases(): HostileCase[] {
  const broken: Array<[string, (world: World) => string, string, (world: World) => string]> = [
    ['robots', () => '/v1/robots', '{"name":', (world) => world.keys.operatorA.key],
    ['datasets', () => '/v1/datasets', '{', (world) => world.keys.operatorA.key],
    ['keys', () => '/v1/keys', '{]', () => ''],
    ['slices', () => '/v1/slices', '{"sources":[}', (world) => world.keys.developerA.key],
    ['sessions', () => '/v1/sessions', 'nul', (world) => world.keys.userA.key],
    [
      'act',
      (world) => `/v1/policies/${world.policies.aPrivate}/act`,
      '{"observation":{"observation.state":[0,0]}',
      (world) => world.keys.developerA.key,
    ],
    ['grants', (world) => `/v1/datasets/${world.datasets.aPrivate}/grants`, '{"keyId":"x"', (world) => world.keys.operatorA.key],
    ['keys.patch', (world) => `/v1/keys/${world.keys.userA.id}`, '{,}', () => ''],
    ['complete', (world) => `/v1/uploads/${world.uploads.bMultipart}/complete`, '[', (world) => world.keys.operatorB.key],
    [
      'evaluations',
      (world) => `/v1/policies/${world.policies.aPrivate}/evaluations`,
      '{"datasetId":}',
      (world) => world.keys.developerA.key,
    ],
    [
      'NaN literal',
      () => '/v1/robots',
      '{"name":"r","robotType":"r","controlFrequencyHz":NaN,"actionSpace":"other"}',
      (world) => world.keys.operatorA.key,
    ],
    ['trailing garbage', () => '/v1/robots', `${JSON.stringify(robotBody)} trailing`, (world) => world.keys.operatorA.key],
    ['single quotes', () => '/v1/robots', "{'name':'r'}", (world) => world.keys.operatorA.key],
    ['top-level string', () => '/v1/robots', '"robot"', (world) => world.keys.operatorA.key],
  ];
  return [
    ...broken.map(([name, path, body, key]) =>
      http({
        name: `http/json/malformed/${name}`,
        expect: '400 INVALID_JSON',
        method: name === 'keys.patch' ? 'PATCH' : 'POST',
        path,
        options: (world) => {
          const chosen = key(world);
          return { key: chosen === '' ? undefined : chosen, body, contentType: 'application/json' };
        },
      }),
    ),
    http({
      name: 'http/json/shape/top-level-array',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/robots',
      options: (world) => asOperatorA(world, { json: [robotBody] }),
    }),
    http({
      name: 'http/json/shape/__proto__-field',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/robots',
      options: (world) =>
        asOperatorA(world, {
          body: `{"__proto__":{"role":"admin"},${JSON.stringify(robotBody).slice(1)}`,
          contentType: 'application/json',
        }),
    }),
    http({
      name: 'http/json/shape/constructor-field',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/datasets',
      options: (world) => asOperatorA(world, { json: { ...datasetBody(world), constructor: { prototype: { admin: true } } } }),
    }),
    http({
      name: 'http/json/shape/features-__proto__',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/datasets',
      options: (world) =>
        asOperatorA(world, {
          body: JSON.stringify(datasetBody(world)).replace(/}$/, ',"features":{"__proto__":{"dtype":"float32","shape":[2]}}}'),
          contentType: 'application/json',
        }),
    }),
    // 40,000 levels fit well within the 1 MiB JSON limit; such a body must cost the api little, not block it.
    http({
      name: 'http/json/deep-nesting-40k',
      expect: ['400 INVALID_JSON', '400 VALIDATION_FAILED'],
      maxMs: 5000,
      method: 'POST',
      path: '/v1/slices',
      options: (world) =>
        asDeveloperA(world, { body: `{"sources":${'['.repeat(40_000)}${']'.repeat(40_000)}}`, contentType: 'application/json' }),
    }),
    http({
      name: 'http/json/deep-nesting-observation',
      expect: '400 OBSERVATION_INVALID',
      maxMs: 5000,
      method: 'POST',
      path: (world) => `/v1/policies/${world.policies.aPrivate}/act`,
      options: (world) =>
        asDeveloperA(world, {
          body: `{"observation":{"observation.state":${'['.repeat(40_000)}0${']'.repeat(40_000)}}}`,
          contentType: 'application/json',
        }),
    }),
    http({
      name: 'http/json/infinite-number',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/robots',
      options: (world) =>
        asOperatorA(world, {
          body: JSON.stringify(robotBody).replace('"controlFrequencyHz":10', '"controlFrequencyHz":1e999'),
          contentType: 'application/json',
        }),
    }),
    http({
      name: 'http/json/infinite-observation',
      expect: '400 OBSERVATION_INVALID',
      method: 'POST',
      path: (world) => `/v1/policies/${world.policies.aPrivate}/act`,
      options: (world) => asDeveloperA(world, { body: '{"observation":{"observation.state":[1e999,0]}}', contentType: 'application/json' }),
    }),
    http({
      name: 'http/json/observation-half-a-million-numbers',
      expect: '400 OBSERVATION_INVALID',
      method: 'POST',
      path: (world) => `/v1/policies/${world.policies.aPrivate}/act`,
      options: (world) =>
        asDeveloperA(world, { body: `{"observation":{"observation.state":[${'0,'.repeat(499_999)}0]}}`, contentType: 'application/json' }),
    }),
    http({
      name: 'http/json/unknown-field',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/robots',
      options: (world) => asOperatorA(world, { json: { ...robotBody, admin: true } }),
    }),
    http({
      name: 'http/json/wrong-types',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/robots',
      options: (world) => asOperatorA(world, { json: { name: 1, robotType: [], controlFrequencyHz: '10', actionSpace: null } }),
    }),
  ];
}

function sizeCases(): HostileCase[] {
  return [
    http({
      name: 'http/size/json-body-over-1MiB',
      expect: '413 PAYLOAD_TOO_LARGE',
      method: 'POST',
      path: '/v1/robots',
      options: (world) => asOperatorA(world, { json: { ...robotBody, name: 'x'.repeat(2 * MiB) } }),
    }),
    // Declared, not sent: the URDF endpoint refuses by the declared size and closes without reading
    // the body, so a client still sending a real 10 MiB may see its connection reset before the 413.
    http({
      name: 'http/size/body-model-declaring-11MiB',
      expect: '413 PAYLOAD_TOO_LARGE',
      method: 'PUT',
      path: (world) => `/v1/robots/${world.robots.a}/body-model`,
      options: (world) => asOperatorA(world, { body: '<robot name="r">', contentType: 'application/xml', declaredLength: 11 * MiB }),
    }),
    http({
      name: 'http/size/multipart-declares-over-the-upload-limit',
      expect: '413 PAYLOAD_TOO_LARGE',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) => asOperatorA(world, { json: { multipart: true, bytes: 2 ** 50, sha256: 'a'.repeat(64) } }),
    }),
    {
      family: 'http',
      name: 'http/size/upload-body-over-the-upload-limit',
      // The server answers by the declared length and closes: a client still sending may see its
      // write refused (EPIPE) before it reads the 413. Either way nothing is stored.
      expect: ['413 PAYLOAD_TOO_LARGE', 'closed while sending (EPIPE)'],
      run: (context) =>
        upload(context, { body: Buffer.alloc(97 * MiB, 0x20) }).catch((error: unknown) => {
          if (/EPIPE|ECONNRESET/.test(String(error))) return 'closed while sending (EPIPE)';
          throw error;
        }),
    },
    http({
      name: 'http/size/policy-bundle-over-its-limit',
      expect: '413 BUNDLE_TOO_LARGE',
      method: 'POST',
      path: '/v1/policies',
      options: (world) => asDeveloperA(world, { body: Buffer.alloc(17 * MiB, 1) }),
    }),
    http({
      name: 'http/size/url-of-100KB',
      expect: '431',
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?episodes=${'0,'.repeat(50_000)}0`,
    }),
    http({
      name: 'http/size/authorization-header-of-20KB',
      expect: '431',
      method: 'GET',
      path: '/v1/robots',
      options: { key: null, headers: { Authorization: `Bearer kura_${'a'.repeat(20_000)}` } },
    }),
    http({
      name: 'http/size/episodes-ranges-over-100000-chars',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: '/v1/slices',
      options: (world) =>
        asDeveloperA(world, { json: { sources: [{ datasetId: world.datasets.aPrivate }], episodes: `${'1,'.repeat(50_001)}1` } }),
    }),
    // The largest ranges the schema takes (indices up to 2^31 − 1): nothing may walk them one by one.
    http({
      name: 'http/size/episode-range-to-2^31',
      expect: '200',
      maxMs: 5000,
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?episodes=0-2147483647`,
      options: (world) => asOperatorA(world, {}),
    }),
    http({
      name: 'http/size/slice-of-episode-range-to-2^31',
      expect: '201',
      maxMs: 5000,
      method: 'POST',
      path: '/v1/slices',
      options: (world) => asDeveloperA(world, { json: { sources: [{ datasetId: world.datasets.aPrivate }], episodes: '0-2147483647' } }),
    }),
    http({
      name: 'http/size/episode-range-past-2^31',
      expect: '400 VALIDATION_FAILED',
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?episodes=0-4294967295`,
      options: (world) => asOperatorA(world, {}),
    }),
    http({
      name: 'http/size/slice-sample-of-10-million',
      expect: '422 SAMPLE_TOO_LARGE',
      method: 'POST',
      path: '/v1/slices',
      options: (world) =>
        asDeveloperA(world, { json: { sources: [{ datasetId: world.datasets.aPrivate }], sample: { episodes: 10_000_000 } } }),
    }),
    http({
      name: 'http/size/slice-of-64-identical-sources',
      expect: '422 DUPLICATE_SOURCE',
      method: 'POST',
      path: '/v1/slices',
      options: (world) =>
        asDeveloperA(world, { json: { sources: Array.from({ length: 64 }, () => ({ datasetId: world.datasets.aPrivate })) } }),
    }),
    http({
      name: 'http/size/slice-of-1000-unknown-columns',
      expect: '422 UNKNOWN_COLUMN',
      method: 'POST',
      path: '/v1/slices',
      options: (world) =>
        asDeveloperA(world, {
          json: { sources: [{ datasetId: world.datasets.aPrivate }], columns: Array.from({ length: 1000 }, (_, index) => `c${index}`) },
        }),
    }),
  ];
}

function cursorCases(): HostileCase[] {
  const base64url = (text: string) => Buffer.from(text).toString('base64url');
  const invalid: Array<[string, string]> = [
    ['{}', '/v1/robots?cursor={}'],
    ['AAAA', '/v1/robots?cursor=AAAA'],
    ['raw JSON', `/v1/robots?cursor=${encodeURIComponent('{"id":1}')}`],
    ['base64 of {}', `/v1/robots?cursor=${base64url('{}')}`],
    ['base64 of an operator', `/v1/datasets?cursor=${base64url('{"id":{"gt":""}}')}`],
    ['path traversal', `/v1/policies?cursor=${encodeURIComponent('../../etc/passwd')}`],
    ['padded base64', `/v1/robots?cursor=${Buffer.from('rbt_0').toString('base64')}`],
    ['a version cursor of -1', `/v1/datasets/DATASET/versions?cursor=${base64url('-1')}`],
    ['a version cursor of 1e3', `/v1/datasets/DATASET/versions?cursor=${base64url('1e3')}`],
  ];
  return [
    ...invalid.map(([name, path]) =>
      http({
        name: `http/cursor/${name}`,
        expect: '400 INVALID_CURSOR',
        method: 'GET',
        path: (world) => path.replace('DATASET', world.datasets.aPrivate),
        options: (world) => asOperatorA(world, {}),
      }),
    ),
    http({
      name: 'http/cursor/another-lists-cursor',
      expect: '400 INVALID_CURSOR',
      method: 'GET',
      path: (world) => `/v1/datasets?cursor=${world.robotsCursor}`,
      options: (world) => asOperatorA(world, {}),
    }),
    http({
      name: 'http/cursor/501-characters',
      expect: '400 VALIDATION_FAILED',
      method: 'GET',
      path: `/v1/robots?cursor=${'A'.repeat(501)}`,
    }),
    http({ name: 'http/cursor/empty', expect: '400 VALIDATION_FAILED', method: 'GET', path: '/v1/robots?cursor=' }),
    http({ name: 'http/cursor/twice', expect: '400 VALIDATION_FAILED', method: 'GET', path: '/v1/robots?cursor=a&cursor=b' }),
    ...['0', '501', '-1', 'abc', '1.5', '9007199254740993'].map((limit) =>
      http({ name: `http/limit/${limit}`, expect: '400 VALIDATION_FAILED', method: 'GET', path: `/v1/robots?limit=${limit}` }),
    ),
  ];
}

function contentTypeCases(): HostileCase[] {
  return [
    http({
      name: 'http/content-type/json-endpoint-as-text',
      expect: '415 UNSUPPORTED_MEDIA_TYPE',
      method: 'POST',
      path: '/v1/robots',
      options: (world) => asOperatorA(world, { body: JSON.stringify(robotBody), contentType: 'text/plain' }),
    }),
    http({
      name: 'http/content-type/json-endpoint-as-form',
      expect: '415 UNSUPPORTED_MEDIA_TYPE',
      method: 'POST',
      path: '/v1/datasets',
      options: (world) => asOperatorA(world, { body: 'name=x&access=private', contentType: 'application/x-www-form-urlencoded' }),
    }),
    http({
      name: 'http/content-type/json-endpoint-as-octet-stream',
      expect: '415 UNSUPPORTED_MEDIA_TYPE',
      method: 'POST',
      path: '/v1/slices',
      options: (world) => asDeveloperA(world, { body: JSON.stringify({ sources: [{ datasetId: world.datasets.aPrivate }] }) }),
    }),
    http({
      name: 'http/content-type/json-with-unknown-charset',
      expect: '415 UNSUPPORTED_MEDIA_TYPE',
      method: 'POST',
      path: '/v1/robots',
      options: (world) => asOperatorA(world, { body: JSON.stringify(robotBody), contentType: 'application/json; charset=klingon' }),
    }),
    http({
      name: 'http/content-type/body-model-as-json',
      expect: '415 UNSUPPORTED_MEDIA_TYPE',
      method: 'PUT',
      path: (world) => `/v1/robots/${world.robots.a}/body-model`,
      options: (world) => asOperatorA(world, { json: { robot: 'r' } }),
    }),
    http({
      name: 'http/content-type/upload-part-as-json',
      expect: '415 UNSUPPORTED_MEDIA_TYPE',
      method: 'PUT',
      path: (world) => `/v1/uploads/${world.uploads.bMultipart}/parts/1`,
      options: (world) => ({ key: world.keys.operatorB.key, json: { part: 1 } }),
    }),
    http({
      name: 'http/content-type/upload-as-json-not-multipart',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) => asOperatorA(world, { json: { episode: 0, step: 0, action: [1] } }),
    }),
    http({
      name: 'http/content-type/upload-as-broken-json',
      expect: '400 INVALID_JSON',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) => asOperatorA(world, { body: '{"episode":0,', contentType: 'application/json' }),
    }),
    http({
      name: 'http/content-type/policy-as-json',
      expect: '415 UNSUPPORTED_MEDIA_TYPE',
      method: 'POST',
      path: '/v1/policies',
      options: (world) => asDeveloperA(world, { json: { name: 'p' } }),
    }),
  ];
}

function rangeCases(): HostileCase[] {
  const ranges: Array<[string, string, string]> = [
    ['two ranges', 'bytes=0-0,5-9', '400 INVALID_RANGE'],
    ['200 ranges', `bytes=${Array.from({ length: 200 }, (_, index) => `${index * 2}-${index * 2}`).join(',')}`, '400 INVALID_RANGE'],
    ['start past the end', 'bytes=999999999999-', '416 RANGE_NOT_SATISFIABLE'],
    ['end before start', 'bytes=5-1', '400 INVALID_RANGE'],
    ['other unit', 'items=0-5', '400 INVALID_RANGE'],
    ['not numbers', 'bytes=abc-def', '400 INVALID_RANGE'],
    ['empty', 'bytes=', '400 INVALID_RANGE'],
    ['negative start', 'bytes=-5-10', '400 INVALID_RANGE'],
    ['end past 2^64', 'bytes=0-99999999999999999999999', '206'],
    ['suffix longer than the file', 'bytes=-99999999999999', '206'],
    ['zero-length suffix', 'bytes=-0', '416 RANGE_NOT_SATISFIABLE'],
  ];
  return [
    ...ranges.map(([name, range, expected]) =>
      http({
        name: `http/range/${name}`,
        expect: expected,
        method: 'GET',
        path: (world) => `/v1/slices/${world.slices.aPrivate}/data?format=arrow-file`,
        options: { headers: { Range: range } },
      }),
    ),
    http({
      name: 'http/range/on-a-stream-format',
      expect: '200',
      method: 'GET',
      path: (world) => `/v1/slices/${world.slices.aPrivate}/data?format=ndjson`,
      options: { headers: { Range: 'bytes=0-0,1-1' } },
    }),
    http({
      name: 'http/range/garbage-if-range',
      expect: '200',
      method: 'GET',
      path: (world) => `/v1/slices/${world.slices.aPrivate}/data?format=parquet`,
      options: { headers: { Range: 'bytes=0-9', 'If-Range': '"garbage' } },
    }),
  ];
}

const sha256 = (body: string | Uint8Array) => createHash('sha256').update(body).digest('hex');

/** Two uploads with one Idempotency-Key: what the second answers, and whether it is the first upload. */
async function reuse(context: CaseContext, second: { body: string; sameDataset: boolean; otherOwner?: boolean }): Promise<string> {
  const { client, world } = context;
  const key = `idem-${Math.random().toString(36).slice(2)}`;
  const firstDataset = await world.newDataset(client);
  const first = await client.post(`/v1/datasets/${firstDataset}/uploads`, {
    key: world.keys.operatorA.key,
    body: ndjson(),
    headers: { 'Idempotency-Key': key },
  });
  if (first.status !== 202) return `first upload: ${statusOf(first)}`;
  const owner = second.otherOwner ? world.keys.operatorB : world.keys.operatorA;
  const secondDataset = second.sameDataset ? firstDataset : await world.newDataset(client, { key: owner });
  const reply = await client.post(`/v1/datasets/${secondDataset}/uploads`, {
    key: owner.key,
    body: second.body,
    headers: { 'Idempotency-Key': key },
  });
  if (reply.status !== 202) return statusOf(reply);
  return `202 ${reply.body?.id === first.body?.id ? 'the first upload' : 'a new upload'}`;
}

function uploadRequestCases(): HostileCase[] {
  return [
    {
      family: 'http',
      name: 'http/idempotency/same-key-same-body',
      expect: '202 the first upload',
      run: (context) => reuse(context, { body: ndjson(), sameDataset: true }),
    },
    {
      family: 'http',
      name: 'http/idempotency/same-key-other-body',
      expect: '409 IDEMPOTENCY_KEY_REUSED',
      run: (context) => reuse(context, { body: ndjson({ episodes: 2 }), sameDataset: true }),
    },
    {
      family: 'http',
      name: 'http/idempotency/same-key-other-dataset',
      expect: '409 IDEMPOTENCY_KEY_REUSED',
      run: (context) => reuse(context, { body: ndjson(), sameDataset: false }),
    },
    {
      family: 'http',
      name: 'http/idempotency/same-key-other-owner',
      expect: '202 a new upload',
      run: (context) => reuse(context, { body: ndjson(), sameDataset: false, otherOwner: true }),
    },
    {
      family: 'http',
      name: 'http/idempotency/multipart-same-key-other-sha256',
      expect: '409 IDEMPOTENCY_KEY_REUSED',
      async run({ client, world }) {
        const key = `idem-${Math.random().toString(36).slice(2)}`;
        const path = `/v1/datasets/${world.datasets.aPrivate}/uploads`;
        const start = (sha: string) =>
          client.post(path, {
            key: world.keys.operatorA.key,
            json: { multipart: true, bytes: 10, sha256: sha },
            headers: { 'Idempotency-Key': key },
          });
        const first = await start('a'.repeat(64));
        if (first.status !== 201) return `first: ${statusOf(first)}`;
        return statusOf(await start('b'.repeat(64)));
      },
    },
    http({
      name: 'http/idempotency/key-of-256-characters',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) => asOperatorA(world, { body: ndjson(), headers: { 'Idempotency-Key': 'k'.repeat(256) } }),
    }),
    http({
      name: 'http/upload/sha256-mismatch',
      expect: '400 UPLOAD_CHECKSUM_MISMATCH',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) => asOperatorA(world, { body: ndjson(), headers: { 'Content-SHA256': sha256('something else') } }),
    }),
    http({
      name: 'http/upload/sha256-not-hex',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) => asOperatorA(world, { body: ndjson(), headers: { 'Content-SHA256': 'z'.repeat(64) } }),
    }),
    http({
      name: 'http/upload/empty-body',
      expect: '400 UPLOAD_EMPTY',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) => asOperatorA(world, { body: '' }),
    }),
    http({
      name: 'http/upload/unknown-format-flag',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads?format=pickle`,
      options: (world) => asOperatorA(world, { body: ndjson() }),
    }),
    http({
      name: 'http/upload/file-name-of-256-characters',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads?fileName=${'f'.repeat(256)}`,
      options: (world) => asOperatorA(world, { body: ndjson() }),
    }),
    http({
      name: 'http/upload/feature-map-not-json',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads?featureMap=%7Bnot-json`,
      options: (world) => asOperatorA(world, { body: ndjson() }),
    }),
    // Upload options: a JSON object, with a format, whose options schema decides (every format takes none yet).
    ...(
      [
        ['options-not-json', 'format=kura-ndjson&options=%7Bnot-json'],
        ['options-an-array', `format=kura-ndjson&options=${encodeURIComponent('[{}]')}`],
        ['options-without-format', `options=${encodeURIComponent('{}')}`],
        ['options-named-__proto__', `format=kura-ndjson&options=${encodeURIComponent('{"__proto__":{"topics":[]}}')}`],
        ['options-unknown-to-the-format', `format=lerobot&options=${encodeURIComponent('{"topics":["/joint_states"]}')}`],
      ] as const
    ).map(([name, query]) =>
      http({
        name: `http/upload/${name}`,
        expect: '400 VALIDATION_FAILED',
        method: 'POST',
        path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads?${query}`,
        options: (world) => asOperatorA(world, { body: ndjson() }),
      }),
    ),
    // Options are walked for unstorable text before the format's schema sees them: deep ones must cost little.
    http({
      name: 'http/upload/multipart-options-nested-40k',
      expect: ['400 INVALID_JSON', '400 VALIDATION_FAILED'],
      maxMs: 5000,
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) =>
        asOperatorA(world, {
          body: `{"multipart":true,"bytes":10,"sha256":"${'a'.repeat(64)}","format":"kura-ndjson","options":${'{"a":'.repeat(40_000)}{}${'}'.repeat(40_000)}}`,
          contentType: 'application/json',
        }),
    }),
    http({
      name: 'http/upload/drop-features-traversal',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads?dropFeatures=${encodeURIComponent('../../etc/passwd')}`,
      options: (world) => asOperatorA(world, { body: ndjson() }),
    }),
    {
      family: 'http',
      name: 'http/upload/file-name-traversal',
      // The name is only a label: the upload is read under a safe name and published.
      expect: 'published',
      run: (context) => upload(context, { body: ndjson(), query: `fileName=${encodeURIComponent('../../../../tmp/evil.ndjson')}` }),
    },
  ];
}

function multipartCases(): HostileCase[] {
  const part = (number: string) =>
    http({
      name: `http/multipart/part-number-${number}`,
      expect: '400 UPLOAD_PART_INVALID',
      method: 'PUT',
      path: (world) => `/v1/uploads/${world.uploads.bMultipart}/parts/${number}`,
      options: (world) => ({ key: world.keys.operatorB.key, body: '0123456789' }),
    });
  return [
    ...['0', '-1', 'abc', '99999', '1.5', '1e3'].map(part),
    http({
      name: 'http/multipart/part-of-the-wrong-size',
      expect: '400 UPLOAD_PART_SIZE',
      method: 'PUT',
      path: (world) => `/v1/uploads/${world.uploads.bMultipart}/parts/1`,
      options: (world) => ({ key: world.keys.operatorB.key, body: '0123' }),
    }),
    http({
      name: 'http/multipart/complete-listing-a-part-twice',
      expect: '400 UPLOAD_PARTS_INCOMPLETE',
      method: 'POST',
      path: (world) => `/v1/uploads/${world.uploads.bMultipart}/complete`,
      options: (world) => ({
        key: world.keys.operatorB.key,
        json: {
          parts: [
            { partNumber: 1, etag: '"a"' },
            { partNumber: 1, etag: '"a"' },
          ],
        },
      }),
    }),
    http({
      name: 'http/multipart/complete-with-10001-parts',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/uploads/${world.uploads.bMultipart}/complete`,
      options: (world) => ({
        key: world.keys.operatorB.key,
        json: { parts: Array.from({ length: 10_001 }, (_, index) => ({ partNumber: index + 1, etag: '"a"' })) },
      }),
    }),
    {
      family: 'http',
      name: 'http/multipart/complete-with-a-forged-etag',
      expect: '400 UPLOAD_PARTS_INVALID',
      async run({ client, world }) {
        const body = '0123456789';
        const start = await client.post(`/v1/datasets/${world.datasets.aPrivate}/uploads`, {
          key: world.keys.operatorA.key,
          json: { multipart: true, bytes: body.length, sha256: sha256(body) },
        });
        if (start.status !== 201) return `start: ${statusOf(start)}`;
        const id = String((start.body?.upload as { id: string }).id);
        const put = await client.request('PUT', `/v1/uploads/${id}/parts/1`, { key: world.keys.operatorA.key, body });
        if (put.status !== 200) return `part: ${statusOf(put)}`;
        return statusOf(
          await client.post(`/v1/uploads/${id}/complete`, {
            key: world.keys.operatorA.key,
            json: { parts: [{ partNumber: 1, etag: '"forged"' }] },
          }),
        );
      },
    },
    {
      family: 'http',
      name: 'http/multipart/complete-a-plain-upload',
      expect: '409 UPLOAD_NOT_RESUMABLE',
      async run(context) {
        const { upload: done } = await uploadAndWait(context, { body: ndjson() });
        return statusOf(
          await context.client.post(`/v1/uploads/${String(done?.body?.id)}/complete`, {
            key: context.world.keys.operatorA.key,
            json: { parts: [{ partNumber: 1, etag: '"a"' }] },
          }),
        );
      },
    },
    http({
      name: 'http/multipart/sha256-not-hex',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) => asOperatorA(world, { json: { multipart: true, bytes: 10, sha256: 'g'.repeat(64) } }),
    }),
    http({
      name: 'http/multipart/negative-size',
      expect: '400 VALIDATION_FAILED',
      method: 'POST',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/uploads`,
      options: (world) => asOperatorA(world, { json: { multipart: true, bytes: -1, sha256: 'a'.repeat(64) } }),
    }),
  ];
}

function otherCases(): HostileCase[] {
  return [
    http({ name: 'http/route/unknown', expect: '404 ROUTE_NOT_FOUND', method: 'GET', path: '/v1/../../etc/passwd' }),
    http({ name: 'http/route/encoded-traversal', expect: '404 ROUTE_NOT_FOUND', method: 'GET', path: '/v1/%2e%2e/%2e%2e/etc/passwd' }),
    http({
      name: 'http/route/method-not-allowed',
      expect: ['405 METHOD_NOT_ALLOWED', '404 ROUTE_NOT_FOUND'],
      method: 'DELETE',
      path: '/v1/robots',
    }),
    http({
      name: 'http/episodes/min-over-max',
      expect: '400 VALIDATION_FAILED',
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?minLength=5&maxLength=1`,
    }),
    http({
      name: 'http/episodes/bad-ranges',
      expect: '400 VALIDATION_FAILED',
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?episodes=9-1`,
    }),
    http({
      name: 'http/episodes/version-zero',
      expect: '400 VALIDATION_FAILED',
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?version=0`,
    }),
    http({
      name: 'http/episodes/version-not-there',
      expect: '404 VERSION_NOT_FOUND',
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes?version=999999`,
    }),
    http({
      name: 'http/video/negative-episode',
      expect: '400 VALIDATION_FAILED',
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes/-1/videos/observation.images.front`,
    }),
    http({
      name: 'http/video/episode-1e309',
      expect: '400 VALIDATION_FAILED',
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes/1e309/videos/observation.images.front`,
    }),
    http({
      name: 'http/video/feature-traversal',
      expect: '404 VIDEO_FEATURE_NOT_FOUND',
      method: 'GET',
      path: (world) => `/v1/datasets/${world.datasets.aPrivate}/episodes/0/videos/..%2F..%2F..%2Fetc%2Fpasswd`,
    }),
    http({
      name: 'http/act/image-that-is-not-an-image',
      expect: '400 OBSERVATION_INVALID',
      method: 'POST',
      path: (world) => `/v1/policies/${world.policies.aPublicWithImage}/act`,
      options: (world) =>
        asDeveloperA(world, {
          json: { observation: { 'observation.state': [0, 0], 'observation.image': Buffer.from('not a jpeg').toString('base64') } },
        }),
    }),
    http({
      name: 'http/act/missing-feature',
      expect: '400 OBSERVATION_INVALID',
      method: 'POST',
      path: (world) => `/v1/policies/${world.policies.aPrivate}/act`,
      options: (world) => asDeveloperA(world, { json: { observation: {} } }),
    }),
    http({
      name: 'http/act/strings-for-numbers',
      expect: '400 OBSERVATION_INVALID',
      method: 'POST',
      path: (world) => `/v1/policies/${world.policies.aPrivate}/act`,
      options: (world) => asDeveloperA(world, { json: { observation: { 'observation.state': ['0', '1'] } } }),
    }),
    http({
      name: 'http/usage/not-a-date',
      expect: '400 VALIDATION_FAILED',
      method: 'GET',
      path: '/v1/usage?from=yesterday',
    }),
    http({
      name: 'http/keys/negative-quota',
      expect: '400 VALIDATION_FAILED',
      method: 'PATCH',
      path: (world) => `/v1/keys/${world.keys.userA.id}`,
      options: { json: { quota: { actPerMinute: -1 } } },
    }),
    http({
      name: 'http/body-model/billion-laughs',
      expect: '422 BODY_MODEL_INVALID',
      method: 'PUT',
      path: (world) => `/v1/robots/${world.robots.a}/body-model`,
      options: (world) =>
        asOperatorA(world, {
          contentType: 'application/xml',
          body: `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">${Array.from(
            { length: 9 },
            (_, index) => `<!ENTITY ${String.fromCharCode(98 + index)} "${`&${String.fromCharCode(97 + index)};`.repeat(10)}">`,
          ).join('')}]><robot name="&j;"/>`,
        }),
    }),
    {
      family: 'http',
      name: 'http/body-model/external-entity-to-the-canary',
      expect: '422 BODY_MODEL_INVALID',
      async run({ client, world, canary }) {
        const body = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://${canary.textFiles[0]}">]><robot name="&x;"/>`;
        return statusOf(
          await client.request('PUT', `/v1/robots/${world.robots.a}/body-model`, {
            key: world.keys.operatorA.key,
            body,
            contentType: 'application/xml',
          }),
        );
      },
    },
  ];
}

export function httpCases(): HostileCase[] {
  return [
    ...nulCases(),
    ...malformedJsonCases(),
    ...sizeCases(),
    ...cursorCases(),
    ...contentTypeCases(),
    ...rangeCases(),
    ...uploadRequestCases(),
    ...multipartCases(),
    ...otherCases(),
  ];
}
