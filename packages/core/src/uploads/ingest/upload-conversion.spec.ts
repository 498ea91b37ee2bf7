// The jailed half of an ingest (convertUpload), on its own: what it refuses, it refuses with a code and
// a location (#19 items 5 and 9), so the child never ends with an uncoded error (INGEST_CRASHED).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ImportError, type FormatName } from '@kura/formats';
import { writeHdf5 } from '../../../../formats/src/hdf5/testing.js';
import { testConversionRequest } from './testing.js';
import { convertUpload, type ConversionMessage } from './upload-conversion.js';

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'kura-conversion-'));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** Converts one uploaded file; the coded failure, or the messages when it publishes. */
async function convert(params: {
  fileName: string;
  write: (path: string) => Promise<void>;
  format: FormatName;
  featureMap?: Record<string, string>;
  shardBytes?: number;
}): Promise<{ failure?: ImportError; messages: ConversionMessage[] }> {
  const work = await mkdtemp(join(folder, 'upload-'));
  const rawPath = join(work, 'raw');
  await params.write(rawPath);
  const messages: ConversionMessage[] = [];
  const request = testConversionRequest({
    rawPath,
    work,
    fileName: params.fileName,
    requestedFormat: params.format,
    featureMap: params.featureMap ?? {},
    ...(params.shardBytes !== undefined ? { shardBytes: params.shardBytes } : {}),
  });
  try {
    await convertUpload(request, (message) => messages.push(message));
    return { messages };
  } catch (error) {
    // Anything but an ImportError would reach the upload as INGEST_CRASHED: the test fails on it.
    if (error instanceof ImportError) return { failure: error, messages };
    throw error;
  }
}

const ndjson = (lines: object[]) => (path: string) => writeFile(path, lines.map((line) => JSON.stringify(line)).join('\n') + '\n');

describe('convertUpload: the feature spec an upload makes keeps the limits of dataset creation', () => {
  it.each([
    ['an empty action vector', { action: [] }, 'action', /dimension of 0/],
    ['a 1,000,001-dimension action', { action: new Array<number>(1_000_001).fill(0) }, 'action', /1000001 \(at most 1,000,000\)/],
    ['an observation named "a b/../c"', { action: [0], observation: { 'a b/../c': [1] } }, 'observation.a b/../c', /not a feature name/],
    [
      'a 10,000-character observation name',
      { action: [0], observation: { ['x'.repeat(10_000)]: [1] } },
      `observation.${'x'.repeat(10_000)}`,
      /10012 characters/,
    ],
  ])('%s: FEATURE_SPEC_INVALID at the feature, nothing published', async (_, values, field, message) => {
    const { failure, messages } = await convert({
      fileName: 'data.ndjson',
      format: 'kura-ndjson',
      write: ndjson([0, 1].map((step) => ({ episode: 0, step, ...values }))),
    });
    expect(failure).toMatchObject({ code: 'FEATURE_SPEC_INVALID', location: { file: 'data.ndjson', field } });
    expect(failure?.message).toMatch(message);
    expect(messages.filter((message) => message.type === 'shard')).toEqual([]);
  });

  it('a rank-9 HDF5 observation: FEATURE_SPEC_INVALID at observation.depth', async () => {
    const { failure } = await convert({
      fileName: 'episode_0.hdf5',
      format: 'hdf5-aloha',
      write: (path) =>
        writeHdf5(path, {
          '/action': { data: new Float32Array(2 * 14), shape: [2, 14] },
          '/observations/qpos': { data: new Float32Array(2 * 14), shape: [2, 14] },
          '/observations/depth': { data: new Float32Array(2 * 2), shape: [2, 1, 1, 1, 1, 1, 1, 1, 1, 2] },
        }),
    });
    expect(failure).toMatchObject({ code: 'FEATURE_SPEC_INVALID', location: { file: 'episode_0.hdf5', field: 'observation.depth' } });
    expect(failure?.message).toMatch(/9 dimensions \(at most 8\)/);
  });

  it('a featureMap renaming a feature to __proto__: FEATURE_SPEC_INVALID naming it, not a feature lost', async () => {
    const { failure } = await convert({
      fileName: 'data.ndjson',
      format: 'kura-ndjson',
      featureMap: { 'observation.state': '__proto__' },
      write: ndjson([{ episode: 0, step: 0, action: [0], observation: { state: [1] } }]),
    });
    expect(failure).toMatchObject({ code: 'FEATURE_SPEC_INVALID', location: { file: 'data.ndjson', field: '__proto__' } });
  });
});

describe('convertUpload: shards', () => {
  it('cuts a shard once it is full and marks the last one, also when the last is full', async () => {
    // One byte a shard: every episode fills one, so the last shard is full when the file ends.
    const { failure, messages } = await convert({
      fileName: 'data.ndjson',
      format: 'kura-ndjson',
      shardBytes: 1,
      write: ndjson([0, 1, 2].flatMap((episode) => [0, 1].map((step) => ({ episode, step, action: [episode, step] })))),
    });
    expect(failure).toBeUndefined();
    const shards = messages.flatMap((message) => (message.type === 'shard' ? [message] : []));
    expect(shards.map((shard) => [shard.number, shard.episodes.map((episode) => episode.episodeIndex), shard.last])).toEqual([
      [0, [0], false],
      [1, [1], false],
      [2, [2], true],
    ]);
  });
});

describe('convertUpload: values the statistics cannot take', () => {
  it('a float64 action of 1e200 is STATS_VALUE_OUT_OF_RANGE at its episode, step and component', async () => {
    const action = new Float64Array(3 * 14);
    action[14 + 2] = 1e200;
    const { failure } = await convert({
      fileName: 'episode_0.hdf5',
      format: 'hdf5-aloha',
      write: (path) =>
        writeHdf5(path, {
          '/action': { data: action, shape: [3, 14] },
          '/observations/qpos': { data: new Float64Array(3 * 14), shape: [3, 14] },
        }),
    });
    expect(failure).toMatchObject({
      code: 'STATS_VALUE_OUT_OF_RANGE',
      location: { file: 'episode_0.hdf5', episode: 'episode_0', step: 1, field: 'action[2]' },
    });
  });
});
