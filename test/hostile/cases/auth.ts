// Auth: no key, a malformed header, an unknown or revoked key, the wrong role, and A's keys reaching
// for B's private dataset, policy, session, slice, upload and evaluation — every endpoint family. No
// answer may hold B's secret (the names and tasks of B's private things): that would be a cross-key read.
import { randomBytes } from 'node:crypto';
import type { HostileCase } from '../corpus.js';
import type { RequestOptions } from '../kura.js';
import { statusOf } from '../kura.js';
import type { World } from '../world.js';
import { ndjson } from '../builders.js';
import { requestCase } from './requests.js';
import { SessionSocket } from './sockets.js';

type Caller = 'anonymous' | 'revoked' | 'unknown' | 'operatorA' | 'developerA' | 'userA' | 'developerB' | 'operatorB';

const unknownKey = `kura_${randomBytes(32).toString('base64url').slice(0, 43)}`;

function keyOf(world: World, caller: Caller): string | null {
  if (caller === 'anonymous') return null;
  if (caller === 'revoked') return world.keys.revoked.key;
  if (caller === 'unknown') return unknownKey;
  return world.keys[caller].key;
}

/** One probe: `caller` sends the request; the answer must be `expect` and hold none of B's secret. */
function probe(
  name: string,
  caller: Caller,
  expect: string | readonly string[],
  method: string,
  path: (world: World) => string,
  options: (world: World) => RequestOptions = () => ({}),
): HostileCase {
  return requestCase({
    family: 'auth',
    name: `auth/${name}/${caller}`,
    expect,
    method,
    path,
    options: (world) => ({ ...options(world), key: keyOf(world, caller) }),
    mustNotContain: (world) => [world.secretOfB],
  });
}

const NOT_LOGGED_IN = '401 AUTH_REQUIRED';
const BAD_KEY = '401 INVALID_API_KEY';
const FORBIDDEN = '403 FORBIDDEN';

function headerCases(): HostileCase[] {
  const header = (name: string, authorization: string, expected: string) =>
    requestCase({
      family: 'auth',
      name: `auth/header/${name}`,
      expect: expected,
      method: 'GET',
      path: '/v1/keys/me',
      options: { key: null, headers: { Authorization: authorization } },
    });
  return [
    header('basic-scheme', 'Basic YWRtaW46YWRtaW4=', '401 INVALID_AUTHORIZATION_HEADER'),
    header('bearer-without-key', 'Bearer', '401 INVALID_AUTHORIZATION_HEADER'),
    header('bearer-two-words', 'Bearer kura_a kura_b', '401 INVALID_AUTHORIZATION_HEADER'),
    header('empty', '', '401 INVALID_AUTHORIZATION_HEADER'),
    header('unknown-key', `Bearer ${unknownKey}`, BAD_KEY),
    header('not-a-kura-key', 'Bearer hunter2', BAD_KEY),
    header('sql-in-key', "Bearer kura_'OR'1'='1'--", BAD_KEY),
    {
      family: 'auth',
      name: 'auth/header/revoked-key-with-admin-prefix',
      expect: BAD_KEY,
      async run({ client, world }) {
        // The revoked key's first 12 characters (its visible prefix) followed by anything.
        const forged = `${world.keys.revoked.key.slice(0, 12)}${'x'.repeat(world.keys.revoked.key.length - 12)}`;
        return statusOf(await client.get('/v1/keys/me', { key: forged }));
      },
    },
  ];
}

function keysCases(): HostileCase[] {
  return [
    probe(
      'keys.create',
      'anonymous',
      NOT_LOGGED_IN,
      'POST',
      () => '/v1/keys',
      () => ({ json: { name: 'x', role: 'admin' } }),
    ),
    probe(
      'keys.create',
      'operatorA',
      FORBIDDEN,
      'POST',
      () => '/v1/keys',
      () => ({ json: { name: 'x', role: 'admin' } }),
    ),
    probe(
      'keys.create',
      'revoked',
      BAD_KEY,
      'POST',
      () => '/v1/keys',
      () => ({ json: { name: 'x', role: 'admin' } }),
    ),
    probe('keys.list', 'developerA', FORBIDDEN, 'GET', () => '/v1/keys'),
    probe('keys.get', 'userA', FORBIDDEN, 'GET', (world) => `/v1/keys/${world.keys.userB.id}`),
    probe(
      'keys.patch',
      'userA',
      FORBIDDEN,
      'PATCH',
      (world) => `/v1/keys/${world.keys.userB.id}`,
      () => ({ json: { name: 'mine now' } }),
    ),
    probe('keys.revoke', 'operatorA', FORBIDDEN, 'DELETE', (world) => `/v1/keys/${world.keys.operatorB.id}`),
    probe('keys.me', 'anonymous', NOT_LOGGED_IN, 'GET', () => '/v1/keys/me'),
    probe('keys.me', 'revoked', BAD_KEY, 'GET', () => '/v1/keys/me'),
  ];
}

