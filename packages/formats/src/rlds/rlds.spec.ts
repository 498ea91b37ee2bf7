import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { featureSpecSchema } from '@kura/schema';
import type { ImportedEpisode, ImportResult } from '../importer.js';
import { ImportError } from '../importer.js';
import { sourceFromDirectory, sourceFromFiles } from '../source.js';
import { importAll, type ImportedAll } from '../testing/import-all.js';
import { rldsImporter } from './import.js';
import { bridgeLikeEpisode, encodeExample, frameTfRecord, jpegHeaderOnly, writeTfRecordFile } from './testing.js';
import type { TestFeature } from './testing.js';
import { crc32c, maskCrc32c, readTfRecords } from './tfrecord.js';

// The fixture is octo-models/octo's tests/debug_dataset/bridge_dataset/1.0.0 (MIT), kept byte-for-byte in
// test/fixtures/rlds/bridge_debug: 25 BridgeData V2 episodes of 10 steps each.
const fixtureDirectory = fileURLToPath(new URL('../../../../test/fixtures/rlds/bridge_debug/', import.meta.url));
const fixtureRecordsName = 'bridge_dataset-train.tfrecord-00000-of-00001';
const fixtureRecords = join(fixtureDirectory, fixtureRecordsName);
const fixtureFeaturesJson = join(fixtureDirectory, 'features.json');

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kura-rlds-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

