// Uploads in every format — Kura NDJSON, LeRobot v2 and v3 folders (as tar), RLDS TFRecord, ALOHA
// and robomimic HDF5: truncated, wrong types, NaN/Inf, huge declared sizes, bombs, NUL in strings,
// `__proto__` feature names, schema-limit violations, path templates and HDF5 links that climb out,
// missing files, wrong format flags. Each ends with its own coded failure (or is published, whole,
// when the input is odd but legitimate); a valid upload of each format is the control.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { cameraTopic, JOINTS, writeRobotBag } from '../../../packages/formats/src/mcap/robot-bag.js';
import { maskedCrc32c } from '../../../packages/formats/src/rlds/tfrecord.js';
import type { CaseContext, HostileCase, UploadOptions } from '../corpus.js';
import { upload, uploadAndWait } from '../corpus.js';
import {
  alohaDatasets,
  gzip,
  hdf5,
  ndjson,
  parquet,
  retargetHdf5,
  rldsEpisode,
  robomimicDatasets,
  tar,
  tarOf,
  tfrecord,
  frameTfRecord,
  encodeExample,
  jpegHeaderOnly,
  type ParquetColumn,
  type TestFeature,
} from '../builders.js';

const NUL = '\u0000';
const MiB = 1024 * 1024;
const repository = fileURLToPath(new URL('../../../', import.meta.url));

function uploadCase(
  name: string,
  expect: string | readonly string[],
  options: (context: CaseContext) => UploadOptions | Promise<UploadOptions>,
): HostileCase {
  return { family: 'uploads', name: `uploads/${name}`, expect, run: async (context) => upload(context, await options(context)) };
}

/**
 * An upload that must publish and keep `feature` (a name that is also an Object.prototype key):
 * in the dataset's feature spec and in its NDJSON export.
 */
function keepsFeature(
  name: string,
  feature: string,
  options: (context: CaseContext) => UploadOptions | Promise<UploadOptions>,
): HostileCase {
  return {
    family: 'uploads',
    name: `uploads/${name}`,
    expect: `published with ${feature}`,
    async run(context) {
      const { outcome, datasetId } = await uploadAndWait(context, await options(context));
      if (outcome !== 'published') return outcome;
      const dataset = await context.client.get(`/v1/datasets/${datasetId}`);
      const features = dataset.body?.features;
      const inSpec = typeof features === 'object' && features !== null && Object.hasOwn(features, feature);
      const slice = await context.client.post('/v1/slices', { json: { sources: [{ datasetId }] } });
      const exported = await context.client.get(`/v1/slices/${String(slice.body?.id)}/data?format=ndjson`);
      const key = feature.slice(feature.lastIndexOf('.') + 1);
      const inExport = exported.text.includes(`"${key}":`);
      if (inSpec && inExport) return `published with ${feature}`;
      return `published, ${feature} ${inSpec ? 'in the spec but not in the NDJSON export' : 'lost from the feature spec'}`;
    },
  };
}

// ------------------------------------------------------------------------------------------ Kura NDJSON

const nd = (name: string, expect: string | readonly string[], body: () => string | Uint8Array, query = 'format=kura-ndjson') =>
  uploadCase(`ndjson/${name}`, expect, () => ({ body: body(), query }));

/** NDJSON whose first step has `edit` applied (the other steps as generated). */
const firstStep = (edit: (line: Record<string, unknown>) => void) =>
  ndjson({ edit: (line, episode, step) => episode === 0 && step === 0 && edit(line) });