function robotCases(): HostileCase[] {
  const robot = () => ({ json: { name: 'r', robotType: 'r', controlFrequencyHz: 10, actionSpace: 'other' } });
  const urdf = () => ({ body: '<robot name="r"><link name="base"/></robot>', contentType: 'application/xml' });
  return [
    probe('robots.create', 'anonymous', NOT_LOGGED_IN, 'POST', () => '/v1/robots', robot),
    probe('robots.create', 'userA', FORBIDDEN, 'POST', () => '/v1/robots', robot),
    probe('robots.create', 'developerA', FORBIDDEN, 'POST', () => '/v1/robots', robot),
    probe('robots.create', 'revoked', BAD_KEY, 'POST', () => '/v1/robots', robot),
    probe('robots.body-model-of-another', 'operatorA', FORBIDDEN, 'PUT', (world) => `/v1/robots/${world.robots.b}/body-model`, urdf),
    probe('robots.body-model-of-another', 'anonymous', NOT_LOGGED_IN, 'PUT', (world) => `/v1/robots/${world.robots.b}/body-model`, urdf),
  ];
}

function datasetCases(): HostileCase[] {
  const bPrivate =
    (suffix = '') =>
    (world: World) =>
      `/v1/datasets/${world.datasets.bPrivate}${suffix}`;
  const notFound = '404 DATASET_NOT_FOUND';
  return [
    ...(['anonymous', 'operatorA', 'developerA', 'userA', 'unknown'] as const).map((caller) =>
      probe('datasets.get-private-of-b', caller, caller === 'unknown' ? BAD_KEY : notFound, 'GET', bPrivate()),
    ),
    probe('datasets.episodes-private-of-b', 'developerA', notFound, 'GET', bPrivate('/episodes')),
    probe('datasets.episodes-private-of-b', 'anonymous', notFound, 'GET', bPrivate('/episodes')),
    probe('datasets.stats-private-of-b', 'developerA', notFound, 'GET', bPrivate('/stats')),
    probe('datasets.versions-private-of-b', 'operatorA', notFound, 'GET', bPrivate('/versions')),
    probe('datasets.leaderboard-private-of-b', 'developerA', notFound, 'GET', bPrivate('/leaderboard')),
    probe('datasets.uploads-private-of-b', 'operatorA', notFound, 'GET', bPrivate('/uploads')),
    probe('datasets.video-private-of-b', 'developerA', notFound, 'GET', bPrivate('/episodes/0/videos/observation.images.front')),
    probe('datasets.grant-itself-private-of-b', 'operatorA', notFound, 'POST', bPrivate('/grants'), (world) => ({
      json: { keyId: world.keys.operatorA.id },
    })),
    probe(
      'datasets.grant-itself-public-of-b',
      'operatorA',
      FORBIDDEN,
      'POST',
      (world) => `/v1/datasets/${world.datasets.bPublic}/grants`,
      (world) => ({
        json: { keyId: world.keys.operatorA.id },
      }),
    ),
    probe('datasets.grants-list-public-of-b', 'operatorA', FORBIDDEN, 'GET', (world) => `/v1/datasets/${world.datasets.bPublic}/grants`),
    probe(
      'datasets.revoke-grant-private-of-b',
      'operatorA',
      notFound,
      'DELETE',
      (world) => `/v1/datasets/${world.datasets.bPrivate}/grants/${world.keys.developerB.id}`,
    ),
    probe('datasets.list', 'operatorA', '200', 'GET', () => '/v1/datasets?limit=500'),
    probe('datasets.list', 'anonymous', '200', 'GET', () => '/v1/datasets?limit=500'),
    probe('datasets.list-of-robot-b', 'developerA', '200', 'GET', (world) => `/v1/datasets?robotId=${world.robots.b}`),
    probe('datasets.list', 'revoked', BAD_KEY, 'GET', () => '/v1/datasets'),
    probe(
      'datasets.create',
      'developerA',
      FORBIDDEN,
      'POST',
      () => '/v1/datasets',
      (world) => ({
        json: { name: 'mine', robotId: world.robots.a, access: 'private' },
      }),
    ),
    probe(
      'datasets.create-on-robot-of-b',
      'anonymous',
      NOT_LOGGED_IN,
      'POST',
      () => '/v1/datasets',
      (world) => ({
        json: { name: 'mine', robotId: world.robots.b, access: 'private' },
      }),
    ),
    // Sample datasets: the public part for everyone, its statistics only.
    {
      family: 'auth',
      name: 'auth/datasets.stats-sample-of-b/anonymous',
      expect: '200 scope sample',
      async run({ client, world }) {
        const reply = await client.get(`/v1/datasets/${world.datasets.bSample}/stats`, { key: null });
        return `${statusOf(reply)}${reply.status === 200 ? ` scope ${String(reply.body?.scope)}` : ''}`;
      },
    },
  ];
}

