import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from '@jest/globals';
import {
  Dictionary,
  type DataType,
  Field,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  Vector,
  vectorFromArray,
  type Data,
} from 'apache-arrow';
import type { FeatureSpec } from '@kura/schema';
import type { ImportedEpisode } from '../importer.js';
import { exportLerobotTar, type LerobotExportEpisode, type LerobotExportParams } from '../lerobot/export.js';
import { lerobotImporter } from '../lerobot/import.js';
import { sourceFromDirectory } from '../source.js';
import { importAll, type ImportedAll } from './import-all.js';
import { collectBytes, shardBatches } from './shard-batches.js';

// The LeRobot export tests' round trip (v2.1 and v3.0): imported episodes through a real shard, out
// as a tar, unpacked by the system's tar and imported again.

export const MTIME = new Date('2026-01-02T03:04:05Z');
const run = promisify(execFile);

/** Kura batches of imported episodes, through a real shard, grouped by episode in shard order. */
export async function kuraEpisodes(
  imported: ImportedAll,
  options: { firstIndex?: number; videoBlobs?: Record<string, string> | ((episode: ImportedEpisode) => Record<string, string>) } = {},
): Promise<{ schema: Schema; episodes: LerobotExportEpisode[] }> {
  const firstIndex = options.firstIndex ?? 0;
  const { schema, batches } = await shardBatches({
    features: imported.features,
    episodes: imported.episodes.map((episode, position) => ({
      episodeIndex: firstIndex + position,
      episode,
      fps: imported.fps ?? 30,
      ...(options.videoBlobs
        ? { videoBlobs: typeof options.videoBlobs === 'function' ? options.videoBlobs(episode) : options.videoBlobs }
        : {}),
    })),
  });
  const byEpisode = new Map<bigint, RecordBatch[]>();
  for (const batch of batches) {
    const index = batch.getChild('episode_index')!.get(0) as bigint;
    byEpisode.set(index, [...(byEpisode.get(index) ?? []), batch]);
  }
  return { schema, episodes: [...byEpisode.values()].map((episodeBatches) => ({ batches: episodeBatches })) };
}

/** Exports to a tar file in `scratch`, unpacks it with the system's tar and re-imports it with Kura's LeRobot importer. */
export async function exportAndReimport(
  scratch: string,
  params: Omit<LerobotExportParams, 'mtime' | 'openVideo'> & Partial<Pick<LerobotExportParams, 'openVideo'>>,
) {
  const tar = await collectBytes(
    exportLerobotTar({
      mtime: MTIME,
      openVideo: async (blobKey) => {
        throw new Error(`no video ${blobKey} in this test`);
      },
      ...params,
    }),
  );
  const root = join(scratch, `export-${Math.random().toString(36).slice(2, 10)}`);
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'export.tar'), tar);
  const names = (await run('tar', ['-tf', join(root, 'export.tar')])).stdout.trim().split('\n');
  const unpacked = join(root, 'unpacked');
  await mkdir(unpacked);
  await run('tar', ['-xf', join(root, 'export.tar'), '-C', unpacked]);
  const dataset = params.folder ? join(unpacked, params.folder) : unpacked;
  const reimported = await importAll(lerobotImporter, await sourceFromDirectory(params.folder ? unpacked : dataset), { validate: true });
  const info = JSON.parse(await readFile(join(dataset, 'meta/info.json'), 'utf8')) as Record<string, unknown>;
  return { tar, names, dataset, reimported, info };
}

export function tensor(episode: ImportedEpisode, name: string): number[] {
  const values = episode.features[name];
  if (values?.kind !== 'tensor') throw new Error(`${name} is not a tensor feature`);
  return Array.from(values.values, Number);
}

export function frames(episode: ImportedEpisode, name: string): Uint8Array[] {
  const values = episode.features[name];
  if (values?.kind !== 'image') throw new Error(`${name} is not an image feature`);
  return values.frames;
}

/** The reward column a Kura shard stores for an episode: NaN (null) where the source has none. */
export function storedReward(episode: ImportedEpisode): number[] {
  return episode.reward ? Array.from(episode.reward) : new Array<number>(episode.length).fill(NaN);
}

/** The is_terminal column a Kura shard stores (shard-writer: without flags, only a successful last step is terminal). */
export function storedTerminal(episode: ImportedEpisode): number[] {
  if (episode.isTerminal) return Array.from(episode.isTerminal);
  return Array.from({ length: episode.length }, (_, step) => (step === episode.length - 1 && episode.success === true ? 1 : 0));
}

/** Same steps, values, tasks and outcomes (what a Kura shard keeps of an episode). */
export function expectSameEpisode(actual: ImportedEpisode, expected: ImportedEpisode, features: FeatureSpec): void {
  expect(actual.length).toBe(expected.length);
  expect(Array.from(actual.timestamp!)).toEqual(Array.from(expected.timestamp!, (time) => Math.fround(time)));
  expect(actual.stepTasks ?? actual.task).toEqual(expected.stepTasks ?? expected.task);
  expect(storedReward(actual)).toEqual(storedReward(expected));
  expect(storedTerminal(actual)).toEqual(storedTerminal(expected));
  for (const [name, feature] of Object.entries(features)) {
    if (feature.dtype === 'image') expect(frames(actual, name)).toEqual(frames(expected, name));
    else if (feature.dtype !== 'video') expect(tensor(actual, name)).toEqual(tensor(expected, name));
  }
}

/** Every `stride`-th row of the named columns of a batch, rebuilt as new Arrow data (a step-strided slice). */
export function strided(batch: RecordBatch, stride: number, names: string[]): RecordBatch {
  const rows = Array.from({ length: Math.ceil(batch.numRows / stride) }, (_, index) => index * stride);
  const plain = (value: unknown): unknown => (value instanceof Vector ? Array.from(value as Iterable<unknown>, plain) : value);
  const fields = names.map((name) => batch.schema.fields.find((field) => field.name === name)!);
  const children = fields.map((field): Data => {
    const vector = batch.getChild(field.name)!;
    return vectorFromArray(
      rows.map((row) => plain(vector.get(row))),
      field.type as DataType,
    ).data[0] as Data;
  });
  return new RecordBatch(
    new Schema(fields, batch.schema.metadata),
    makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children }),
  );
}

/** A batch with a leading dataset_id column, as multi-dataset slices carry it. */
export function withDatasetId(batch: RecordBatch, datasetId: string): RecordBatch {
  // Dictionary id 1, as slices give it (0 is the task column's); an automatic id can collide with 0.
  const type = new Dictionary(new Utf8(), new Int32(), 1);
  const ids = makeData({
    type,
    length: batch.numRows,
    data: new Int32Array(batch.numRows),
    dictionary: vectorFromArray([datasetId], new Utf8()),
  });
  const fields = [new Field('dataset_id', type, false), ...batch.schema.fields];
  const children: Data[] = [ids, ...batch.data.children];
  return new RecordBatch(
    new Schema(fields, batch.schema.metadata),
    makeData({ type: new Struct(fields), length: batch.numRows, nullCount: 0, children }),
  );
}