function ndjsonCases(): HostileCase[] {
  const invalidStep = 'failed NDJSON_INVALID_STEP';
  return [
    nd('valid-control', 'published', () => ndjson({ episodes: 3 })),
    nd('truncated-mid-line', 'failed NDJSON_INVALID_JSON', () => ndjson().slice(0, -25)),
    nd('not-json', 'failed NDJSON_INVALID_JSON', () => `${ndjson()}{"episode": 1, step: 0}\n`),
    nd('nan-literal', 'failed NDJSON_INVALID_JSON', () => ndjson().replace('"action":[0,0]', '"action":[NaN,0]')),
    nd('pretty-printed-array', ['failed NDJSON_INVALID_JSON', 'failed NDJSON_INVALID_STEP'], () =>
      JSON.stringify([{ episode: 0, step: 0, action: [1] }], null, 2),
    ),
    nd('invalid-utf8', 'failed INVALID_UTF8', () =>
      Buffer.concat([
        Buffer.from(ndjson()),
        Buffer.from('{"episode":1,"step":0,"action":[1,1],"language":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}\n'),
      ]),
    ),
    nd('infinity-by-1e999', 'failed NON_FINITE_VALUE', () =>
      firstStep((line) => (line.action = [0, 0])).replace('"action":[0,0]', '"action":[1e999,0]'),
    ),
    nd('float32-overflow', 'failed NON_FINITE_VALUE', () => firstStep((line) => (line.observation = { state: [3.5e38, 0.5] }))),
    nd('negative-float32-overflow', 'failed NON_FINITE_VALUE', () => firstStep((line) => (line.action = [-1e39, 0]))),
    nd('timestamp-1e999', 'failed NON_FINITE_VALUE', () =>
      ndjson({ edit: (line, _episode, step) => (line.timestamp = step) }).replace('"timestamp":2', '"timestamp":1e999'),
    ),
    nd('action-as-string', invalidStep, () => firstStep((line) => (line.action = '0,0'))),
    nd('step-as-string', invalidStep, () => firstStep((line) => (line.step = '0'))),
    nd('step-negative', invalidStep, () => firstStep((line) => (line.step = -1))),
    nd('step-fractional', invalidStep, () => firstStep((line) => (line.step = 0.5))),
    nd('step-jumping-to-1e15', 'failed NDJSON_STEP_ORDER', () =>
      ndjson({ edit: (line, _episode, step) => step === 2 && (line.step = 1e15) }),
    ),
    nd('episode-as-object', invalidStep, () => firstStep((line) => (line.episode = { id: 0 }))),
    nd('episode-as-boolean', invalidStep, () => firstStep((line) => (line.episode = true))),
    nd('episode-as-empty-string', invalidStep, () => firstStep((line) => (line.episode = ''))),
    nd('observation-as-array', invalidStep, () => firstStep((line) => (line.observation = [[0, 0.5]]))),
    nd('nested-arrays', invalidStep, () => firstStep((line) => (line.observation = { state: [[0, 0.5]] }))),
    nd('unknown-field', invalidStep, () => firstStep((line) => (line.admin = true))),
    nd('image-not-an-image', 'failed INVALID_IMAGE', () =>
      ndjson({
        edit: (line) =>
          (line.observation = { state: [0, 0], 'images.front': { jpeg: Buffer.from('not a jpeg at all').toString('base64') } }),
      }),
    ),
    nd('image-as-number', invalidStep, () =>
      ndjson({ edit: (line) => (line.observation = { state: [0, 0], 'images.front': { jpeg: 12 } }) }),
    ),
    nd('timestamps-going-back', 'failed NON_MONOTONIC_TIMESTAMP', () =>
      ndjson({ edit: (line, _episode, step) => (line.timestamp = 10 - step) }),
    ),
    nd('timestamps-on-some-steps', invalidStep, () => firstStep((line) => (line.timestamp = 0))),
    nd('steps-out-of-order', 'failed NDJSON_STEP_ORDER', () => ndjson({ edit: (line, _episode, step) => (line.step = 2 - step) })),
    nd(
      'episode-not-contiguous',
      'failed NDJSON_EPISODE_NOT_CONTIGUOUS',
      () => `${ndjson({ episodes: 2 })}${ndjson({ steps: 1 }).replace('"step":0', '"step":3')}`,
    ),
    nd('vector-changing-length', 'failed EPISODE_SHAPE_MISMATCH', () =>
      ndjson({ edit: (line, _episode, step) => step === 1 && (line.action = [0, 0, 0]) }),
    ),
    nd('feature-vanishing', 'failed FEATURE_MISSING', () =>
      ndjson({ edit: (line, _episode, step) => step === 1 && delete line.observation }),
    ),
    nd('feature-appearing', 'failed FEATURE_UNEXPECTED', () =>
      ndjson({ edit: (line, _episode, step) => step === 1 && (line.observation = { state: [0, 0], extra: [1] }) }),
    ),
    // #19 item 5: an empty action vector escaped as INGEST_FAILED after five retries.
    nd('empty-action', ['failed FEATURE_SPEC_INVALID', 'failed NDJSON_INVALID_STEP'], () => ndjson({ edit: (line) => (line.action = []) })),
    nd('empty-steps-document', invalidStep, () => `${JSON.stringify({ episode: 0, steps: [] })}\n`),
    nd('only-blank-lines', 'failed NO_EPISODES', () => '\n\n\r\n\n'),
    nd('nul-in-language', 'failed STRING_INVALID', () => ndjson({ edit: (line) => (line.language = `pick${NUL}up`) })),
    nd('nul-in-episode-id', 'failed STRING_INVALID', () => ndjson({ edit: (line) => (line.episode = `ep${NUL}0`) })),
    nd('nul-in-source-episode', 'failed STRING_INVALID', () => ndjson({ edit: (line) => (line.sourceEpisode = `src${NUL}`) })),
    nd('nul-in-feature-name', ['failed STRING_INVALID', 'failed FEATURE_SPEC_INVALID', 'failed NDJSON_INVALID_STEP'], () =>
      ndjson({ edit: (line) => (line.observation = { [`sta${NUL}te`]: [0, 0] }) }),
    ),
    nd('lone-surrogate-in-language', 'failed STRING_INVALID', () => ndjson().replaceAll('pick up the cube', 'pick \\ud800 up')),
    nd('language-of-10001-characters', 'failed TASK_TOO_LONG', () => ndjson({ edit: (line) => (line.language = 'x'.repeat(10_001)) })),
    // #19 item 9: schema limits were not enforced at ingest.
    nd('feature-of-1000001-dimensions', 'failed FEATURE_SPEC_INVALID', () =>
      ndjson({ steps: 1, edit: (line) => (line.action = new Array<number>(1_000_001).fill(0)) }),
    ),
    nd('feature-name-with-space-and-dot-dot', ['failed FEATURE_SPEC_INVALID', 'failed NDJSON_INVALID_STEP'], () =>
      ndjson({ edit: (line) => (line.observation = { 'a b/../c': [0, 0] }) }),
    ),
    nd('feature-name-of-10000-characters', ['failed FEATURE_SPEC_INVALID', 'failed NDJSON_INVALID_STEP'], () =>
      ndjson({ edit: (line) => (line.observation = { ['n'.repeat(10_000)]: [0, 0] }) }),
    ),
    nd('1025-features', ['failed FEATURE_SPEC_INVALID', 'failed NDJSON_INVALID_STEP'], () =>
      ndjson({
        steps: 1,
        edit: (line) => (line.observation = Object.fromEntries(Array.from({ length: 1025 }, (_, index) => [`f${index}`, [index]]))),
      }),
    ),
    // #19 item 3: one 52 MB line of 25 million zeros exhausted the api's heap, on every restart.
    nd(
      'one-line-of-25-million-zeros',
      ['failed INGEST_LIMIT_EXCEEDED', 'failed FEATURE_SPEC_INVALID'],
      () => `{"episode":0,"step":0,"action":[${'0,'.repeat(25_000_000 - 1)}0]}\n`,
    ),
    nd(
      'line-of-70-MiB',
      ['failed NDJSON_LINE_TOO_LONG', 'failed INGEST_LIMIT_EXCEEDED'],
      () => `{"episode":0,"step":0,"action":[0],"language":"${'x'.repeat(70 * MiB)}"}\n`,
    ),
    keepsFeature('ndjson/observation-named-__proto__', 'observation.__proto__', () => ({
      body: ndjson({ edit: (line) => (line.observation = JSON.parse('{"__proto__": [1, 2]}') as Record<string, unknown>) }),
      query: 'format=kura-ndjson',
    })),
    keepsFeature('ndjson/action-named-__proto__', 'action.__proto__', () => ({
      body: ndjson({ edit: (line) => (line.action = JSON.parse('{"__proto__": [1]}') as Record<string, unknown>) }),
      query: 'format=kura-ndjson',
    })),
    keepsFeature('ndjson/observation-named-constructor', 'observation.constructor', () => ({
      body: ndjson({ edit: (line) => (line.observation = { constructor: [1, 2] }) }),
      query: 'format=kura-ndjson',
    })),
    nd(
      'feature-map-from-__proto__',
      ['400 VALIDATION_FAILED', 'failed FEATURE_MAP_UNKNOWN'],
      () => ndjson(),
      `featureMap=${encodeURIComponent('{"__proto__":"observation.x"}')}`,
    ),
    nd(
      'feature-map-onto-one-name',
      'failed FEATURE_MAP_CONFLICT',
      () => ndjson({ edit: (line) => (line.observation = { a: [0], b: [1] }) }),
      `featureMap=${encodeURIComponent('{"observation.a":"observation.c","observation.b":"observation.c"}')}`,
    ),
    nd(
      'feature-map-of-unknown-feature',
      'failed FEATURE_MAP_UNKNOWN',
      () => ndjson(),
      `featureMap=${encodeURIComponent('{"observation.nothing":"observation.x"}')}`,
    ),
    nd('drop-unknown-feature', 'failed DROP_FEATURES_UNKNOWN', () => ndjson(), 'dropFeatures=observation.nothing'),
    uploadCase('ndjson/float32-into-float64-dataset', 'failed SCHEMA_MISMATCH', () => ({
      body: ndjson(),
      query: 'format=kura-ndjson',
      features: { 'observation.state': { dtype: 'float64', shape: [2] }, action: { dtype: 'float64', shape: [2] } },
    })),
    nd('two-files-in-an-archive', 'failed NDJSON_SINGLE_FILE', () => gzip(tarOf({ 'a.ndjson': ndjson(), 'b.ndjson': ndjson() }))),
  ];
}

// ------------------------------------------------------------------------------------------ LeRobot

interface LerobotV2 {
  info: Record<string, unknown>;
  episodes: string;
  tasks: string;
  columns: Record<string, ParquetColumn>;
}

