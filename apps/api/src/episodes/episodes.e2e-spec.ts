import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { episodeBucket } from '@kura/core';
import { bearer, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset, seedDataset } from '../../../../test/support/datasets.js';
import { CAM_HIGH, EPISODE_29_STEPS, episode29Mp4, publishLerobot, unitreeEpisode29 } from '../../../../test/support/lerobot-video.js';

/** A new dataset whose episode buckets (by index) satisfy `wanted`: buckets come from the id, so a few tries find one. */
async function datasetWhere(
  kura: TestApp,
  key: string,
  access: 'public' | 'sample' | 'private',
  wanted: (bucketOf: (index: number) => number) => boolean,
) {
  for (let attempt = 0; attempt < 500; attempt++) {
    const datasetId = await createDataset(kura, key, access);
    if (wanted((index) => episodeBucket(datasetId, index))) return datasetId;
  }
  throw new Error('no dataset id with the wanted episode buckets');
}

describe('GET /v1/datasets/:id/episodes/:n/videos/:feature (LeRobot unitree_g1 episode 29 with its AV1 mp4)', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let upload: Buffer;
  let mp4: Buffer;
  let datasetId: string;
  const video = (id = datasetId, episode: number | string = 0, feature = CAM_HIGH) =>
    `/v1/datasets/${id}/episodes/${episode}/videos/${feature}`;

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    upload = await unitreeEpisode29();
    mp4 = await episode29Mp4();
    // Public, and its one episode neither held out nor needing a grant: anyone may read it.
    datasetId = await datasetWhere(kura, operator.key, 'public', (bucketOf) => bucketOf(0) < 90);
    await publishLerobot(kura, operator.key, datasetId, upload);
  }, 120_000);
  afterAll(async () => {
    await kura.close();
  });

  it('serves the episode’s mp4 byte for byte to anonymous callers of a public dataset, with a strong ETag', async () => {
    const response = await getBytes(kura, video());
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('video/mp4');
    expect(response.headers['accept-ranges']).toBe('bytes');
    expect(Number(response.headers['content-length'])).toBe(mp4.length);
    expect(response.body.equals(mp4)).toBe(true);
    expect(response.headers.etag).toMatch(/^"[0-9a-f]{64}\.mp4"$/);
    expect((await getBytes(kura, video(), { 'If-None-Match': response.headers.etag! })).status).toBe(304);
  });

  it('answers Range with 206 and the exact bytes, so a player can seek; a stale If-Range gets the whole file', async () => {
    const middle = await getBytes(kura, video(), { Range: 'bytes=1000-1999' });
    expect(middle.status).toBe(206);
    expect(middle.headers['content-range']).toBe(`bytes 1000-1999/${mp4.length}`);
    expect(middle.body.equals(mp4.subarray(1000, 2000))).toBe(true);
    const open = await getBytes(kura, video(), { Range: 'bytes=0-' });
    expect(open.status).toBe(206);
    expect(open.body.equals(mp4)).toBe(true);
    const tail = await getBytes(kura, video(), { Range: 'bytes=-100' });
    expect(tail.body.equals(mp4.subarray(mp4.length - 100))).toBe(true);
    const stale = await getBytes(kura, video(), { Range: 'bytes=0-9', 'If-Range': '"other"' });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(mp4.length);
    const head = await kura.request.head(video());
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(mp4.length);
  });

  it.each([
    ['bytes=x-y', 400, 'INVALID_RANGE'],
    ['bytes=0-1,5-6', 400, 'INVALID_RANGE'],
    ['bytes=99999999-', 416, 'RANGE_NOT_SATISFIABLE'],
  ])('refuses Range %s with %i %s', async (range, status, code) => {
    const response = await kura.request.get(video()).set('Range', range);
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe(code);
  });

  it('is the file the slice’s video frames point into: NDJSON frames carry its blob and their time in it', async () => {
    const slice = await kura.request.post('/v1/slices').send({ sources: [{ datasetId }], episodes: '0' });
    expect(slice.status).toBe(201);
    const data = await kura.request.get(`/v1/slices/${slice.body.id}/data?format=ndjson`);
    const lines = data.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines).toHaveLength(EPISODE_29_STEPS);
    const frames = lines.map((line) => line.observation['images.cam_high'].video);
    expect(new Set(frames.map((frame: { blob: string }) => frame.blob)).size).toBe(1);
    expect(frames[0].blob).toContain(JSON.parse((await kura.request.get(video())).headers.etag!).replace(/\.mp4$/, ''));
    expect(frames[220].timestamp).toBeCloseTo(220 / 30, 4);
  });

  it('names what is wrong: unknown dataset, episode, feature, a feature that is not a video, a bad index', async () => {
    const cases: Array<[string, number, string]> = [
      [video('ds_0000000000000000000000'), 404, 'DATASET_NOT_FOUND'],
      [video(datasetId, 7), 404, 'EPISODE_NOT_FOUND'],
      [video(datasetId, 0, 'observation.images.nope'), 404, 'VIDEO_FEATURE_NOT_FOUND'],
      [video(datasetId, 0, 'observation.state'), 404, 'VIDEO_FEATURE_NOT_FOUND'],
      [video(datasetId, 'first'), 400, 'VALIDATION_FAILED'],
    ];
    for (const [path, status, code] of cases) {
      const response = await kura.request.get(path);
      expect({ path, status: response.status, code: response.body.error?.code }).toEqual({ path, status, code });
    }
    const notVideo = await kura.request.get(video(datasetId, 0, 'observation.state'));
    expect(notVideo.body.error.details.videoFeatures).toEqual([CAM_HIGH]);
  });

  it('follows the read rules: private datasets are 404 to others, held-out episodes are for admins only', async () => {
    const privateId = await createDataset(kura, operator.key, 'private');
    await publishLerobot(kura, operator.key, privateId, upload);
    expect((await kura.request.get(video(privateId))).body.error.code).toBe('DATASET_NOT_FOUND');
    const developer = await kura.createKey('developer');
    expect((await kura.request.get(video(privateId)).set(bearer(developer.key))).status).toBe(404);

    const heldOutId = await datasetWhere(kura, operator.key, 'public', (bucketOf) => bucketOf(0) >= 90);
    await publishLerobot(kura, operator.key, heldOutId, upload);
    const refused = await kura.request.get(video(heldOutId)).set(bearer(operator.key));
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('EPISODE_HELD_OUT');
    const admin = await getBytes(kura, video(heldOutId), bearer(kura.adminKey));
    expect(admin.status).toBe(200);
    expect(admin.body.equals(mp4)).toBe(true);
  }, 60_000);

  it('on a sample dataset, serves anonymous callers the public part only', async () => {
    // Episode 0 is the sample's guaranteed episode; episode 1 is past the sample (and not held out).
    const sampleId = await datasetWhere(
      kura,
      operator.key,
      'sample',
      (bucketOf) => bucketOf(0) < 90 && bucketOf(1) >= 10 && bucketOf(1) < 90,
    );
    await publishLerobot(kura, operator.key, sampleId, upload);
    await publishLerobot(kura, operator.key, sampleId, upload);
    expect((await kura.request.get(video(sampleId, 0))).status).toBe(200);
    expect((await kura.request.get(video(sampleId, 1))).body.error.code).toBe('EPISODE_NOT_FOUND');
    expect((await kura.request.get(video(sampleId, 1)).set(bearer(operator.key))).status).toBe(200);
  }, 60_000);

  it('404s a video feature on a dataset without videos', async () => {
    const { datasetId: plain } = await seedDataset(kura, operator.key, { episodes: 1, length: 3 });
    const response = await kura.request.get(video(plain, 0, 'observation.images.front'));
    expect(response.status).toBe(404);
    expect(response.body.error).toMatchObject({ code: 'VIDEO_FEATURE_NOT_FOUND', details: { videoFeatures: [] } });
  });
});
