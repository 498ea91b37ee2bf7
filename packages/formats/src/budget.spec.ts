// Resource budgets of an upload (budget.ts; #19's memory findings): files that declare gigabytes in
// kilobytes fail INGEST_LIMIT_EXCEEDED naming the limit and where, before the memory is taken. Every
// hostile file is made here, at test time (testing/hostile-files.ts).
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { IngestBudget } from './budget.js';
import { hdf5AlohaImporter } from './hdf5/aloha.js';
import { ImportError, type Importer, type ImportSource } from './importer.js';
import { lerobotImporter } from './lerobot/import.js';
import { kuraNdjsonImporter } from './ndjson/import.js';
import { rldsImporter } from './rlds/import.js';
import { sourceFromDirectory, sourceFromFiles } from './source.js';
import { importAll } from './testing/import-all.js';
import {
  constantParquet,
  lerobotColumns,
  writeGzipTfRecordOfZeros,
  writeLerobotWithParquet,
  writeSparseAlohaHdf5,
} from './testing/hostile-files.js';

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'kura-budget-'));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** The ImportError importing `source` ends with (every episode read, as the ingest does). */
async function importFailure(importer: Importer, source: ImportSource, budget?: IngestBudget): Promise<ImportError> {
  try {
    const opened = await importer.open(source, { warn: () => undefined, ...(budget ? { budget } : {}) });
    for await (const episode of opened.episodes) void episode;
  } catch (error) {
    if (error instanceof ImportError) return error;
    throw error;
  }
  throw new Error('the import succeeded');
}

describe('HDF5: sparse datasets', () => {
  it('a 8 KB ALOHA file declaring 5,000,000 steps fails on the step budget at /action, before any read', async () => {
    const path = join(folder, 'sparse-steps/episode_0.hdf5');
    await writeSparseAlohaHdf5(path, { steps: 5_000_000 });
    const { size } = await stat(path);
    expect(size).toBeLessThan(16 * 1024);

    const error = await importFailure(hdf5AlohaImporter, await sourceFromFiles([{ path: 'episode_0.hdf5', absolutePath: path }]));
    expect(error.code).toBe('INGEST_LIMIT_EXCEEDED');
    expect(error.location).toEqual({ file: 'episode_0.hdf5', episode: 'episode_0', field: '/action' });
    expect(error.details).toMatchObject({ limit: 'steps', value: 5_000_000, max: 100_000 + size });
    expect(error.message).toContain('KURA_INGEST_STEPS_PER_BYTE');
  });

  it('a file whose qpos declares 480 MB in 60,000 sparse steps fails on the decoded-bytes budget at that dataset', async () => {
    const path = join(folder, 'sparse-bytes/episode_0.hdf5');
    await writeSparseAlohaHdf5(path, { steps: 60_000, qposWidth: 2_000 });
    const error = await importFailure(hdf5AlohaImporter, await sourceFromFiles([{ path: 'episode_0.hdf5', absolutePath: path }]));
    expect(error.code).toBe('INGEST_LIMIT_EXCEEDED');
    expect(error.location).toEqual({ file: 'episode_0.hdf5', episode: 'episode_0', field: '/observations/qpos' });
    expect(error.details).toMatchObject({ limit: 'decodedBytes' });
  });
});

