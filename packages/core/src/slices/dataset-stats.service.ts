import { Inject, Injectable } from '@nestjs/common';
import type { Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readJsonBlob, writeJsonBlob } from '../blobs/json-blobs.js';
import { EpisodesRepository } from '../datasets/episodes/episodes.repository.js';
import { VersionsService } from '../datasets/versions.service.js';
import { SliceReader, wholeEpisodesOf } from './slice-reader.js';
import { sliceStats } from './slice-stats.js';

/**
 * A dataset version's per-feature statistics. It lives with slices because the statistics of a
 * `sample` dataset's public part are computed by reading those rows as a slice would.
 */
@Injectable()
export class DatasetStatsService {
  constructor(
    private readonly versions: VersionsService,
    private readonly episodes: EpisodesRepository,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly reader: SliceReader,
  ) {}

  /**
   * The per-feature statistics of a version (the latest when none is named). Callers limited to a
   * `sample` dataset's public part get the statistics of that part, computed from its rows once and
   * kept beside the version's own.
   */
  async stats(
    principal: Principal,
    datasetId: string,
    requested: number | undefined,
  ): Promise<{ version: number; scope: 'all' | 'sample'; features: unknown }> {
    const { reach, version } = await this.versions.resolve(principal, datasetId, requested);
    if (reach.episodes === 'full')
      return { version: version.version, scope: 'all', features: await readJsonBlob(this.blobs, version.statsKey) };
    const key = version.statsKey.replace(/stats\.json$/, 'stats.sample.json');
    if (!(await this.blobs.head({ key }))) {
      const fallbackIndex = await this.episodes.sampleFallbackIndex(datasetId);
      const sample: number[] = [];
      let afterIndex: number | undefined;
      for (;;) {
        const page = await this.episodes.list({
          datasetId,
          version: version.version,
          sampleOnly: { fallbackIndex },
          afterIndex,
          take: 10_000,
        });
        sample.push(...page.map((row) => row.episodeIndex));
        if (page.length < 10_000) break;
        afterIndex = page[page.length - 1]!.episodeIndex;
      }
      const features = reach.dataset.features ?? {};
      const plan = await this.reader.plan(wholeEpisodesOf({ datasetId, version: version.version, features, episodes: sample }), {
        forward: false,
      });
      if (plan.kind !== 'decode') throw new Error('statistics need decoded batches');
      await writeJsonBlob(this.blobs, key, await sliceStats(plan));
    }
    return { version: version.version, scope: 'sample', features: await readJsonBlob(this.blobs, key) };
  }
}