let folderCount = 0;
/** A fresh folder under the scratch directory, for one test's upload. */
async function newFolder(): Promise<string> {
  const folder = join(scratch, `upload-${folderCount++}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(folder);
  return folder;
}

/** The ImportError that opening or reading the folder throws (failing the test when there is none). */
async function importFailure(folder: string): Promise<ImportError> {
  try {
    await importFolder(folder);
  } catch (error) {
    if (error instanceof ImportError) return error;
    throw error;
  }
  throw new Error('the import succeeded, but an ImportError was expected');
}

/** Byte offsets of the records of a TFRecord file's bytes. */
function recordOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let offset = 0; offset < bytes.length; offset += 16 + Number(bytes.readBigUInt64LE(offset))) offsets.push(offset);
  return offsets;
}

/** A folder holding the fixture's features.json and records written from the given episodes. */
async function folderWithEpisodes(episodes: Array<Record<string, TestFeature>>, options: { featuresJson?: boolean } = {}): Promise<string> {
  const folder = await newFolder();
  if (options.featuresJson ?? true) await copyFile(fixtureFeaturesJson, join(folder, 'features.json'));
  await writeTfRecordFile(
    join(folder, 'synthetic-train.tfrecord-00000-of-00001'),
    episodes.map((episode) => encodeExample(episode)),
  );
  return folder;
}

const isJpeg = (frame: Uint8Array | undefined): boolean => frame !== undefined && frame[0] === 0xff && frame[1] === 0xd8;

describe('TFRecord framing', () => {
  it('computes CRC-32C and TensorFlow’s mask', () => {
    // The standard check value of CRC-32C.
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(maskCrc32c(0)).toBe(0xa282ead8);
  });

  it('reads back what the test writer frames, one record at a time', async () => {
    const folder = await newFolder();
    const path = join(folder, 'plain.tfrecord');
    const payloads = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(300_000, 7)];
    await writeTfRecordFile(path, payloads);
    const records = [];
    // A small chunk size makes records span several reads.
    for await (const record of readTfRecords(
      { path: 'plain.tfrecord', absolutePath: path, bytes: (await readFile(path)).length },
      { chunkBytes: 1000 },
    ))
      records.push(record);
    // Compared as base64: Jest's deep equality walks a 300 kB buffer byte by byte, slowly.
    expect(records.map((record) => Buffer.from(record.payload).toString('base64'))).toEqual(
      payloads.map((payload) => payload.toString('base64')),
    );
    expect(records.map((record) => record.offset)).toEqual([0, 21, 37]);
  });
});

describe('rlds importer on the bridge_debug fixture (octo-models/octo, MIT)', () => {
  let imported: ImportedAll;
  beforeAll(async () => {
    imported = await importFolder(fixtureDirectory);
  });

  it('detects the TFDS folder', async () => {
    expect(await rldsImporter.detect(await sourceFromDirectory(fixtureDirectory))).toBe(true);
  });

  it('maps the TFDS features to a valid Kura feature spec', () => {
    const { features } = imported.result;
    expect(featureSpecSchema.safeParse(features).success).toBe(true);
    expect(Object.keys(features)).toEqual([
      'action',
      'observation.images.image_0',
      'observation.images.image_1',
      'observation.images.image_2',
      'observation.images.image_3',
      'observation.language_embedding',
      'observation.state',
    ]);
    expect(features.action).toMatchObject({ dtype: 'float32', shape: [7] });
    expect(features['observation.state']).toMatchObject({ dtype: 'float32', shape: [7] });
    expect(features['observation.language_embedding']).toMatchObject({ dtype: 'float32', shape: [512] });
    expect(features['observation.images.image_0']).toEqual({
      dtype: 'image',
      shape: [64, 64, 3],
      encoding: 'jpeg',
      description: 'Main camera RGB observation.',
    });
    expect(imported.result.expectedEpisodes).toBe(25);
  });

  it('imports 25 episodes of 10 steps, numbered in record order', () => {
    const { episodes } = imported;
    expect(episodes).toHaveLength(25);
    expect(episodes.map((episode) => episode.length)).toEqual(Array.from({ length: 25 }, () => 10));
    expect(episodes.map((episode) => episode.sourceIndex)).toEqual(Array.from({ length: 25 }, (_, index) => index));
    expect(episodes[7]?.sourceId).toBe(`${fixtureRecordsName}#7`);
    expect(episodes[7]?.sourceEpisode).toBe(`${fixtureRecordsName}#7`);
    expect(episodes[7]?.file).toBe(fixtureRecordsName);
  });

  it('keeps the four cameras as JPEG bytes, one frame per step', () => {
    for (const episode of imported.episodes) {
      for (const camera of ['image_0', 'image_1', 'image_2', 'image_3']) {
        const values = episode.features[`observation.images.${camera}`];
        if (values?.kind !== 'image') throw new Error(`observation.images.${camera} is ${values?.kind}`);
        expect(values.frames).toHaveLength(10);
        expect(values.frames.every(isJpeg)).toBe(true);
      }
    }
  });

  it('carries actions, states and the other step columns over exactly', () => {
    const [first] = imported.episodes;
    const action = first?.features.action;
    const state = first?.features['observation.state'];
    if (action?.kind !== 'tensor' || state?.kind !== 'tensor') throw new Error('action and state are tensors');
    expect(action.values).toBeInstanceOf(Float32Array);
    expect(action.values).toHaveLength(10 * 7);
    // Values read from the fixture with an independent decoder (float32, so exact).
    expect(action.values[6]).toBe(1);
    expect(action.values[7]).toBe(Math.fround(-0.001784169813618064));
    expect(state.values[0]).toBe(Math.fround(0.2338147908449173));
    expect(first?.features['observation.language_embedding']).toMatchObject({ kind: 'tensor' });
    expect(Array.from(first?.discount ?? [])).toEqual(Array.from({ length: 10 }, () => 1));
    expect(Array.from(first?.reward ?? [])).toEqual(Array.from({ length: 10 }, () => 0));
    expect(Array.from(first?.isTerminal ?? [])).toEqual(Array.from({ length: 10 }, () => 0));
  });

  it('gives every episode its task and its episode_metadata', () => {
    for (const episode of imported.episodes) {
      expect(typeof episode.task).toBe('string');
      expect(episode.task?.length).toBeGreaterThan(0);
      expect(episode.stepTasks).toBeUndefined();
      expect(episode.metadata).toMatchObject({ has_language: true, has_image_0: false });
      expect(episode.metadata?.file_path).toMatch(/^\/nfs\/.*\/out\.npy$/);
      expect(typeof episode.metadata?.episode_id).toBe('number');
    }
    expect(imported.episodes[0]?.task).toBe('put cup from counter or drying rack into sink');
    expect(imported.episodes[24]?.task).toBe('put carrot on plate');
  });

  it('warns once that is_last is never set (the debug episodes are cut to 10 steps)', () => {
    expect(imported.warnings).toHaveLength(1);
    expect(imported.warnings[0]).toMatchObject({
      code: 'RLDS_IS_LAST_INCONSISTENT',
      location: { file: fixtureRecordsName, episode: 0, step: 9, field: 'steps/is_last' },
    });
    expect(imported.warnings[0]?.message).toContain('25 of 25 episodes');
  });

  it('infers the same features and values without features.json', async () => {
    const folder = await newFolder();
    await copyFile(fixtureRecords, join(folder, fixtureRecordsName));
    const inferred = await importFolder(folder);
    const withoutDescriptions = (spec: ImportResult['features']): Record<string, unknown> =>
      Object.fromEntries(Object.entries(spec).map(([name, { description: _description, ...feature }]) => [name, feature]));
    expect(withoutDescriptions(inferred.result.features)).toEqual(withoutDescriptions(imported.result.features));
    expect(inferred.episodes).toHaveLength(25);
    expect(inferred.episodes[3]?.features).toEqual(imported.episodes[3]?.features);
    expect(inferred.episodes[3]?.task).toBe(imported.episodes[3]?.task);
    // Without features.json the bool flags are plain integers.
    expect(inferred.episodes[3]?.metadata).toMatchObject({ has_language: 1, file_path: imported.episodes[3]?.metadata?.file_path });
  });

  it('reads a GZIP-compressed copy the same way', async () => {
    const folder = await newFolder();
    await copyFile(fixtureFeaturesJson, join(folder, 'features.json'));
    await writeFile(join(folder, 'bridge_dataset-train.tfrecord.gz'), gzipSync(await readFile(fixtureRecords)));
    const compressed = await importFolder(folder);
    expect(compressed.episodes).toHaveLength(25);
    expect(compressed.episodes[24]?.features).toEqual(imported.episodes[24]?.features);
  });

  it('reads shards in shard order and numbers episodes across them', async () => {
    const bytes = await readFile(fixtureRecords);
    const offsets = recordOffsets(bytes);
    const split = offsets[12] ?? 0;
    const folder = await newFolder();
    // Unpadded shard numbers: a plain string sort would put shard 10 before shard 9.
    const names = ['bridge-train.tfrecord-9-of-11', 'bridge-train.tfrecord-10-of-11'];
    await writeFile(join(folder, names[0] ?? ''), bytes.subarray(0, split));
    await writeFile(join(folder, names[1] ?? ''), bytes.subarray(split));
    const source = await sourceFromFiles(names.reverse().map((name) => ({ path: name, absolutePath: join(folder, name) })));
    const result = await rldsImporter.open(source, { warn: () => undefined });
    const episodes: ImportedEpisode[] = [];
    for await (const episode of result.episodes) episodes.push(episode);
    expect(episodes.map((episode) => episode.sourceIndex)).toEqual(Array.from({ length: 25 }, (_, index) => index));
    expect(episodes[11]?.sourceId).toBe('bridge-train.tfrecord-9-of-11#11');
    expect(episodes[12]?.sourceId).toBe('bridge-train.tfrecord-10-of-11#0');
    expect(episodes.map((episode) => episode.task)).toEqual(imported.episodes.map((episode) => episode.task));
  });
});