/** A one-episode LeRobot v2.0 dataset (3 frames of a 2-D state and action), as parts to break. */
function lerobotV2Parts(): LerobotV2 {
  const scalar = { shape: [1], names: null };
  return {
    info: {
      codebase_version: 'v2.0',
      robot_type: 'hostile',
      total_episodes: 1,
      total_frames: 3,
      total_tasks: 1,
      total_videos: 0,
      total_chunks: 1,
      chunks_size: 1000,
      fps: 10,
      splits: { train: '0:1' },
      data_path: 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet',
      video_path: null,
      features: {
        'observation.state': { dtype: 'float32', shape: [2], names: ['x', 'y'] },
        action: { dtype: 'float32', shape: [2], names: ['x', 'y'] },
        timestamp: { dtype: 'float32', ...scalar },
        frame_index: { dtype: 'int64', ...scalar },
        episode_index: { dtype: 'int64', ...scalar },
        index: { dtype: 'int64', ...scalar },
        task_index: { dtype: 'int64', ...scalar },
      },
    },
    episodes: `${JSON.stringify({ episode_index: 0, tasks: ['open the drawer'], length: 3 })}\n`,
    tasks: `${JSON.stringify({ task_index: 0, task: 'open the drawer' })}\n`,
    columns: {
      'observation.state': {
        kind: 'floats',
        size: 2,
        rows: [
          [0, 0.5],
          [0.1, 0.5],
          [0.2, 0.5],
        ],
      },
      action: {
        kind: 'floats',
        size: 2,
        rows: [
          [1, 0],
          [1, 0.1],
          [1, 0.2],
        ],
      },
      timestamp: { kind: 'float32', rows: [0, 0.1, 0.2] },
      frame_index: { kind: 'int64', rows: [0, 1, 2] },
      episode_index: { kind: 'int64', rows: [0, 0, 0] },
      index: { kind: 'int64', rows: [0, 1, 2] },
      task_index: { kind: 'int64', rows: [0, 0, 0] },
    },
  };
}

const EPISODE_0 = 'data/chunk-000/episode_000000.parquet';

/**
 * #19: a 20 KB parquet file took 4.47 GB of RSS. `rows` rows of constant scalars (dictionary runs) and
 * counters (delta encoded) make a file of a few KB whatever `rows` is: the steps budget must refuse it.
 */
function parquetBomb(rows: number): Buffer {
  const counter = BigInt64Array.from({ length: rows }, (_, index) => BigInt(index));
  const constant = (name: string, type: 'FLOAT' | 'INT64') => ({
    name,
    data: type === 'FLOAT' ? new Float32Array(rows) : new BigInt64Array(rows),
    type,
    nullable: false,
  });
  const bytes = parquetWriteBuffer({
    columnData: [
      constant('observation.state', 'FLOAT'),
      constant('action', 'FLOAT'),
      constant('timestamp', 'FLOAT'),
      { name: 'frame_index', data: counter, type: 'INT64', nullable: false, encoding: 'DELTA_BINARY_PACKED' },
      constant('episode_index', 'INT64'),
      { name: 'index', data: counter, type: 'INT64', nullable: false, encoding: 'DELTA_BINARY_PACKED' },
      constant('task_index', 'INT64'),
    ],
    rowGroupSize: rows,
    statistics: false,
  });
  return Buffer.from(bytes);
}

/** A tar of a LeRobot v2 dataset after `edit`; `files` adds or replaces files (null removes one). */
async function lerobotV2(
  edit: (parts: LerobotV2) => void = () => undefined,
  files: Record<string, string | Uint8Array | null> = {},
): Promise<Buffer> {
  const parts = lerobotV2Parts();
  edit(parts);
  const all: Record<string, string | Uint8Array | null> = {
    'meta/info.json': JSON.stringify(parts.info),
    'meta/episodes.jsonl': parts.episodes,
    'meta/tasks.jsonl': parts.tasks,
    [EPISODE_0]: await parquet(parts.columns),
    ...files,
  };
  return tar(Object.entries(all).flatMap(([name, data]) => (data === null ? [] : [{ name: `hostile_dataset/${name}`, data }])));
}

/** The committed LeRobot v3.0 fixture's files (4 episodes, two data files, mp4 videos), by path. */
async function lerobotV3Files(): Promise<Record<string, Buffer>> {
  const root = join(repository, 'packages/formats/src/lerobot/fixtures/v3_small');
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const files: Record<string, Buffer> = {};
  for (const entry of entries.filter((candidate) => candidate.isFile())) {
    const path = join(entry.parentPath, entry.name);
    files[relative(root, path)] = await readFile(path);
  }
  return files;
}

/** A tar of the v3 fixture after `edit` (null removes a file). */
async function lerobotV3(edit: (files: Record<string, Buffer | string | null>) => void = () => undefined): Promise<Buffer> {
  const files: Record<string, Buffer | string | null> = await lerobotV3Files();
  edit(files);
  return tar(Object.entries(files).flatMap(([name, data]) => (data === null ? [] : [{ name, data }])));
}

/** A file of the v3 fixture as bytes. */
const bytesOf = (files: Record<string, Buffer | string | null>, path: string): Buffer => Buffer.from(files[path] ?? '');

const editInfo = (files: Record<string, Buffer | string | null>, edit: (info: Record<string, unknown>) => void) => {
  const info = JSON.parse(String(files['meta/info.json'])) as Record<string, unknown>;
  edit(info);
  files['meta/info.json'] = JSON.stringify(info);
};

const le = (name: string, expect: string | readonly string[], body: () => Promise<Buffer>, query = 'format=lerobot') =>
  uploadCase(`lerobot/${name}`, expect, async () => ({ body: await body(), query }));

