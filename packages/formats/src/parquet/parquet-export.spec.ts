import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Dictionary,
  Field,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimestampMillisecond,
  Utf8,
  vectorFromArray,
  type Data,
} from 'apache-arrow';
import { parquetMetadata, parquetReadObjects, type ParquetRow } from 'hyparquet';
import type { FeatureSpec } from '@kura/schema';
import { ExportError } from '../export-error.js';
import type { ShardEpisode } from '../kura-arrow/shard-writer.js';
import { encodePng } from '../png.js';
import { collectBytes, shardBatches } from '../testing/shard-batches.js';
import { duckdbRows } from '../../../../test/support/duckdb.js';
import { arrowToParquet } from './export.js';

const features: FeatureSpec = {
  'observation.state': { dtype: 'float32', shape: [3], names: ['x', 'y', 'z'] },
  action: { dtype: 'float64', shape: [2, 2] },
  'gripper.closed': { dtype: 'bool', shape: [2] },
  counter: { dtype: 'int64', shape: [] },
  level: { dtype: 'uint8', shape: [2] },
  'observation.images.top': { dtype: 'image', shape: [2, 3, 3], encoding: 'png' },
  'observation.images.cam': { dtype: 'video', shape: [4, 4, 3], encoding: 'mp4' },
};

const lengths = [5, 7, 4];
const state = (episode: number, step: number, component: number) => Math.fround(episode * 10 + step + component / 8);
const action = (episode: number, step: number, component: number) => episode * 100 + step * 1.5 + component / 3;
const frame = (episode: number, step: number) =>
  encodePng({
    pixels: Uint8Array.from({ length: 18 }, (_, index) => (episode * 31 + step * 7 + index) & 255),
    width: 3,
    height: 2,
    channels: 3,
  });
const reward = (episode: number, step: number): number | null => (episode === 1 || step === 2 ? null : Math.fround(step * 0.25));
const task = (episode: number, step: number): string | null =>
  episode === 0 ? 'pick' : episode === 1 ? (step % 2 ? 'place' : 'pick') : null;
const blob = (episode: number) => `videos/episode-${episode}.mp4`;

function episodes(): ShardEpisode[] {
  return lengths.map((length, episode) => {
    const steps = Array.from({ length }, (_, step) => step);
    return {
      episodeIndex: 40 + episode,
      fps: 10,
      videoBlobs: { 'observation.images.cam': blob(episode) },
      episode: {
        sourceId: `episode ${episode}`,
        sourceEpisode: String(episode),
        file: 'test',
        length,
        timestamp: Float64Array.from(steps, (step) => step / 10),
        ...(episode === 1 ? {} : { reward: Float32Array.from(steps, (step) => reward(episode, step) ?? NaN) }),
        isTerminal: Uint8Array.from(steps, (step) => (step === length - 1 ? 1 : 0)),
        ...(episode === 1 ? { stepTasks: steps.map((step) => task(episode, step)!) } : { task: task(episode, 0) }),
        features: {
          'observation.state': {
            kind: 'tensor',
            values: Float32Array.from({ length: length * 3 }, (_, i) => state(episode, Math.floor(i / 3), i % 3)),
          },
          action: {
            kind: 'tensor',
            values: Float64Array.from({ length: length * 4 }, (_, i) => action(episode, Math.floor(i / 4), i % 4)),
          },
          'gripper.closed': { kind: 'tensor', values: Uint8Array.from({ length: length * 2 }, (_, i) => (i % 3 === 0 ? 1 : 0)) },
          counter: { kind: 'tensor', values: BigInt64Array.from(steps, (step) => BigInt(step) * 10_000_000_000n) },
          level: { kind: 'tensor', values: Uint8Array.from({ length: length * 2 }, (_, i) => 200 + i) },
          'observation.images.top': { kind: 'image', frames: steps.map((step) => frame(episode, step)) },
          'observation.images.cam': { kind: 'video', file: 'cam.mp4', timestamps: Float64Array.from(steps, (step) => 3 + step / 10) },
        },
      },
    };
  });
}

