// Publishing a version: episode rows are written in bulk before a short publishing transaction
// (an NDJSON file of 20,000 short episodes used to fail with Prisma's interactive-transaction
// timeout), stay invisible until then, and keep the source's own episode ids.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaClient } from '@kura/core';
import { bearer, eventually, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
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

  it('publishes 100 uploads sent at once into one dataset as versions 1–100, every episode once', async () => {
    const datasetId = await createDataset(kura, operator.key);
    // 200 took 172 s here (docs/benchmarks.md); 100 keeps the suite's time while testing the same.
    const UPLOADS = 100;
    // Each upload holds two episodes named after it: any loss or duplicate shows by name.
    const body = (upload: number) =>
      Buffer.from(
        [0, 1]
          .map((episode) =>
            JSON.stringify({ episode: `u${upload}-${episode}`, step: 0, observation: { state: [upload, episode] }, action: [0] }),
          )
          .join('\n') + '\n',
      );
    const accepted = await Promise.all(
      Array.from({ length: UPLOADS }, (_, upload) =>
        kura.request
          .post(`/v1/datasets/${datasetId}/uploads?format=kura-ndjson`)
          .set(bearer(operator.key))
          .set('Content-Type', 'application/x-ndjson')
          .send(body(upload)),
      ),
    );
    expect(accepted.filter((reply) => reply.status !== 202).map((reply) => reply.body)).toEqual([]);
    // One poller for all (a poller per upload would be a load test of its own).
    await eventually(async () => {
      const dataset = await kura.request.get(`/v1/datasets/${datasetId}`).set(bearer(operator.key));
      return dataset.body.latestVersion === UPLOADS ? true : undefined;
    }, 400_000);
    const uploads = await Promise.all(
      accepted.map(async (reply) => (await kura.request.get(`/v1/uploads/${reply.body.id as string}`).set(bearer(operator.key))).body),
    );
    expect(uploads.filter((upload) => upload.status !== 'published')).toEqual([]);
    const range = (count: number, from = 0) => Array.from({ length: count }, (_, index) => from + index);
    expect(uploads.map((upload) => upload.version as number).sort((a, b) => a - b)).toEqual(range(UPLOADS, 1));

    const episodes = await allEpisodes(datasetId);
    expect(episodes.map((episode) => episode.episodeIndex)).toEqual(range(2 * UPLOADS));
    expect(episodes.map((episode) => episode.sourceEpisode).sort()).toEqual(
      range(UPLOADS)
        .flatMap((upload) => [`u${upload}-0`, `u${upload}-1`])
        .sort(),
    );
    // An upload's two episodes are neighbours, in the version it was published as.
    const versionOf = new Map(uploads.map((upload) => [upload.id as string, upload.version as number]));
    for (let index = 0; index < episodes.length; index += 2) {
      expect(episodes[index]!.version).toBe(episodes[index + 1]!.version);
      expect(episodes[index]!.sourceEpisode.replace(/-0$/, '')).toBe(episodes[index + 1]!.sourceEpisode.replace(/-1$/, ''));
    }
    expect(new Set(versionOf.values()).size).toBe(UPLOADS);
  }, 600_000);

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