function lerobotCases(): HostileCase[] {
  const infoInvalid = 'failed LEROBOT_INFO_INVALID';
  const features = (parts: LerobotV2) => parts.info.features as Record<string, unknown>;
  return [
    le('v2/valid-control', 'published', () => lerobotV2()),
    le('v2/info-not-json', infoInvalid, () => lerobotV2(undefined, { 'meta/info.json': '{"codebase_version": "v2.0",' })),
    le('v2/info-missing', ['failed LEROBOT_INFO_INVALID', 'failed LEROBOT_META_MISSING'], () =>
      lerobotV2(undefined, { 'meta/info.json': null }),
    ),
    le('v2/unsupported-version', 'failed LEROBOT_UNSUPPORTED_VERSION', () => lerobotV2((parts) => (parts.info.codebase_version = 'v9.9'))),
    // Templates that point outside the upload: only the upload's own files can ever be read.
    le('v2/data-path-climbing-to-the-canary', ['failed LEROBOT_INFO_INVALID', 'failed NO_EPISODES'], () =>
      lerobotV2((parts) => (parts.info.data_path = '../../../../canary/canary.txt')),
    ),
    le('v2/data-path-absolute', ['failed LEROBOT_INFO_INVALID', 'failed NO_EPISODES'], () =>
      lerobotV2((parts) => (parts.info.data_path = '/etc/passwd')),
    ),
    // #19 item 5: a template width of a billion escaped as INGEST_FAILED after five retries.
    le('v2/data-path-width-of-a-billion', infoInvalid, () =>
      lerobotV2((parts) => (parts.info.data_path = 'data/chunk-{episode_chunk:03d}/episode_{episode_index:0999999999d}.parquet')),
    ),
    le('v2/data-path-unknown-placeholder', infoInvalid, () => lerobotV2((parts) => (parts.info.data_path = 'data/{secret}.parquet'))),
    le('v2/fps-zero', infoInvalid, () => lerobotV2((parts) => (parts.info.fps = 0))),
    le('v2/fps-as-text', infoInvalid, () => lerobotV2((parts) => (parts.info.fps = 'fast'))),
    le('v2/features-not-an-object', infoInvalid, () => lerobotV2((parts) => (parts.info.features = 'state, action'))),
    le('v2/feature-of-1000001-dimensions', ['failed FEATURE_SPEC_INVALID', 'failed LEROBOT_INFO_INVALID'], () =>
      lerobotV2((parts) => (features(parts).action = { dtype: 'float32', shape: [1_000_001], names: null })),
    ),
    le('v2/feature-of-rank-9', ['failed FEATURE_SPEC_INVALID', 'failed LEROBOT_INFO_INVALID'], () =>
      lerobotV2((parts) => (features(parts).action = { dtype: 'float32', shape: [1, 1, 1, 1, 1, 1, 1, 1, 2], names: null })),
    ),
    le('v2/total-frames-of-a-trillion', 'published', () => lerobotV2((parts) => (parts.info.total_frames = 1e12))),
    // A length the data does not have must not be allocated up front.
    le('v2/episode-length-of-two-billion', ['failed LEROBOT_LENGTH_MISMATCH', 'failed INGEST_LIMIT_EXCEEDED'], () =>
      lerobotV2(
        (parts) => (parts.episodes = `${JSON.stringify({ episode_index: 0, tasks: ['open the drawer'], length: 2_000_000_000 })}\n`),
      ),
    ),
    le('v2/parquet-bomb-of-2-million-rows', 'failed INGEST_LIMIT_EXCEEDED', () =>
      lerobotV2(
        (parts) => {
          for (const name of ['observation.state', 'action']) features(parts)[name] = { dtype: 'float32', shape: [1], names: null };
          parts.info.total_frames = 2_000_000;
          parts.episodes = `${JSON.stringify({ episode_index: 0, tasks: ['open the drawer'], length: 2_000_000 })}\n`;
        },
        { [EPISODE_0]: parquetBomb(2_000_000) },
      ),
    ),
    le('v2/episodes-jsonl-broken', 'failed LEROBOT_META_INVALID', () =>
      lerobotV2((parts) => (parts.episodes = '{"episode_index": 0, "length": \n')),
    ),
    le('v2/task-with-nul', 'failed STRING_INVALID', () =>
      lerobotV2((parts) => (parts.tasks = `${JSON.stringify({ task_index: 0, task: `open${NUL}` })}\n`)),
    ),
    le('v2/parquet-truncated', 'failed PARQUET_INVALID', async () => {
      const whole = await parquet(lerobotV2Parts().columns);
      return lerobotV2(undefined, { [EPISODE_0]: whole.subarray(0, whole.length - 30) });
    }),
    le('v2/parquet-that-is-text', 'failed PARQUET_INVALID', () => lerobotV2(undefined, { [EPISODE_0]: 'PAR1 this is not parquet PAR1' })),
    le('v2/parquet-footer-length-of-2GB', 'failed PARQUET_INVALID', async () => {
      const whole = Buffer.from(await parquet(lerobotV2Parts().columns));
      whole.writeUInt32LE(0x7fffffff, whole.length - 8);
      return lerobotV2(undefined, { [EPISODE_0]: whole });
    }),
    le('v2/column-missing', 'failed LEROBOT_COLUMN_MISSING', () => lerobotV2((parts) => delete parts.columns.action)),
    le('v2/state-as-strings', ['failed LEROBOT_VALUE_INVALID', 'failed LEROBOT_DTYPE_MISMATCH'], () =>
      lerobotV2((parts) => (parts.columns['observation.state'] = { kind: 'string', rows: ['0,0.5', '0.1,0.5', '0.2,0.5'] })),
    ),
    le('v2/state-nan', 'failed NON_FINITE_VALUE', () =>
      lerobotV2(
        (parts) =>
          (parts.columns['observation.state'] = {
            kind: 'floats',
            size: 2,
            rows: [
              [0, 0],
              [NaN, 0],
              [0, 0],
            ],
          }),
      ),
    ),
    le('v2/action-infinity', 'failed NON_FINITE_VALUE', () =>
      lerobotV2(
        (parts) =>
          (parts.columns.action = {
            kind: 'floats',
            size: 2,
            rows: [
              [0, 0],
              [0, Infinity],
              [0, 0],
            ],
          }),
      ),
    ),
    le('v2/state-of-the-wrong-width', ['failed EPISODE_SHAPE_MISMATCH', 'failed LEROBOT_VALUE_INVALID'], () =>
      lerobotV2(
        (parts) =>
          (parts.columns['observation.state'] = {
            kind: 'floats',
            size: 3,
            rows: [
              [0, 0, 0],
              [0, 0, 0],
              [0, 0, 0],
            ],
          }),
      ),
    ),
    le('v2/frame-index-gap', 'failed LEROBOT_FRAME_INDEX_INVALID', () =>
      lerobotV2((parts) => (parts.columns.frame_index = { kind: 'int64', rows: [0, 1, 5] })),
    ),
    le('v2/episode-index-mismatch', 'failed LEROBOT_EPISODE_INDEX_MISMATCH', () =>
      lerobotV2((parts) => (parts.columns.episode_index = { kind: 'int64', rows: [0, 7, 0] })),
    ),
    le('v2/task-index-unknown', 'failed LEROBOT_TASK_UNKNOWN', () =>
      lerobotV2((parts) => (parts.columns.task_index = { kind: 'int64', rows: [0, 99, 0] })),
    ),
    le('v2/no-data-files', ['failed NO_EPISODES', 'failed LEROBOT_EPISODE_MISSING'], () => lerobotV2(undefined, { [EPISODE_0]: null })),
    le('v2/feature-named-__proto__-is-skipped', 'published', () =>
      lerobotV2((parts) => {
        Object.defineProperty(features(parts), '__proto__', { value: { dtype: 'float32', shape: [2], names: null }, enumerable: true });
        Object.defineProperty(parts.columns, '__proto__', {
          value: {
            kind: 'floats',
            size: 2,
            rows: [
              [0, 0],
              [0, 0],
              [0, 0],
            ],
          },
          enumerable: true,
        });
      }),
    ),
    {
      ...keepsFeature('lerobot/v2/feature-named-observation.__proto__', 'observation.__proto__', async () => ({
        body: await lerobotV2((parts) => {
          features(parts)['observation.__proto__'] = { dtype: 'float32', shape: [2], names: null };
          parts.columns['observation.__proto__'] = {
            kind: 'floats',
            size: 2,
            rows: [
              [0, 0],
              [0, 1],
              [0, 2],
            ],
          };
        }),
        query: 'format=lerobot',
      })),
    },
    keepsFeature('lerobot/v2/feature-named-constructor', 'constructor', async () => ({
      body: await lerobotV2((parts) => {
        const name: string = 'constructor';
        features(parts)[name] = { dtype: 'float32', shape: [2], names: null };
        parts.columns[name] = {
          kind: 'floats',
          size: 2,
          rows: [
            [0, 0],
            [0, 1],
            [0, 2],
          ],
        };
      }),
      query: 'format=lerobot',
    })),
    le('v2/as-rlds', 'failed FORMAT_MISMATCH', () => lerobotV2(), 'format=rlds'),
    le('v3/valid-control', 'published', () => lerobotV3()),
    le('v3/episodes-metadata-missing', 'failed LEROBOT_META_MISSING', () =>
      lerobotV3((files) => {
        for (const path of Object.keys(files)) if (path.startsWith('meta/episodes/')) files[path] = null;
      }),
    ),
    le('v3/episodes-metadata-truncated', ['failed PARQUET_INVALID', 'failed LEROBOT_META_INVALID'], () =>
      lerobotV3(
        (files) =>
          (files['meta/episodes/chunk-000/file-000.parquet'] = bytesOf(files, 'meta/episodes/chunk-000/file-000.parquet').subarray(0, 100)),
      ),
    ),
    le('v3/tasks-that-are-text', ['failed PARQUET_INVALID', 'failed LEROBOT_META_INVALID'], () =>
      lerobotV3((files) => (files['meta/tasks.parquet'] = 'task_index,task\n0,open\n')),
    ),
    le('v3/data-file-truncated', 'failed PARQUET_INVALID', () =>
      lerobotV3(
        (files) => (files['data/chunk-000/file-000.parquet'] = bytesOf(files, 'data/chunk-000/file-000.parquet').subarray(0, 2000)),
      ),
    ),
    le('v3/videos-missing', 'failed LEROBOT_VIDEO_MISSING', () =>
      lerobotV3((files) => {
        for (const path of Object.keys(files)) if (path.startsWith('videos/')) files[path] = null;
      }),
    ),
    le('v3/video-path-climbing-out', ['failed LEROBOT_VIDEO_MISSING', 'failed LEROBOT_INFO_INVALID'], () =>
      lerobotV3((files) => editInfo(files, (info) => (info.video_path = '../../../../canary/{video_key}/canary.txt'))),
    ),
    le('v3/data-path-width-of-a-billion', 'failed LEROBOT_INFO_INVALID', () =>
      lerobotV3((files) =>
        editInfo(files, (info) => (info.data_path = 'data/chunk-{chunk_index:03d}/file-{file_index:0999999999d}.parquet')),
      ),
    ),
    // A plain tar: gzipped, the padding would be refused earlier as an archive bomb.
    le('v3/info-json-of-65-MiB', ['failed INGEST_LIMIT_EXCEEDED', 'failed LEROBOT_INFO_INVALID'], () =>
      lerobotV3((files) => editInfo(files, (info) => (info.padding = ' '.repeat(65 * MiB)))),
    ),
  ];
}

