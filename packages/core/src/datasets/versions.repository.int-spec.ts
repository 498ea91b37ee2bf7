// Publishing a version on real Postgres: the episode rows go in first and stay invisible, then one
// transaction publishes the version, moves the dataset and marks the upload published. A publish
// that fails part-way shows nothing of itself and leaves the previous version as it was; the rows it
// wrote are what the next ingest (or the upload failing) removes; a version is published once.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { ImportIssue } from '@kura/formats';
import type { FeatureSpec } from '@kura/schema';
import { createTestDatabase } from '../../../../test/support/database.js';
import { PostgresCopy } from '../database/postgres-copy.js';
import { createPrismaClient, type PrismaClient } from '../database/prisma.js';
import { createLogger } from '../logging/logger.js';
import { EpisodesRepository, type NewEpisodeRow } from './episodes/episodes.repository.js';
import { VersionsRepository, type PublishVersion } from './versions.repository.js';

const FEATURES: FeatureSpec = { 'observation.state': { dtype: 'float32', shape: [2] }, action: { dtype: 'float32', shape: [1] } };
const WARNING: ImportIssue = { code: 'SOME_WARNING', message: 'a warning kept with the upload', location: {} };

describe('VersionsRepository.publish', () => {
  let database: { url: string; drop: () => Promise<void> };
  let prisma: PrismaClient;
  let copy: PostgresCopy;
  let episodes: EpisodesRepository;
  let versions: VersionsRepository;
  let ownerKeyId: string;
  let robotId: string;
  let datasetId: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    prisma = createPrismaClient(database.url);
    copy = new PostgresCopy(database.url, createLogger('silent'));
    episodes = new EpisodesRepository(prisma, copy);
    versions = new VersionsRepository(prisma, episodes);
    ownerKeyId = `key_${randomBytes(6).toString('hex')}`;
    await prisma.apiKey.create({
      data: { id: ownerKeyId, name: 'owner', role: 'operator', keyHash: randomBytes(16).toString('hex'), keyPrefix: 'kura_x' },
    });
    robotId = `rob_${randomBytes(6).toString('hex')}`;
    await prisma.robot.create({
      data: { id: robotId, name: 'arm', robotType: 'arm', controlFrequencyHz: 10, actionSpace: 'joint_position', ownerKeyId },
    });
  });
  afterAll(async () => {
    await copy.onApplicationShutdown();
    await prisma.$disconnect();
    await database.drop();
  });
  beforeEach(async () => {
    datasetId = `ds_${randomBytes(6).toString('hex')}`;
    await prisma.dataset.create({ data: { id: datasetId, name: datasetId, robotId, access: 'private', ownerKeyId } });
  });

  const newUpload = async () => {
    const id = `upl_${randomBytes(6).toString('hex')}`;
    await prisma.upload.create({
      data: { id, datasetId, ownerKeyId, blobKey: `datasets/${datasetId}/uploads/${id}/raw`, status: 'processing' },
    });
    return id;
  };
  const rows = (indices: number[], uploadId: string): NewEpisodeRow[] =>
    indices.map((episodeIndex) => ({
      episodeIndex,
      sourceEpisode: `${uploadId}-${episodeIndex}`,
      length: 3,
      task: 'pick',
      success: true,
      shardKey: `datasets/${datasetId}/shards/${uploadId}-0000.arrow`,
      batchStart: episodeIndex,
      batchCount: 1,
      byteOffset: 100 * episodeIndex,
      byteLength: 100,
      checksum: 'c'.repeat(64),
      metadata: episodeIndex === 0 ? { camera: 'high' } : null,
      bucket: episodeIndex % 100,
    }));
  /** What ingest passes to publish version `version` (from `version - 1`) with these episode indices. */
  const publishing = (params: { version: number; uploadId: string; indices: number[]; totalEpisodes: number }): PublishVersion => ({
    datasetId,
    fromVersion: params.version - 1,
    version: params.version,
    episodeCount: params.totalEpisodes,
    stepCount: params.totalEpisodes * 3,
    manifestKey: `datasets/${datasetId}/versions/${params.version}/manifest.json`,
    statsKey: `datasets/${datasetId}/versions/${params.version}/stats.json`,
    sketchKey: `datasets/${datasetId}/versions/${params.version}/stats.sketch.json`,
    features: params.version === 1 ? FEATURES : undefined,
    episodes: rows(params.indices, params.uploadId),
    upload: {
      id: params.uploadId,
      format: 'kura-ndjson',
      episodeCount: params.indices.length,
      stepCount: params.indices.length * 3,
      warnings: [WARNING],
    },
  });
  const range = (start: number, count: number) => Array.from({ length: count }, (_, offset) => start + offset);
  /** The dataset as readers see it: its row, its versions and the episodes of its latest version. */
  const visible = async () => {
    const dataset = await prisma.dataset.findUniqueOrThrow({ where: { id: datasetId } });
    const listed = await episodes.list({ datasetId, version: dataset.latestVersion, afterIndex: undefined, take: 10_000 });
    const versionRows = await versions.list({ datasetId, afterVersion: undefined, take: 100 });
    return {
      dataset: {
        latestVersion: dataset.latestVersion,
        episodeCount: dataset.episodeCount,
        stepCount: dataset.stepCount,
        features: dataset.features,
      },
      versions: versionRows.map((row) => ({ version: row.version, uploadId: row.uploadId, episodeCount: row.episodeCount })),
      episodes: listed.map((episode) => [episode.episodeIndex, episode.version, episode.uploadId]),
    };
  };
  it('episode rows go in by COPY exactly as given: text with backslashes, tabs and newlines, nulls, JSON metadata', async () => {
    const uploadId = await newUpload();
    const awkward = 'a\\b\tc\nd\re \\N "quoted" ünï ✓';
    const given: NewEpisodeRow[] = [
      {
        ...rows([0], uploadId)[0]!,
        sourceEpisode: awkward,
        task: awkward,
        metadata: { note: awkward, nested: { list: [1, null, '\\N'] } },
      },
      { ...rows([1], uploadId)[0]!, sourceEpisode: '\\N', task: null, success: null, metadata: null },
      { ...rows([2], uploadId)[0]!, success: false, byteOffset: 2 ** 40, byteLength: 2 ** 33 },
    ];
    await episodes.insertUnpublished({ datasetId, version: 1, uploadId, rows: given });
    const stored = await prisma.episode.findMany({ where: { datasetId }, orderBy: { episodeIndex: 'asc' } });
    expect(
      stored.map((row) => [
        row.sourceEpisode,
        row.task,
        row.success,
        row.metadata,
        row.byteOffset,
        row.byteLength,
        row.version,
        row.uploadId,
      ]),
    ).toEqual(
      given.map((row) => [
        row.sourceEpisode,
        row.task,
        row.success,
        row.metadata,
        BigInt(row.byteOffset),
        BigInt(row.byteLength),
        1,
        uploadId,
      ]),
    );
    // Nothing for no rows; a failing COPY (an index taken) adds none of its rows.
    await episodes.insertUnpublished({ datasetId, version: 1, uploadId, rows: [] });
    await expect(episodes.insertUnpublished({ datasetId, version: 1, uploadId, rows: rows([3, 2], uploadId) })).rejects.toThrow(
      /duplicate key/,
    );
    expect(await prisma.episode.count({ where: { datasetId } })).toBe(3);
  });

  const uploadRow = (id: string) => prisma.upload.findUniqueOrThrow({ where: { id } });
  const publishedFirst = async () => {
    const first = await newUpload();
    await versions.publish(publishing({ version: 1, uploadId: first, indices: range(0, 3), totalEpisodes: 3 }));
    return { first, before: await visible() };
  };

  it('publishes the version, its episodes, the dataset and the upload together', async () => {
    const uploadId = await newUpload();
    await versions.publish(publishing({ version: 1, uploadId, indices: range(0, 3), totalEpisodes: 3 }));

    expect(await visible()).toEqual({
      dataset: { latestVersion: 1, episodeCount: 3, stepCount: 9n, features: FEATURES },
      versions: [{ version: 1, uploadId, episodeCount: 3 }],
      episodes: [
        [0, 1, uploadId],
        [1, 1, uploadId],
        [2, 1, uploadId],
      ],
    });
    expect(await versions.findBlobKeys(datasetId, 1)).toEqual({
      manifestKey: `datasets/${datasetId}/versions/1/manifest.json`,
      statsKey: `datasets/${datasetId}/versions/1/stats.json`,
      sketchKey: `datasets/${datasetId}/versions/1/stats.sketch.json`,
    });
    const [first] = await prisma.episode.findMany({ where: { datasetId, episodeIndex: 0 } });
    expect(first).toMatchObject({
      sourceEpisode: `${uploadId}-0`,
      byteOffset: 0n,
      byteLength: 100n,
      metadata: { camera: 'high' },
      bucket: 0,
    });
    expect(await uploadRow(uploadId)).toMatchObject({
      status: 'published',
      progress: 1,
      format: 'kura-ndjson',
      episodeCount: 3,
      stepCount: 9n,
      version: 1,
      warnings: [WARNING],
      errors: [],
      finishedAt: expect.any(Date),
    });
  });

  it('adds a version on top of the previous one, keeping the features the dataset has', async () => {
    const { first } = await publishedFirst();
    const second = await newUpload();
    // More rows than one INSERT statement takes.
    await versions.publish(publishing({ version: 2, uploadId: second, indices: range(3, 5_002), totalEpisodes: 5_005 }));

    const after = await visible();
    expect(after.dataset).toEqual({ latestVersion: 2, episodeCount: 5_005, stepCount: 15_015n, features: FEATURES });
    expect(after.versions).toEqual([
      { version: 1, uploadId: first, episodeCount: 3 },
      { version: 2, uploadId: second, episodeCount: 5_005 },
    ]);
    expect(after.episodes).toHaveLength(5_005);
    expect(after.episodes.slice(2, 4)).toEqual([
      [2, 1, first],
      [3, 2, second],
    ]);
    expect(await uploadRow(second)).toMatchObject({ status: 'published', version: 2, episodeCount: 5_002 });
  });

  it('fails inside the transaction without publishing anything: the previous version stays as it was', async () => {
    const { first, before } = await publishedFirst();
    // The version row is written, then the upload's update finds no upload: the transaction rolls back.
    const missing = `upl_${randomBytes(6).toString('hex')}`;
    await expect(versions.publish(publishing({ version: 2, uploadId: missing, indices: range(3, 2), totalEpisodes: 5 }))).rejects.toThrow();

    expect(await visible()).toEqual(before);
    expect(await versions.find(datasetId, 2)).toBeNull();
    expect(await uploadRow(first)).toMatchObject({ status: 'published', version: 1 });
    // Its episode rows were written before the transaction: invisible (above), and what the next
    // ingest of the dataset removes before writing its own.
    expect(await prisma.episode.count({ where: { datasetId, version: 2 } })).toBe(2);
    await episodes.deleteUnpublished({ datasetId, latestVersion: 1 });
    expect(await prisma.episode.count({ where: { datasetId } })).toBe(3);
    expect(await visible()).toEqual(before);
  });

  it('refuses a version number that does not follow the one it starts from, writing nothing', async () => {
    const { before } = await publishedFirst();
    const skipping = await newUpload();
    await expect(
      versions.publish({ ...publishing({ version: 3, uploadId: skipping, indices: range(3, 1), totalEpisodes: 4 }), fromVersion: 1 }),
    ).rejects.toThrow('version 3 does not follow version 1');

    expect(await visible()).toEqual(before);
    expect(await prisma.episode.count({ where: { datasetId } })).toBe(3);
    expect(await uploadRow(skipping)).toMatchObject({ status: 'processing', version: null, finishedAt: null });
  });

  it('writes no episode row when one collides with a published episode, and publishes nothing', async () => {
    const { before } = await publishedFirst();
    const clashing = await newUpload();
    // Index 2 belongs to version 1.
    await expect(versions.publish(publishing({ version: 2, uploadId: clashing, indices: [3, 4, 2], totalEpisodes: 6 }))).rejects.toThrow();

    expect(await visible()).toEqual(before);
    expect(await prisma.episode.count({ where: { datasetId } })).toBe(3);
    expect(await uploadRow(clashing)).toMatchObject({ status: 'processing', version: null });
  });

  it('publishes a version once: publishing the same upload again changes nothing', async () => {
    const { first, before } = await publishedFirst();
    await expect(versions.publish(publishing({ version: 1, uploadId: first, indices: range(0, 3), totalEpisodes: 3 }))).rejects.toThrow();

    expect(await visible()).toEqual(before);
    expect(await prisma.episode.count({ where: { datasetId } })).toBe(3);
    expect(await uploadRow(first)).toMatchObject({ status: 'published', version: 1 });
  });

  it('publishes after a failed attempt once its unpublished rows are removed (an ingest retried)', async () => {
    const { first, before } = await publishedFirst();
    // The first attempt fails inside the transaction (its upload's row is not there yet).
    const retried = `upl_${randomBytes(6).toString('hex')}`;
    const attempt = publishing({ version: 2, uploadId: retried, indices: range(3, 2), totalEpisodes: 5 });
    await expect(versions.publish(attempt)).rejects.toThrow();
    expect(await visible()).toEqual(before);
    await prisma.upload.create({
      data: { id: retried, datasetId, ownerKeyId, blobKey: `datasets/${datasetId}/uploads/${retried}/raw`, status: 'processing' },
    });
    // Without their removal, the rows of the failed attempt collide with the same indices.
    await expect(versions.publish(attempt)).rejects.toThrow();

    await episodes.deleteUnpublished({ datasetId, latestVersion: 1 });
    await versions.publish(attempt);
    expect((await visible()).episodes).toEqual([
      [0, 1, first],
      [1, 1, first],
      [2, 1, first],
      [3, 2, retried],
      [4, 2, retried],
    ]);
    expect(await uploadRow(retried)).toMatchObject({ status: 'published', version: 2 });
  });
});
