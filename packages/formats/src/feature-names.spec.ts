// Feature names taken from an upload become object keys in many places (#19 items 9, 10 and 5): a
// name such as `__proto__` or `constructor` must be imported and exported intact or refused with a
// code — never lost — and names, ranks and dimensions past the spec's limits are refused as dataset
// creation refuses them.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { FeatureSpec } from '@kura/schema';
import { renameFeatures } from './feature-map.js';
import { ImportError, type ImportSource } from './importer.js';
import { lerobotImporter } from './lerobot/import.js';
import { kuraNdjsonImporter } from './ndjson/import.js';
import { batchesToNdjson } from './ndjson/export.js';
import { rldsImporter } from './rlds/import.js';
import { bridgeLikeEpisode, encodeExample, writeTfRecordFile } from './rlds/testing.js';
import { sourceFromDirectory, sourceFromFiles } from './source.js';
import { importAll } from './testing/import-all.js';
import { constantParquet, lerobotColumns, writeLerobotWithParquet } from './testing/hostile-files.js';
import { collectBytes, shardBatches } from './testing/shard-batches.js';
import { checkFeatureSpec } from './validate.js';

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'kura-feature-names-'));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

async function fileSource(name: string, content: string | Uint8Array): Promise<ImportSource> {
  const path = join(folder, `${Math.random().toString(36).slice(2)}-${name}`);
  await writeFile(path, content);
  return sourceFromFiles([{ path: name, absolutePath: path }]);
}

async function* asAsync<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

describe('features named __proto__ (and other Object.prototype names)', () => {
  const steps = [0, 1].map(
    (step) =>
      // JSON.parse gives `__proto__` as an own key, as the importer reads it.
      `{"episode":0,"step":${step},"observation":{"state":[${step}],"__proto__":[7,${step}]},"action":{"__proto__":[${step}],"constructor":[1]}}`,
  );

  it('NDJSON imports them intact, and the NDJSON export writes them back as own keys', async () => {
    const imported = await importAll(kuraNdjsonImporter, await fileSource('steps.ndjson', `${steps.join('\n')}\n`), { validate: true });
    expect(Object.keys(imported.features).sort()).toEqual([
      'action.__proto__',
      'action.constructor',
      'observation.__proto__',
      'observation.state',
    ]);
    expect(() => checkFeatureSpec(imported.features)).not.toThrow();
    const episode = imported.episodes[0]!;
    expect(Object.hasOwn(episode.features, 'observation.__proto__')).toBe(true);

    const { schema, batches } = await shardBatches({ features: imported.features, episodes: [{ episodeIndex: 0, episode, fps: 10 }] });
    const text = (await collectBytes(batchesToNdjson({ schema, batches: asAsync(batches) }))).toString('utf8');
    const line = JSON.parse(text.split('\n')[1]!) as { observation: Record<string, unknown>; action: Record<string, unknown> };
    expect(Object.getOwnPropertyDescriptor(line.observation, '__proto__')?.value).toEqual([7, 1]);
    expect(Object.getOwnPropertyDescriptor(line.action, '__proto__')?.value).toEqual([1]);
    // And the export reads back as the same features.
    const again = await importAll(kuraNdjsonImporter, await fileSource('again.ndjson', text), { validate: true });
    expect(Object.keys(again.features).sort()).toEqual(Object.keys(imported.features).sort());
  });

  it('RLDS imports steps/observation/__proto__, steps/constructor and episode_metadata/__proto__ intact', async () => {
    const path = join(folder, 'names.tfrecord');
    const example = bridgeLikeEpisode({ steps: 3 });
    example['steps/observation/__proto__'] = { floats: [1, 2, 3, 4, 5, 6] };
    example['steps/constructor'] = { floats: [9, 9, 9] };
    example['episode_metadata/__proto__'] = { bytes: ['kept'] };
    await writeTfRecordFile(path, [encodeExample(example)]);

    const imported = await importAll(rldsImporter, await sourceFromFiles([{ path: 'names.tfrecord', absolutePath: path }]), {
      validate: true,
    });
    expect(imported.features['observation.__proto__']).toEqual({ dtype: 'float32', shape: [2] });
    expect(imported.features['observation.constructor']).toEqual({ dtype: 'float32', shape: [] });
    const episode = imported.episodes[0]!;
    const state = episode.features['observation.__proto__'];
    expect(state?.kind === 'tensor' ? Array.from(state.values, Number) : undefined).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Object.getOwnPropertyDescriptor(episode.metadata, '__proto__')?.value).toBe('kept');
  });

  it('a LeRobot feature named __proto__ is skipped with a warning, not lost without a word', async () => {
    const dataset = join(folder, 'lerobot-proto');
    await writeLerobotWithParquet(dataset, {
      length: 1,
      parquet: constantParquet({ rows: 1, columns: lerobotColumns({ state: 1, others: 1 }) }),
    });
    const infoPath = join(dataset, 'meta/info.json');
    const info = await readFile(infoPath, 'utf8');
    await writeFile(infoPath, info.replace('"features":{', '"features":{"__proto__":{"dtype":"float32","shape":[1],"names":null},'));

    const imported = await importAll(lerobotImporter, await sourceFromDirectory(dataset), { validate: true });
    expect(imported.warnings).toContainEqual(
      expect.objectContaining({ code: 'LEROBOT_FEATURE_SKIPPED', location: { file: 'meta/info.json', field: '__proto__' } }),
    );
  });

  it('a featureMap that renames a feature to __proto__ makes a spec the check refuses, naming it', () => {
    const renamed = renameFeatures({ action: { dtype: 'float32', shape: [2] } }, { action: '__proto__' });
    expect(Object.keys(renamed)).toEqual(['__proto__']);
    expect(() => checkFeatureSpec(renamed, { file: 'data.ndjson' })).toThrow(
      expect.objectContaining({ code: 'FEATURE_SPEC_INVALID', location: { file: 'data.ndjson', field: '__proto__' } }),
    );
  });

  it('a feature named like an Object.prototype member is renamed by featureMap only when the map says so', () => {
    const feature: FeatureSpec[string] = { dtype: 'float32', shape: [1] };
    const spec: FeatureSpec = Object.fromEntries([
      ['toString', feature],
      ['action', feature],
    ]);
    expect(Object.keys(renameFeatures(spec, {}))).toEqual(['toString', 'action']);
  });
});