// ------------------------------------------------------------------------------------------ RLDS

const rl = (
  name: string,
  expect: string | readonly string[],
  body: () => Uint8Array | Promise<Uint8Array>,
  query = 'format=rlds&fileName=episodes.tfrecord',
) => uploadCase(`rlds/${name}`, expect, async () => ({ body: await body(), query }));

/** One record's bytes with its header's length (and the length's checksum, so the header passes) saying `declared`. */
function recordDeclaring(declared: bigint): Buffer {
  const record = Buffer.from(frameTfRecord(encodeExample(rldsEpisode())));
  record.writeBigUInt64LE(declared, 0);
  record.writeUInt32LE(maskedCrc32c(record.subarray(0, 8)), 8);
  return record;
}

/** A gzip stream of a TFRecord holding one record of `bytes` zeros, made without holding them. */
async function gzippedRecordOfZeros(bytes: number): Promise<Buffer> {
  const stream = createGzip({ level: 1 });
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise((resolve) => stream.on('end', resolve));
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(bytes), 0);
  header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8);
  stream.write(header);
  const zeros = Buffer.alloc(MiB);
  for (let written = 0; written < bytes; written += MiB) {
    if (!stream.write(zeros.subarray(0, Math.min(MiB, bytes - written)))) await new Promise((resolve) => stream.once('drain', resolve));
  }
  stream.end(Buffer.alloc(4));
  await done;
  return Buffer.concat(chunks);
}

const rldsWith = (edit: (features: Record<string, TestFeature>) => void, steps = 3) => {
  const features = rldsEpisode(steps);
  edit(features);
  return tfrecord([features]);
};

function rldsCases(): HostileCase[] {
  return [
    rl('valid-control', 'published', () => tfrecord([rldsEpisode(), rldsEpisode(4)])),
    rl('truncated', 'failed TFRECORD_TRUNCATED', () => {
      const whole = tfrecord([rldsEpisode()]);
      return whole.subarray(0, whole.length - 10);
    }),
    rl('length-crc-wrong', 'failed TFRECORD_LENGTH_CRC_MISMATCH', () => {
      const whole = tfrecord([rldsEpisode()]);
      whole[8] = whole[8]! ^ 0xff;
      return whole;
    }),
    rl('data-crc-wrong', 'failed TFRECORD_DATA_CRC_MISMATCH', () => {
      const whole = tfrecord([rldsEpisode()]);
      whole[whole.length - 1] = whole[whole.length - 1]! ^ 0xff;
      return whole;
    }),
    rl(
      'record-declaring-a-terabyte',
      ['failed TFRECORD_RECORD_TOO_LARGE', 'failed TFRECORD_TRUNCATED', 'failed INGEST_LIMIT_EXCEEDED'],
      () => recordDeclaring(2n ** 40n),
    ),
    // #19: a 1 MB gzipped TFRecord holding a 1 GiB record took 2.3 GB before failing.
    // (A gzip file uploaded alone is taken for a .tar.gz: GZIP TFRecord files come inside an archive.)
    rl(
      'gzip-of-a-1-GiB-record',
      ['failed TFRECORD_RECORD_TOO_LARGE', 'failed INGEST_LIMIT_EXCEEDED'],
      async () => tarOf({ 'episodes.tfrecord.gz': await gzippedRecordOfZeros(1024 * MiB) }),
      'format=rlds',
    ),
    // A gzip header, then a deflate block of the reserved type 3: the stream cannot be inflated.
    rl(
      'gzip-broken',
      'failed TFRECORD_COMPRESSION_INVALID',
      () =>
        tarOf({ 'episodes.tfrecord.gz': Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03]), Buffer.alloc(64, 0xff)]) }),
      'format=rlds',
    ),
    rl('payload-not-an-example', 'failed TFRECORD_EXAMPLE_INVALID', () => tfrecord([Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])])),
    rl('example-without-features', 'failed TFRECORD_EXAMPLE_INVALID', () => tfrecord([new Uint8Array(0)])),
    rl('no-steps', 'failed RLDS_NO_STEPS', () => tfrecord([{ 'episode_metadata/file_path': { bytes: ['x'] } }])),
    rl('action-nan', 'failed NON_FINITE_VALUE', () =>
      rldsWith((features) => (features['steps/action'] = { floats: [0, 0, NaN, 0, 0, 0, 0, 0, 0] })),
    ),
    rl('state-infinity', 'failed NON_FINITE_VALUE', () =>
      rldsWith((features) => (features['steps/observation/state'] = { floats: [0, 0, -Infinity, 0, 0, 0] })),
    ),
    rl('action-changing-type', 'failed RLDS_FEATURE_TYPE_MISMATCH', () => {
      const second = rldsEpisode();
      second['steps/action'] = { int64s: [0, 0, 0, 0, 0, 0, 0, 0, 0] };
      return tfrecord([rldsEpisode(), second]);
    }),
    rl('instruction-invalid-utf8', 'failed INVALID_UTF8', () =>
      rldsWith(
        (features) =>
          (features['steps/language_instruction'] = {
            bytes: [Buffer.from([0xc3, 0x28]), Buffer.from([0xc3, 0x28]), Buffer.from([0xc3, 0x28])],
          }),
      ),
    ),
    rl('instruction-with-nul', 'failed STRING_INVALID', () =>
      rldsWith((features) => (features['steps/language_instruction'] = { bytes: ['a\u0000b', 'a\u0000b', 'a\u0000b'] })),
    ),
    rl('feature-names-colliding', 'failed RLDS_FEATURE_NAME_COLLISION', () =>
      rldsWith((features) => {
        features['steps/observation/a-b'] = { floats: [0, 0, 0] };
        features['steps/observation/a_b'] = { floats: [0, 0, 0] };
      }),
    ),
    rl('second-episode-lacking-a-feature', 'failed RLDS_FEATURE_MISSING', () => {
      const second = rldsEpisode();
      delete second['steps/observation/state'];
      return tfrecord([rldsEpisode(), second]);
    }),
    rl(
      'values-not-a-multiple-of-steps',
      ['failed EPISODE_SHAPE_MISMATCH', 'failed RLDS_SHAPE_UNKNOWN', 'failed RLDS_STEP_COUNT_UNKNOWN'],
      () => rldsWith((features) => (features['steps/action'] = { floats: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0] })),
    ),
    // Bytes that are no image at all are another step feature: left out with a warning.
    rl('bytes-that-are-no-image-are-skipped', 'published', () =>
      rldsWith((features) => (features['steps/observation/image'] = { bytes: ['not an image', 'not an image', 'not an image'] })),
    ),
    rl('image-turning-into-garbage', ['failed RLDS_IMAGE_INVALID', 'failed INVALID_IMAGE'], () =>
      rldsWith(
        (features) =>
          (features['steps/observation/image'] = { bytes: [jpegHeaderOnly(8, 8), Buffer.from('not an image'), jpegHeaderOnly(8, 8)] }),
      ),
    ),
    rl(
      'empty-tfrecord-file',
      ['failed NO_EPISODES', 'failed RLDS_NO_TFRECORD_FILES'],
      () => gzip(tarOf({ 'empty.tfrecord': '' })),
      'format=rlds',
    ),
    keepsFeature('rlds/observation-named-__proto__', 'observation.__proto__', () => ({
      body: rldsWith((features) => (features['steps/observation/__proto__'] = { floats: [1, 2, 3] })),
      query: 'format=rlds&fileName=episodes.tfrecord',
    })),
    rl(
      'features-json-not-json',
      'failed RLDS_FEATURES_JSON_INVALID',
      () =>
        gzip(
          tarOf({ 'ds/1.0.0/episodes.tfrecord-00000-of-00001': tfrecord([rldsEpisode()]), 'ds/1.0.0/features.json': '{"featuresDict": ' }),
        ),
      'format=rlds',
    ),
    rl('as-hdf5-aloha', 'failed FORMAT_MISMATCH', () => tfrecord([rldsEpisode()]), 'format=hdf5-aloha&fileName=episodes.tfrecord'),
    rl(
      'random-bytes-as-rlds',
      ['failed RLDS_NO_TFRECORD_FILES', 'failed TFRECORD_LENGTH_CRC_MISMATCH'],
      () => Buffer.from('random bytes '.repeat(100)),
      'format=rlds&fileName=random.bin',
    ),
  ];
}

