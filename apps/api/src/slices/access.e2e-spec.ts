import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { episodeBucket } from '@kura/core';
import pg from 'pg';
import { bearer, eventually, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { seedDataset } from '../../../../test/support/datasets.js';

type Level = 'public' | 'sample' | 'private';
type Who = 'anonymous' | 'owner' | 'otherOperator' | 'developer' | 'grantee' | 'user' | 'admin';
/** What a caller may read of a dataset: everything, the public sample, or nothing (404). */
type Reach = 'full' | 'sample' | 'none';

const levels: Level[] = ['public', 'sample', 'private'];
const everyone: Who[] = ['anonymous', 'owner', 'otherOperator', 'developer', 'grantee', 'user', 'admin'];

// The access matrix (API.md conventions; README "Access"): rows are callers, columns access levels.
const expectedReach: Record<Who, Record<Level, Reach>> = {
  anonymous: { public: 'full', sample: 'sample', private: 'none' },
  owner: { public: 'full', sample: 'full', private: 'full' },
  otherOperator: { public: 'full', sample: 'sample', private: 'none' },
  developer: { public: 'full', sample: 'sample', private: 'none' },
  grantee: { public: 'full', sample: 'full', private: 'full' },
  user: { public: 'full', sample: 'sample', private: 'none' },
  admin: { public: 'full', sample: 'full', private: 'full' },
};

const EPISODES = 40;

describe('access levels: role × endpoint × level', () => {
  let kura: TestApp;
  const keys = {} as Record<Who, string | undefined>;
  const datasets = {} as Record<Level, string>;
  /** Slices the owner made of every episode it may read (no held-out: it is not an admin). */
  const ownerSlices = {} as Record<Level, string>;

  const headers = (who: Who) => (keys[who] ? bearer(keys[who]) : {});
  const get = (who: Who, path: string) => kura.request.get(path).set(headers(who));
  const sampleOf = (datasetId: string) => {
    const notHeldOut = Array.from({ length: EPISODES }, (_, index) => index).filter((index) => episodeBucket(datasetId, index) < 90);
    const sample = notHeldOut.filter((index) => episodeBucket(datasetId, index) < 10);
    return [...new Set([...sample, notHeldOut[0]!])].sort((a, b) => a - b);
  };
  const all = () => Array.from({ length: EPISODES }, (_, index) => index);
  const notHeldOut = (datasetId: string) => all().filter((index) => episodeBucket(datasetId, index) < 90);

  beforeAll(async () => {
    kura = await startTestApp();
    keys.anonymous = undefined;
    keys.admin = kura.adminKey;
    const owner = await kura.createKey('operator');
    keys.owner = owner.key;
    keys.otherOperator = (await kura.createKey('operator')).key;
    keys.developer = (await kura.createKey('developer')).key;
    const grantee = await kura.createKey('developer');
    keys.grantee = grantee.key;
    keys.user = (await kura.createKey('user')).key;
    for (const level of levels) {
      datasets[level] = (await seedDataset(kura, owner.key, { episodes: EPISODES, length: 2, access: level })).datasetId;
      if (level !== 'public') {
        const granted = await kura.request
          .post(`/v1/datasets/${datasets[level]}/grants`)
          .set(bearer(owner.key))
          .send({ keyId: grantee.id });
        expect(granted.status).toBe(201);
      }
      const slice = await kura.request
        .post('/v1/slices')
        .set(bearer(owner.key))
        .send({ sources: [{ datasetId: datasets[level] }] });
      expect(slice.status).toBe(201);
      ownerSlices[level] = slice.body.id;
    }
  });
  afterAll(async () => {
    await kura.close();
  });

  const cases = everyone.flatMap((who) => levels.map((level) => [who, level, expectedReach[who][level]] as const));

  it.each(cases)('%s on a %s dataset: list, get (%s)', async (who, level, reach) => {
    const listed = await get(who, '/v1/datasets?limit=500');
    expect(listed.status).toBe(200);
    expect(listed.body.items.some((item: { id: string }) => item.id === datasets[level])).toBe(reach !== 'none');
    expect((await get(who, `/v1/datasets/${datasets[level]}`)).status).toBe(reach === 'none' ? 404 : 200);
  });

  it.each(cases)('%s on a %s dataset: episodes and stats (%s)', async (who, level, reach) => {
    const episodes = await get(who, `/v1/datasets/${datasets[level]}/episodes?limit=500`);
    const stats = await get(who, `/v1/datasets/${datasets[level]}/stats`);
    if (reach === 'none') {
      expect(episodes.status).toBe(404);
      expect(episodes.body.error.code).toBe('DATASET_NOT_FOUND');
      expect(stats.status).toBe(404);
      return;
    }
    expect(episodes.status).toBe(200);
    const indices = episodes.body.items.map((item: { episodeIndex: number }) => item.episodeIndex);
    expect(indices).toEqual(reach === 'full' ? all() : sampleOf(datasets[level]));
    expect(stats.status).toBe(200);
    expect(stats.body.scope).toBe(reach === 'full' ? 'all' : 'sample');
    const expectedSteps = (reach === 'full' ? EPISODES : sampleOf(datasets[level]).length) * 2;
    expect(stats.body.features['observation.state'].count).toBe(expectedSteps);
  });

  it.each(cases)('%s on a %s dataset: creating a slice (%s)', async (who, level, reach) => {
    const response = await kura.request
      .post('/v1/slices')
      .set(headers(who))
      .send({ sources: [{ datasetId: datasets[level] }] });
    if (reach === 'none') {
      expect(response.status).toBe(422);
      expect(response.body.error.code).toBe('DATASET_NOT_FOUND');
      return;
    }
    expect(response.status).toBe(201);
    const datasetId = datasets[level];
    const expected = who === 'admin' ? all() : reach === 'full' ? notHeldOut(datasetId) : sampleOf(datasetId);
    expect(response.body.episodeCount).toBe(expected.length);
    expect(response.body.withheld.heldOut).toBe(
      who === 'admin' ? 0 : reach === 'full' ? EPISODES - notHeldOut(datasetId).length : EPISODES - notHeldOut(datasetId).length,
    );
  });

  it.each(cases)('%s on a %s dataset: reading the owner’s slice (%s)', async (who, level, reach) => {
    const sliceId = ownerSlices[level];
    const expectedStatus = reach === 'full' || level === 'public' ? 200 : reach === 'none' ? 404 : who === 'anonymous' ? 401 : 403;
    expect((await get(who, `/v1/slices/${sliceId}`)).status).toBe(expectedStatus);
    const data = await getBytes(kura, `/v1/slices/${sliceId}/data?format=ndjson`, headers(who));
    expect(data.status).toBe(expectedStatus);
    if (expectedStatus === 200) {
      const episodes = new Set(
        data.body
          .toString('utf8')
          .trimEnd()
          .split('\n')
          .map((line) => (JSON.parse(line) as { episode: number }).episode),
      );
      expect([...episodes]).toEqual(notHeldOut(datasets[level]));
    }
  });

  it.each(everyone)('%s may grant access only to datasets it owns (or as admin)', async (who) => {
    const response = await kura.request
      .post(`/v1/datasets/${datasets.sample}/grants`)
      .set(headers(who))
      .send({ keyId: 'key_000000000000aaaaaaaaaaaa' });
    const expected = who === 'anonymous' ? 401 : who === 'owner' || who === 'admin' ? 422 : 403;
    expect(response.status).toBe(expected);
  });

  it('a revoked grant takes effect at once', async () => {
    const reader = await kura.createKey('developer');
    const grant = await kura.request.post(`/v1/datasets/${datasets.private}/grants`).set(bearer(keys.owner!)).send({ keyId: reader.id });
    expect(grant.status).toBe(201);
    expect((await kura.request.get(`/v1/datasets/${datasets.private}`).set(bearer(reader.key))).status).toBe(200);
    const listed = await kura.request.get(`/v1/datasets/${datasets.private}/grants`).set(bearer(keys.owner!));
    expect(listed.body.items.map((item: { keyId: string }) => item.keyId)).toContain(reader.id);
    expect((await kura.request.delete(`/v1/datasets/${datasets.private}/grants/${reader.id}`).set(bearer(keys.owner!))).status).toBe(204);
    expect((await kura.request.get(`/v1/datasets/${datasets.private}`).set(bearer(reader.key))).status).toBe(404);
    expect((await kura.request.delete(`/v1/datasets/${datasets.private}/grants/${reader.id}`).set(bearer(keys.owner!))).status).toBe(404);
  });

  it("a revoked grant stops the downloads of a slice whose plan the server keeps (small slices' plans are cached)", async () => {
    const reader = await kura.createKey('developer');
    await kura.request.post(`/v1/datasets/${datasets.private}/grants`).set(bearer(keys.owner!)).send({ keyId: reader.id }).expect(201);
    const slice = await kura.request
      .post('/v1/slices')
      .set(bearer(reader.key))
      .send({ sources: [{ datasetId: datasets.private }], episodes: '0-2' })
      .expect(201);
    const data = () => kura.request.get(`/v1/slices/${slice.body.id as string}/data`).set(bearer(reader.key));
    const first = await data();
    expect(first.status).toBe(200);
    expect((await data()).status).toBe(200);
    await kura.request.delete(`/v1/datasets/${datasets.private}/grants/${reader.id}`).set(bearer(keys.owner!)).expect(204);
    const after = await data();
    expect(after.status).toBe(404);
    expect(after.body.error.code).toBe('SLICE_NOT_FOUND');
  });

  it("a dataset's access changed outside the api (psql) takes effect at once: a trigger announces it to the processes caching it", async () => {
    const { datasetId } = await seedDataset(kura, keys.owner!, { episodes: 3, length: 2, access: 'public' });
    const reader = await kura.createKey('developer');
    const slice = await kura.request
      .post('/v1/slices')
      .set(bearer(reader.key))
      .send({ sources: [{ datasetId }] })
      .expect(201);
    const data = () => kura.request.get(`/v1/slices/${slice.body.id as string}/data`).set(bearer(reader.key));
    const sql = async (text: string) => {
      const client = new pg.Client({ connectionString: kura.databaseUrl });
      await client.connect();
      try {
        return (await client.query(text)).rows;
      } finally {
        await client.end();
      }
    };
    expect((await data()).status).toBe(200);
    // The cache is filled only while its listener is up (it starts with the first lookup).
    await eventually(async () => {
      const [listener] = await sql(
        "SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN kura_dataset_changes' AND datname = current_database()",
      );
      return listener ? true : undefined;
    }, 5000);
    expect((await data()).status).toBe(200);
    // Unannounced (the trigger off, which nothing in Kura does): the cached access still answers, which shows it is in use.
    await sql(
      `BEGIN; ALTER TABLE datasets DISABLE TRIGGER datasets_notify_access_change; UPDATE datasets SET access = 'private' WHERE id = '${datasetId}'; ALTER TABLE datasets ENABLE TRIGGER datasets_notify_access_change; COMMIT;`,
    );
    expect((await data()).status).toBe(200);
    // Any update of the access column is announced, in its transaction, whoever makes it.
    await sql(`UPDATE datasets SET access = 'private' WHERE id = '${datasetId}'`);
    await eventually(async () => ((await data()).status === 404 ? true : undefined), 2000);
    const after = await data();
    expect(after.body.error.code).toBe('SLICE_NOT_FOUND');
    // And back: public again is readable again.
    await sql(`UPDATE datasets SET access = 'public' WHERE id = '${datasetId}'`);
    await eventually(async () => ((await data()).status === 200 ? true : undefined), 2000);
  });
});
