import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RecordBatchReader } from 'apache-arrow';
import jpeg from 'jpeg-js';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOB_STORE, IngestService, PrismaClient, type BlobStore } from '@kura/core';
import { bearer, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { createDataset as createDatasetOf, waitForUpload } from '../../../../test/support/datasets.js';

interface Step {
  episode: number | string;
  step: number;
  timestamp?: number;
  observation: Record<string, unknown>;
  action: number[];
  reward?: number;
  language?: string;
}

// jpeg-js takes ~60 ms per call, so each shade is encoded once.
const jpegByShade = new Map<number, string>();
const tinyJpeg = (shade: number) => {
  const cached = jpegByShade.get(shade % 256);
  if (cached) return cached;
  const encoded = Buffer.from(jpeg.encode({ width: 8, height: 6, data: Buffer.alloc(8 * 6 * 4, shade % 256) }, 90).data).toString('base64');
  jpegByShade.set(shade % 256, encoded);
  return encoded;
};

/** Kura NDJSON for `episodes` episodes of `length` steps; values are a known function of (episode, step). */
function ndjson(params: { episodes: number; length: number; firstEpisode?: number; dims?: number; task?: string }): string {
  const lines: string[] = [];
  for (let episode = 0; episode < params.episodes; episode++) {
    for (let step = 0; step < params.length; step++) {
      const id = (params.firstEpisode ?? 0) + episode;
      const line: Step = {
        episode: id,
        step,
        timestamp: step * 0.1,
        observation: {
          state: Array.from({ length: params.dims ?? 3 }, (_, dim) => id * 100 + step + dim / 10),
          'images.front': { jpeg: tinyJpeg(step * 10) },
        },
        action: [step, -step],
        reward: step === params.length - 1 ? 1 : 0,
        language: params.task ?? `pick cube ${id}`,
      };
      lines.push(JSON.stringify(line));
    }
  }
  return `${lines.join('\n')}\n`;
}

const lines = (body: string) => body.trimEnd().split('\n');

describe('uploads and ingest (Kura NDJSON)', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let counter = 0;

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
  });
  afterAll(async () => {
    await kura.close();
  });

  const createDataset = (access: 'public' | 'sample' | 'private' = 'public') => createDatasetOf(kura, operator.key, access);
  const upload = (datasetId: string, body: string | Buffer, query = '', headers: Record<string, string> = {}) =>
    kura.request
      .post(`/v1/datasets/${datasetId}/uploads${query}`)
      .set(bearer(operator.key))
      .set('Content-Type', 'application/x-ndjson')
      .set(headers)
      .send(typeof body === 'string' ? Buffer.from(body) : body);
  const settled = (uploadId: string) => waitForUpload(kura, operator.key, uploadId, 30_000);

  it('publishes an upload as version 1 with its episodes, shards and statistics', async () => {
    const datasetId = await createDataset();
    const body = ndjson({ episodes: 3, length: 5 });
    const accepted = await upload(datasetId, body, '?fileName=robot.ndjson', {
      'Content-SHA256': createHash('sha256').update(body).digest('hex'),
    });
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({
      id: expect.stringMatching(/^upl_/),
      datasetId,
      status: 'received',
      bytes: Buffer.byteLength(body),
      sha256: createHash('sha256').update(body).digest('hex'),
    });

    const done = await settled(accepted.body.id);
    expect(done).toMatchObject({
      status: 'published',
      progress: 1,
      format: 'kura-ndjson',
      episodeCount: 3,
      stepCount: 15,
      version: 1,
      errors: [],
    });

    const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body;
    expect(dataset).toMatchObject({ latestVersion: 1, episodeCount: 3, stepCount: 15 });
    expect(dataset.features).toEqual({
      'observation.state': { dtype: 'float32', shape: [3] },
      'observation.images.front': { dtype: 'image', shape: [6, 8, 3], encoding: 'jpeg' },
      action: { dtype: 'float32', shape: [2] },
    });
    const versions = (await kura.request.get(`/v1/datasets/${datasetId}/versions`)).body.items;
    expect(versions).toEqual([{ version: 1, episodeCount: 3, stepCount: 15, uploadId: accepted.body.id, createdAt: expect.any(String) }]);
    const episodes = (await kura.request.get(`/v1/datasets/${datasetId}/episodes`)).body.items;
    expect(
      episodes.map((episode: { episodeIndex: number; length: number; task: string }) => [
        episode.episodeIndex,
        episode.length,
        episode.task,
      ]),
    ).toEqual([
      [0, 5, 'pick cube 0'],
      [1, 5, 'pick cube 1'],
      [2, 5, 'pick cube 2'],
    ]);

    const stats = (await kura.request.get(`/v1/datasets/${datasetId}/stats`)).body;
    expect(stats.version).toBe(1);
    const state = stats.features['observation.state'];
    expect(state.count).toBe(15);
    // state[dim] = episode*100 + step + dim/10 over episodes 0..2, steps 0..4.
    expect(state.min[0]).toBeCloseTo(0, 5);
    expect(state.max[2]).toBeCloseTo(204.2, 3);
    expect(state.mean[0]).toBeCloseTo(102, 3);
    expect(stats.features['observation.images.front']).toEqual({ count: 15 });

    // The shard holds what was uploaded, and each episode is exactly its recorded byte range.
    const blobs = kura.app.get<BlobStore>(BLOB_STORE);
    const shardKeys: string[] = [];
    for await (const blob of blobs.list({ prefix: `datasets/${datasetId}/shards/` })) shardKeys.push(blob.key);
    expect(shardKeys).toHaveLength(1);
    const reader = await RecordBatchReader.from(await blobs.get({ key: shardKeys[0]! }));
    const rows: Array<Record<string, unknown>> = [];
    for await (const batch of reader) for (const row of batch) rows.push(row.toJSON());
    expect(rows).toHaveLength(15);
    const row = rows[7]!;
    expect(Number(row.episode_index)).toBe(1);
    expect(row.step_index).toBe(2);
    expect(row.timestamp).toBeCloseTo(0.2, 10);
    expect(row.is_first).toBe(false);
    expect(row.language_instruction).toBe('pick cube 1');
    expect(Array.from(row['observation.state'] as Iterable<number>)).toEqual([102, 102.1, 102.2].map(Math.fround));
    expect(Buffer.from(row['observation.images.front'] as Uint8Array).toString('base64')).toBe(tinyJpeg(20));
    expect(Array.from(row.action as Iterable<number>)).toEqual([2, -2]);
    expect(rows[4]).toMatchObject({ is_last: true, reward: 1 });
  });

  it('splits a long episode into record batches of at most 1,000 steps, each episode a checksummed byte range of its shard', async () => {
    const datasetId = await createDataset();
    const done = await settled((await upload(datasetId, ndjson({ episodes: 2, length: 2500 }))).body.id);
    expect(done).toMatchObject({ status: 'published', episodeCount: 2, stepCount: 5000 });
    const rows = await kura.app.get(PrismaClient).episode.findMany({ where: { datasetId }, orderBy: { episodeIndex: 'asc' } });
    expect(rows.map((row) => [row.episodeIndex, row.length, row.batchStart, row.batchCount])).toEqual([
      [0, 2500, 0, 3],
      [1, 2500, 3, 3],
    ]);
    const blobs = kura.app.get<BlobStore>(BLOB_STORE);
    for (const row of rows) {
      const hash = createHash('sha256');
      for await (const chunk of await blobs.get({
        key: row.shardKey,
        range: { offset: Number(row.byteOffset), length: Number(row.byteLength) },
      }))
        hash.update(chunk as Buffer);
      expect(hash.digest('hex')).toBe(row.checksum);
    }
    const reader = await RecordBatchReader.from(await blobs.get({ key: rows[0]!.shardKey }));
    const batchSizes: number[] = [];
    for await (const batch of reader) batchSizes.push(batch.numRows);
    expect(batchSizes).toEqual([1000, 1000, 500, 1000, 1000, 500]);
  });

  it('publishes a second upload as version 2 and leaves version 1 as it was', async () => {
    const datasetId = await createDataset();
    expect((await settled((await upload(datasetId, ndjson({ episodes: 2, length: 4 }))).body.id)).version).toBe(1);
    const second = await settled((await upload(datasetId, ndjson({ episodes: 3, length: 6, firstEpisode: 10 }))).body.id);
    expect(second).toMatchObject({ status: 'published', version: 2, episodeCount: 3, stepCount: 18 });

    const latest = (await kura.request.get(`/v1/datasets/${datasetId}/episodes`)).body.items;
    expect(latest.map((episode: { episodeIndex: number }) => episode.episodeIndex)).toEqual([0, 1, 2, 3, 4]);
    const first = (await kura.request.get(`/v1/datasets/${datasetId}/episodes?version=1`)).body.items;
    expect(first.map((episode: { episodeIndex: number }) => episode.episodeIndex)).toEqual([0, 1]);
    const statsV1 = (await kura.request.get(`/v1/datasets/${datasetId}/stats?version=1`)).body.features['observation.state'];
    const statsV2 = (await kura.request.get(`/v1/datasets/${datasetId}/stats`)).body.features['observation.state'];
    expect(statsV1.count).toBe(8);
    expect(statsV2.count).toBe(26);
    expect(statsV2.max[0]).toBeCloseTo(1205, 3);
    // action = [step, −step], few distinct values: quantiles are exact data values (index ⌊q·(n−1)⌋),
    // and version 2's are those of all 26 steps, merged from version 1's stored statistics.
    const actionV1 = (await kura.request.get(`/v1/datasets/${datasetId}/stats?version=1`)).body.features.action;
    const actionV2 = (await kura.request.get(`/v1/datasets/${datasetId}/stats`)).body.features.action;
    expect([actionV1.q50, actionV1.q99]).toEqual([
      [1, -2],
      [3, 0],
    ]);
    expect([actionV2.q01, actionV2.q10, actionV2.q50, actionV2.q90, actionV2.q99]).toEqual([
      [0, -5],
      [0, -5],
      [2, -2],
      [4, 0],
      [5, 0],
    ]);
    const missing = await kura.request.get(`/v1/datasets/${datasetId}/stats?version=9`);
    expect([missing.status, missing.body.error.code]).toEqual([404, 'VERSION_NOT_FOUND']);
  });

  it('returns the first upload for a repeated Idempotency-Key, without a second version', async () => {
    const datasetId = await createDataset();
    const body = ndjson({ episodes: 1, length: 3 });
    const first = await upload(datasetId, body, '', { 'Idempotency-Key': 'robot-7-session-42' });
    const again = await upload(datasetId, body, '', { 'Idempotency-Key': 'robot-7-session-42' });
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    await settled(first.body.id);
    const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body;
    expect([dataset.latestVersion, dataset.episodeCount]).toEqual([1, 1]);
  });

  it('refuses an Idempotency-Key reused with another body or on another dataset (409), keeping nothing of the repeat', async () => {
    const datasetId = await createDataset();
    const otherDataset = await createDataset();
    const body = ndjson({ episodes: 1, length: 2 });
    const different = ndjson({ episodes: 1, length: 3 });
    const key = { 'Idempotency-Key': `robot-7-${counter++}` };
    const first = await upload(datasetId, body, '', key);
    expect(first.status).toBe(202);
    const repeats = [
      await upload(datasetId, different, '', key),
      await upload(datasetId, different, '', { ...key, 'Content-SHA256': createHash('sha256').update(different).digest('hex') }),
      await upload(otherDataset, body, '', key),
      await kura.request
        .post(`/v1/datasets/${datasetId}/uploads`)
        .set(bearer(operator.key))
        .set(key)
        .send({ multipart: true, bytes: Buffer.byteLength(different), sha256: createHash('sha256').update(different).digest('hex') }),
    ];
    expect(repeats.map((response) => [response.status, response.body.error?.code, response.body.error?.details?.uploadId])).toEqual(
      repeats.map(() => [409, 'IDEMPOTENCY_KEY_REUSED', first.body.id]),
    );
    // The same body on the same dataset is still the first upload.
    expect((await upload(datasetId, body, '', key)).body.id).toBe(first.body.id);
    await settled(first.body.id);
    const blobs = kura.app.get<BlobStore>(BLOB_STORE);
    const stored: string[] = [];
    for (const dataset of [datasetId, otherDataset])
      for await (const blob of blobs.list({ prefix: `datasets/${dataset}/uploads/` })) stored.push(blob.key);
    expect(stored).toEqual([`datasets/${datasetId}/uploads/${first.body.id}/raw`]);
  });

  it('removes work folders that a killed process left behind for finished uploads, at start', async () => {
    const datasetId = await createDataset();
    const published = await settled((await upload(datasetId, ndjson({ episodes: 1, length: 2 }))).body.id);
    const waiting = await kura.request
      .post(`/v1/datasets/${datasetId}/uploads`)
      .set(bearer(operator.key))
      .send({ multipart: true, bytes: 10, sha256: 'a'.repeat(64) });
    const leftover = join(kura.dataDir, 'work', published.id);
    const inUse = join(kura.dataDir, 'work', waiting.body.upload.id);
    await mkdir(join(leftover, 'files'), { recursive: true });
    await mkdir(inUse, { recursive: true });
    await kura.app.get(IngestService).onApplicationBootstrap();
    await expect(stat(leftover)).rejects.toThrow();
    expect((await stat(inUse)).isDirectory()).toBe(true);
  });

  it('refuses a body whose checksum differs, an empty body and a JSON body', async () => {
    const datasetId = await createDataset();
    const mismatch = await upload(datasetId, ndjson({ episodes: 1, length: 2 }), '', { 'Content-SHA256': '0'.repeat(64) });
    expect([mismatch.status, mismatch.body.error.code]).toEqual([400, 'UPLOAD_CHECKSUM_MISMATCH']);
    const empty = await upload(datasetId, '');
    expect([empty.status, empty.body.error.code]).toEqual([400, 'UPLOAD_EMPTY']);
    const json = await kura.request.post(`/v1/datasets/${datasetId}/uploads`).set(bearer(operator.key)).send({ steps: [] });
    expect([json.status, json.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    const badHeader = await upload(datasetId, 'x', '', { 'Content-SHA256': 'abc' });
    expect([badHeader.status, badHeader.body.error.code]).toEqual([400, 'VALIDATION_FAILED']);
    const badFormat = await upload(datasetId, 'x', '?format=csv');
    expect([badFormat.status, badFormat.body.error.details.issues[0].path]).toEqual([400, 'format']);
    const uploads = (await kura.request.get(`/v1/datasets/${datasetId}/uploads`).set(bearer(operator.key))).body.items;
    expect(uploads).toEqual([]);
  });

  it('takes whole episodes on one line each (episode documents), mixed with step lines', async () => {
    const datasetId = await createDataset();
    const document = (episode: number, length: number) =>
      JSON.stringify({
        episode,
        language: `stack block ${episode}`,
        steps: Array.from({ length }, (_, step) => ({
          timestamp: step * 0.1,
          observation: { state: [episode, step, 0], 'images.front': { jpeg: tinyJpeg(step) } },
          action: [step, -step],
        })),
      });
    const body = `${document(0, 4)}\n${document(1, 3)}\n${lines(ndjson({ episodes: 1, length: 2, firstEpisode: 2 })).join('\n')}\n`;
    const done = await settled((await upload(datasetId, body)).body.id);
    expect(done).toMatchObject({ status: 'published', format: 'kura-ndjson', episodeCount: 3, stepCount: 9 });
    const episodes = (await kura.request.get(`/v1/datasets/${datasetId}/episodes`)).body.items;
    expect(episodes.map((episode: { length: number; task: string }) => [episode.length, episode.task])).toEqual([
      [4, 'stack block 0'],
      [3, 'stack block 1'],
      [2, 'pick cube 2'],
    ]);
  });

  it('renames features with featureMap', async () => {
    const datasetId = await createDataset();
    const map = encodeURIComponent(JSON.stringify({ 'observation.images.front': 'observation.images.top' }));
    const done = await settled((await upload(datasetId, ndjson({ episodes: 1, length: 2 }), `?featureMap=${map}`)).body.id);
    expect(done.status).toBe('published');
    const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body;
    expect(Object.keys(dataset.features).sort()).toEqual(['action', 'observation.images.top', 'observation.state']);
  });

  const badInputs: Array<[string, () => string | Buffer, string, Record<string, unknown>, string?]> = [
    [
      'a line that is not JSON',
      () => `${lines(ndjson({ episodes: 1, length: 2 }))[0]}\n{"episode": 0, "step": 1,\n`,
      'NDJSON_INVALID_JSON',
      { line: 2 },
    ],
    [
      'a gap in the steps',
      () => {
        const l = lines(ndjson({ episodes: 1, length: 4 }));
        return `${[l[0], l[1], l[3]].join('\n')}\n`;
      },
      'NDJSON_STEP_ORDER',
      { episode: '0', step: 3, line: 3 },
    ],
    [
      'an infinite action',
      () => ndjson({ episodes: 1, length: 3 }).replace('"action":[1,-1]', '"action":[1e999,-1]'),
      'NON_FINITE_VALUE',
      { episode: '0', step: 1, field: 'action' },
    ],
    [
      'time going backwards',
      () => ndjson({ episodes: 1, length: 3 }).replace('"timestamp":0.2', '"timestamp":0.05'),
      'NON_MONOTONIC_TIMESTAMP',
      { episode: '0', step: 2, field: 'timestamp' },
    ],
    [
      'a vector changing length',
      () => ndjson({ episodes: 1, length: 3 }).replace('"action":[2,-2]', '"action":[2,-2,0]'),
      'EPISODE_SHAPE_MISMATCH',
      { episode: '0', step: 2, field: 'action' },
    ],
    [
      'an episode split in two',
      () => {
        const l = lines(ndjson({ episodes: 2, length: 2 }));
        return `${[l[0], l[2], l[1]].join('\n')}\n`;
      },
      'NDJSON_EPISODE_NOT_CONTIGUOUS',
      { episode: '0', line: 3 },
    ],
    [
      'invalid UTF-8 in the task',
      () => Buffer.concat([Buffer.from(ndjson({ episodes: 1, length: 1 })), Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a])]),
      'INVALID_UTF8',
      { line: 2 },
    ],
    [
      'an episode document whose steps are not a list',
      () => '{"episode": 0, "steps": {"action": [1]}}\n',
      'NDJSON_INVALID_STEP',
      { field: 'steps', line: 1 },
    ],
    [
      'an unknown field',
      () => ndjson({ episodes: 1, length: 1 }).replace('"step":0', '"step":0,"torque":[1]'),
      'NDJSON_INVALID_STEP',
      { field: 'torque', line: 1 },
    ],
    [
      'an image that is not JPEG',
      () => ndjson({ episodes: 1, length: 2 }).replace(/"jpeg":"[^"]+"/, `"jpeg":"${Buffer.from('not an image').toString('base64')}"`),
      'INVALID_IMAGE',
      { field: 'observation.images.front' },
    ],
    ['a wrong format flag', () => ndjson({ episodes: 1, length: 1 }), 'FORMAT_MISMATCH', {}, '?format=rlds'],
    ['bytes of no known format', () => Buffer.from('just some text, not robot data\n'), 'FORMAT_UNKNOWN', {}],
    [
      'a featureMap naming a missing feature',
      () => ndjson({ episodes: 1, length: 1 }),
      'FEATURE_MAP_UNKNOWN',
      { field: 'observation.nope' },
      `?featureMap=${encodeURIComponent('{"observation.nope":"observation.x"}')}`,
    ],
  ];

  it.each(badInputs)(
    'fails an upload with %s, with a code and location, publishing nothing',
    async (_name, makeBody, code, location, query = '') => {
      const datasetId = await createDataset();
      const accepted = await upload(datasetId, makeBody(), query);
      expect(accepted.status).toBe(202);
      const done = await settled(accepted.body.id);
      expect(done.status).toBe('failed');
      expect(done.errors).toHaveLength(1);
      expect(done.errors[0].code).toBe(code);
      expect(done.errors[0].location).toMatchObject(location);
      const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body;
      expect([dataset.latestVersion, dataset.episodeCount]).toEqual([0, 0]);
      const failed = (await kura.request.get(`/v1/datasets/${datasetId}/uploads?status=failed`).set(bearer(operator.key))).body.items;
      expect(failed.map((item: { id: string }) => item.id)).toEqual([accepted.body.id]);
      const blobs = kura.app.get<BlobStore>(BLOB_STORE);
      for await (const blob of blobs.list({ prefix: `datasets/${datasetId}/shards/` })) throw new Error(`left behind: ${blob.key}`);
      expect((await kura.request.get('/health')).status).toBe(200);
    },
  );

  it('fails an upload whose features differ from the dataset, naming each feature, and keeps earlier versions', async () => {
    const datasetId = await createDataset();
    await settled((await upload(datasetId, ndjson({ episodes: 1, length: 2 }))).body.id);
    const done = await settled((await upload(datasetId, ndjson({ episodes: 1, length: 2, dims: 4 }))).body.id);
    expect(done.status).toBe('failed');
    expect(done.errors[0]).toMatchObject({ code: 'SCHEMA_MISMATCH', location: { field: 'observation.state' } });
    expect(done.errors[0].message).toContain('observation.state (dataset: float32[3], upload: float32[4])');
    const dataset = (await kura.request.get(`/v1/datasets/${datasetId}`)).body;
    expect([dataset.latestVersion, dataset.episodeCount]).toEqual([1, 1]);
  });

  it('lets only the dataset owner (or an admin) upload', async () => {
    const datasetId = await createDataset();
    const developer = await kura.createKey('developer');
    const other = await kura.createKey('operator');
    const body = Buffer.from(ndjson({ episodes: 1, length: 1 }));
    const send = (headers: Record<string, string>) =>
      kura.request.post(`/v1/datasets/${datasetId}/uploads`).set(headers).set('Content-Type', 'application/octet-stream').send(body);
    expect((await send(bearer(developer.key))).body.error.code).toBe('FORBIDDEN');
    expect((await send(bearer(other.key))).body.error.code).toBe('FORBIDDEN');
    expect((await send({})).status).toBe(401);
    expect((await send(bearer(kura.adminKey))).status).toBe(202);
    const unknown = await kura.request
      .post('/v1/datasets/ds_missing/uploads')
      .set(bearer(operator.key))
      .set('Content-Type', 'application/octet-stream')
      .send(body);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'DATASET_NOT_FOUND']);
    const missingUpload = await kura.request.get('/v1/uploads/upl_missing').set(bearer(operator.key));
    expect([missingUpload.status, missingUpload.body.error.code]).toEqual([404, 'UPLOAD_NOT_FOUND']);
  });
});