// ------------------------------------------------------------------------------------------ HDF5

const fixture = (path: string) => readFile(join(repository, 'packages/formats/src/hdf5/fixtures', path));

const al = (
  name: string,
  expect: string | readonly string[],
  body: (context: CaseContext) => Promise<Uint8Array>,
  query = 'format=hdf5-aloha&fileName=episode_0.hdf5',
) => uploadCase(`hdf5-aloha/${name}`, expect, async (context) => ({ body: await body(context), query }));
const rm = (
  name: string,
  expect: string | readonly string[],
  body: (context: CaseContext) => Promise<Uint8Array>,
  query = 'format=hdf5-robomimic&fileName=demos.hdf5',
) => uploadCase(`hdf5-robomimic/${name}`, expect, async (context) => ({ body: await body(context), query }));

/** An HDF5 file whose chunked datasets claim `steps` rows and store none: a few KB on disk, gigabytes when read. */
const sparse = (datasets: Record<string, number>, steps: number) =>
  hdf5({}, {}, (file) => {
    for (const [path, width] of Object.entries(datasets)) {
      const parts = path.split('/').slice(1, -1);
      for (let depth = 1; depth <= parts.length; depth++) {
        const group = parts.slice(0, depth).join('/');
        if (file.get(group) === null) file.create_group(group);
      }
      const dataset = file.create_dataset({
        name: path.slice(1),
        data: new Float32Array(width),
        shape: [1, width],
        maxshape: [null, width],
        chunks: [4096, width],
      });
      dataset.resize([steps, width]);
    }
  });

function alohaCases(): HostileCase[] {
  const refused = 'failed HDF5_EXTERNAL_REFUSED';
  const withQpos = (edit: (datasets: ReturnType<typeof alohaDatasets>) => void) => {
    const datasets = alohaDatasets();
    edit(datasets);
    return hdf5(datasets);
  };
  return [
    al('valid-control', 'published', () => hdf5(alohaDatasets())),
    al('truncated', 'failed HDF5_INVALID', async () => (await hdf5(alohaDatasets())).subarray(0, 1500)),
    al('not-hdf5', 'failed HDF5_INVALID', async () => Buffer.from('\x89HDF\r\n\x1a\n but nothing after the signature')),
    al('action-missing', 'failed HDF5_DATASET_MISSING', () => fixture('bad/aloha_missing_action/episode_0.hdf5')),
    al('string-dataset', 'failed HDF5_DTYPE_UNSUPPORTED', () => fixture('bad/aloha_string_dataset/episode_0.hdf5')),
    al('float16', 'failed HDF5_DTYPE_UNSUPPORTED', () => fixture('bad/aloha_float16/episode_0.hdf5')),
    al('lzf-filter', 'failed HDF5_FILTER_UNSUPPORTED', () => fixture('bad/aloha_lzf/episode_0.hdf5')),
    al('length-mismatch', 'failed EPISODE_SHAPE_MISMATCH', () => fixture('bad/aloha_length_mismatch/episode_0.hdf5')),
    al('image-of-bad-shape', 'failed HDF5_IMAGE_INVALID', () => fixture('bad/aloha_bad_image_shape/episode_0.hdf5')),
    al('float-image', 'failed HDF5_IMAGE_INVALID', () => fixture('bad/aloha_float_image/episode_0.hdf5')),
    al('compressed-frames-not-jpeg', 'failed HDF5_IMAGE_INVALID', () => fixture('bad/aloha_compressed_not_jpeg/episode_0.hdf5')),
    al('compress-len-too-large', 'failed HDF5_IMAGE_INVALID', () => fixture('bad/aloha_compress_len_too_large/episode_0.hdf5')),
    al('qpos-nan', 'failed NON_FINITE_VALUE', () => withQpos((datasets) => (datasets['/observations/qpos']!.data[5] = NaN))),
    al('action-infinity', 'failed NON_FINITE_VALUE', () => withQpos((datasets) => (datasets['/action']!.data[0] = Infinity))),
    // #19 item 1: HDF5 reading files of the host. The committed fixtures, pointed at this run's canary.
    al('external-storage-absolute', refused, async ({ canary }) =>
      retargetHdf5(await fixture('external/external_storage_absolute.hdf5'), '/tmp/kura-hdf5-canary', canary.folders.tmp),
    ),
    al('external-storage-relative', refused, async ({ canary }) =>
      retargetHdf5(await fixture('external/external_storage_relative.hdf5'), '/tmp/kura-hdf5-canary', canary.folders.tmp),
    ),
    al('virtual-dataset', refused, async ({ canary }) =>
      retargetHdf5(await fixture('external/virtual_dataset.hdf5'), '/tmp/kura-hdf5-canary', canary.folders.tmp),
    ),
    al('external-link-absolute', refused, ({ canary }) => {
      const { '/observations/qpos': _qpos, ...rest } = alohaDatasets();
      return hdf5(rest, { '/observations': {} }, (file, h5wasm) => {
        const group = file.get('observations');
        if (group instanceof h5wasm.Group) group.create_external_link(`${canary.folders.tmp}/canary.h5`, '/qpos', 'qpos');
      });
    }),
    al('external-link-to-scratch-canary', refused, ({ canary }) => {
      const { '/observations/qpos': _qpos, ...rest } = alohaDatasets();
      return hdf5(rest, { '/observations': {} }, (file, h5wasm) => {
        const group = file.get('observations');
        if (group instanceof h5wasm.Group) group.create_external_link(`${canary.folders.scratch}/canary.h5`, '/observations/qpos', 'qpos');
      });
    }),
    al('external-link-relative', refused, () => {
      const { '/observations/qpos': _qpos, ...rest } = alohaDatasets();
      return hdf5(rest, { '/observations': {} }, (file, h5wasm) => {
        const group = file.get('observations');
        if (group instanceof h5wasm.Group) group.create_external_link('../../../../canary/canary.h5', '/qpos', 'qpos');
      });
    }),
    al('soft-link-to-itself', ['failed HDF5_DATASET_MISSING', 'failed HDF5_INVALID'], () => {
      const { '/observations/qpos': _qpos, ...rest } = alohaDatasets();
      return hdf5(rest, { '/observations': {} }, (file, h5wasm) => {
        const group = file.get('observations');
        if (group instanceof h5wasm.Group) group.create_soft_link('/observations/qpos', 'qpos');
      });
    }),
    // #19: a 3 KB sparse file published 5,000,000 steps after taking 3.48 GB.
    al('sparse-5-million-steps', 'failed INGEST_LIMIT_EXCEEDED', () => sparse({ '/action': 14, '/observations/qpos': 14 }, 5_000_000)),
    al('observation-of-rank-9', 'failed FEATURE_SPEC_INVALID', () =>
      hdf5({ ...alohaDatasets(), '/observations/deep': { data: new Float32Array(4 * 2), shape: [4, 1, 1, 1, 1, 1, 1, 1, 1, 2] } }),
    ),
    al('observation-of-1000001-columns', 'failed FEATURE_SPEC_INVALID', () =>
      hdf5({ ...alohaDatasets(1), '/observations/wide': { data: new Float32Array(1_000_001), shape: [1, 1_000_001] } }),
    ),
    al('observation-name-of-300-characters', 'failed FEATURE_SPEC_INVALID', () =>
      hdf5({ ...alohaDatasets(), [`/observations/${'n'.repeat(300)}`]: { data: new Float32Array(4), shape: [4] } }),
    ),
    keepsFeature('hdf5-aloha/observation-named-__proto__', 'observation.__proto__', async () => ({
      body: await hdf5({ ...alohaDatasets(), '/observations/__proto__': { data: new Float32Array(8), shape: [4, 2] } }),
      query: 'format=hdf5-aloha&fileName=episode_0.hdf5',
    })),
    al('as-kura-ndjson', 'failed FORMAT_MISMATCH', () => hdf5(alohaDatasets()), 'format=kura-ndjson&fileName=episode_0.hdf5'),
    al(
      'as-robomimic',
      ['failed HDF5_DATASET_MISSING', 'failed FORMAT_MISMATCH'],
      () => hdf5(alohaDatasets()),
      'format=hdf5-robomimic&fileName=episode_0.hdf5',
    ),
  ];
}

