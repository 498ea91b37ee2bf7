import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';

const features = {
  'observation.state': { dtype: 'float32', shape: [7], names: ['x', 'y', 'z', 'roll', 'pitch', 'yaw', 'gripper'] },
  'observation.images.top': { dtype: 'image', shape: [224, 224, 3], encoding: 'jpeg' },
  action: { dtype: 'float32', shape: [7], names: { motors: ['j1', 'j2', 'j3', 'j4', 'j5', 'j6', 'gripper'] } },
};

describe('datasets (/v1/datasets)', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let robotId: string;
  let counter = 0;
  const uniqueName = (base: string) => `${base}-${Date.now().toString(36)}-${counter++}`;

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    const robot = await kura.request
      .post('/v1/robots')
      .set(bearer(operator.key))
      .send({ name: 'arm', robotType: 'widowx', controlFrequencyHz: 5, actionSpace: 'eef_delta_pose' });
    robotId = robot.body.id;
  });
  afterAll(async () => {
    await kura.close();
  });

  it('creates a dataset with a feature spec and license', async () => {
    const name = uniqueName('bridge');
    const response = await kura.request
      .post('/v1/datasets')
      .set(bearer(operator.key))
      .send({ name, robotId, access: 'public', features, license: 'CC-BY-4.0' });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      id: expect.stringMatching(/^ds_/),
      name,
      robotId,
      access: 'public',
      license: 'CC-BY-4.0',
      description: null,
      features,
      ownerKeyId: operator.id,
      latestVersion: 0,
      episodeCount: 0,
      stepCount: 0,
      createdAt: expect.any(String),
    });
    const fetched = await kura.request.get(`/v1/datasets/${response.body.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body).toEqual(response.body);
  });

  it.each([
    [{ action: { dtype: 'float32', shape: [7], names: ['a', 'b'] } }, 'features.action.names', '2 names for a last dimension of 7'],
    [{ action: { dtype: 'float16', shape: [7] } }, 'features.action.dtype', ''],
    [
      { 'observation.images.top': { dtype: 'image', shape: [224, 224] } },
      'features.observation.images.top.shape',
      'height, width, channels',
    ],
    [{ action: { dtype: 'float32', shape: [0] } }, 'features.action.shape.0', ''],
    [{ action: { dtype: 'float32', shape: [2, 3], names: [['a', 'b'], ['c']] } }, 'features.action.names', 'axis 1'],
    [{ action: { dtype: 'float32', shape: [7], unit: 'rad' } }, 'features.action', ''],
    [{ '9bad name': { dtype: 'float32', shape: [1] } }, 'features.9bad name', ''],
  ])('rejects the feature spec %j at %s', async (badFeatures, path, message) => {
    const response = await kura.request
      .post('/v1/datasets')
      .set(bearer(operator.key))
      .send({ name: uniqueName('bad'), robotId, access: 'public', features: badFeatures });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('VALIDATION_FAILED');
    const issue = response.body.error.details.issues.find((candidate: { path: string }) => candidate.path === path);
    expect(issue).toBeDefined();
    expect(issue.message).toContain(message);
  });

  it('rejects bad licenses, access levels, unknown robots and taken names', async () => {
    const badLicense = await kura.request
      .post('/v1/datasets')
      .set(bearer(operator.key))
      .send({ name: uniqueName('l'), robotId, access: 'public', license: 'free for all!' });
    expect([badLicense.status, badLicense.body.error.details.issues[0].path]).toEqual([400, 'license']);
    const badAccess = await kura.request
      .post('/v1/datasets')
      .set(bearer(operator.key))
      .send({ name: uniqueName('a'), robotId, access: 'secret' });
    expect([badAccess.status, badAccess.body.error.details.issues[0].path]).toEqual([400, 'access']);
    const unknownRobot = await kura.request
      .post('/v1/datasets')
      .set(bearer(operator.key))
      .send({ name: uniqueName('r'), robotId: 'rbt_missing', access: 'public' });
    expect(unknownRobot.status).toBe(422);
    expect(unknownRobot.body.error).toMatchObject({ code: 'ROBOT_NOT_FOUND', details: { location: { field: 'robotId' } } });
    const name = uniqueName('dup');
    await kura.request.post('/v1/datasets').set(bearer(operator.key)).send({ name, robotId, access: 'public' }).expect(201);
    const taken = await kura.request.post('/v1/datasets').set(bearer(operator.key)).send({ name, robotId, access: 'private' });
    expect([taken.status, taken.body.error.code]).toEqual([409, 'DATASET_NAME_TAKEN']);
  });

  it('lets only operators and admins create datasets', async () => {
    const developer = await kura.createKey('developer');
    const forbidden = await kura.request
      .post('/v1/datasets')
      .set(bearer(developer.key))
      .send({ name: uniqueName('d'), robotId, access: 'public' });
    expect([forbidden.status, forbidden.body.error.code]).toEqual([403, 'FORBIDDEN']);
    const anonymous = await kura.request.post('/v1/datasets').send({ name: uniqueName('d'), robotId, access: 'public' });
    expect([anonymous.status, anonymous.body.error.code]).toEqual([401, 'AUTH_REQUIRED']);
  });

  it('shows public and sample datasets to everyone, private ones to their owner and admins only', async () => {
    const create = async (access: string) =>
      (
        await kura.request
          .post('/v1/datasets')
          .set(bearer(operator.key))
          .send({ name: uniqueName(access), robotId, access })
          .expect(201)
      ).body.id as string;
    const [open, sample, closed] = [await create('public'), await create('sample'), await create('private')];
    const otherOperator = await kura.createKey('operator');
    const developer = await kura.createKey('developer');
    const listIds = async (headers: Record<string, string>) => {
      const response = await kura.request.get('/v1/datasets?limit=500').set(headers);
      expect(response.status).toBe(200);
      return response.body.items.map((item: { id: string }) => item.id) as string[];
    };
    for (const headers of [{}, bearer(otherOperator.key), bearer(developer.key)]) {
      const ids = await listIds(headers);
      expect(ids).toEqual(expect.arrayContaining([open, sample]));
      expect(ids).not.toContain(closed);
      const hidden = await kura.request.get(`/v1/datasets/${closed}`).set(headers);
      expect([hidden.status, hidden.body.error.code]).toEqual([404, 'DATASET_NOT_FOUND']);
    }
    for (const key of [operator.key, kura.adminKey]) {
      expect(await listIds(bearer(key))).toEqual(expect.arrayContaining([open, sample, closed]));
      expect((await kura.request.get(`/v1/datasets/${closed}`).set(bearer(key))).status).toBe(200);
    }
    const byRobot = await kura.request.get(`/v1/datasets?robotId=${robotId}&limit=500`).set(bearer(operator.key));
    expect(byRobot.body.items.every((item: { robotId: string }) => item.robotId === robotId)).toBe(true);
    const unknownQuery = await kura.request.get('/v1/datasets?color=red');
    expect([unknownQuery.status, unknownQuery.body.error.details.issues[0].path]).toEqual([400, '']);
  });
});