function uploadCases(): HostileCase[] {
  const uploadTo = (dataset: (world: World) => string) => (world: World) => `/v1/datasets/${dataset(world)}/uploads`;
  const body = () => ({ body: ndjson() });
  return [
    probe(
      'uploads.create-private-of-b',
      'operatorA',
      '404 DATASET_NOT_FOUND',
      'POST',
      uploadTo((world) => world.datasets.bPrivate),
      body,
    ),
    probe(
      'uploads.create-public-of-b',
      'operatorA',
      FORBIDDEN,
      'POST',
      uploadTo((world) => world.datasets.bPublic),
      body,
    ),
    probe(
      'uploads.create-own',
      'developerA',
      FORBIDDEN,
      'POST',
      uploadTo((world) => world.datasets.aPrivate),
      body,
    ),
    probe(
      'uploads.create-public-of-b',
      'anonymous',
      NOT_LOGGED_IN,
      'POST',
      uploadTo((world) => world.datasets.bPublic),
      body,
    ),
    probe(
      'uploads.create-own',
      'revoked',
      BAD_KEY,
      'POST',
      uploadTo((world) => world.datasets.aPrivate),
      body,
    ),
    probe('uploads.get-of-b', 'operatorA', '404 UPLOAD_NOT_FOUND', 'GET', (world) => `/v1/uploads/${world.uploads.bPrivate}`),
    probe('uploads.get-of-b', 'developerB', FORBIDDEN, 'GET', (world) => `/v1/uploads/${world.uploads.bPrivate}`),
    probe(
      'uploads.get-of-b',
      'anonymous',
      [NOT_LOGGED_IN, '404 UPLOAD_NOT_FOUND'],
      'GET',
      (world) => `/v1/uploads/${world.uploads.bPrivate}`,
    ),
    probe(
      'uploads.part-of-b',
      'operatorA',
      '404 UPLOAD_NOT_FOUND',
      'PUT',
      (world) => `/v1/uploads/${world.uploads.bMultipart}/parts/1`,
      () => ({
        body: '0123456789',
      }),
    ),
    probe(
      'uploads.complete-of-b',
      'operatorA',
      '404 UPLOAD_NOT_FOUND',
      'POST',
      (world) => `/v1/uploads/${world.uploads.bMultipart}/complete`,
      () => ({
        json: { parts: [{ partNumber: 1, etag: '"a"' }] },
      }),
    ),
  ];
}

function sliceCases(): HostileCase[] {
  const sliceOf = (datasets: (world: World) => string[]) => (world: World) => ({
    json: { sources: datasets(world).map((datasetId) => ({ datasetId })) },
  });
  const unreadable = '422 DATASET_NOT_FOUND';
  const hidden = '404 SLICE_NOT_FOUND';
  return [
    probe(
      'slices.create-private-of-b',
      'developerA',
      unreadable,
      'POST',
      () => '/v1/slices',
      sliceOf((world) => [world.datasets.bPrivate]),
    ),
    probe(
      'slices.create-private-of-b',
      'anonymous',
      unreadable,
      'POST',
      () => '/v1/slices',
      sliceOf((world) => [world.datasets.bPrivate]),
    ),
    probe(
      'slices.create-with-private-of-b',
      'developerA',
      unreadable,
      'POST',
      () => '/v1/slices',
      sliceOf((world) => [world.datasets.aPrivate, world.datasets.bPrivate]),
    ),
    probe(
      'slices.create-private-of-b',
      'revoked',
      BAD_KEY,
      'POST',
      () => '/v1/slices',
      sliceOf((world) => [world.datasets.bPrivate]),
    ),
    probe('slices.get-of-b', 'developerA', hidden, 'GET', (world) => `/v1/slices/${world.slices.bPrivate}`),
    probe('slices.get-of-b', 'anonymous', [hidden, NOT_LOGGED_IN], 'GET', (world) => `/v1/slices/${world.slices.bPrivate}`),
    probe('slices.data-of-b', 'developerA', hidden, 'GET', (world) => `/v1/slices/${world.slices.bPrivate}/data?format=ndjson`),
    probe('slices.data-of-b', 'userA', hidden, 'GET', (world) => `/v1/slices/${world.slices.bPrivate}/data?format=parquet`),
    probe('slices.data-of-b', 'anonymous', [hidden, NOT_LOGGED_IN], 'GET', (world) => `/v1/slices/${world.slices.bPrivate}/data`),
    probe('slices.stats-of-b', 'developerA', hidden, 'GET', (world) => `/v1/slices/${world.slices.bPrivate}/stats`),
    probe('slices.data-of-a', 'revoked', BAD_KEY, 'GET', (world) => `/v1/slices/${world.slices.aPrivate}/data`),
  ];
}

