import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';

describe('API keys (/v1/keys)', () => {
  let kura: TestApp;
  beforeAll(async () => {
    kura = await startTestApp();
  });
  afterAll(async () => {
    await kura.close();
  });

  it('creates a key that is shown once, works at once, and is stored only as a hash', async () => {
    const created = await kura.request.post('/v1/keys').set(bearer(kura.adminKey)).send({ name: 'lab operator', role: 'operator' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^key_/), role: 'operator', name: 'lab operator' });
    // 32 random bytes in base64url are 43 characters.
    expect(created.body.key).toMatch(/^kura_[A-Za-z0-9_-]{43}$/);

    const robot = await kura.request
      .post('/v1/robots')
      .set(bearer(created.body.key))
      .send({ name: 'arm', robotType: 'so101', controlFrequencyHz: 30, actionSpace: 'joint_position' });
    expect(robot.status).toBe(201);

    const listed = await kura.request.get(`/v1/keys/${created.body.id}`).set(bearer(kura.adminKey));
    expect(listed.status).toBe(200);
    expect(listed.body.key).toBeUndefined();
    expect(JSON.stringify(listed.body)).not.toContain(created.body.key);

    const client = new pg.Client({ connectionString: kura.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT * FROM api_keys WHERE id = $1', [created.body.id]);
      expect(JSON.stringify(rows)).not.toContain(created.body.key.slice(5));
      expect(rows[0].key_hash).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await client.end();
    }
  });

  it('revocation takes effect on the next request', async () => {
    const { id, key } = await kura.createKey('developer');
    expect((await kura.request.get('/v1/datasets').set(bearer(key))).status).toBe(200);
    const revoked = await kura.request.delete(`/v1/keys/${id}`).set(bearer(kura.adminKey));
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    const after = await kura.request.get('/v1/datasets').set(bearer(key));
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('INVALID_API_KEY');
  });

  it('GET /v1/keys/me shows any key itself (never the key), and is 401 without one', async () => {
    const { id } = await kura.createKey('user', 'robot cell');
    const created = await kura.request.post('/v1/keys').set(bearer(kura.adminKey)).send({ name: 'mine', role: 'user' });
    const me = await kura.request.get('/v1/keys/me').set(bearer(created.body.key));
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: created.body.id, name: 'mine', role: 'user', quota: null });
    expect(me.body.id).not.toBe(id);
    expect(me.body.key).toBeUndefined();
    expect((await kura.request.get('/v1/keys/me')).status).toBe(401);
  });

  it('refuses to revoke the last admin key, and unknown keys are 404', async () => {
    const keys = await kura.request.get('/v1/keys?limit=500').set(bearer(kura.adminKey));
    const admins = keys.body.items.filter((key: { role: string; revokedAt: string | null }) => key.role === 'admin' && !key.revokedAt);
    expect(admins).toHaveLength(1);
    const last = await kura.request.delete(`/v1/keys/${admins[0].id}`).set(bearer(kura.adminKey));
    expect(last.status).toBe(409);
    expect(last.body.error.code).toBe('LAST_ADMIN_KEY');
    const unknown = await kura.request.delete('/v1/keys/key_000000000000000000000000').set(bearer(kura.adminKey));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('KEY_NOT_FOUND');
  });

  it('only admins manage keys; missing, malformed and unknown keys are 401', async () => {
    const operator = await kura.createKey('operator');
    const forbidden = await kura.request.post('/v1/keys').set(bearer(operator.key)).send({ name: 'x', role: 'admin' });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('FORBIDDEN');
    expect((await kura.request.get('/v1/keys').set(bearer(operator.key))).status).toBe(403);

    const anonymous = await kura.request.post('/v1/keys').send({ name: 'x', role: 'admin' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('AUTH_REQUIRED');

    const malformed = await kura.request.get('/v1/keys').set('Authorization', 'Basic abc');
    expect(malformed.status).toBe(401);
    expect(malformed.body.error.code).toBe('INVALID_AUTHORIZATION_HEADER');

    const unknown = await kura.request.get('/v1/keys').set(bearer('kura_not-a-real-key'));
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe('INVALID_API_KEY');
    expect(unknown.headers['www-authenticate']).toContain('Bearer');
  });

  it.each([
    [{ name: 'x', role: 'superuser' }, 'role'],
    [{ role: 'user' }, 'name'],
    [{ name: 'x', role: 'user', admin: true }, ''],
    [{ name: '', role: 'user' }, 'name'],
  ])('rejects the body %j with VALIDATION_FAILED naming the field', async (body, path) => {
    const response = await kura.request.post('/v1/keys').set(bearer(kura.adminKey)).send(body);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('VALIDATION_FAILED');
    expect(response.body.error.details.issues[0].path).toBe(path);
  });

  it('pages through keys with a cursor', async () => {
    for (let index = 0; index < 3; index++) await kura.createKey('user');
    const seen = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response: { status: number; body: { items: Array<{ id: string }>; nextCursor: string | null } } = await kura.request
        .get('/v1/keys')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(bearer(kura.adminKey));
      expect(response.status).toBe(200);
      expect(response.body.items.length).toBeLessThanOrEqual(2);
      for (const item of response.body.items) {
        expect(seen.has(item.id)).toBe(false);
        seen.add(item.id);
      }
      cursor = response.body.nextCursor;
      pages++;
    } while (cursor);
    const all = await kura.request.get('/v1/keys?limit=500').set(bearer(kura.adminKey));
    expect(seen.size).toBe(all.body.items.length);
    expect(pages).toBeGreaterThan(1);

    const badCursor = await kura.request.get('/v1/keys?cursor=!!!').set(bearer(kura.adminKey));
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.error.code).toBe('INVALID_CURSOR');
    const badLimit = await kura.request.get('/v1/keys?limit=0').set(bearer(kura.adminKey));
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error.details.issues[0].path).toBe('limit');
  });

  describe('active keys cached while every change is heard', () => {
    const sql = async (text: string, values: unknown[] = []) => {
      const client = new pg.Client({ connectionString: kura.databaseUrl });
      await client.connect();
      try {
        return (await client.query(text, values)).rows;
      } finally {
        await client.end();
      }
    };
    const status = async (key: string) => (await kura.request.get('/v1/datasets').set(bearer(key))).status;

    it('a revocation announced by another process takes effect here at once', async () => {
      const { id, key } = await kura.createKey('developer');
      expect(await status(key)).toBe(200);
      // What another api process does when it revokes: the update and the notification in one transaction.
      await sql(`BEGIN; UPDATE api_keys SET revoked_at = now() WHERE id = '${id}'; SELECT pg_notify('kura_key_changes', '${id}'); COMMIT;`);
      await eventually(async () => ((await status(key)) === 401 ? true : undefined), 2000);
    });

    it('serves a cached key while the row changes unannounced, and stops caching when the listener is lost', async () => {
      const { id, key } = await kura.createKey('developer');
      expect(await status(key)).toBe(200);
      // Unannounced (not how Kura changes keys): the cache still answers, which shows it is in use.
      await sql('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [id]);
      expect(await status(key)).toBe(200);
      // Without its LISTEN connection a process cannot know what changed: it drops the cache and reads Postgres.
      await sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN kura_key_changes' AND datname = current_database()",
      );
      await eventually(async () => ((await status(key)) === 401 ? true : undefined), 5000);
      // Once the listener is back, keys are cached again and revocations still land.
      const second = await kura.createKey('developer');
      await eventually(async () => {
        const [listener] = await sql(
          "SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN kura_key_changes' AND datname = current_database()",
        );
        return listener ? true : undefined;
      }, 5000);
      expect(await status(second.key)).toBe(200);
      expect((await kura.request.delete(`/v1/keys/${second.id}`).set(bearer(kura.adminKey))).status).toBe(200);
      expect(await status(second.key)).toBe(401);
    });
  });
});
