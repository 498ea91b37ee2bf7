// A ROS 2 bag through the API (#16): it goes up without a mapping and ends `needs_mapping` with the
// bag's topics and a suggested mapping; the user adjusts the mapping and uploads again; the episodes'
// steps are the bag's messages, aligned as the mapping says. The bag is written at test time by
// packages/formats/src/mcap/testing.ts (every value a function of its time).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { McapMapping, UploadView } from '@kura/schema';
import { bearer, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset, waitForUpload } from '../../../../test/support/datasets.js';
import { JOINTS, jointValue, writeRobotBag } from '../../../../packages/formats/src/mcap/robot-bag.js';

describe('ROS 2 bags (MCAP)', () => {
  let kura: TestApp;
  let operator: { key: string };
  let scratch: string;
  let bag: Buffer;

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    scratch = await mkdtemp(join(tmpdir(), 'kura-mcap-e2e-'));
    await writeRobotBag(join(scratch, 'robot.mcap'));
    bag = await readFile(join(scratch, 'robot.mcap'));
  });
  afterAll(async () => {
    await kura.close();
    await rm(scratch, { recursive: true, force: true });
  });

  const upload = async (datasetId: string, query: Record<string, string>, body: Buffer = bag): Promise<UploadView> => {
    const accepted = await kura.request
      .post(`/v1/datasets/${datasetId}/uploads`)
      .query({ fileName: 'robot.mcap', ...query })
      .set(bearer(operator.key))
      .set('Content-Type', 'application/octet-stream')
      .send(body);
    expect(accepted.status).toBe(202);
    return (await waitForUpload(kura, operator.key, accepted.body.id as string, 60_000)) as UploadView;
  };

  it('inspects a bag sent without a mapping, then imports it with the mapping the user settled on', async () => {
    const datasetId = await createDataset(kura, operator.key, 'private');
    const inspected = await upload(datasetId, {});
    expect(inspected.status).toBe('needs_mapping');
    expect(inspected.format).toBe('mcap');
    expect(inspected.errors.map((error) => error.code)).toEqual(['MAPPING_REQUIRED']);
    expect(inspected.inspection!.topics.map((topic) => topic.topic)).toEqual([
      '/arm/command',
      '/camera/front/image_raw/compressed',
      '/joint_states',
      '/task',
    ]);
    const suggested = inspected.inspection!.suggestedMapping!;
    expect(suggested.features['observation.state']).toMatchObject({ topic: '/joint_states', names: JOINTS });
    // Nothing was published: the dataset has no version.
    expect((await kura.request.get(`/v1/datasets/${datasetId}`).set(bearer(operator.key))).body.latestVersion).toBe(0);

    // The user's fix: a 10 Hz clock and an episode per recording (the bag has a 2 s gap).
    const mapping: McapMapping = { ...suggested, rateHz: 10, splitGapS: 1 };
    const imported = await upload(datasetId, { format: 'mcap', options: JSON.stringify({ mapping }) });
    expect([imported.status, imported.errors]).toEqual(['published', []]);
    expect([imported.episodeCount, imported.stepCount]).toEqual([2, 18]);
    expect(imported.options).toEqual({ mapping: expect.objectContaining({ rateHz: 10, splitGapS: 1 }) });

    const episodes = (await kura.request.get(`/v1/datasets/${datasetId}/episodes`).set(bearer(operator.key))).body.items as Array<{
      length: number;
      task: string;
    }>;
    expect(episodes.map((episode) => [episode.length, episode.task])).toEqual([
      [9, 'pick up the cube'],
      [9, 'put it in the box'],
    ]);
    // The first step of each episode is its tick 100 ms after its first message: the joints sampled then.
    // Read as the admin: an owner's slice leaves out held-out episodes (about 1 in 10, by a hash of the dataset).
    const slice = await kura.request
      .post('/v1/slices')
      .set(bearer(kura.adminKey))
      .send({ sources: [{ datasetId }] });
    expect(slice.status).toBe(201);
    const data = await getBytes(kura, `/v1/slices/${slice.body.id as string}/data?format=ndjson`, bearer(kura.adminKey));
    const lines = data.body
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { episode: number; step: number; timestamp: number; observation: { state: number[] } });
    const first = lines.find((line) => line.episode === 1 && line.step === 0)!;
    expect(first.timestamp).toBe(0);
    // float32 on both sides: the download writes float32 values in their shortest form.
    expect(first.observation.state.map(Math.fround)).toEqual(JOINTS.map((_, joint) => Math.fround(jointValue(3.1, joint))));
  });

  it('exports a slice as MCAP that imports back, with the mapping it carries, to the same rows', async () => {
    const datasetId = await createDataset(kura, operator.key, 'private');
    const inspected = await upload(datasetId, {});
    const mapping: McapMapping = { ...inspected.inspection!.suggestedMapping!, rateHz: 10, splitGapS: 1 };
    expect((await upload(datasetId, { format: 'mcap', options: JSON.stringify({ mapping }) })).status).toBe('published');
    const ndjsonOf = async (id: string) => {
      const slice = await kura.request
        .post('/v1/slices')
        .set(bearer(kura.adminKey))
        .send({ sources: [{ datasetId: id }] });
      return {
        slice: slice.body.id as string,
        rows: (await getBytes(kura, `/v1/slices/${slice.body.id as string}/data?format=ndjson`, bearer(kura.adminKey))).body.toString(
          'utf8',
        ),
      };
    };
    const original = await ndjsonOf(datasetId);
    const exported = await getBytes(kura, `/v1/slices/${original.slice}/data?format=mcap`, bearer(kura.adminKey));
    expect(exported.status).toBe(200);
    expect(exported.headers['content-type']).toContain('application/x-mcap');
    expect(exported.body.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x4d, 0x43, 0x41, 0x50, 0x30, 0x0d, 0x0a]));

    // No options: the file's own kura.mapping metadata maps it.
    const copy = await createDataset(kura, operator.key, 'private');
    const reimported = await upload(copy, { fileName: 'slice.mcap' }, exported.body);
    expect([reimported.status, reimported.errors, reimported.warnings, reimported.episodeCount, reimported.stepCount]).toEqual([
      'published',
      [],
      [],
      2,
      18,
    ]);
    const rows = (text: string) =>
      text
        .trimEnd()
        .split('\n')
        .map((line) => {
          const { sourceEpisode: _, ...step } = JSON.parse(line) as Record<string, unknown>;
          return step;
        });
    expect(rows((await ndjsonOf(copy)).rows)).toEqual(rows(original.rows));
  });

  it('refuses a mapping that names a topic the bag does not have, saying which it has', async () => {
    const datasetId = await createDataset(kura, operator.key, 'private');
    const mapping = { rateHz: 10, features: { action: { topic: '/cmd_vel', field: 'linear.x' } } };
    const refused = await upload(datasetId, { format: 'mcap', options: JSON.stringify({ mapping }) });
    expect(refused.status).toBe('failed');
    expect(refused.errors[0]).toMatchObject({ code: 'MCAP_TOPIC_MISSING', location: { field: 'mapping.features.action' } });
    expect(refused.inspection).toBeNull();
  });

  it('checks a mapping before a byte is read: a clock must be given', async () => {
    const datasetId = await createDataset(kura, operator.key, 'private');
    const refused = await kura.request
      .post(`/v1/datasets/${datasetId}/uploads`)
      .query({
        format: 'mcap',
        options: JSON.stringify({ mapping: { features: { action: { topic: '/arm/command', field: 'linear.x' } } } }),
      })
      .set(bearer(operator.key))
      .set('Content-Type', 'application/octet-stream')
      .send(bag);
    expect([refused.status, refused.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(refused.body.error.details.location).toEqual({ field: 'options.mapping.rateHz' });
  });
});