/** Every (episode, step) of the test data, in export order. */
const expectedRows = lengths.flatMap((length, episode) => Array.from({ length }, (_, step) => ({ episode, step })));

let scratch: string;
let schema: Schema;
let batches: RecordBatch[];
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-parquet-export-'));
  ({ schema, batches } = await shardBatches({ features, episodes: episodes() }));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function exportBytes(params: {
  schema?: Schema;
  batches: RecordBatch[];
  rowGroupRows?: number;
  rowGroupBytes?: number;
}): Promise<Buffer> {
  return collectBytes(arrowToParquet({ schema: params.schema ?? schema, ...params }));
}

function arrayBufferOf(bytes: Buffer): ArrayBuffer {
  return Uint8Array.from(bytes).buffer;
}

async function readRows(bytes: Buffer): Promise<ParquetRow[]> {
  // utf8: false keeps unannotated BYTE_ARRAY (images) as bytes; UTF8 columns are still strings.
  return parquetReadObjects({ file: arrayBufferOf(bytes), utf8: false });
}

/** Runs SQL against a parquet file with DuckDB and returns the rows as JS values. */
async function duckdb(bytes: Buffer, sql: (file: string) => string): Promise<Record<string, unknown>[]> {
  const file = join(scratch, `export-${Math.random().toString(36).slice(2, 10)}.parquet`);
  await writeFile(file, bytes);
  return duckdbRows(sql(`read_parquet('${file}')`));
}

/** The named columns of a batch. (apache-arrow's RecordBatch.select leaves holes in the children of its result.) */
function project(batch: RecordBatch, names: string[]): RecordBatch {
  const fields = names.map((name) => batch.schema.fields.find((field) => field.name === name)!);
  const children = names.map((name) => batch.data.children[batch.schema.fields.findIndex((field) => field.name === name)]!);
  return new RecordBatch(
    new Schema(fields, batch.schema.metadata),
    makeData({ type: new Struct(fields), length: batch.numRows, nullCount: 0, children }),
  );
}

