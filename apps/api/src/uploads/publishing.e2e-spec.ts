// Publishing a version: episode rows are written in bulk before a short publishing transaction
// (an NDJSON file of 20,000 short episodes used to fail with Prisma's interactive-transaction
// timeout), stay invisible until then, and keep the source's own episode ids.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaClient } from '@kura/core';
import { bearer, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset, uploadAndWait } from '../../../../test/support/datasets.js';
import { CAM_HIGH, publishLerobot, unitreeEpisode29 } from '../../../../test/support/lerobot-video.js';

const EPISODES = 20_000;

/** `episodes` one-step episodes, numbered from `first`; the state holds the episode number. */
function oneStepEpisodes(episodes: number, first = 0): Buffer {
  const lines: string[] = [];
  for (let episode = first; episode < first + episodes; episode++)
    lines.push(JSON.stringify({ episode, step: 0, observation: { state: [episode, 0.5] }, action: [episode % 7] }));
  return Buffer.from(`${lines.join('\n')}\n`);
}

describe('publishing a version', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };

  beforeAll(async () => {
    // One attempt: a failure shows at once instead of after every retry.
    kura = await startTestApp({ KURA_JOB_ATTEMPTS: '1' });
    operator = await kura.createKey('operator');
  });
  afterAll(async () => {
    await kura.close();
  });

  const uploadAndSettle = (datasetId: string, body: Buffer) =>
    uploadAndWait(kura, operator.key, datasetId, body, {
      query: '?fileName=many.ndjson',
      contentType: 'application/x-ndjson',
      timeoutMs: 240_000,
    });
  const allEpisodes = async (datasetId: string) => {
    const items: Array<{ episodeIndex: number; version: number; sourceEpisode: string; length: number }> = [];
    let cursor: string | undefined;
    do {
      const page = await kura.request
        .get(`/v1/datasets/${datasetId}/episodes`)
        .query({ limit: 500, ...(cursor ? { cursor } : {}) })
        .expect(200);
      items.push(...page.body.items);
      cursor = page.body.nextCursor ?? undefined;
    } while (cursor);
    return items;
  };

  it('publishes 20,000 one-step episodes', async () => {
    const datasetId = await createDataset(kura, operator.key);
    const started = Date.now();
    const upload = await uploadAndSettle(datasetId, oneStepEpisodes(EPISODES));
    const elapsedMs = Date.now() - started;
    console.log(`ingest of ${EPISODES} one-step episodes: ${elapsedMs} ms (upload settled as ${upload.status})`);
    expect(upload).toMatchObject({ status: 'published', episodeCount: EPISODES, stepCount: EPISODES, version: 1, errors: [] });

    const episodes = await allEpisodes(datasetId);
    expect(episodes.length).toBe(EPISODES);
    expect(
      episodes.every(
        (episode, index) => episode.episodeIndex === index && episode.version === 1 && episode.sourceEpisode === String(index),
      ),
    ).toBe(true);
    const versions = await kura.request.get(`/v1/datasets/${datasetId}/versions`).expect(200);
    expect(versions.body.items).toMatchObject([{ version: 1, episodeCount: EPISODES, stepCount: EPISODES }]);
  }, 300_000);

  it("keeps the source's own id of each episode: numbers and strings of NDJSON `episode`", async () => {
    const datasetId = await createDataset(kura, operator.key);
    const line = (episode: number | string, step: number) =>
      JSON.stringify({ episode, step, observation: { state: [step, 0] }, action: [step] });
    const body = [line(29, 0), line(29, 1), line('pick-3', 0), line(7, 0)].join('\n');
    expect(await uploadAndSettle(datasetId, Buffer.from(body))).toMatchObject({ status: 'published', episodeCount: 3 });
    const episodes = await allEpisodes(datasetId);
    expect(episodes.map(({ episodeIndex, sourceEpisode, length }) => ({ episodeIndex, sourceEpisode, length }))).toEqual([
      { episodeIndex: 0, sourceEpisode: '29', length: 2 },
      { episodeIndex: 1, sourceEpisode: 'pick-3', length: 1 },
      { episodeIndex: 2, sourceEpisode: '7', length: 1 },
    ]);
  });

  it('never shows the rows of an ingest that died before publishing, and the next ingest replaces them', async () => {
    const datasetId = await createDataset(kura, operator.key);
    expect(await uploadAndSettle(datasetId, oneStepEpisodes(3))).toMatchObject({ status: 'published', version: 1 });
    const prisma = kura.app.get(PrismaClient);
    const [published] = await prisma.episode.findMany({ where: { datasetId }, take: 1 });
    // What a process killed between writing version 2's episode rows and publishing leaves behind.
    await prisma.episode.createMany({
      data: [3, 4, 5, 6].map((episodeIndex) => ({
        ...published!,
        metadata: undefined,
        episodeIndex,
        version: 2,
        uploadId: 'upl_killed',
        sourceEpisode: `killed-${episodeIndex}`,
      })),
    });

    expect((await allEpisodes(datasetId)).map((episode) => episode.episodeIndex)).toEqual([0, 1, 2]);
    const slice = await kura.request
      .post('/v1/slices')
      .set(bearer(kura.adminKey))
      .send({ sources: [{ datasetId }] })
      .expect(201);
    expect(slice.body.sources).toMatchObject([{ version: 1, episodes: '0-2', episodeCount: 3 }]);

    expect(await uploadAndSettle(datasetId, oneStepEpisodes(2, 100))).toMatchObject({ status: 'published', version: 2, episodeCount: 2 });
    const episodes = await allEpisodes(datasetId);
    expect(episodes.map(({ episodeIndex, version, sourceEpisode }) => ({ episodeIndex, version, sourceEpisode }))).toEqual([
      { episodeIndex: 0, version: 1, sourceEpisode: '0' },
      { episodeIndex: 1, version: 1, sourceEpisode: '1' },
      { episodeIndex: 2, version: 1, sourceEpisode: '2' },
      { episodeIndex: 3, version: 2, sourceEpisode: '100' },
      { episodeIndex: 4, version: 2, sourceEpisode: '101' },
    ]);
    expect(await prisma.episode.count({ where: { datasetId } })).toBe(5);
  });

  it('serves no video of an episode whose version is not published', async () => {
    const datasetId = await createDataset(kura, operator.key);
    await publishLerobot(kura, operator.key, datasetId, await unitreeEpisode29());
    const prisma = kura.app.get(PrismaClient);
    const [published] = await prisma.episode.findMany({ where: { datasetId } });
    await prisma.episode.create({ data: { ...published!, metadata: undefined, episodeIndex: 1, version: 2, uploadId: 'upl_killed' } });
    const video = (episode: number) =>
      getBytes(kura, `/v1/datasets/${datasetId}/episodes/${episode}/videos/${CAM_HIGH}`, bearer(kura.adminKey));
    expect((await video(0)).status).toBe(200);
    const unpublished = await video(1);
    expect(unpublished.status).toBe(404);
    expect((JSON.parse(unpublished.body.toString('utf8')) as { error: { code: string } }).error.code).toBe('EPISODE_NOT_FOUND');
  });
});