describe('the feature spec limits dataset creation holds, at ingest', () => {
  const refused = (spec: unknown): ImportError => {
    try {
      checkFeatureSpec(spec as FeatureSpec, { file: 'data.ndjson' });
    } catch (error) {
      if (error instanceof ImportError) return error;
      throw error;
    }
    throw new Error('the spec was accepted');
  };
  const vector = (size: number) => ({ dtype: 'float32' as const, shape: [size] });

  it.each([
    ['a dimension of 1,000,001', { action: vector(1_000_001) }, 'action', /dimension of 1000001 \(at most 1,000,000\)/],
    ['rank 9', { action: { dtype: 'float32', shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] } }, 'action', /9 dimensions \(at most 8\)/],
    ['a name with spaces, slashes and dots', { 'observation.a b/../c': vector(2) }, 'observation.a b/../c', /is not a feature name/],
    [
      'a 10,000-character name',
      { [`observation.${'a'.repeat(9_988)}`]: vector(2) },
      `observation.${'a'.repeat(9_988)}`,
      /10000 characters \(at most 256\)/,
    ],
    ['an empty vector', { action: vector(0) }, 'action', /dimension of 0/],
  ])('%s: FEATURE_SPEC_INVALID at the feature', (_, spec, field, message) => {
    const error = refused(spec);
    expect(error.code).toBe('FEATURE_SPEC_INVALID');
    expect(error.location).toEqual({ file: 'data.ndjson', field });
    expect(error.message).toMatch(message);
  });
});

describe('importer error paths are coded', () => {
  it('a LeRobot data_path padding the index to 999,999,999 digits is LEROBOT_INFO_INVALID at data_path', async () => {
    const dataset = join(folder, 'lerobot-width');
    await writeLerobotWithParquet(dataset, {
      length: 1,
      parquet: constantParquet({ rows: 1, columns: lerobotColumns({ state: 1, others: 1 }) }),
    });
    const infoPath = join(dataset, 'meta/info.json');
    const info = JSON.parse(await readFile(infoPath, 'utf8')) as Record<string, unknown>;
    await writeFile(
      infoPath,
      JSON.stringify({ ...info, data_path: 'data/chunk-{episode_chunk:03d}/episode_{episode_index:0999999999d}.parquet' }),
    );

    const failure = await importAll(lerobotImporter, await sourceFromDirectory(dataset)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ImportError);
    expect(failure).toMatchObject({ code: 'LEROBOT_INFO_INVALID', location: { file: 'meta/info.json', field: 'data_path' } });
  });
});