describe('rlds importer on synthetic records', () => {
  it('keeps one task per step when the instruction changes within an episode', async () => {
    const folder = await folderWithEpisodes([
      bridgeLikeEpisode({ steps: 3, instruction: ['open the drawer', 'open the drawer', 'close the drawer'] }),
    ]);
    const { episodes, warnings } = await importFolder(folder);
    expect(episodes[0]?.stepTasks).toEqual(['open the drawer', 'open the drawer', 'close the drawer']);
    expect(episodes[0]?.task).toBeUndefined();
    expect(Array.from(episodes[0]?.isTerminal ?? [])).toEqual([0, 0, 1]);
    expect(warnings).toEqual([]);
  });

  it('detects an unnamed file by its TFRecord framing, and ignores other uploads', async () => {
    const framed = await newFolder();
    await writeFile(join(framed, 'upload.bin'), frameTfRecord(encodeExample(bridgeLikeEpisode())));
    expect(await rldsImporter.detect(await sourceFromDirectory(framed))).toBe(true);
    const { episodes } = await importFolder(framed);
    expect(episodes).toHaveLength(1);

    const other = await newFolder();
    await writeFile(join(other, 'episode.ndjson'), '{"action":[0,1]}\n');
    await writeFile(join(other, 'info.json'), '{}');
    expect(await rldsImporter.detect(await sourceFromDirectory(other))).toBe(false);
  });
});

