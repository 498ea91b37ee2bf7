// What the corpus runs among: keys of every role for two owners (A and B), their robots, datasets
// of each access level, policies, sessions, a slice, an upload and an evaluation. B's private things
// carry a secret marker in their names and tasks: an answer to A (or to nobody) that holds it is a
// cross-key read, whatever its status.
import { randomBytes } from 'node:crypto';
import type { CaseClient, Reply } from './kura.js';
import { tarOf, ndjson, gzip } from './builders.js';

export interface Key {
  id: string;
  key: string;
}

/** The JS policy every session of the corpus runs: state [2] (and an optional image) in, action [2] out. */
const sessionPolicyScript = 'function act(o) { const s = o["observation.state"]; return [s[0] + 1, s[1] - 1]; }';

export interface World {
  keys: {
    operatorA: Key;
    operatorB: Key;
    developerA: Key;
    developerB: Key;
    userA: Key;
    userB: Key;
    /** An operator key revoked right after its creation. */
    revoked: Key;
  };
  /** Text in every private thing of B (names, descriptions, tasks): no answer to another key may hold it. */
  secretOfB: string;
  robots: { a: string; b: string };
  datasets: {
    aPrivate: string;
    aPublic: string;
    bPrivate: string;
    bPublic: string;
    bSample: string;
    /** A's private dataset, granted to user A and developer A, without features: where A's sessions record. */
    aSessions: string;
    /** B's, granted to user B: where B's sessions record. */
    bSessions: string;
  };
  policies: {
    /** Developer A's private JS policy (state [2] → action [2]). */
    aPrivate: string;
    /** Developer B's private JS policy, named with B's secret. */
    bPrivate: string;
    /** Developer A's public policy observing state [2] and an image, for WebSocket sessions. */
    aPublicWithImage: string;
  };
  sessions: { bOpen: string; bEnded: string };
  slices: { bPrivate: string; aPrivate: string };
  uploads: { bPrivate: string; bMultipart: string };
  evaluations: { bPrivate: string };
  /** Developer A's edge export of A's private policy (an uploaded policy: no lineage, so allowed); never reported to. */
  edgeExports: { aPrivate: string };
  /** A next-page cursor of the robots list (valid there, foreign on other lists). */
  robotsCursor: string;
  /** A new private dataset of operator A (optionally with features): each upload case gets its own. */
  newDataset(client: CaseClient, options?: { features?: Record<string, unknown> | undefined; key?: Key }): Promise<string>;
  /** A new open session of user A on a policy (default: the image policy) in A's session dataset. */
  newSession(client: CaseClient, policyId?: string): Promise<string>;
}

let datasetCounter = 0;

function must(reply: Reply, status: number, what: string): Record<string, unknown> {
  if (reply.status !== status || !reply.body)
    throw new Error(`setting up the world: ${what} answered ${reply.status}: ${reply.text.slice(0, 500)}`);
  return reply.body;
}

const idOf = (reply: Reply, status: number, what: string): string => String(must(reply, status, what).id);

async function waitFor(client: CaseClient, path: string, key: string, done: (body: Record<string, unknown>) => boolean, what: string) {
  const reply = await client.until(path, (candidate) => candidate.status !== 200 || done(candidate.body ?? {}), key, 60_000);
  const body = must(reply, 200, what);
  if (!done(body)) throw new Error(`setting up the world: ${what} did not finish: ${reply.text.slice(0, 500)}`);
  return body;
}

/** A policy bundle (.tar.gz) of a JS policy. */
export function jsBundle(manifest: Record<string, unknown>, script: string = sessionPolicyScript): Buffer {
  return gzip(tarOf({ 'policy.json': JSON.stringify(manifest), 'policy.js': script }));
}