function robomimicCases(): HostileCase[] {
  return [
    rm('valid-control', 'published', () => hdf5(robomimicDatasets())),
    rm('no-demos', 'failed HDF5_DATASET_MISSING', () => fixture('bad/robomimic_no_demos.hdf5')),
    rm('actions-missing', 'failed HDF5_DATASET_MISSING', () => fixture('bad/robomimic_missing_actions.hdf5')),
    rm('rewards-short', 'failed EPISODE_SHAPE_MISMATCH', () => fixture('bad/robomimic_rewards_short.hdf5')),
    rm('gray-image', 'failed HDF5_IMAGE_INVALID', () => fixture('bad/robomimic_gray_image.hdf5')),
    rm('actions-nan', 'failed NON_FINITE_VALUE', () => {
      const datasets = robomimicDatasets();
      datasets['/data/demo_0/actions']!.data[3] = NaN;
      return hdf5(datasets);
    }),
    rm('demo-of-zero-steps', ['failed EMPTY_EPISODE', 'failed NO_EPISODES'], () =>
      hdf5({
        '/data/demo_0/actions': { data: new Float32Array(0), shape: [0, 7] },
        '/data/demo_0/obs/x': { data: new Float32Array(0), shape: [0, 3] },
      }),
    ),
    rm('env-args-not-json', 'published', () => hdf5(robomimicDatasets(), { '/data': { env_args: '{"env_name": ' } })),
    rm('env-args-with-nul-task', 'failed STRING_INVALID', () =>
      hdf5(robomimicDatasets(), { '/data': { env_args: JSON.stringify({ env_name: 'Lift', language_instruction: `lift${NUL}it` }) } }),
    ),
    rm('num-samples-of-a-trillion', 'published', () => hdf5(robomimicDatasets(), { '/data/demo_0': { num_samples: 1e12 } })),
    rm('observation-of-1000001-columns', 'failed FEATURE_SPEC_INVALID', () =>
      hdf5({ ...robomimicDatasets(1), '/data/demo_0/obs/wide': { data: new Float32Array(1_000_001), shape: [1, 1_000_001] } }),
    ),
    rm('sparse-5-million-steps', 'failed INGEST_LIMIT_EXCEEDED', () =>
      sparse({ '/data/demo_0/actions': 7, '/data/demo_0/obs/state': 3 }, 5_000_000),
    ),
    keepsFeature('hdf5-robomimic/observation-named-__proto__', 'observation.__proto__', async () => ({
      body: await hdf5({ ...robomimicDatasets(), '/data/demo_0/obs/__proto__': { data: new Float32Array(10), shape: [5, 2] } }),
      query: 'format=hdf5-robomimic&fileName=demos.hdf5',
    })),
    keepsFeature('hdf5-robomimic/observation-named-constructor', 'observation.constructor', async () => ({
      body: await hdf5({ ...robomimicDatasets(), '/data/demo_0/obs/constructor': { data: new Float32Array(10), shape: [5, 2] } }),
      query: 'format=hdf5-robomimic&fileName=demos.hdf5',
    })),
  ];
}

/** Uploads whose format cannot be told, or is told wrongly. */
function formatCases(): HostileCase[] {
  return [
    uploadCase('format/random-bytes', 'failed FORMAT_UNKNOWN', () => ({
      body: Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 7919) % 256)),
    })),
    uploadCase('format/ndjson-as-lerobot', 'failed FORMAT_MISMATCH', () => ({ body: ndjson(), query: 'format=lerobot' })),
    uploadCase('format/ndjson-as-rlds', 'failed FORMAT_MISMATCH', () => ({ body: ndjson(), query: 'format=rlds' })),
    uploadCase('format/hdf5-named-ndjson', 'failed FORMAT_MISMATCH', async () => ({
      body: await hdf5(alohaDatasets()),
      query: 'format=kura-ndjson&fileName=data.ndjson',
    })),
    uploadCase('format/detected-hdf5-of-other-layout', 'failed FORMAT_UNKNOWN', async () => ({
      body: await hdf5({ '/traj_0/actions': { data: new Float32Array(4), shape: [4] } }),
      query: 'fileName=trajectories.h5',
    })),
  ];
}

/** The generated robot bag (packages/formats/src/mcap/robot-bag.ts), written once per case. */
async function robotBag(context: CaseContext, options: Parameters<typeof writeRobotBag>[1] = {}): Promise<Buffer> {
  const path = join(context.scratch, 'robot.mcap');
  await writeRobotBag(path, options);
  return readFile(path);
}
const robotMapping = {
  rateHz: 10,
  splitGapS: 1,
  features: {
    'observation.state': { topic: '/joint_states', field: 'position', names: JOINTS },
    action: { topic: '/arm/command', field: ['linear.x', 'angular.z'] },
    'observation.images.front': { topic: '/camera/front/image_raw/compressed' },
  },
};
const withMapping = (mapping: unknown) => `format=mcap&options=${encodeURIComponent(JSON.stringify({ mapping }))}`;

