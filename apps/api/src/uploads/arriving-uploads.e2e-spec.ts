// Kura NDJSON uploads are converted while their body arrives (IngestService.receiveArriving): the
// ingest job keeps that conversion when the dataset did not move meanwhile, and converts the stored
// upload again when another upload published first. Either way every episode lands once.
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { PrismaClient } from '@kura/core';
import { ArrivingConversion } from '../../../../packages/core/src/uploads/ingest/arriving-conversion.js';
import { bearer, eventually, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset, seedNdjson, uploadAndWait, waitForUpload } from '../../../../test/support/datasets.js';

describe('uploads converted as they arrive', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  const replays = jest.spyOn(ArrivingConversion.prototype, 'replay');

  beforeAll(async () => {
    // Small shards: an upload makes several, handed over one by one.
    kura = await startTestApp({ KURA_JOB_ATTEMPTS: '1', KURA_SHARD_BYTES: String(64 * 1024) });
    operator = await kura.createKey('operator');
  });
  afterEach(() => void replays.mockClear());
  afterAll(async () => {
    replays.mockRestore();
    await kura.close();
  });

  const upload = (datasetId: string, body: string) =>
    uploadAndWait(kura, operator.key, datasetId, body, { query: '?format=kura-ndjson', contentType: 'application/x-ndjson' });
  const episodes = async (datasetId: string) =>
    (await kura.request.get(`/v1/datasets/${datasetId}/episodes`).query({ limit: 500 }).set(bearer(operator.key)).expect(200)).body
      .items as Array<{ episodeIndex: number; sourceEpisode: string; version: number }>;
  /** An upload whose body is sent in parts, as the test says; `response` is the API's answer. */
  const startUpload = (datasetId: string, body: Buffer) => {
    const server = kura.app.getHttpServer();
    const listening = server.listening ? Promise.resolve() : new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    let sent = 0;
    const request = listening.then(() =>
      httpRequest({
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        method: 'POST',
        path: `/v1/datasets/${datasetId}/uploads?format=kura-ndjson`,
        headers: { ...bearer(operator.key), 'Content-Type': 'application/x-ndjson', 'Content-Length': body.length },
      }),
    );
    const response = request.then(
      (open) =>
        new Promise<{ status: number; body: { id: string } }>((resolve, reject) => {
          open.on('error', reject);
          open.on('response', (answer) => {
            let text = '';
            answer.on('data', (chunk: Buffer) => (text += chunk.toString()));
            answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body: JSON.parse(text) as { id: string } }));
          });
        }),
    );
    response.catch(() => undefined); // a cut upload has no answer
    return {
      response,
      send: async (part: Buffer) => {
        const open = await request;
        await new Promise<void>((resolve) => open.write(part, () => resolve()));
        sent += part.length;
        if (sent === body.length) open.end();
      },
      destroy: () => void request.then((open) => open.destroy()),
    };
  };
  /** The spares' folders, and what each holds of an upload (`in/`): nothing once uploads are done. */
  const spareInputs = async () => {
    const root = join(kura.dataDir, 'jail-spares');
    return Promise.all((await readdir(root)).map(async (spare) => readdir(join(root, spare, 'in'))));
  };

  it('keeps the conversion made as the upload arrived', async () => {
    const datasetId = await createDataset(kura, operator.key);
    const done = await upload(datasetId, seedNdjson({ episodes: 30, length: 4, images: true }));
    expect(done).toMatchObject({ status: 'published', episodeCount: 30, stepCount: 120, version: 1 });
    expect(replays).toHaveBeenCalledTimes(1);
    expect((await episodes(datasetId)).map((episode) => episode.episodeIndex)).toEqual([...Array(30).keys()]);
    // An upload without a declared format is detected from its stored bytes, as before.
    const detected = await uploadAndWait(
      kura,
      operator.key,
      datasetId,
      seedNdjson({ episodes: 2, length: 4, firstEpisode: 30, images: true }),
      {
        query: '?fileName=more.ndjson',
      },
    );
    expect(detected).toMatchObject({ status: 'published', version: 2 });
    expect(replays).toHaveBeenCalledTimes(1);
  });

  it('fails an upload whose conversion fails as it arrives as any other, and leaves nothing of it', async () => {
    const datasetId = await createDataset(kura, operator.key);
    // Episodes enough for several shards before the bad line: some are handed over before it fails.
    const good = seedNdjson({ episodes: 300, length: 10, images: true });
    const done = await upload(datasetId, `${good}{"episode": 300, "step": \n`);
    expect(done).toMatchObject({ status: 'failed', errors: [expect.objectContaining({ code: 'NDJSON_INVALID_JSON' })] });
    expect(replays).toHaveBeenCalledTimes(1);
    await expect(replays.mock.results[0]!.value).rejects.toMatchObject({ code: 'NDJSON_INVALID_JSON' });
    expect(await kura.app.get(PrismaClient).episode.count({ where: { datasetId } })).toBe(0);
    // Its shards are removed right after it is marked failed.
    const shards = join(kura.dataDir, 'blobs', 'datasets', datasetId, 'shards');
    await eventually(async () => ((await readdir(shards).catch(() => [])).length === 0 ? true : undefined));
  });

  it('converts again when another upload published into the dataset meanwhile', async () => {
    const datasetId = await createDataset(kura, operator.key);
    // The first upload's body is half sent when the second one is published: the conversion the
    // first made as it arrived started from an empty dataset, which it no longer is.
    const slow = Buffer.from(seedNdjson({ episodes: 20, length: 3 }));
    const first = startUpload(datasetId, slow);
    await first.send(slow.subarray(0, slow.length / 2));
    const second = await upload(datasetId, seedNdjson({ episodes: 25, length: 3, firstEpisode: 100 }));
    expect(second).toMatchObject({ status: 'published', version: 1 });
    expect(replays).toHaveBeenCalledTimes(1);
    await first.send(slow.subarray(slow.length / 2));
    const accepted = await first.response;
    expect(accepted.status).toBe(202);
    const done = await waitForUpload(kura, operator.key, accepted.body.id);
    expect(done).toMatchObject({ status: 'published', version: 2, episodeCount: 20 });
    expect(replays).toHaveBeenCalledTimes(1);
    const listed = await episodes(datasetId);
    expect(listed.map((episode) => episode.episodeIndex)).toEqual([...Array(45).keys()]);
    expect(listed.slice(25).map((episode) => episode.sourceEpisode)).toEqual([...Array(20).keys()].map(String));
    // Both conversions were handed over or given up: no spare holds an upload.
    await eventually(async () => ((await spareInputs()).every((input) => input.length === 0) ? true : undefined));
  });

  it('gives the conversion up when the body breaks off or is refused', async () => {
    const datasetId = await createDataset(kura, operator.key);
    const body = Buffer.from(seedNdjson({ episodes: 200, length: 10, images: true }));
    // Half the declared body, then the connection is cut.
    const cut = startUpload(datasetId, body);
    await cut.send(body.subarray(0, body.length / 2));
    await new Promise((resolve) => setTimeout(resolve, 200));
    cut.destroy();
    // A body whose sha256 is not the one declared.
    await kura.request
      .post(`/v1/datasets/${datasetId}/uploads?format=kura-ndjson`)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/x-ndjson')
      .set('Content-SHA256', '0'.repeat(64))
      .send(body)
      .expect(400);
    await eventually(async () => ((await spareInputs()).every((input) => input.length === 0) ? true : undefined));
    expect(replays).not.toHaveBeenCalled();
    const uploads = await kura.request.get(`/v1/datasets/${datasetId}/uploads`).set(bearer(operator.key)).expect(200);
    expect(uploads.body.items).toEqual([]);
  });
});
