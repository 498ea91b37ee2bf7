// −0.0 is a value robot logs hold (robosuite files carry thousands: negated zero controller outputs);
// numerically equal to 0, but a bit-exact store keeps its sign. Each path in and out is checked with
// a small episode whose action alternates 0.0 and −0.0 in one column.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tableFromIPC, type RecordBatch, type Schema } from 'apache-arrow';
import { parquetReadObjects } from 'hyparquet';
import type { ImportedEpisode } from './importer.js';
import { DatasetStatsAccumulator } from './stats/index.js';
import { encodeArrowIpc } from './kura-arrow/ipc-encode.js';
import { exportLerobotTar } from './lerobot/export.js';
import { lerobotImporter } from './lerobot/import.js';
import { batchesToNdjson } from './ndjson/export.js';
import { kuraNdjsonImporter } from './ndjson/import.js';
import { arrowToParquet } from './parquet/export.js';
import { sourceFromDirectory, sourceFromFiles } from './source.js';
import { importAll, type ImportedAll } from './testing/import-all.js';
import { collectBytes, shardBatches } from './testing/shard-batches.js';

const run = promisify(execFile);

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-negative-zero-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Six steps; the action's second component is 0.0 on even steps and −0.0 on odd ones (written `-0.0` and `-0`). */
const ndjsonWithNegativeZero = Array.from(
  { length: 6 },
  (_, step) =>
    `{"episode":0,"step":${step},"timestamp":${step / 10},"observation":{"state":[${step},-0.0]},"action":[0.5,${step % 2 === 0 ? '0' : step % 4 === 1 ? '-0.0' : '-0'},1]${step === 0 ? ',"reward":-0' : ''}}`,
).join('\n');

/** The signs of an episode's action component 1, as 'neg' (−0), 'pos' (+0) or the value. */
function signsOf(values: ArrayLike<unknown>, perStep: number, component: number): string[] {
  return Array.from({ length: values.length / perStep }, (_, step) => {
    const value = values[step * perStep + component];
    return Object.is(value, -0) ? 'neg' : Object.is(value, 0) ? 'pos' : String(value);
  });
}

const expectedSigns = ['pos', 'neg', 'pos', 'neg', 'pos', 'neg'];

async function* asAsync<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

function action(episode: ImportedEpisode | undefined): Float32Array {
  const values = episode?.features.action;
  if (values?.kind !== 'tensor' || !(values.values instanceof Float32Array)) throw new Error('expected a float32 action');
  return values.values;
}

async function importNdjson(text: string): Promise<ImportedAll> {
  const path = join(scratch, `steps-${Math.random().toString(36).slice(2)}.ndjson`);
  await writeFile(path, text);
  return importAll(kuraNdjsonImporter, await sourceFromFiles([{ path: 'steps.ndjson', absolutePath: path }]), { validate: true });
}

describe('−0.0 is kept bit-exact', () => {
  let imported: ImportedAll;
  let schema: Schema;
  let batches: RecordBatch[];
  beforeAll(async () => {
    imported = await importNdjson(ndjsonWithNegativeZero);
    ({ schema, batches } = await shardBatches({
      features: imported.features,
      episodes: [{ episodeIndex: 0, episode: imported.episodes[0]!, fps: 10 }],
    }));
  });

  it('by the NDJSON importer (-0.0 and -0 both read as −0) and in the Arrow shard', () => {
    expect(signsOf(action(imported.episodes[0]), 3, 1)).toEqual(expectedSigns);
    expect(Object.is(imported.episodes[0]?.reward?.[0], -0)).toBe(true);
    const stored = batches[0]!.getChild('action')!.data[0]!.children[0]!.values as Float32Array;
    expect(signsOf(stored, 3, 1)).toEqual(expectedSigns);
  });

  it('without upsetting the statistics: a column of 0.0 and −0.0 has min, max and quantiles 0 and std 0', () => {
    const stats = new DatasetStatsAccumulator();
    stats.numeric('action', 3).addColumn(action(imported.episodes[0]), 6);
    const summary = DatasetStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(stats.toJSON()))).summary().action;
    if (!summary || !('min' in summary) || summary.min === null) throw new Error('expected numeric statistics');
    for (const statistic of [summary.min, summary.max, summary.mean, summary.std, summary.q01, summary.q50, summary.q99])
      expect(statistic[1]).toBe(0);
    expect(JSON.stringify(summary)).not.toContain('null');
  });

  it('by the NDJSON export, which writes −0 as -0.0 and reads back as −0', async () => {
    const text = (await collectBytes(batchesToNdjson({ schema, batches: asAsync(batches) }))).toString('utf8');
    const firstLine = JSON.parse(text.split('\n')[1]!) as { action: number[] };
    expect(text.split('\n')[1]).toContain('"action":[0.5,-0.0,1]');
    expect(Object.is(firstLine.action[1], -0)).toBe(true);
    // Python's json reads -0.0 as the float −0.0 (a bare -0 would be the integer 0 there).
    expect(text.split('\n')[0]).toContain('"reward":-0.0');
    const again = await importNdjson(text);
    expect(signsOf(action(again.episodes[0]), 3, 1)).toEqual(expectedSigns);
  });

  it('by the Parquet export (dictionary encoding would merge −0 into 0)', async () => {
    const bytes = await collectBytes(arrowToParquet({ schema, batches }));
    const rows = await parquetReadObjects({ file: Uint8Array.from(bytes).buffer, columns: ['action', 'observation.state', 'reward'] });
    expect(rows.map((row) => (Object.is((row.action as number[])[1], -0) ? 'neg' : 'pos'))).toEqual(expectedSigns);
    expect(rows.every((row) => Object.is((row['observation.state'] as number[])[1], -0))).toBe(true);
    expect(Object.is(rows[0]?.reward, -0)).toBe(true);
  });

  it('by the Arrow IPC export (stream and file)', async () => {
    for (const kind of ['stream', 'file'] as const) {
      const bytes = await collectBytes(encodeArrowIpc({ schema, batches: asAsync(batches), kind }));
      const table = tableFromIPC(bytes);
      const values = table.getChild('action')!.data[0]!.children[0]!.values as Float32Array;
      expect(signsOf(values, 3, 1)).toEqual(expectedSigns);
    }
  });

  it('by the LeRobot export and the LeRobot importer (parquet both ways)', async () => {
    const tar = await collectBytes(
      exportLerobotTar({
        features: imported.features,
        fps: 10,
        robotType: 'kura_test_arm',
        episodes: [{ batches }],
        mtime: new Date('2026-01-02T03:04:05Z'),
        openVideo: () => Promise.reject(new Error('no videos here')),
      }),
    );
    const folder = join(scratch, 'lerobot');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'export.tar'), tar);
    await mkdir(join(folder, 'dataset'));
    await run('tar', ['-xf', join(folder, 'export.tar'), '-C', join(folder, 'dataset')]);
    const parquet = await readFile(join(folder, 'dataset', 'data', 'chunk-000', 'episode_000000.parquet'));
    const rows = await parquetReadObjects({ file: Uint8Array.from(parquet).buffer, columns: ['action'] });
    expect(rows.map((row) => (Object.is((row.action as number[])[1], -0) ? 'neg' : 'pos'))).toEqual(expectedSigns);
    const reimported = await importAll(lerobotImporter, await sourceFromDirectory(join(folder, 'dataset')), { validate: true });
    expect(signsOf(action(reimported.episodes[0]), 3, 1)).toEqual(expectedSigns);
  });
});