describe('arrowToParquet', () => {
  it('writes Kura shard batches that hyparquet reads back value for value', async () => {
    const bytes = await exportBytes({ batches });
    const rows = await readRows(bytes);
    expect(rows).toHaveLength(expectedRows.length);
    rows.forEach((row, index) => {
      const { episode, step } = expectedRows[index]!;
      expect(row.episode_index).toBe(BigInt(40 + episode));
      expect(row.step_index).toBe(step);
      expect(row.timestamp).toBe(step / 10);
      expect(row.is_first).toBe(step === 0);
      expect(row.is_last).toBe(step === lengths[episode]! - 1);
      expect(row.is_terminal).toBe(step === lengths[episode]! - 1);
      expect(row.reward).toBe(reward(episode, step));
      expect(row.discount).toBeNull();
      expect(row.language_instruction).toBe(task(episode, step));
      expect(row['observation.state']).toEqual([0, 1, 2].map((component) => state(episode, step, component)));
      expect(row.action).toEqual([0, 1, 2, 3].map((component) => action(episode, step, component)));
      expect(row['gripper.closed']).toEqual([0, 1].map((component) => (step * 2 + component) % 3 === 0));
      expect(row.counter).toEqual([BigInt(step) * 10_000_000_000n]);
      expect(row.level).toEqual([200 + step * 2, 201 + step * 2]);
      expect(row['observation.images.top']).toEqual(frame(episode, step));
      expect(row['observation.images.cam']).toEqual({ blob: blob(episode), timestamp_s: 3 + step / 10 });
    });
  });

  it('keeps the Arrow schema metadata (kura.features) in the footer', async () => {
    const metadata = parquetMetadata(arrayBufferOf(await exportBytes({ batches })));
    const kuraFeatures = metadata.key_value_metadata?.find((entry) => entry.key === 'kura.features')?.value;
    expect(JSON.parse(kuraFeatures ?? 'null')).toEqual(JSON.parse(schema.metadata.get('kura.features')!));
    expect(metadata.created_by).toBe('kura (hyparquet-writer 0.17.0)');
  });

  it('is read by DuckDB as natural types: lists, structs, strings, blobs, nulls', async () => {
    const bytes = await exportBytes({ batches });
    const types = Object.fromEntries(
      (await duckdb(bytes, (file) => `DESCRIBE SELECT * FROM ${file}`)).map((row) => [row.column_name, row.column_type]),
    );
    expect(types).toMatchObject({
      episode_index: 'BIGINT',
      step_index: 'INTEGER',
      timestamp: 'DOUBLE',
      is_terminal: 'BOOLEAN',
      reward: 'FLOAT',
      language_instruction: 'VARCHAR',
      'observation.state': 'FLOAT[]',
      action: 'DOUBLE[]',
      counter: 'BIGINT[]',
      level: 'UTINYINT[]',
      'observation.images.top': 'BLOB',
      'observation.images.cam': 'STRUCT(blob VARCHAR, timestamp_s DOUBLE)',
    });

    const rows = await duckdb(
      bytes,
      (file) => `SELECT episode_index, step_index, "observation.state"[2] AS state_y, reward, language_instruction AS task,
                        octet_length("observation.images.top") AS image_bytes, "observation.images.cam".blob AS video
                 FROM ${file} ORDER BY episode_index, step_index`,
    );
    expect(rows).toHaveLength(expectedRows.length);
    rows.forEach((row, index) => {
      const { episode, step } = expectedRows[index]!;
      expect(row.episode_index).toBe(BigInt(40 + episode));
      expect(row.step_index).toBe(step);
      expect(row.state_y).toBe(state(episode, step, 1));
      expect(row.reward).toBe(reward(episode, step));
      expect(row.task).toBe(task(episode, step));
      expect(row.image_bytes).toBe(BigInt(frame(episode, step).byteLength));
      expect(row.video).toBe(blob(episode));
    });
    const [metadata] = await duckdb(
      bytes,
      (file) =>
        `SELECT decode(value) AS value FROM parquet_kv_metadata(${file.slice('read_parquet('.length, -1)}) WHERE decode(key) = 'kura.features'`,
    );
    expect(JSON.parse(String(metadata?.value))).toEqual(JSON.parse(schema.metadata.get('kura.features')!));
  });

  it('gives byte-identical files for the same rows, however they are batched', async () => {
    const first = await exportBytes({ batches, rowGroupRows: 6 });
    const second = await exportBytes({ batches, rowGroupRows: 6 });
    expect(first.equals(second)).toBe(true);
    // The same rows in batches of 1 and 3 steps: row groups are cut by rows, not by batches.
    const rebatched = batches.flatMap((batch) => Array.from({ length: batch.numRows }, (_, row) => batch.slice(row, row + 1)));
    expect((await exportBytes({ batches: rebatched, rowGroupRows: 6 })).equals(first)).toBe(true);
    const threes = batches.flatMap((batch) =>
      Array.from({ length: Math.ceil(batch.numRows / 3) }, (_, part) => batch.slice(part * 3, part * 3 + 3)),
    );
    expect((await exportBytes({ batches: threes, rowGroupRows: 6 })).equals(first)).toBe(true);
  });

  it('streams several row groups that read back complete and in order', async () => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of arrowToParquet({ schema, batches: batches.values(), rowGroupRows: 3 })) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    const metadata = parquetMetadata(arrayBufferOf(bytes));
    expect(metadata.row_groups.map((group) => Number(group.num_rows))).toEqual([3, 3, 3, 3, 3, 1]);
    // A chunk per row group (the first carries the magic bytes with it), then the footer.
    expect(chunks).toHaveLength(7);
    const rows = await readRows(bytes);
    expect(rows.map((row) => [Number(row.episode_index) - 40, row.step_index])).toEqual(
      expectedRows.map(({ episode, step }) => [episode, step]),
    );
    const duck = await duckdb(bytes, (file) => `SELECT step_index, "observation.state"[3] AS z FROM ${file}`);
    expect(duck.map((row) => row.z)).toEqual(expectedRows.map(({ episode, step }) => state(episode, step, 2)));
  });

  it('also closes row groups by bytes (images make rows large)', async () => {
    const rowBytes = 8 + 4 + 8 + 3 / 8 + 4 + 4 + 4 + 4 * 3 + 8 * 4 + 2 / 8 + 8 + 2 + 8; // fixed-width part of a row, roughly
    const bytes = await exportBytes({ batches, rowGroupBytes: rowBytes * 4 });
    const metadata = parquetMetadata(arrayBufferOf(bytes));
    expect(metadata.row_groups.length).toBeGreaterThan(4);
    expect(metadata.row_groups.every((group) => Number(group.num_rows) <= 4)).toBe(true);
    expect((await readRows(bytes)).map((row) => row.step_index)).toEqual(expectedRows.map(({ step }) => step));
  });

  it('writes an empty file with the schema when there are no rows', async () => {
    const bytes = await exportBytes({ batches: [] });
    expect(parquetMetadata(arrayBufferOf(bytes)).num_rows).toBe(0n);
    expect(await duckdb(bytes, (file) => `SELECT count(*) AS n FROM ${file}`)).toEqual([{ n: 0n }]);
  });

  it('exports a projection with a leading dataset_id column', async () => {
    const columns = ['episode_index', 'step_index', 'timestamp', 'reward', 'observation.state', 'observation.images.cam'];
    const datasetIds = vectorFromArray(['ds_a', 'ds_b'], new Utf8()).data[0]!;
    const datasetType = new Dictionary(new Utf8(), new Int32());
    const projected = batches.map((batch, position) => {
      const selected = project(batch, columns);
      const datasetId = makeData({
        type: datasetType,
        length: batch.numRows,
        data: new Int32Array(batch.numRows).fill(position % 2),
        dictionary: vectorFromArray(['ds_a', 'ds_b'], new Utf8()),
      });
      const fields = [new Field('dataset_id', datasetType, false), ...selected.schema.fields];
      const children: Data[] = [datasetId, ...selected.data.children];
      return new RecordBatch(
        new Schema(fields, schema.metadata),
        makeData({ type: new Struct(fields), length: batch.numRows, nullCount: 0, children }),
      );
    });
    expect(datasetIds.length).toBe(2);
    const bytes = await exportBytes({ schema: projected[0]!.schema, batches: projected });
    const rows = await duckdb(bytes, (file) => `SELECT * FROM ${file}`);
    expect(Object.keys(rows[0]!)).toEqual(['dataset_id', ...columns]);
    rows.forEach((row, index) => {
      const { episode, step } = expectedRows[index]!;
      expect(row.dataset_id).toBe(episode % 2 ? 'ds_b' : 'ds_a');
      expect(row['observation.state']).toEqual([0, 1, 2].map((component) => state(episode, step, component)));
      expect(row['observation.images.cam']).toEqual({ blob: blob(episode), timestamp_s: 3 + step / 10 });
    });
  });

  it('refuses Arrow types it has no mapping for, and batches that do not fit the schema', async () => {
    const timestamps = new Schema([new Field('at', new TimestampMillisecond(), false)]);
    expect(() => arrowToParquet({ schema: timestamps, batches: [] })).toThrow(ExportError);
    expect(() => arrowToParquet({ schema: timestamps, batches: [] })).toThrow(/column at has Arrow type Timestamp/);

    const other = project(batches[0]!, ['episode_index', 'step_index']);
    const failure = await exportBytes({ batches: [other] }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ExportError);
    expect((failure as ExportError).code).toBe('EXPORT_SCHEMA_MISMATCH');
  });
});
