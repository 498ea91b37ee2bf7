import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BLOB_STORE, JobsService, type BlobStore } from '@kura/core';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';

// SO-101 arm URDF from TheRobotStudio/SO-ARM100 (Apache-2.0), kept in test/fixtures (see SOURCES.md there).
const so101Url = new URL('../../../../test/fixtures/urdf/so101/so101_new_calib.urdf', import.meta.url);

const robotBody = { name: 'so101 left', robotType: 'so101', controlFrequencyHz: 30, actionSpace: 'joint_position' };

describe('robots (/v1/robots)', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let so101: Buffer;

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    so101 = await readFile(so101Url);
  });
  afterAll(async () => {
    await kura.close();
  });

  const createRobot = async (body: Record<string, unknown> = robotBody, key = operator.key) => {
    const response = await kura.request.post('/v1/robots').set(bearer(key)).send(body);
    expect(response.status).toBe(201);
    return response.body as { id: string };
  };

  it('registers an embodiment and reads it back', async () => {
    const created = await kura.request
      .post('/v1/robots')
      .set(bearer(operator.key))
      .send({
        name: 'aloha',
        robotType: 'aloha-bimanual',
        controlFrequencyHz: 50,
        actionSpace: 'joint_position',
        stateSpace: 'joint_position',
        jointNames: ['waist', 'shoulder', 'elbow'],
        cameras: ['cam_high', { name: 'cam_left_wrist', width: 640, height: 480, fps: 50 }],
      });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: expect.stringMatching(/^rbt_/),
      robotType: 'aloha-bimanual',
      controlFrequencyHz: 50,
      cameras: [{ name: 'cam_high' }, { name: 'cam_left_wrist', width: 640, height: 480, fps: 50 }],
      ownerKeyId: operator.id,
      bodyModel: null,
    });
    const fetched = await kura.request.get(`/v1/robots/${created.body.id}`).set(bearer(operator.key));
    expect(fetched.status).toBe(200);
    expect(fetched.body).toEqual(created.body);
    const listed = await kura.request.get('/v1/robots').set(bearer(operator.key));
    expect(listed.body.items.map((robot: { id: string }) => robot.id)).toContain(created.body.id);
  });

  it.each([
    [{ ...robotBody, controlFrequencyHz: -5 }, 'controlFrequencyHz'],
    [{ ...robotBody, controlFrequencyHz: '30' }, 'controlFrequencyHz'],
    [{ ...robotBody, actionSpace: 'torque' }, 'actionSpace'],
    [{ ...robotBody, jointNames: ['a', 'a'] }, 'jointNames.1'],
    [{ ...robotBody, cameras: [{ name: 'top', resolution: 5 }] }, 'cameras.0'],
    [{ ...robotBody, color: 'red' }, ''],
    [{ robotType: 'x', controlFrequencyHz: 1, actionSpace: 'other' }, 'name'],
  ])('rejects %j naming %s', async (body, path) => {
    const response = await kura.request.post('/v1/robots').set(bearer(operator.key)).send(body);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('VALIDATION_FAILED');
    expect(response.body.error.details.issues.map((issue: { path: string }) => issue.path)).toContain(path);
  });

  it('lets only operators and admins register robots', async () => {
    for (const role of ['developer', 'user'] as const) {
      const { key } = await kura.createKey(role);
      const response = await kura.request.post('/v1/robots').set(bearer(key)).send(robotBody);
      expect(response.status).toBe(403);
      expect(response.body.error.code).toBe('FORBIDDEN');
    }
    expect((await kura.request.post('/v1/robots').send(robotBody)).status).toBe(401);
    await createRobot(robotBody, kura.adminKey);
  });

  it('answers 404 for unknown robots, and hides robots of no public dataset from anonymous callers', async () => {
    const unknown = await kura.request.get('/v1/robots/rbt_nope').set(bearer(operator.key));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'ROBOT_NOT_FOUND', details: { id: 'rbt_nope' } });

    const robot = await createRobot();
    expect((await kura.request.get(`/v1/robots/${robot.id}`)).status).toBe(404);
    const anonymousList = await kura.request.get('/v1/robots');
    expect(anonymousList.body.items.map((item: { id: string }) => item.id)).not.toContain(robot.id);
    await kura.request
      .post('/v1/datasets')
      .set(bearer(operator.key))
      .send({ name: `open-${robot.id}`, robotId: robot.id, access: 'public' })
      .expect(201);
    expect((await kura.request.get(`/v1/robots/${robot.id}`)).status).toBe(200);
  });

  it('parses the SO-101 URDF, keeps the original and reports joints with limits', async () => {
    const robot = await createRobot();
    const response = await kura.request
      .put(`/v1/robots/${robot.id}/body-model`)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/xml')
      .send(so101);
    expect(response.status).toBe(200);
    expect(response.body.format).toBe('urdf');
    const revolute = response.body.joints.filter((joint: { type: string }) => joint.type === 'revolute');
    expect(revolute.map((joint: { name: string }) => joint.name).sort()).toEqual([
      'elbow_flex',
      'gripper',
      'shoulder_lift',
      'shoulder_pan',
      'wrist_flex',
      'wrist_roll',
    ]);
    expect(response.body.joints.filter((joint: { type: string }) => joint.type === 'fixed')).toHaveLength(1);
    expect(revolute[0].limits).toEqual({
      lower: expect.any(Number),
      upper: expect.any(Number),
      effort: expect.any(Number),
      velocity: expect.any(Number),
    });
    expect(response.body.links.length).toBeGreaterThan(6);

    const fetched = await kura.request.get(`/v1/robots/${robot.id}`).set(bearer(operator.key));
    expect(fetched.body.bodyModel).toEqual(response.body);
    const original = await kura.request
      .get(`/v1/robots/${robot.id}/body-model`)
      .set(bearer(operator.key))
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
    expect(original.status).toBe(200);
    expect(Buffer.compare(original.body as Buffer, so101)).toBe(0);
  });

  it('deletes a replaced body model file in the background', async () => {
    const robot = await createRobot();
    const blobs = kura.app.get<BlobStore>(BLOB_STORE);
    await kura.request
      .put(`/v1/robots/${robot.id}/body-model`)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/xml')
      .send(so101)
      .expect(200);
    const firstKeys: string[] = [];
    for await (const blob of blobs.list({ prefix: `robots/${robot.id}/` })) firstKeys.push(blob.key);
    expect(firstKeys).toHaveLength(1);

    const edited = Buffer.from(so101.toString('utf8').replace('name="so101_new_calib"', 'name="so101_edited"'));
    const second = await kura.request
      .put(`/v1/robots/${robot.id}/body-model`)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/xml')
      .send(edited);
    expect(second.status).toBe(200);
    expect(second.body.robotName).toBe('so101_edited');
    await eventually(async () => ((await blobs.head({ key: firstKeys[0]! })) === undefined ? true : undefined));
    const counts = await kura.app.get(JobsService).countByState();
    expect(counts.completed).toBeGreaterThanOrEqual(1);
    expect(counts.failed).toBe(0);
  });

  it.each([
    ['<robot name="r"><link name="a"></robot>', 'BODY_MODEL_MALFORMED_XML', 1],
    ['<?xml version="1.0"?>\n<model name="m">\n</model>', 'BODY_MODEL_NOT_URDF', 2],
    [
      '<robot name="r">\n  <link name="a"/>\n  <joint name="j" type="teleport">\n    <parent link="a"/><child link="a"/>\n  </joint>\n</robot>',
      'BODY_MODEL_INVALID',
      3,
    ],
  ])('rejects a bad body model with 422 and the line: %s', async (xml, code, line) => {
    const robot = await createRobot();
    const response = await kura.request
      .put(`/v1/robots/${robot.id}/body-model`)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/xml')
      .send(xml);
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe(code);
    expect(response.body.error.details.line).toBe(line);
    expect(response.body.error.message).toContain(`line ${line}`);
    expect((await kura.request.get(`/v1/robots/${robot.id}`).set(bearer(operator.key))).body.bodyModel).toBeNull();
  });

  it('refuses empty, oversized, JSON, foreign and unknown-robot body model requests', async () => {
    const robot = await createRobot();
    const path = `/v1/robots/${robot.id}/body-model`;
    const empty = await kura.request.put(path).set(bearer(operator.key)).set('Content-Type', 'application/xml').send('');
    expect([empty.status, empty.body.error.code]).toEqual([400, 'BODY_MODEL_EMPTY']);

    const huge = Buffer.alloc(kura.config.http.bodyModelLimit + 1, 0x20);
    const tooLarge = await kura.request.put(path).set(bearer(operator.key)).set('Content-Type', 'application/xml').send(huge);
    expect([tooLarge.status, tooLarge.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);

    const json = await kura.request.put(path).set(bearer(operator.key)).send({ urdf: '<robot/>' });
    expect([json.status, json.body.error.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);

    const other = await kura.createKey('operator');
    const foreign = await kura.request.put(path).set(bearer(other.key)).set('Content-Type', 'application/xml').send(so101);
    expect([foreign.status, foreign.body.error.code]).toEqual([403, 'FORBIDDEN']);

    const unknown = await kura.request
      .put('/v1/robots/rbt_missing/body-model')
      .set(bearer(operator.key))
      .set('Content-Type', 'application/xml')
      .send(so101);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'ROBOT_NOT_FOUND']);

    const noModel = await kura.request.get(`${path}`).set(bearer(operator.key));
    expect([noModel.status, noModel.body.error.code]).toEqual([404, 'BODY_MODEL_NOT_FOUND']);
  });
});
