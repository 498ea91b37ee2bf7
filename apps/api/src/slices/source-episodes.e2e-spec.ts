// The source's own episode ids (issue 12, defect 6): kept at ingest, listed by the API and carried by
// every download format, so that a renumbered episode can be traced back to the recording.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tableFromIPC } from 'apache-arrow';
import { bearer, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { duckdbRows } from '../../../../test/support/duckdb.js';
import { tarGzOfFolder, untar } from '../../../../test/support/archives.js';
import { createDataset, uploadAndWait } from '../../../../test/support/datasets.js';

// Sources: test/fixtures/lerobot_v2.1/unitree_g1 (see SOURCES.md), a LeRobot v2.1 dataset of which only
// episodes 0, 1, 2 and 29 were committed; the robomimic file made by packages/formats/src/hdf5/fixtures/make_fixtures.py.
const lerobotFixture = fileURLToPath(new URL('../../../../test/fixtures/lerobot_v2.1/unitree_g1', import.meta.url));
const robomimicFixture = fileURLToPath(
  new URL('../../../../packages/formats/src/hdf5/fixtures/robomimic/low_dim_and_image.hdf5', import.meta.url),
);

/** What DuckDB (a reader that is not Kura's) finds in a Parquet file's key-value metadata. */
async function parquetKeyValues(path: string): Promise<Record<string, string>> {
  const rows = await duckdbRows(`SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata('${path}')`);
  const entries: Array<[string, string]> = [];
  for (const { key, value } of rows) if (typeof key === 'string' && typeof value === 'string') entries.push([key, value]);
  return Object.fromEntries(entries);
}

describe('source episode ids', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let datasetId: string;
  let scratch: string;

  const ingest = async (body: Buffer, target: string, query: string) => {
    const done = await uploadAndWait(kura, operator.key, target, body, { query });
    expect(done).toMatchObject({ status: 'published', errors: [] });
  };
  const listed = async (target: string) =>
    (
      (await kura.request.get(`/v1/datasets/${target}/episodes`).set(bearer(operator.key)).expect(200)).body.items as Array<{
        episodeIndex: number;
        sourceEpisode: string;
      }>
    ).map(({ episodeIndex, sourceEpisode }) => [episodeIndex, sourceEpisode]);
  const slice = async (episodes?: string) => {
    const response = await kura.request
      .post('/v1/slices')
      .set(bearer(kura.adminKey))
      .send({ sources: [{ datasetId }], ...(episodes ? { episodes } : {}) });
    expect(response.status).toBe(201);
    return response.body.id as string;
  };
  const download = (sliceId: string, format: string) =>
    getBytes(kura, `/v1/slices/${sliceId}/data?format=${format}`, bearer(kura.adminKey));

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    scratch = await mkdtemp(join(tmpdir(), 'kura-source-episodes-'));
    datasetId = await createDataset(kura, operator.key, 'private');
    await ingest(await tarGzOfFolder(lerobotFixture, 'unitree_g1'), datasetId, '?format=lerobot');
  }, 120_000);
  afterAll(async () => {
    await kura.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('lists LeRobot episodes 0, 1, 2, 29, renumbered 0..3, with their own episode_index', async () => {
    expect(await listed(datasetId)).toEqual([
      [0, '0'],
      [1, '1'],
      [2, '2'],
      [3, '29'],
    ]);
  });

  it('lists robomimic episodes with their demo names', async () => {
    const robomimic = await createDataset(kura, operator.key, 'private');
    await ingest(await readFile(robomimicFixture), robomimic, '?format=hdf5-robomimic&fileName=low_dim_and_image.hdf5');
    expect(await listed(robomimic)).toEqual([
      [0, 'demo_0'],
      [1, 'demo_2'],
      [2, 'demo_10'],
    ]);
  });

  it('Arrow (forwarded and re-encoded) and Parquet carry them in the schema metadata', async () => {
    const whole = await slice();
    const expected = { [datasetId]: { '0': '0', '1': '1', '2': '2', '3': '29' } };
    const stream = await download(whole, 'arrow');
    expect(Number(stream.headers['content-length'])).toBe(stream.body.length);
    expect(JSON.parse(tableFromIPC(stream.body).schema.metadata.get('kura.source_episodes')!)).toEqual(expected);
    const file = await download(whole, 'arrow-file');
    expect(JSON.parse(tableFromIPC(file.body).schema.metadata.get('kura.source_episodes')!)).toEqual(expected);
    const parquetPath = join(scratch, 'whole.parquet');
    await writeFile(parquetPath, (await download(whole, 'parquet')).body);
    expect(JSON.parse((await parquetKeyValues(parquetPath))['kura.source_episodes']!)).toEqual(expected);

    // A slice names only its own episodes; a second download is byte-identical.
    const last = await slice('3');
    const first = await download(last, 'arrow');
    expect(JSON.parse(tableFromIPC(first.body).schema.metadata.get('kura.source_episodes')!)).toEqual({ [datasetId]: { '3': '29' } });
    expect((await download(last, 'arrow')).body.equals(first.body)).toBe(true);
  });

  it('NDJSON lines carry sourceEpisode, and uploading them again keeps it', async () => {
    const { body } = await download(await slice('2-3'), 'ndjson');
    const lines = body
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { episode: number; sourceEpisode: string });
    expect(Object.keys(lines[0]!).slice(0, 3)).toEqual(['episode', 'sourceEpisode', 'step']);
    expect(new Set(lines.map((line) => `${line.episode}:${line.sourceEpisode}`))).toEqual(new Set(['2:2', '3:29']));

    const copy = await createDataset(kura, operator.key, 'private');
    await ingest(body, copy, '?format=kura-ndjson&fileName=slice.ndjson');
    expect(await listed(copy)).toEqual([
      [0, '2'],
      [1, '29'],
    ]);
  });

  it('the LeRobot v2.1 export keeps them as source_episode in meta/episodes.jsonl', async () => {
    const { body } = await download(await slice(), 'lerobot-v2.1');
    const episodes = (await untar(body))
      .get('meta/episodes.jsonl')!
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { episode_index: number; kura_episode_index: number; source_episode: string });
    expect(
      episodes.map(({ episode_index, kura_episode_index, source_episode }) => [episode_index, kura_episode_index, source_episode]),
    ).toEqual([
      [0, 0, '0'],
      [1, 1, '1'],
      [2, 2, '2'],
      [3, 3, '29'],
    ]);
  });
});
