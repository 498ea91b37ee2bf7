import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tableFromIPC, type Vector } from 'apache-arrow';
import { bearer, getBytes, s3Environment, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { tarGzOfFolder, untar } from '../../../../test/support/archives.js';
import { createDataset, uploadAndWait } from '../../../../test/support/datasets.js';
import { duckdbRows } from '../../../../test/support/duckdb.js';

// Source: test/fixtures/lerobot_v2.1/unitree_g1 (see SOURCES.md): episodes 0, 1, 2, 29 of 479 + 393 + 343 + 221 steps.
const fixture = (path: string) => fileURLToPath(new URL(`../../../../test/fixtures/${path}`, import.meta.url));
const FIXTURE_EPISODES = [0, 1, 2, 29];
const FIXTURE_STEPS = 479 + 393 + 343 + 221;

const duckdb = duckdbRows;

/** A column's values as plain numbers and arrays (lists and int64 included), for exact comparison. */
const valuesOf = (vector: Vector) =>
  Array.from({ length: vector.length }, (_, row) => {
    const value: unknown = vector.get(row);
    if (typeof value === 'bigint') return Number(value);
    return value !== null && typeof value === 'object' && 'toArray' in value
      ? Array.from((value as Vector).toArray() as ArrayLike<number>)
      : value;
  });

describe.each([
  ['filesystem blobs', {}],
  ['S3 blobs', 'S3'],
] as const)('slice downloads on %s: formats, Range, ETag (LeRobot unitree_g1 fixture)', (_name, mode) => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let datasetId: string;
  let sliceId: string;
  let scratch: string;

  const ingest = async (body: Buffer, target: string) => {
    const done = await uploadAndWait(kura, operator.key, target, body, { query: '?format=lerobot' });
    expect(done.errors).toEqual([]);
    return done;
  };
  const download = (format: string, headers: Record<string, string> = {}) =>
    getBytes(kura, `/v1/slices/${sliceId}/data?format=${format}`, { ...bearer(kura.adminKey), ...headers });

  beforeAll(async () => {
    kura = await startTestApp(mode === 'S3' ? s3Environment() : mode);
    operator = await kura.createKey('operator');
    scratch = await mkdtemp(join(tmpdir(), 'kura-downloads-'));
    datasetId = await createDataset(kura, operator.key, 'private');
    await ingest(await tarGzOfFolder(fixture('lerobot_v2.1/unitree_g1'), 'unitree_g1'), datasetId);
    // An admin slice holds every episode (held-out ones included), so it matches the fixture whole.
    const slice = await kura.request
      .post('/v1/slices')
      .set(bearer(kura.adminKey))
      .send({ sources: [{ datasetId }] });
    expect(slice.status).toBe(201);
    expect(slice.body).toMatchObject({ episodeCount: 4, stepCount: FIXTURE_STEPS });
    sliceId = slice.body.id;
  }, 120_000);
  afterAll(async () => {
    await kura.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('parquet: DuckDB reads our file and finds the fixture’s own values, step by step', async () => {
    const { status, headers, body } = await download('parquet');
    expect(status).toBe(200);
    expect(headers['content-type']).toBe('application/vnd.apache.parquet');
    const ours = join(scratch, 'slice.parquet');
    await writeFile(ours, body);
    for (const [position, sourceEpisode] of FIXTURE_EPISODES.entries()) {
      const source = fixture(`lerobot_v2.1/unitree_g1/data/chunk-000/episode_${String(sourceEpisode).padStart(6, '0')}.parquet`);
      // Kura numbers the imported episodes 0..3 in upload order; the fixture's frame_index is our step_index.
      const mismatches = await duckdb(`
        SELECT count(*) AS compared, count(*) FILTER (WHERE o."observation.state" IS DISTINCT FROM s."observation.state"
                                                   OR o.action IS DISTINCT FROM s.action) AS different
        FROM read_parquet('${ours}') o JOIN read_parquet('${source}') s ON o.step_index = s.frame_index
        WHERE o.episode_index = ${position}`);
      expect(mismatches).toEqual([{ compared: BigInt([479, 393, 343, 221][position]!), different: 0n }]);
    }
    const [totals] = await duckdb(`SELECT count(*) AS rows, count(DISTINCT episode_index) AS episodes FROM read_parquet('${ours}')`);
    expect(totals).toEqual({ rows: BigInt(FIXTURE_STEPS), episodes: 4n });
  });

  it('parquet: byte-identical on every fetch; Range resumes an interrupted download; ETag and If-Range', async () => {
    const full = await download('parquet');
    const again = await download('parquet');
    expect(again.body.equals(full.body)).toBe(true);
    expect(again.headers.etag).toBe(full.headers.etag);
    expect(again.headers['accept-ranges']).toBe('bytes');
    expect(Number(again.headers['content-length'])).toBe(full.body.length);

    const half = Math.floor(full.body.length / 2);
    const rest = await download('parquet', { Range: `bytes=${half}-` });
    expect(rest.status).toBe(206);
    expect(rest.headers['content-range']).toBe(`bytes ${half}-${full.body.length - 1}/${full.body.length}`);
    expect(Buffer.concat([full.body.subarray(0, half), rest.body]).equals(full.body)).toBe(true);

    const middle = await download('parquet', { Range: 'bytes=100-199' });
    expect(middle.body.equals(full.body.subarray(100, 200))).toBe(true);
    const suffix = await download('parquet', { Range: 'bytes=-64' });
    expect(suffix.body.equals(full.body.subarray(full.body.length - 64))).toBe(true);
    const stale = await download('parquet', { Range: 'bytes=0-9', 'If-Range': '"something-else"' });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(full.body.length);
    expect((await download('parquet', { 'If-None-Match': full.headers.etag! })).status).toBe(304);
  });

  it.each([
    ['bytes=a-b', 400, 'INVALID_RANGE'],
    ['bytes=5-2', 400, 'INVALID_RANGE'],
    ['bytes=0-1,4-5', 400, 'INVALID_RANGE'],
    ['items=0-5', 400, 'INVALID_RANGE'],
    ['bytes=-', 400, 'INVALID_RANGE'],
    ['bytes=999999999-', 416, 'RANGE_NOT_SATISFIABLE'],
    ['bytes=-0', 416, 'RANGE_NOT_SATISFIABLE'],
  ])('a Range of %s is %i %s', async (range, status, code) => {
    const response = await kura.request.get(`/v1/slices/${sliceId}/data?format=arrow-file`).set(bearer(kura.adminKey)).set('Range', range);
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe(code);
  });

  it('arrow: the stored batches forwarded with an exact Content-Length', async () => {
    const { status, headers, body } = await download('arrow');
    expect(status).toBe(200);
    expect(Number(headers['content-length'])).toBe(body.length);
    expect(tableFromIPC(body).numRows).toBe(FIXTURE_STEPS);
  });

  it('arrow-file: a complete Arrow file with every step, ranged like parquet', async () => {
    const full = await download('arrow-file');
    expect(full.status).toBe(200);
    const table = tableFromIPC(full.body);
    expect(table.numRows).toBe(FIXTURE_STEPS);
    expect(full.body.subarray(0, 6).toString('latin1')).toBe('ARROW1');
    const tail = await download('arrow-file', { Range: 'bytes=-10' });
    expect(tail.status).toBe(206);
    expect(tail.body.subarray(4).toString('latin1')).toBe('ARROW1');
  });

  it('ndjson: one line per step in the upload format', async () => {
    const { status, headers, body } = await download('ndjson');
    expect(status).toBe(200);
    expect(headers['accept-ranges']).toBe('none');
    const lines = body.toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(FIXTURE_STEPS);
    const first = JSON.parse(lines[0]!) as { episode: number; step: number; observation: Record<string, number[]>; action: number[] };
    expect(first).toMatchObject({ episode: 0, step: 0 });
    const features = (await kura.request.get(`/v1/datasets/${datasetId}`).set(bearer(operator.key))).body.features;
    expect(first.observation.state).toHaveLength(features['observation.state'].shape[0]);
    expect(first.action).toHaveLength(features.action.shape[0]);
  });

  it.each([
    ['lerobot', 'v3.0', ['data/chunk-000/file-000.parquet', 'meta/episodes/chunk-000/file-000.parquet', 'meta/tasks.parquet']],
    ['lerobot-v2.1', 'v2.1', [0, 1, 2, 3].map((episode) => `data/chunk-000/episode_00000${episode}.parquet`)],
  ] as const)(
    '%s: a LeRobot %s tar that Kura imports again to the same rows',
    async (format, version, parquetFiles) => {
      const { status, headers, body } = await download(format);
      expect(status).toBe(200);
      expect(headers['content-type']).toBe('application/x-tar');
      const files = await untar(body);
      const info = JSON.parse(files.get('meta/info.json')!.toString('utf8')) as {
        codebase_version: string;
        total_episodes: number;
        total_frames: number;
      };
      expect(info).toMatchObject({ codebase_version: version, total_episodes: 4, total_frames: FIXTURE_STEPS });
      expect([...files.keys()].filter((name) => name.endsWith('.parquet')).sort()).toEqual([...parquetFiles].sort());

      const copy = await createDataset(kura, operator.key, 'private');
      const reimported = await ingest(body, copy);
      expect(reimported).toMatchObject({ episodeCount: 4, stepCount: FIXTURE_STEPS });
      const again = await kura.request
        .post('/v1/slices')
        .set(bearer(kura.adminKey))
        .send({ sources: [{ datasetId: copy }], columns: ['observation.state', 'action'] });
      const original = await kura.request
        .post('/v1/slices')
        .set(bearer(kura.adminKey))
        .send({ sources: [{ datasetId }], columns: ['observation.state', 'action'] });
      const [left, right] = await Promise.all(
        [original.body.id, again.body.id].map(async (id: string) =>
          tableFromIPC((await getBytes(kura, `/v1/slices/${id}/data`, bearer(kura.adminKey))).body),
        ),
      );
      expect(right!.numRows).toBe(left!.numRows);
      for (const column of ['episode_index', 'step_index', 'timestamp', 'observation.state', 'action']) {
        expect(valuesOf(right!.getChild(column)!)).toEqual(valuesOf(left!.getChild(column)!));
      }
    },
    120_000,
  );
});