describe('parquet (LeRobot): pages that declare more than they hold', () => {
  it('a page of 500,000,000 run-length-encoded values in a file of a few hundred bytes fails at its column', async () => {
    const dataset = join(folder, 'parquet-page');
    const parquet = constantParquet({ rows: 1, columns: lerobotColumns({ state: 500_000_000, others: 1 }) });
    expect(parquet.length).toBeLessThan(20 * 1024);
    await writeLerobotWithParquet(dataset, { length: 1, parquet });

    const error = await importFailure(lerobotImporter, await sourceFromDirectory(dataset));
    expect(error.code).toBe('INGEST_LIMIT_EXCEEDED');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000000.parquet', episode: 0, field: 'observation.state' });
    expect(error.details).toMatchObject({ limit: 'tensorBytes', value: 500_000_000 * 16, max: 1024 ** 3 });
  });

  it('a file declaring 5,000,000 rows (every column one RLE run) fails on the step budget before its rows are read', async () => {
    const dataset = join(folder, 'parquet-rows');
    const parquet = constantParquet({ rows: 5_000_000, columns: lerobotColumns({ state: 5_000_000, others: 5_000_000 }) });
    await writeLerobotWithParquet(dataset, { length: 5_000_000, parquet });

    const error = await importFailure(lerobotImporter, await sourceFromDirectory(dataset));
    expect(error.code).toBe('INGEST_LIMIT_EXCEEDED');
    expect(error.location).toEqual({ file: 'data/chunk-000/episode_000000.parquet', episode: 0 });
    expect(error.details).toMatchObject({ limit: 'steps', value: 5_000_000 });
  });

  it('a well-formed file of the same layout imports (the builder is a real parquet file)', async () => {
    const dataset = join(folder, 'parquet-small');
    await writeLerobotWithParquet(dataset, {
      length: 1,
      parquet: constantParquet({ rows: 1, columns: lerobotColumns({ state: 1, others: 1 }) }),
    });
    const imported = await importAll(lerobotImporter, await sourceFromDirectory(dataset), { validate: true });
    expect(imported.episodes.map((episode) => episode.length)).toEqual([1]);
  });
});

describe('TFRecord: a gzip-compressed record of 1 GiB', () => {
  it('fails on its length field, before the record is read', async () => {
    const path = join(folder, 'episodes.tfrecord.gz');
    await writeGzipTfRecordOfZeros(path, 1024 ** 3);
    const { size } = await stat(path);
    expect(size).toBeLessThan(2 * 1024 * 1024);

    const error = await importFailure(rldsImporter, await sourceFromFiles([{ path: 'episodes.tfrecord.gz', absolutePath: path }]));
    expect(error.code).toBe('INGEST_LIMIT_EXCEEDED');
    expect(error.location).toEqual({ file: 'episodes.tfrecord.gz', episode: 0 });
    expect(error.details).toMatchObject({ limit: 'decodedBytes', value: 1024 ** 3 });
  }, 60_000);
});

describe('NDJSON', () => {
  const ndjsonSource = async (name: string, text: string) => {
    const path = join(folder, name);
    await writeFile(path, text);
    return sourceFromFiles([{ path: name, absolutePath: path }]);
  };

  it('a line longer than maxLineBytes fails at that line, naming the limit', async () => {
    const line = (step: number, width: number) =>
      `${JSON.stringify({ episode: 0, step, observation: { state: new Array<number>(width).fill(0.5) }, action: [0] })}\n`;
    const source = await ndjsonSource('long-line.ndjson', line(0, 2) + line(1, 2) + line(2, 5_000));
    const budget = IngestBudget.forSource(source, { maxLineBytes: 10_000 });

    const error = await importFailure(kuraNdjsonImporter, source, budget);
    expect(error.code).toBe('INGEST_LIMIT_EXCEEDED');
    expect(error.location).toEqual({ file: 'long-line.ndjson', line: 3 });
    expect(error.details).toMatchObject({ limit: 'lineBytes', max: 10_000 });
  });

  it('a feature whose values for one episode pass maxTensorBytes fails at that episode, step and feature', async () => {
    const lines = Array.from({ length: 40 }, (_, step) =>
      JSON.stringify({ episode: 'long', step, observation: { state: new Array<number>(100).fill(step) }, action: [0] }),
    );
    const source = await ndjsonSource('long-episode.ndjson', `${lines.join('\n')}\n`);
    const budget = IngestBudget.forSource(source, { maxTensorBytes: 10_000 });

    const error = await importFailure(kuraNdjsonImporter, source, budget);
    expect(error.code).toBe('INGEST_LIMIT_EXCEEDED');
    // 25 steps of 100 float32 values are 10,000 bytes: the 26th step goes past.
    expect(error.location).toEqual({ file: 'long-episode.ndjson', line: 26, episode: 'long', step: 25, field: 'observation.state' });
    expect(error.details).toMatchObject({ limit: 'tensorBytes', value: 10_400, max: 10_000 });
  });
});
