import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tableFromIPC, type Table } from 'apache-arrow';
import { episodeBucket } from '@kura/core';
import { bearer, getBytes, startTestApp, type TestApp } from '../../../../test/support/app.js';
import { publish, seedDataset, seedNdjson, stateValue, createDataset } from '../../../../test/support/datasets.js';

const isHeldOut = (datasetId: string, episode: number) => episodeBucket(datasetId, episode) >= 90;

/** The rows of an Arrow table as [episode, step, state[0]]. */
function rowsOf(table: Table): Array<[number, number, number]> {
  const episodes = table.getChild('episode_index')!.toArray() as BigInt64Array;
  const steps = table.getChild('step_index')!.toArray() as Int32Array;
  const state = table.getChild('observation.state');
  return Array.from(steps, (step, row) => [
    Number(episodes[row]),
    step,
    state ? Number((state.get(row) as { get(i: number): number }).get(0)) : NaN,
  ]);
}

describe('slices', () => {
  let kura: TestApp;
  let operator: { id: string; key: string };
  let developer: { id: string; key: string };
  let datasetId: string;
  let uploadIds: string[];

  beforeAll(async () => {
    kura = await startTestApp();
    operator = await kura.createKey('operator');
    developer = await kura.createKey('developer');
    // Two uploads (two shards, two versions); lengths vary, every third episode succeeds.
    datasetId = await createDataset(kura, operator.key, 'public');
    const options = {
      length: (episode: number) => 5 + (episode % 4),
      task: (episode: number) => (episode % 2 === 0 ? `Pick the red cube` : `stack blocks ${episode}`),
      success: (episode: number) => episode % 3 === 0,
    };
    const first = await publish(kura, operator.key, datasetId, seedNdjson({ episodes: 12, ...options }));
    const second = await publish(kura, operator.key, datasetId, seedNdjson({ episodes: 8, firstEpisode: 12, ...options }));
    uploadIds = [first.id, second.id];
  });
  afterAll(async () => {
    await kura.close();
  });

  const createSlice = (body: unknown, key: string | undefined = developer.key, query = '') => {
    const request = kura.request.post(`/v1/slices${query}`).send(body as object);
    return key ? request.set(bearer(key)) : request;
  };
  const visibleEpisodes = (from: number, to: number, admin = false) =>
    Array.from({ length: to - from + 1 }, (_, offset) => from + offset).filter((episode) => admin || !isHeldOut(datasetId, episode));

  describe('episode query', () => {
    const query = async (search: string) => {
      const response = await kura.request.get(`/v1/datasets/${datasetId}/episodes?${search}`);
      expect(response.status).toBe(200);
      return response.body.items.map((item: { episodeIndex: number }) => item.episodeIndex) as number[];
    };

    it('filters by ranges, task, success, length, upload and version', async () => {
      expect(await query('episodes=0-3,7,18-30')).toEqual([0, 1, 2, 3, 7, 18, 19]);
      expect(await query('task=RED%20cube')).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
      expect(await query('success=true')).toEqual([0, 3, 6, 9, 12, 15, 18]);
      expect(await query('success=false&episodes=0-5')).toEqual([1, 2, 4, 5]);
      expect(await query('minLength=7&maxLength=7')).toEqual([2, 6, 10, 14, 18]);
      expect(await query(`uploadId=${uploadIds[1]}&episodes=10-13`)).toEqual([12, 13]);
      expect(await query('version=1&episodes=10-15')).toEqual([10, 11]);
      const items = (await kura.request.get(`/v1/datasets/${datasetId}/episodes?episodes=0-19`)).body.items as Array<{
        episodeIndex: number;
        heldOut: boolean;
      }>;
      expect(items.map((item) => item.heldOut)).toEqual(items.map((item) => isHeldOut(datasetId, item.episodeIndex)));
    });

    it('pages in a stable order', async () => {
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const response = await kura.request.get(`/v1/datasets/${datasetId}/episodes?limit=6${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...response.body.items.map((item: { episodeIndex: number }) => item.episodeIndex));
        cursor = response.body.nextCursor;
      } while (cursor);
      expect(seen).toEqual(Array.from({ length: 20 }, (_, index) => index));
    });

    it.each(['5-2', 'a-b', '-1', '1,,2', ''])('refuses episodes=%s with VALIDATION_FAILED at the field', async (ranges) => {
      const response = await kura.request.get(`/v1/datasets/${datasetId}/episodes?episodes=${ranges}`);
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('VALIDATION_FAILED');
      expect(response.body.error.details.issues[0].path).toBe('episodes');
    });
  });

  describe('creation', () => {
    it('pins the latest version and resolves the selection; held-out episodes are withheld from non-admins', async () => {
      const response = await createSlice({ sources: [{ datasetId }], episodes: '0-19' });
      expect(response.status).toBe(201);
      const expected = visibleEpisodes(0, 19);
      expect(response.body).toMatchObject({
        id: expect.stringMatching(/^slc_/),
        episodeCount: expected.length,
        sources: [{ datasetId, version: 2, weight: 1, episodeCount: expected.length }],
        withheld: { heldOut: 20 - expected.length, grantRequired: 0 },
      });
      const admin = await createSlice({ sources: [{ datasetId }] }, kura.adminKey);
      expect(admin.body.episodeCount).toBe(20);
      expect(admin.body.withheld).toEqual({ heldOut: 0, grantRequired: 0 });
    });

    it('selects what the episode query lists, for every filter (admin: held-out included)', async () => {
      const expand = (ranges: string) =>
        ranges.split(',').flatMap((range) => {
          const [from, to = from] = range.split('-').map(Number);
          return Array.from({ length: to! - from! + 1 }, (_, offset) => from! + offset);
        });
      const filters: Array<[string, Record<string, unknown>]> = [
        ['episodes=0-3,7,18-30', { episodes: '0-3,7,18-30' }],
        ['task=RED%20cube', { task: 'RED cube' }],
        ['task=stack%20blocks%201', { task: 'stack blocks 1' }],
        ['success=false&episodes=0-5', { success: false, episodes: '0-5' }],
        ['minLength=7&maxLength=8', { minLength: 7, maxLength: 8 }],
        [`uploadId=${uploadIds[1]}&episodes=10-13`, { uploadId: uploadIds[1], episodes: '10-13' }],
      ];
      for (const [search, body] of filters) {
        const listed = (
          (await kura.request.get(`/v1/datasets/${datasetId}/episodes?${search}`)).body.items as Array<{ episodeIndex: number }>
        ).map((item) => item.episodeIndex);
        const slice = await createSlice({ sources: [{ datasetId }], ...body }, kura.adminKey);
        expect([search, slice.status, expand(slice.body.sources[0].episodes)]).toEqual([search, 201, listed]);
      }
      // LIKE's wildcards in a task are matched as themselves.
      for (const task of ['%', '_', 'red_cube', 'stack%'])
        expect((await createSlice({ sources: [{ datasetId }], task }, kura.adminKey)).body.error?.code).toBe('EMPTY_SELECTION');
      const versionOne = await createSlice({ sources: [{ datasetId, version: 1 }], episodes: '10-15' }, kura.adminKey);
      expect(expand(versionOne.body.sources[0].episodes)).toEqual([10, 11]);
    });

    it('applies steps to the step count and drops episodes left empty', async () => {
      const response = await createSlice({ sources: [{ datasetId, version: 1 }], steps: { start: 6, stride: 1 } }, kura.adminKey);
      expect(response.status).toBe(201);
      // Version 1 has episodes 0..11 with lengths 5,6,7,8,...: steps from 6 on exist in lengths 7 and 8.
      const kept = Array.from({ length: 12 }, (_, episode) => Math.max(0, 5 + (episode % 4) - 6));
      expect(response.body.episodeCount).toBe(kept.filter((count) => count > 0).length);
      expect(response.body.stepCount).toBe(kept.reduce((sum, count) => sum + count, 0));
    });

    it('samples deterministically by seed', async () => {
      const one = await createSlice({ sources: [{ datasetId }], sample: { episodes: 5, seed: 7 } });
      const two = await createSlice({ sources: [{ datasetId }], sample: { episodes: 5, seed: 7 } });
      const other = await createSlice({ sources: [{ datasetId }], sample: { episodes: 5, seed: 8 } });
      expect(one.body.episodeCount).toBe(5);
      expect(two.body.sources[0].episodes).toBe(one.body.sources[0].episodes);
      expect(other.body.sources[0].episodes).not.toBe(one.body.sources[0].episodes);
    });

    it.each([
      [{ sources: [{ datasetId: 'ds_000000000000aaaaaaaaaaaa' }] }, 422, 'DATASET_NOT_FOUND'],
      [{ sources: [{ datasetId: '$ID', version: 9 }] }, 422, 'VERSION_NOT_FOUND'],
      [{ sources: [{ datasetId: '$ID', weight: 0 }] }, 400, 'VALIDATION_FAILED'],
      [{ sources: [{ datasetId: '$ID', weight: -1 }] }, 400, 'VALIDATION_FAILED'],
      [{ sources: [{ datasetId: '$ID' }], columns: ['observation.nope'] }, 422, 'UNKNOWN_COLUMN'],
      [{ sources: [{ datasetId: '$ID' }], episodes: '5-2' }, 400, 'VALIDATION_FAILED'],
      [{ sources: [{ datasetId: '$ID' }], episodes: '500-600' }, 422, 'EMPTY_SELECTION'],
      [{ sources: [{ datasetId: '$ID' }], task: 'no such task' }, 422, 'EMPTY_SELECTION'],
      [{ sources: [{ datasetId: '$ID' }], sample: { episodes: 1000, seed: 1 } }, 422, 'SAMPLE_TOO_LARGE'],
      [{ sources: [{ datasetId: '$ID' }], steps: { start: 5, stop: 2 } }, 400, 'VALIDATION_FAILED'],
      [{ sources: [{ datasetId: '$ID' }], steps: { stride: 0 } }, 400, 'VALIDATION_FAILED'],
      [{ sources: [{ datasetId: '$ID' }, { datasetId: '$ID' }] }, 422, 'DUPLICATE_SOURCE'],
      [{ sources: [] }, 400, 'VALIDATION_FAILED'],
    ])('refuses %j with %i %s', async (body, status, code) => {
      const response = await createSlice(JSON.parse(JSON.stringify(body).replaceAll('$ID', datasetId)));
      expect(response.status).toBe(status);
      expect(response.body.error.code).toBe(code);
    });
  });

  describe('arrow download', () => {
    it('forwards whole episodes byte-identically, with Content-Length and ETag, values exact', async () => {
      const slice = (await createSlice({ sources: [{ datasetId }], episodes: '2-15' })).body;
      const first = await getBytes(kura, `/v1/slices/${slice.id}/data`, bearer(developer.key));
      expect(first.status).toBe(200);
      expect(first.headers['content-type']).toBe('application/vnd.apache.arrow.stream');
      expect(Number(first.headers['content-length'])).toBe(first.body.length);
      const again = await getBytes(kura, `/v1/slices/${slice.id}/data?format=arrow`, bearer(developer.key));
      expect(again.body.equals(first.body)).toBe(true);
      expect(again.headers.etag).toBe(first.headers.etag);
      const notModified = await getBytes(kura, `/v1/slices/${slice.id}/data`, {
        ...bearer(developer.key),
        'If-None-Match': first.headers.etag!,
      });
      expect(notModified.status).toBe(304);

      const table = tableFromIPC(first.body);
      const expected: Array<[number, number, number]> = [];
      for (const episode of visibleEpisodes(2, 15))
        for (let step = 0; step < 5 + (episode % 4); step++) expected.push([episode, step, stateValue(episode, step, 0)]);
      expect(rowsOf(table).map(([episode, step, value]) => [episode, step, Math.round(value * 10) / 10])).toEqual(expected);
      expect(table.numRows).toBe(slice.stepCount);
      // Tasks survive the shard boundary (each shard has its own dictionary).
      const tasks = table.getChild('language_instruction')!.toArray() as string[];
      expect(new Set(tasks)).toEqual(
        new Set(visibleEpisodes(2, 15).map((episode) => (episode % 2 === 0 ? 'Pick the red cube' : `stack blocks ${episode}`))),
      );
    });

    it('cuts columns and steps (start, stop, stride) and keeps the order', async () => {
      const slice = (
        await createSlice({
          sources: [{ datasetId }],
          episodes: '0-9',
          columns: ['observation.state', 'language_instruction'],
          steps: { start: 1, stop: 6, stride: 2 },
        })
      ).body;
      const { body } = await getBytes(kura, `/v1/slices/${slice.id}/data`, bearer(developer.key));
      const table = tableFromIPC(body);
      expect(table.schema.fields.map((field) => field.name)).toEqual([
        'episode_index',
        'step_index',
        'timestamp',
        'observation.state',
        'language_instruction',
      ]);
      const expected: Array<[number, number, number]> = [];
      for (const episode of visibleEpisodes(0, 9))
        for (const step of [1, 3, 5]) if (step < 5 + (episode % 4)) expected.push([episode, step, stateValue(episode, step, 0)]);
      expect(rowsOf(table).map(([episode, step, value]) => [episode, step, Math.round(value * 10) / 10])).toEqual(expected);
      expect(table.numRows).toBe(slice.stepCount);
    });
  });

  describe('ndjson download', () => {
    it('writes the upload format, so a downloaded slice uploads again to the same episodes', async () => {
      const slice = (await createSlice({ sources: [{ datasetId }], episodes: '0-5' }, kura.adminKey)).body;
      const { status, body } = await getBytes(kura, `/v1/slices/${slice.id}/data?format=ndjson`, bearer(kura.adminKey));
      expect(status).toBe(200);
      const lines = body.toString('utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(slice.stepCount);
      expect(Object.keys(JSON.parse(lines[0]!) as object)).toEqual([
        'episode',
        'sourceEpisode',
        'step',
        'timestamp',
        'observation',
        'action',
        'reward',
        'isTerminal',
        'language',
      ]);
      const copy = await createDataset(kura, operator.key, 'public');
      const upload = await publish(kura, operator.key, copy, body.toString('utf8'));
      expect(upload.version).toBe(1);
      const episodes = (await kura.request.get(`/v1/datasets/${copy}/episodes`)).body.items as Array<{
        length: number;
        task: string;
        success: boolean;
      }>;
      expect(episodes.map((episode) => [episode.length, episode.task])).toEqual(
        [0, 1, 2, 3, 4, 5].map((episode) => [5 + (episode % 4), episode % 2 === 0 ? 'Pick the red cube' : `stack blocks ${episode}`]),
      );
    });
  });

  describe('several sources', () => {
    it('aligns renamed features with "from" and tags rows with dataset_id; weights spread a sample', async () => {
      const other = await seedDataset(kura, operator.key, { episodes: 30, length: 4, stateKey: 'joints', firstEpisode: 0 });
      const slice = await createSlice(
        {
          sources: [
            { datasetId, weight: 1 },
            { datasetId: other.datasetId, weight: 3 },
          ],
          columns: [{ name: 'observation.state', from: { [other.datasetId]: 'observation.joints' } }, 'action'],
          sample: { episodes: 8, seed: 3 },
        },
        kura.adminKey,
      );
      expect(slice.status).toBe(201);
      expect(slice.body.sources.map((source: { episodeCount: number }) => source.episodeCount)).toEqual([2, 6]);
      const { body } = await getBytes(kura, `/v1/slices/${slice.body.id}/data`, bearer(kura.adminKey));
      const table = tableFromIPC(body);
      expect(table.schema.fields.map((field) => field.name)).toEqual([
        'dataset_id',
        'episode_index',
        'step_index',
        'timestamp',
        'observation.state',
        'action',
      ]);
      const datasets = table.getChild('dataset_id')!.toArray() as string[];
      const rows = rowsOf(table);
      rows.forEach(([episode, step, value]) => expect(value).toBeCloseTo(stateValue(episode, step, 0), 3));
      expect(new Set(datasets)).toEqual(new Set([datasetId, other.datasetId]));
    });

    it('refuses sources whose shapes differ, naming the feature', async () => {
      const wide = await seedDataset(kura, operator.key, { episodes: 2, length: 3, stateDims: 5 });
      const response = await createSlice({ sources: [{ datasetId }, { datasetId: wide.datasetId }], columns: ['observation.state'] });
      expect(response.status).toBe(422);
      expect(response.body.error.code).toBe('SLICE_COLUMN_INCOMPATIBLE');
      expect(response.body.error.details.column).toBe('observation.state');
      const noColumns = await createSlice({ sources: [{ datasetId }, { datasetId: wide.datasetId }] });
      expect(noColumns.body.error.code).toBe('SLICE_FEATURES_DIFFER');
    });
  });

  describe('stats', () => {
    it('computes the stats of the slice rows as ingest does', async () => {
      const response = await createSlice(
        { sources: [{ datasetId }], episodes: '0-3', columns: ['observation.state'] },
        kura.adminKey,
        '?stats=true',
      );
      expect(response.status).toBe(201);
      const values: number[] = [];
      for (let episode = 0; episode <= 3; episode++)
        for (let step = 0; step < 5 + (episode % 4); step++) values.push(stateValue(episode, step, 0));
      const state = response.body.stats['observation.state'];
      expect(state.count).toBe(values.length);
      expect(state.min[0]).toBeCloseTo(Math.min(...values), 3);
      expect(state.max[0]).toBeCloseTo(Math.max(...values), 3);
      expect(state.mean[0]).toBeCloseTo(values.reduce((sum, value) => sum + value, 0) / values.length, 2);
    });
  });
});