function policyCases(): HostileCase[] {
  const hidden = '404 POLICY_NOT_FOUND';
  const act = () => ({ json: { observation: { 'observation.state': [0, 0] } } });
  const bundle = () => ({ body: Buffer.from('not a bundle') });
  return [
    probe('policies.get-private-of-b', 'developerA', hidden, 'GET', (world) => `/v1/policies/${world.policies.bPrivate}`),
    probe('policies.get-private-of-b', 'anonymous', hidden, 'GET', (world) => `/v1/policies/${world.policies.bPrivate}`),
    probe('policies.act-private-of-b', 'developerA', hidden, 'POST', (world) => `/v1/policies/${world.policies.bPrivate}/act`, act),
    probe('policies.act-private-of-b', 'userA', hidden, 'POST', (world) => `/v1/policies/${world.policies.bPrivate}/act`, act),
    probe('policies.act-private-of-b', 'anonymous', NOT_LOGGED_IN, 'POST', (world) => `/v1/policies/${world.policies.bPrivate}/act`, act),
    probe('policies.act-public', 'operatorA', FORBIDDEN, 'POST', (world) => `/v1/policies/${world.policies.aPrivate}/act`, act),
    probe('policies.act-own', 'revoked', BAD_KEY, 'POST', (world) => `/v1/policies/${world.policies.aPrivate}/act`, act),
    probe(
      'policies.evaluations-private-of-b',
      'developerA',
      hidden,
      'GET',
      (world) => `/v1/policies/${world.policies.bPrivate}/evaluations`,
    ),
    probe(
      'policies.evaluate-private-of-b',
      'developerA',
      hidden,
      'POST',
      (world) => `/v1/policies/${world.policies.bPrivate}/evaluations`,
      (world) => ({
        json: { datasetId: world.datasets.aPrivate },
      }),
    ),
    probe(
      'policies.evaluate-own-on-private-of-b',
      'developerA',
      '422 DATASET_NOT_FOUND',
      'POST',
      (world) => `/v1/policies/${world.policies.aPrivate}/evaluations`,
      (world) => ({
        json: { datasetId: world.datasets.bPrivate },
      }),
    ),
    probe('policies.list', 'developerA', '200', 'GET', () => '/v1/policies?limit=500'),
    probe('policies.list', 'anonymous', '200', 'GET', () => '/v1/policies?limit=500'),
    probe('policies.list-by-name-of-b', 'developerA', '200', 'GET', (world) => `/v1/policies?name=b-${world.secretOfB}`),
    probe('policies.upload', 'userA', FORBIDDEN, 'POST', () => '/v1/policies', bundle),
    probe('policies.upload', 'operatorA', FORBIDDEN, 'POST', () => '/v1/policies', bundle),
    probe('policies.upload', 'anonymous', NOT_LOGGED_IN, 'POST', () => '/v1/policies', bundle),
    probe(
      'evaluations.get-of-b',
      'developerA',
      '404 EVALUATION_NOT_FOUND',
      'GET',
      (world) => `/v1/evaluations/${world.evaluations.bPrivate}`,
    ),
    probe(
      'evaluations.get-of-b',
      'anonymous',
      '404 EVALUATION_NOT_FOUND',
      'GET',
      (world) => `/v1/evaluations/${world.evaluations.bPrivate}`,
    ),
  ];
}