/** Offset of the first record with `opcode` after the magic (records: opcode, u64 length, body). */
function recordAt(bytes: Buffer, opcode: number): number {
  let at = 8;
  while (at < bytes.length && bytes[at] !== opcode) at += 9 + Number(bytes.readBigUInt64LE(at + 1));
  return at;
}

// ROS 2 bags: damaged, lying, bombs, the wrong container, mappings that point nowhere or at prototypes.
function mcapCases(): HostileCase[] {
  const mc = (name: string, expect: string | readonly string[], options: (context: CaseContext) => Promise<UploadOptions>) =>
    uploadCase(`mcap/${name}`, expect, options);
  const bag =
    (change: (bytes: Buffer) => Buffer, query = withMapping(robotMapping)) =>
    async (context: CaseContext) => ({
      body: change(Buffer.from(await robotBag(context))),
      query: `${query}&fileName=robot.mcap`,
    });
  return [
    mc(
      'valid-control',
      'published',
      bag((bytes) => bytes),
    ),
    mc(
      'no-mapping-asks-for-one',
      'needs_mapping',
      bag((bytes) => bytes, 'format=mcap'),
    ),
    // Cut before its summary and inside its data: read from the start, every message before the cut kept.
    mc(
      'cut-short',
      'published',
      bag((bytes) => bytes.subarray(0, bytes.length - 300)),
    ),
    mc(
      'only-the-magic',
      ['failed MCAP_CORRUPT', 'failed MCAP_TOPIC_MISSING', 'failed INGEST_EMPTY'],
      bag((bytes) => bytes.subarray(0, 8)),
    ),
    mc(
      'garbage-after-the-magic',
      ['failed MCAP_CORRUPT', 'failed MCAP_TOPIC_MISSING'],
      bag((bytes) => Buffer.concat([bytes.subarray(0, 8), Buffer.alloc(4096, 0xa5)])),
    ),
    mc(
      'a-chunk-claims-a-terabyte',
      ['failed INGEST_LIMIT_EXCEEDED', 'failed MCAP_CORRUPT'],
      bag((bytes) => {
        const at = recordAt(bytes, 0x06);
        bytes.writeBigUInt64LE(2n ** 40n, at + 9 + 16);
        return bytes;
      }),
    ),
    mc(
      'a-record-claims-past-the-end',
      ['failed MCAP_CORRUPT', 'failed MCAP_TOPIC_MISSING'],
      bag((bytes) => {
        const at = recordAt(bytes, 0x06);
        bytes.writeBigUInt64LE(2n ** 62n, at + 1);
        return bytes;
      }),
    ),
    mc(
      'flipped-bytes-in-a-chunk',
      ['failed MCAP_CORRUPT', 'failed MCAP_MESSAGE_INVALID'],
      bag((bytes) => {
        const at = recordAt(bytes, 0x06);
        bytes.fill(0xff, at + 200, at + 264);
        return bytes;
      }),
    ),
    mc('rosbag2-sqlite', 'failed ROSBAG_DB3_UNSUPPORTED', async () => ({
      body: Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4080)]),
      query: 'fileName=rosbag2_0.db3',
    })),
    mc(
      'mapping-names-a-missing-topic',
      'failed MCAP_TOPIC_MISSING',
      bag((bytes) => bytes, withMapping({ rateHz: 10, features: { action: { topic: '/cmd_vel', field: 'linear.x' } } })),
    ),
    mc(
      'mapping-field-through-the-prototype',
      'failed MCAP_FIELD_MISSING',
      bag((bytes) => bytes, withMapping({ rateHz: 10, features: { action: { topic: '/arm/command', field: '__proto__.constructor' } } })),
    ),
    mc(
      'mapping-joint-that-is-not-there',
      'failed MCAP_JOINT_MISSING',
      bag(
        (bytes) => bytes,
        withMapping({ rateHz: 10, features: { 'observation.state': { topic: '/joint_states', field: 'position', names: ['tail'] } } }),
      ),
    ),
    mc(
      'mapping-without-a-clock',
      '400 VALIDATION_FAILED',
      bag((bytes) => bytes, withMapping({ features: { action: { topic: '/arm/command', field: 'linear.x' } } })),
    ),
    mc(
      'mapping-with-a-million-hz',
      '400 VALIDATION_FAILED',
      bag((bytes) => bytes, withMapping({ ...robotMapping, rateHz: 1e6 })),
    ),
    // Other encodings: schemas that do not parse, messages cut short, raw images that lie about their size.
    ...(
      [
        ['protobuf-descriptor-is-garbage', 'protobuf', () => Buffer.alloc(300, 0xfe)],
        ['protobuf-descriptor-lacks-the-type', 'protobuf', () => Buffer.alloc(0)],
        ['ros2idl-schema-does-not-parse', 'ros2idl', () => Buffer.from('module sensor_msgs { struct JointState { sequence<')],
        ['ros1msg-schema-does-not-parse', 'ros1msg', () => Buffer.from('float64[ position\nHeader header header')],
      ] as const
    ).map(([name, encoding, schema]) =>
      mc(name, 'failed MCAP_ENCODING_UNSUPPORTED', async (context) => ({
        body: await robotBag(context, { encoding, tamper: { schema } }),
        query: `${withMapping(robotMapping)}&fileName=robot.mcap`,
      })),
    ),
    ...(['ros1msg', 'protobuf', 'ros2idl'] as const).map((encoding) =>
      mc(`${encoding}-message-cut-short`, 'failed MCAP_MESSAGE_INVALID', async (context) => ({
        body: await robotBag(context, {
          encoding,
          tamper: { bytes: (topic, data, index) => (topic === '/joint_states' && index > 40 ? data.subarray(0, 9) : data) },
        }),
        query: `${withMapping(robotMapping)}&fileName=robot.mcap`,
      })),
    ),
    ...(
      [
        ['raw-image-claims-two-billion-rows', (_index: number) => ({ height: 2_000_000_000 })],
        ['raw-image-claims-a-zero-step', (_index: number) => ({ step: 0 })],
        ['raw-image-shrinks-midway', (index: number) => (index > 50 ? { height: 3, data: new Uint8Array(3 * 27) } : {})],
        ['raw-image-changes-encoding-midway', (index: number) => (index > 50 ? { encoding: 'mono8' } : {})],
      ] as const
    ).map(([name, change]) =>
      mc(name, 'failed MCAP_IMAGE_UNSUPPORTED', async (context) => ({
        body: await robotBag(context, {
          camera: 'rgb8',
          tamper: { message: (topic, message, index) => (topic === cameraTopic('rgb8') ? { ...message, ...change(index) } : message) },
        }),
        query: `${withMapping({ ...robotMapping, features: { ...robotMapping.features, 'observation.images.front': { topic: cameraTopic('rgb8') } } })}&fileName=robot.mcap`,
      })),
    ),
    // An archive of bags with its mapping inside; and one whose mapping file is not a mapping.
    mc('archive-with-its-mapping', 'published', async (context) => ({
      body: gzip(tarOf({ 'bags/robot.mcap': await robotBag(context), 'kura-mapping.json': JSON.stringify(robotMapping) })),
    })),
    mc('archive-with-a-broken-mapping', 'failed MAPPING_INVALID', async (context) => ({
      body: gzip(tarOf({ 'bags/robot.mcap': await robotBag(context), 'kura-mapping.json': '{"rateHz": 10, "features": ' })),
    })),
  ];
}

export function uploadCases(): HostileCase[] {
  return [...ndjsonCases(), ...lerobotCases(), ...rldsCases(), ...alohaCases(), ...robomimicCases(), ...mcapCases(), ...formatCases()];
}