describe('rlds importer on broken inputs', () => {
  /** A folder with the fixture's features.json and the given bytes as its one TFRecord file. */
  async function folderWithRecords(bytes: Uint8Array, name = fixtureRecordsName): Promise<string> {
    const folder = await newFolder();
    await copyFile(fixtureFeaturesJson, join(folder, 'features.json'));
    await writeFile(join(folder, name), bytes);
    return folder;
  }

  it('TFRECORD_TRUNCATED when the file ends inside a record', async () => {
    const bytes = await readFile(fixtureRecords);
    const offsets = recordOffsets(bytes);
    const error = await importFailure(await folderWithRecords(bytes.subarray(0, (offsets[1] ?? 0) + 1000)));
    expect(error.code).toBe('TFRECORD_TRUNCATED');
    expect(error.location).toEqual({ file: fixtureRecordsName, episode: 1 });
    expect(error.message).toContain(`at byte ${offsets[1]}`);
  });

  it('TFRECORD_TRUNCATED when the file ends inside a record header', async () => {
    const bytes = await readFile(fixtureRecords);
    const error = await importFailure(await folderWithRecords(Buffer.concat([bytes, bytes.subarray(0, 5)])));
    expect(error.code).toBe('TFRECORD_TRUNCATED');
    expect(error.location).toEqual({ file: fixtureRecordsName, episode: 25 });
    expect(error.message).toContain(`at byte ${bytes.length}`);
  });

  it('TFRECORD_TRUNCATED when a GZIP-compressed file is cut', async () => {
    const compressed = gzipSync(await readFile(fixtureRecords));
    const error = await importFailure(
      await folderWithRecords(compressed.subarray(0, compressed.length >> 1), 'bridge_dataset-train.tfrecord.gz'),
    );
    expect(error.code).toBe('TFRECORD_TRUNCATED');
    expect(error.location.file).toBe('bridge_dataset-train.tfrecord.gz');
    expect(error.location.episode).toBeGreaterThan(0);
  });

  it('TFRECORD_DATA_CRC_MISMATCH when a payload byte is flipped', async () => {
    const bytes = Buffer.from(await readFile(fixtureRecords));
    const offsets = recordOffsets(bytes);
    const target = (offsets[3] ?? 0) + 12 + 5000;
    bytes[target] = (bytes[target] ?? 0) ^ 0x01;
    const error = await importFailure(await folderWithRecords(bytes));
    expect(error.code).toBe('TFRECORD_DATA_CRC_MISMATCH');
    expect(error.location).toEqual({ file: fixtureRecordsName, episode: 3 });
    expect(error.message).toContain(`at byte ${offsets[3]}`);
  });

  it('TFRECORD_LENGTH_CRC_MISMATCH when a length byte is flipped', async () => {
    const bytes = Buffer.from(await readFile(fixtureRecords));
    const offsets = recordOffsets(bytes);
    const target = (offsets[2] ?? 0) + 1;
    bytes[target] = (bytes[target] ?? 0) ^ 0x10;
    const error = await importFailure(await folderWithRecords(bytes));
    expect(error.code).toBe('TFRECORD_LENGTH_CRC_MISMATCH');
    expect(error.location).toEqual({ file: fixtureRecordsName, episode: 2 });
    expect(error.message).toContain(`at byte ${offsets[2]}`);
  });

  it('TFRECORD_LENGTH_CRC_MISMATCH for a garbage file', async () => {
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 7919 + 13) & 0xff));
    const error = await importFailure(await folderWithRecords(garbage));
    expect(error.code).toBe('TFRECORD_LENGTH_CRC_MISMATCH');
    expect(error.location).toEqual({ file: fixtureRecordsName, episode: 0 });
  });

  it('NO_EPISODES for an empty TFRecord file', async () => {
    const error = await importFailure(await folderWithRecords(new Uint8Array(0)));
    expect(error.code).toBe('NO_EPISODES');
    expect(error.location).toEqual({ file: fixtureRecordsName });
  });

  it('RLDS_NO_TFRECORD_FILES when the upload has none', async () => {
    const folder = await newFolder();
    await copyFile(fixtureFeaturesJson, join(folder, 'features.json'));
    const error = await importFailure(folder);
    expect(error.code).toBe('RLDS_NO_TFRECORD_FILES');
    expect(error.location).toEqual({});
  });

  it('TFRECORD_EXAMPLE_INVALID for a well-framed record that is not protobuf', async () => {
    // Field 1, length-delimited, with a length far past the end of the message.
    const notProtobuf = Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    const good = encodeExample(bridgeLikeEpisode());
    const folder = await newFolder();
    await copyFile(fixtureFeaturesJson, join(folder, 'features.json'));
    await writeTfRecordFile(join(folder, 'x.tfrecord'), [good, good, notProtobuf]);
    const error = await importFailure(folder);
    expect(error.code).toBe('TFRECORD_EXAMPLE_INVALID');
    expect(error.location).toEqual({ file: 'x.tfrecord', episode: 2 });
  });

  it('TFRECORD_EXAMPLE_INVALID for a record that decodes to an Example without features', async () => {
    const folder = await newFolder();
    await writeTfRecordFile(join(folder, 'x.tfrecord'), [Buffer.from('this is text, not a tf.train.Example')]);
    const error = await importFailure(folder);
    expect(error.code).toBe('TFRECORD_EXAMPLE_INVALID');
    expect(error.location).toEqual({ file: 'x.tfrecord', episode: 0 });
  });

  it('RLDS_NO_STEPS for an Example that is not an episode', async () => {
    const folder = await folderWithEpisodes([bridgeLikeEpisode(), { label: { bytes: ['cat'] }, score: { floats: [0.5] } }]);
    const error = await importFailure(folder);
    expect(error.code).toBe('RLDS_NO_STEPS');
    expect(error.location).toEqual({ file: 'synthetic-train.tfrecord-00000-of-00001', episode: 1 });
  });

  it('EPISODE_SHAPE_MISMATCH when per-step features disagree on the step count', async () => {
    const broken = bridgeLikeEpisode({ steps: 5 });
    broken['steps/reward'] = { floats: [0, 0, 0, 1] };
    const folder = await folderWithEpisodes([bridgeLikeEpisode({ steps: 5 }), broken]);
    const error = await importFailure(folder);
    expect(error.code).toBe('EPISODE_SHAPE_MISMATCH');
    expect(error.location).toEqual({ file: 'synthetic-train.tfrecord-00000-of-00001', episode: 1, field: 'steps/reward' });
    expect(error.message).toContain('steps/reward has 4 values');
  });

  it('EPISODE_SHAPE_MISMATCH when the step count disagrees without features.json too', async () => {
    const broken = bridgeLikeEpisode({ steps: 5 });
    broken['steps/observation/state'] = { floats: Array.from({ length: 4 * 7 }, () => 0) };
    const folder = await folderWithEpisodes([bridgeLikeEpisode({ steps: 5 }), broken], { featuresJson: false });
    const error = await importFailure(folder);
    expect(error.code).toBe('EPISODE_SHAPE_MISMATCH');
    expect(error.location).toEqual({ file: 'synthetic-train.tfrecord-00000-of-00001', episode: 1, field: 'steps/observation/state' });
  });

  it('EPISODE_SHAPE_MISMATCH when the records do not match features.json', async () => {
    // Parsed JSON: the type states what this test relies on.
    const featuresJson: {
      featuresDict: {
        features: {
          steps: { sequence: { feature: { featuresDict: { features: { action: { tensor: { shape: { dimensions: string[] } } } } } } } };
        };
      };
    } = JSON.parse(await readFile(fixtureFeaturesJson, 'utf8'));
    featuresJson.featuresDict.features.steps.sequence.feature.featuresDict.features.action.tensor.shape.dimensions = ['8'];
    const folder = await newFolder();
    await writeFile(join(folder, 'features.json'), JSON.stringify(featuresJson));
    await copyFile(fixtureRecords, join(folder, fixtureRecordsName));
    const error = await importFailure(folder);
    expect(error.code).toBe('EPISODE_SHAPE_MISMATCH');
    expect(error.location).toEqual({ file: fixtureRecordsName, episode: 0, field: 'steps/action' });
    expect(error.message).toContain('[8] (from features.json) need 80');
  });

  it('INVALID_UTF8 for an instruction that is not UTF-8', async () => {
    const instruction = ['wipe the table', 'wipe the table', 'wipe the table', Uint8Array.from([0x77, 0xc3, 0x28, 0x70]), 'wipe the table'];
    const folder = await folderWithEpisodes([bridgeLikeEpisode({ steps: 5 }), bridgeLikeEpisode({ steps: 5, instruction })]);
    const error = await importFailure(folder);
    expect(error.code).toBe('INVALID_UTF8');
    expect(error.location).toEqual({
      file: 'synthetic-train.tfrecord-00000-of-00001',
      episode: 1,
      step: 3,
      field: 'steps/language_instruction',
    });
  });

  it('RLDS_IMAGE_INVALID for a frame that is not the declared JPEG', async () => {
    const broken = bridgeLikeEpisode({ steps: 3 });
    broken['steps/observation/image_2'] = { bytes: [jpegHeaderOnly(64, 64), jpegHeaderOnly(64, 64), Buffer.from('not an image')] };
    const error = await importFailure(await folderWithEpisodes([broken]));
    expect(error.code).toBe('RLDS_IMAGE_INVALID');
    expect(error.location).toEqual({
      file: 'synthetic-train.tfrecord-00000-of-00001',
      episode: 0,
      step: 2,
      field: 'steps/observation/image_2',
    });
  });

  it('RLDS_FEATURE_MISSING when a later record lacks a feature', async () => {
    const broken = bridgeLikeEpisode();
    delete broken['steps/observation/state'];
    const error = await importFailure(await folderWithEpisodes([bridgeLikeEpisode(), bridgeLikeEpisode(), broken]));
    expect(error.code).toBe('RLDS_FEATURE_MISSING');
    expect(error.location).toEqual({ file: 'synthetic-train.tfrecord-00000-of-00001', episode: 2, field: 'steps/observation/state' });
  });

  it('RLDS_FEATURE_TYPE_MISMATCH when a float feature is stored as integers', async () => {
    const broken = bridgeLikeEpisode({ steps: 2 });
    broken['steps/action'] = { int64s: Array.from({ length: 14 }, () => 0) };
    const error = await importFailure(await folderWithEpisodes([broken]));
    expect(error.code).toBe('RLDS_FEATURE_TYPE_MISMATCH');
    expect(error.location).toEqual({ file: 'synthetic-train.tfrecord-00000-of-00001', episode: 0, field: 'steps/action' });
  });

  it('RLDS_FEATURES_JSON_INVALID for a features.json that is not JSON', async () => {
    const folder = await newFolder();
    await copyFile(fixtureRecords, join(folder, fixtureRecordsName));
    await writeFile(join(folder, 'features.json'), '{"featuresDict": ');
    const error = await importFailure(folder);
    expect(error.code).toBe('RLDS_FEATURES_JSON_INVALID');
    expect(error.location).toEqual({ file: 'features.json' });
  });
});

async function importFolder(folder: string) {
  return importAll(rldsImporter, await sourceFromDirectory(folder));
}
