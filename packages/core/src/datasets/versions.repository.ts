import { Inject, Injectable } from '@nestjs/common';
import type { ImportIssue } from '@kura/formats';
import type { FeatureSpec } from '@kura/schema';
import { Prisma, PrismaClient } from '../database/prisma.js';
import { EpisodesRepository, type NewEpisodeRow } from './episodes/episodes.repository.js';

export interface DatasetVersionRecord {
  version: number;
  episodeCount: number;
  stepCount: bigint;
  uploadId: string;
  manifestKey: string;
  statsKey: string;
  createdAt: Date;
}

const versionSelect = {
  version: true,
  episodeCount: true,
  stepCount: true,
  uploadId: true,
  manifestKey: true,
  statsKey: true,
  createdAt: true,
} as const;

/** Where a version's manifest and statistics are stored. */
export interface VersionBlobKeys {
  manifestKey: string;
  statsKey: string;
  sketchKey: string;
}

/** What publishing a new version of a dataset writes (see VersionsRepository.publish). */
export interface PublishVersion extends VersionBlobKeys {
  datasetId: string;
  /** The dataset's latest version when the work started: publishing fails unless it still is. */
  fromVersion: number;
  /** The new version's number (`fromVersion + 1`). */
  version: number;
  /** The dataset's totals with the new version. */
  episodeCount: number;
  stepCount: number;
  /** Set as the dataset's feature spec (when it has none yet, at its first version); undefined keeps it. */
  features: FeatureSpec | undefined;
  /** The new version's episodes still to insert. */
  episodes: NewEpisodeRow[];
  /** How many of its episode rows the caller inserted already (`EpisodesRepository.insertUnpublished`). */
  insertedEpisodes?: number;
  /** The caller refreshed the planner statistics over most of the inserted rows (EpisodesRepository.analyze). */
  analyzed?: boolean;
  /** The upload the version comes from, published with it. */
  upload: { id: string; format: string; episodeCount: number; stepCount: number; warnings: ImportIssue[] };
}

@Injectable()
export class VersionsRepository {
  constructor(
    @Inject(PrismaClient) private readonly prisma: PrismaClient,
    private readonly episodes: EpisodesRepository,
  ) {}

  list(params: { datasetId: string; afterVersion: number | undefined; take: number }): Promise<DatasetVersionRecord[]> {
    return this.prisma.datasetVersion.findMany({
      where: { datasetId: params.datasetId, ...(params.afterVersion !== undefined ? { version: { gt: params.afterVersion } } : {}) },
      orderBy: { version: 'asc' },
      take: params.take,
      select: versionSelect,
    });
  }

  find(datasetId: string, version: number): Promise<DatasetVersionRecord | null> {
    return this.prisma.datasetVersion.findUnique({ where: { datasetId_version: { datasetId, version } }, select: versionSelect });
  }

  findBlobKeys(datasetId: string, version: number): Promise<VersionBlobKeys | null> {
    return this.prisma.datasetVersion.findUnique({
      where: { datasetId_version: { datasetId, version } },
      select: { manifestKey: true, statsKey: true, sketchKey: true },
    });
  }

  /**
   * Publishes a new version. The episode rows go first, in bulk and outside the transaction (as
   * many as the upload has): readers see episodes only up to the dataset's `latestVersion`, so they
   * stay invisible until then, and if publishing fails or the process dies they are left for
   * `EpisodesRepository.deleteUnpublished` (the next ingest of the dataset) or `deleteUnpublishedOf`
   * (the upload failing). Then one short transaction, three rows whatever the number of episodes:
   * the version row, the dataset moved from `fromVersion` to `version` with its new totals, and the
   * upload marked published. It fails, changing nothing, if the version exists already or the
   * dataset is no longer at `fromVersion`, so a version is published once.
   *
   * Callers hold the dataset's lock (uploads/ingest/dataset-lock.ts) from reading `fromVersion`
   * (the dataset's latest version) until this returns: the rows are invisible only while their
   * version is above the dataset's, and the lock keeps versions and episode indices contiguous.
   */
  async publish(params: PublishVersion): Promise<void> {
    const { datasetId, version } = params;
    // Rows of any other version number could be visible before they are published.
    if (version !== params.fromVersion + 1) throw new Error(`version ${version} does not follow version ${params.fromVersion}`);
    await this.episodes.insertUnpublished({ datasetId, version, uploadId: params.upload.id, rows: params.episodes });
    if (!params.analyzed) await this.episodes.analyzeAfterInsert(params.episodes.length + (params.insertedEpisodes ?? 0));
    await this.prisma.$transaction([
      this.prisma.datasetVersion.create({
        data: {
          datasetId,
          version,
          episodeCount: params.episodeCount,
          stepCount: BigInt(params.stepCount),
          uploadId: params.upload.id,
          manifestKey: params.manifestKey,
          statsKey: params.statsKey,
          sketchKey: params.sketchKey,
        },
        select: { version: true },
      }),
      // Only from the version the caller started from (the dataset's lock makes it so; this checks it).
      this.prisma.dataset.update({
        where: { id: datasetId, latestVersion: params.fromVersion },
        data: {
          latestVersion: version,
          episodeCount: params.episodeCount,
          stepCount: BigInt(params.stepCount),
          ...(params.features ? { features: params.features } : {}),
        },
        select: { id: true },
      }),
      // The upload's row is written here, not by UploadsRepository, to be in the same transaction
      // (uploads sit above datasets). Its JSON columns take the validated issues as they are.
      this.prisma.upload.update({
        where: { id: params.upload.id },
        data: {
          status: 'published',
          progress: 1,
          format: params.upload.format,
          episodeCount: params.upload.episodeCount,
          stepCount: BigInt(params.upload.stepCount),
          version,
          warnings: params.upload.warnings as unknown as Prisma.InputJsonValue,
          errors: [],
          finishedAt: new Date(),
        },
        select: { id: true },
      }),
    ]);
  }
}