export async function buildWorld(client: CaseClient): Promise<World> {
  const secretOfB = `secretB${randomBytes(6).toString('hex')}`;
  const createKey = async (role: string, name: string): Promise<Key> => {
    const body = must(await client.post('/v1/keys', { json: { name, role } }), 201, `key ${name}`);
    return { id: String(body.id), key: String(body.key) };
  };
  const keys = {
    operatorA: await createKey('operator', 'operator-a'),
    operatorB: await createKey('operator', 'operator-b'),
    developerA: await createKey('developer', 'developer-a'),
    developerB: await createKey('developer', 'developer-b'),
    userA: await createKey('user', 'user-a'),
    userB: await createKey('user', 'user-b'),
    revoked: await createKey('operator', 'revoked'),
  };
  must(await client.request('DELETE', `/v1/keys/${keys.revoked.id}`), 200, 'revoking a key');

  const robot = async (key: Key, name: string) =>
    idOf(
      await client.post('/v1/robots', {
        key: key.key,
        json: { name, robotType: 'so101', controlFrequencyHz: 10, actionSpace: 'joint_position' },
      }),
      201,
      `robot ${name}`,
    );
  const robots = { a: await robot(keys.operatorA, 'arm-a'), b: await robot(keys.operatorB, 'arm-b') };

  const dataset = async (key: Key, robotId: string, access: string, name: string, description = 'hostile corpus') =>
    idOf(await client.post('/v1/datasets', { key: key.key, json: { name, robotId, access, description } }), 201, `dataset ${name}`);
  const grant = async (owner: Key, datasetId: string, grantee: Key) =>
    must(await client.post(`/v1/datasets/${datasetId}/grants`, { key: owner.key, json: { keyId: grantee.id } }), 201, 'grant');
  const publish = async (owner: Key, datasetId: string, task: string) => {
    // 20 episodes, so that some are held out (about 1 in 10) and evaluations have something to run on.
    const body = ndjson({ episodes: 20, steps: 3, edit: (line) => (line.language = task) });
    const accepted = must(
      await client.post(`/v1/datasets/${datasetId}/uploads?format=kura-ndjson`, { key: owner.key, body }),
      202,
      `seeding ${datasetId}`,
    );
    await waitFor(client, `/v1/uploads/${String(accepted.id)}`, owner.key, (upload) => upload.status === 'published', 'a seed upload');
    return String(accepted.id);
  };

  const datasets = {
    aPrivate: await dataset(keys.operatorA, robots.a, 'private', 'a-private'),
    aPublic: await dataset(keys.operatorA, robots.a, 'public', 'a-public'),
    bPrivate: await dataset(keys.operatorB, robots.b, 'private', `b-private-${secretOfB}`, `private data ${secretOfB}`),
    bPublic: await dataset(keys.operatorB, robots.b, 'public', 'b-public'),
    bSample: await dataset(keys.operatorB, robots.b, 'sample', 'b-sample'),
    aSessions: await dataset(keys.operatorA, robots.a, 'private', 'a-sessions'),
    bSessions: await dataset(keys.operatorB, robots.b, 'private', `b-sessions-${secretOfB}`),
  };
  await publish(keys.operatorA, datasets.aPrivate, 'task of a');
  await publish(keys.operatorA, datasets.aPublic, 'public task of a');
  const bUpload = await publish(keys.operatorB, datasets.bPrivate, `task ${secretOfB}`);
  await publish(keys.operatorB, datasets.bPublic, 'public task of b');
  // A sample dataset's public part is everyone's: no secret in it.
  await publish(keys.operatorB, datasets.bSample, 'sample task of b');
  await grant(keys.operatorA, datasets.aPrivate, keys.developerA);
  await grant(keys.operatorA, datasets.aSessions, keys.userA);
  await grant(keys.operatorA, datasets.aSessions, keys.developerA);
  await grant(keys.operatorB, datasets.bPrivate, keys.developerB);
  await grant(keys.operatorB, datasets.bSessions, keys.userB);

  const deploy = async (key: Key, manifest: Record<string, unknown>, access: 'public' | 'private') => {
    const accepted = must(
      await client.post(`/v1/policies?access=${access}`, { key: key.key, body: jsBundle(manifest) }),
      202,
      'policy upload',
    );
    await waitFor(client, `/v1/policies/${String(accepted.id)}`, key.key, (policy) => policy.status !== 'validating', 'policy');
    const policy = must(await client.get(`/v1/policies/${String(accepted.id)}`, { key: key.key }), 200, 'policy');
    if (policy.status !== 'ready')
      throw new Error(`setting up the world: policy was ${String(policy.status)}: ${JSON.stringify(policy.errors)}`);
    return String(accepted.id);
  };
  const stateManifest = (name: string) => ({
    name,
    runtime: 'js',
    entry: 'policy.js',
    observation: ['observation.state'],
    observationShapes: { 'observation.state': [2] },
    action: { shape: [2] },
  });
  const policies = {
    aPrivate: await deploy(keys.developerA, stateManifest('a-private'), 'private'),
    bPrivate: await deploy(keys.developerB, { ...stateManifest(`b-${secretOfB}`), description: secretOfB }, 'private'),
    aPublicWithImage: await deploy(
      keys.developerA,
      { ...stateManifest('a-image'), observation: ['observation.state', 'observation.image'] },
      'public',
    ),
  };

  const session = async (key: Key, policyId: string, datasetId: string, task?: string) =>
    idOf(await client.post('/v1/sessions', { key: key.key, json: { policyId, datasetId, ...(task ? { task } : {}) } }), 201, 'session');
  // User B cannot see developer B's private policy: B's sessions run A's public one.
  const bOpen = await session(keys.userB, policies.aPublicWithImage, datasets.bSessions, `task ${secretOfB}`);
  const bEnded = await session(keys.userB, policies.aPublicWithImage, datasets.bSessions, `task ${secretOfB}`);
  must(await client.post(`/v1/sessions/${bEnded}/end`, { key: keys.userB.key, json: {} }), 200, 'ending a session');

  const slice = async (key: Key, datasetId: string) =>
    idOf(await client.post('/v1/slices', { key: key.key, json: { sources: [{ datasetId }] } }), 201, 'slice');
  const slices = { bPrivate: await slice(keys.developerB, datasets.bPrivate), aPrivate: await slice(keys.developerA, datasets.aPrivate) };

  const multipart = must(
    await client.post(`/v1/datasets/${datasets.bPrivate}/uploads`, {
      key: keys.operatorB.key,
      json: { multipart: true, bytes: 10, sha256: 'a'.repeat(64) },
    }),
    201,
    'multipart upload',
  );
  const evaluation = idOf(
    await client.post(`/v1/policies/${policies.bPrivate}/evaluations`, {
      key: keys.developerB.key,
      json: { datasetId: datasets.bPrivate },
    }),
    202,
    'evaluation',
  );

  const exported = await client.post(`/v1/policies/${policies.aPrivate}/edge-exports`, {
    key: keys.developerA.key,
    json: { deviceId: 'arm-a', expiresAt: new Date(Date.now() + 86_400_000).toISOString() },
  });
  if (exported.status !== 201)
    throw new Error(`setting up the world: edge export answered ${exported.status}: ${exported.text.slice(0, 200)}`);
  const edgeExports = { aPrivate: String(exported.headers['kura-edge-export-id']) };

  // B's secret must be in what B's own keys read, or a cross-key read would go unnoticed.
  for (const [key, path] of [
    [keys.operatorB, `/v1/datasets/${datasets.bPrivate}`],
    [keys.developerB, `/v1/policies/${policies.bPrivate}`],
    [keys.userB, `/v1/sessions/${bOpen}`],
    [keys.developerB, `/v1/slices/${slices.bPrivate}/data?format=ndjson`],
    [keys.developerB, `/v1/datasets/${datasets.bPrivate}/episodes`],
  ] as const) {
    const reply = await client.get(path, { key: key.key });
    if (!reply.text.includes(secretOfB)) throw new Error(`setting up the world: B's secret is not in ${path} (${reply.status})`);
  }

  // Two robots exist: a page of one has a next cursor.
  const robotsPage = must(await client.get('/v1/robots?limit=1'), 200, 'robots list');
  const robotsCursor = String(robotsPage.nextCursor);

  return {
    keys,
    secretOfB,
    robots,
    datasets,
    policies,
    sessions: { bOpen, bEnded },
    slices,
    uploads: { bPrivate: bUpload, bMultipart: String((multipart.upload as { id: string }).id) },
    evaluations: { bPrivate: evaluation },
    edgeExports,
    robotsCursor,
    async newDataset(caseClient, options = {}) {
      const owner = options.key ?? keys.operatorA;
      const robotId = owner === keys.operatorB ? robots.b : robots.a;
      const reply = await caseClient.post('/v1/datasets', {
        key: owner.key,
        json: {
          name: `hostile-${datasetCounter++}-${Date.now()}`,
          robotId,
          access: 'private',
          ...(options.features ? { features: options.features } : {}),
        },
      });
      return idOf(reply, 201, 'a dataset for a case');
    },
    async newSession(caseClient, policyId = policies.aPublicWithImage) {
      return idOf(
        await caseClient.post('/v1/sessions', { key: keys.userA.key, json: { policyId, datasetId: datasets.aSessions } }),
        201,
        'a session for a case',
      );
    },
  };
}