function sessionCases(): HostileCase[] {
  const hidden = '404 SESSION_NOT_FOUND';
  const step = () => ({ json: { observation: { 'observation.state': [0, 0], 'observation.image': '' } } });
  const socket = (session: 'bOpen' | 'bEnded', caller: Caller, expected: string): HostileCase => ({
    family: 'auth',
    name: `auth/sessions.socket-${session === 'bOpen' ? 'open' : 'ended'}-of-b/${caller}`,
    expect: expected,
    async run({ client, world }) {
      const key = keyOf(world, caller);
      const opened = await SessionSocket.open(client, world.sessions[session], key === null ? undefined : `Bearer ${key}`);
      if (typeof opened === 'string') return opened;
      opened.close();
      return 'connected';
    },
  });
  return [
    probe('sessions.get-open-of-b', 'userA', hidden, 'GET', (world) => `/v1/sessions/${world.sessions.bOpen}`),
    probe('sessions.get-ended-of-b', 'userA', hidden, 'GET', (world) => `/v1/sessions/${world.sessions.bEnded}`),
    probe('sessions.get-open-of-b', 'anonymous', NOT_LOGGED_IN, 'GET', (world) => `/v1/sessions/${world.sessions.bOpen}`),
    probe('sessions.step-open-of-b', 'userA', hidden, 'POST', (world) => `/v1/sessions/${world.sessions.bOpen}/steps`, step),
    probe('sessions.step-ended-of-b', 'userA', hidden, 'POST', (world) => `/v1/sessions/${world.sessions.bEnded}/steps`, step),
    probe('sessions.step-ended-of-b', 'developerA', hidden, 'POST', (world) => `/v1/sessions/${world.sessions.bEnded}/steps`, step),
    probe(
      'sessions.end-open-of-b',
      'userA',
      hidden,
      'POST',
      (world) => `/v1/sessions/${world.sessions.bOpen}/end`,
      () => ({ json: {} }),
    ),
    probe(
      'sessions.end-ended-of-b',
      'userA',
      hidden,
      'POST',
      (world) => `/v1/sessions/${world.sessions.bEnded}/end`,
      () => ({ json: {} }),
    ),
    probe(
      'sessions.create-on-private-of-b',
      'userA',
      '422 DATASET_NOT_FOUND',
      'POST',
      () => '/v1/sessions',
      (world) => ({
        json: { policyId: world.policies.aPublicWithImage, datasetId: world.datasets.bPrivate },
      }),
    ),
    probe(
      'sessions.create-on-public-of-b',
      'userA',
      '403 SESSION_DATASET_NOT_WRITABLE',
      'POST',
      () => '/v1/sessions',
      (world) => ({
        json: { policyId: world.policies.aPublicWithImage, datasetId: world.datasets.bPublic },
      }),
    ),
    probe(
      'sessions.create-with-private-policy-of-b',
      'userA',
      '422 POLICY_NOT_FOUND',
      'POST',
      () => '/v1/sessions',
      (world) => ({
        json: { policyId: world.policies.bPrivate, datasetId: world.datasets.aSessions },
      }),
    ),
    probe(
      'sessions.create',
      'operatorA',
      FORBIDDEN,
      'POST',
      () => '/v1/sessions',
      (world) => ({
        json: { policyId: world.policies.aPublicWithImage, datasetId: world.datasets.aSessions },
      }),
    ),
    probe(
      'sessions.create',
      'anonymous',
      NOT_LOGGED_IN,
      'POST',
      () => '/v1/sessions',
      (world) => ({
        json: { policyId: world.policies.aPublicWithImage, datasetId: world.datasets.aSessions },
      }),
    ),
    probe(
      'sessions.create',
      'revoked',
      BAD_KEY,
      'POST',
      () => '/v1/sessions',
      (world) => ({
        json: { policyId: world.policies.aPublicWithImage, datasetId: world.datasets.aSessions },
      }),
    ),
    socket('bOpen', 'userA', hidden),
    socket('bEnded', 'userA', hidden),
    socket('bOpen', 'anonymous', NOT_LOGGED_IN),
    socket('bOpen', 'revoked', BAD_KEY),
    socket('bOpen', 'developerA', hidden),
  ];
}

function usageCases(): HostileCase[] {
  return [
    probe('usage.of-another-key', 'userA', FORBIDDEN, 'GET', (world) => `/v1/usage?keyId=${world.keys.userB.id}`),
    probe('usage.of-another-key', 'operatorA', FORBIDDEN, 'GET', (world) => `/v1/usage?keyId=${world.keys.operatorB.id}`),
    probe('usage.own', 'anonymous', NOT_LOGGED_IN, 'GET', () => '/v1/usage'),
    probe('usage.own', 'revoked', BAD_KEY, 'GET', () => '/v1/usage'),
  ];
}

export function authCases(): HostileCase[] {
  return [
    ...headerCases(),
    ...keysCases(),
    ...robotCases(),
    ...datasetCases(),
    ...uploadCases(),
    ...sliceCases(),
    ...policyCases(),
    ...sessionCases(),
    ...usageCases(),
  ];
}
