import { Inject, Injectable } from '@nestjs/common';
import type { DatasetStatsSummary } from '@kura/formats';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readJsonBlob, writeJsonBlob } from '../blobs/json-blobs.js';
import { SliceReader } from './slice-reader.js';
import { sliceStats } from './slice-stats.js';
import { formatEpisodeRanges, type CreateSliceRequest, type FeatureSpec, type SliceSteps, type SliceView } from '@kura/schema';
import { isAdmin, type Principal } from '../auth/principal.js';
import { newId } from '../common/ids.js';
import { AppError } from '../errors/app-error.js';
import { DatasetsService, type DatasetReach, type ReadLevel } from '../datasets/datasets.service.js';
import { VersionsRepository } from '../datasets/versions.repository.js';
import { isHeldOut, SAMPLE_BUCKET_LIMIT } from '../datasets/episode-buckets.js';
import { EpisodesRepository, type EpisodeFilter } from '../datasets/episodes/episodes.repository.js';
import { resolveSliceColumns } from './slice-columns.js';
import { allocateSample, chooseEpisodes } from './slice-sampling.js';
import { SlicesRepository, type SliceRecord, type SliceSourceRecord } from './slices.repository.js';
import { sliceNotFound, sliceReadDenied, sliceUnprocessable } from './slices.errors.js';

const RECENT_SLICES = 1000;

/** Steps of an episode of `length` that `steps` keeps. */
export function keptSteps(length: number, steps: SliceSteps | null): number {
  if (!steps) return length;
  const stop = Math.min(length, steps.stop ?? length);
  return stop <= steps.start ? 0 : Math.ceil((stop - steps.start) / steps.stride);
}

/**
 * Slices: immutable selections over pinned dataset versions. Creation resolves everything that
 * could change later (latest versions, filters, the sample, what the creator may read) into an
 * explicit episode list per source, so the same id always yields the same rows.
 */
@Injectable()
export class SlicesService {
  private readonly recent = new Map<string, SliceRecord>();

  constructor(
    private readonly slices: SlicesRepository,
    private readonly datasets: DatasetsService,
    private readonly versions: VersionsRepository,
    private readonly episodes: EpisodesRepository,
    private readonly reader: SliceReader,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
  ) {}

  async create(principal: Principal, request: CreateSliceRequest): Promise<SliceView> {
    const seen = new Set<string>();
    const sources: Array<{ reach: DatasetReach; version: number; weight: number; features: FeatureSpec }> = [];
    for (const [position, source] of request.sources.entries()) {
      const field = `sources.${position}`;
      if (seen.has(source.datasetId)) {
        throw sliceUnprocessable('DUPLICATE_SOURCE', `dataset ${source.datasetId} is listed twice in sources`, `${field}.datasetId`, {
          datasetId: source.datasetId,
        });
      }
      seen.add(source.datasetId);
      const reach = await this.datasets.reachReferenced(principal, source.datasetId, `${field}.datasetId`);
      const version = source.version ?? reach.dataset.latestVersion;
      if (version < 1 || !(await this.versions.find(source.datasetId, version))) {
        throw sliceUnprocessable(
          'VERSION_NOT_FOUND',
          source.version === undefined
            ? `dataset ${source.datasetId} has no published version yet`
            : `dataset ${source.datasetId} has no version ${version} (latest: ${reach.dataset.latestVersion})`,
          `${field}.version`,
          { datasetId: source.datasetId, version, latestVersion: reach.dataset.latestVersion },
        );
      }
      sources.push({ reach, version, weight: source.weight ?? 1, features: reach.dataset.features ?? {} });
    }

    const columns = resolveSliceColumns(
      sources.map((source) => ({ datasetId: source.reach.dataset.id, features: source.features })),
      request.columns,
    );
    const steps: SliceSteps | null = request.steps
      ? { start: request.steps.start ?? 0, stop: request.steps.stop ?? null, stride: request.steps.stride ?? 1 }
      : null;

    // Candidates per source: what the filters match, minus what the caller may not read.
    let withheldHeldOut = 0;
    let withheldGrant = 0;
    const candidates: Array<{ indices: number[]; lengths: Map<number, number>; heldOut: Set<number>; pastSample: Set<number> }> = [];
    for (const source of sources) {
      const datasetId = source.reach.dataset.id;
      const isSampleDataset = source.reach.dataset.access === 'sample';
      const fallbackIndex = isSampleDataset ? await this.episodes.sampleFallbackIndex(datasetId) : undefined;
      const filter: EpisodeFilter = {
        datasetId,
        version: source.version,
        episodes: request.episodes,
        task: request.task,
        success: request.success,
        minLength: request.minLength,
        maxLength: request.maxLength,
        uploadId: request.uploadId,
      };
      const indices: number[] = [];
      const lengths = new Map<number, number>();
      const heldOut = new Set<number>();
      const pastSample = new Set<number>();
      const found = await this.episodes.candidates(filter);
      for (let position = 0; position < found.indices.length; position++) {
        const episodeIndex = found.indices[position]!;
        const length = found.lengths[position]!;
        const bucket = found.buckets[position]!;
        const inSample = bucket < SAMPLE_BUCKET_LIMIT || episodeIndex === fallbackIndex;
        if (isHeldOut(bucket) && !source.reach.heldOut) withheldHeldOut++;
        else if (source.reach.episodes === 'sample' && !inSample) withheldGrant++;
        else if (keptSteps(length, steps) > 0) {
          indices.push(episodeIndex);
          lengths.set(episodeIndex, length);
          if (isHeldOut(bucket)) heldOut.add(episodeIndex);
          if (isSampleDataset && !inSample) pastSample.add(episodeIndex);
        }
      }
      candidates.push({ indices, lengths, heldOut, pastSample });
    }

    let chosen = candidates.map((candidate) => candidate.indices);
    if (request.sample) {
      const counts = allocateSample(
        request.sample.episodes,
        sources.map((source, position) => ({ weight: source.weight, available: candidates[position]!.indices.length })),
      );
      if (!counts) {
        const available = candidates.reduce((sum, candidate) => sum + candidate.indices.length, 0);
        throw sliceUnprocessable(
          'SAMPLE_TOO_LARGE',
          `sample asks for ${request.sample.episodes} episodes but the selection has ${available}`,
          'sample.episodes',
          { requested: request.sample.episodes, available },
        );
      }
      const seed = request.sample.seed;
      chosen = candidates.map((candidate, position) =>
        chooseEpisodes({ candidates: candidate.indices, count: counts[position]!, seed, datasetId: sources[position]!.reach.dataset.id }),
      );
    }

    const sliceSources: SliceSourceRecord[] = sources.map((source, position) => {
      const candidate = candidates[position]!;
      const indices = chosen[position]!;
      return {
        position,
        datasetId: source.reach.dataset.id,
        version: source.version,
        weight: source.weight,
        episodes: formatEpisodeRanges(indices),
        episodeCount: indices.length,
        stepCount: BigInt(indices.reduce((sum, index) => sum + keptSteps(candidate.lengths.get(index)!, steps), 0)),
        // Readable without a grant: episodes of a public dataset, or of a sample dataset's public part.
        sampleOnly: source.reach.dataset.access !== 'private' && !indices.some((index) => candidate.pastSample.has(index)),
        includesHeldOut: indices.some((index) => candidate.heldOut.has(index)),
      };
    });
    const episodeCount = sliceSources.reduce((sum, source) => sum + source.episodeCount, 0);
    if (episodeCount === 0) {
      throw sliceUnprocessable(
        'EMPTY_SELECTION',
        'the slice selects no episode: no episode matches its filters, steps and access',
        'sources',
        {
          withheld: { heldOut: withheldHeldOut, grantRequired: withheldGrant },
        },
      );
    }
    const slice = await this.slices.create({
      id: newId('slc'),
      ownerKeyId: principal.kind === 'key' ? principal.keyId : null,
      columns,
      steps,
      request,
      episodeCount,
      stepCount: sliceSources.reduce((sum, source) => sum + source.stepCount, 0n),
      withheldHeldOut,
      withheldGrant,
      sources: sliceSources,
    });
    // A slice is usually downloaded right after it is made: keep it, and plan its IPC stream now
    // (small slices' plans are kept by the reader; a failure here is the download's to report).
    this.remember(slice);
    this.reader.planAhead(slice);
    return toView(slice);
  }

  async get(principal: Principal, id: string): Promise<SliceView> {
    return toView(await this.findReadable(principal, id));
  }

  /** Statistics of the slice's own rows; computed on first request and kept (a slice never changes). */
  async stats(principal: Principal, id: string): Promise<{ sliceId: string; features: DatasetStatsSummary }> {
    const slice = await this.findReadable(principal, id);
    const key = `slices/${slice.id}/stats.json`;
    if (!(await this.blobs.head({ key }))) {
      const plan = await this.reader.plan(slice, { forward: false });
      if (plan.kind !== 'decode') throw new Error('statistics need decoded batches');
      await writeJsonBlob(this.blobs, key, await sliceStats(plan));
    }
    return { sliceId: slice.id, features: (await readJsonBlob(this.blobs, key)) as DatasetStatsSummary };
  }

  /**
   * The slice when the caller may read every episode in it: each source dataset visible to it, a
   * grant (or ownership) where the slice goes past a `sample` dataset's public part, admin rights
   * where it holds held-out episodes. Anyone who may read it may fetch it by id, so a slice id can
   * be cited.
   */
  async findReadable(principal: Principal, id: string): Promise<SliceRecord> {
    const slice = await this.findSlice(id);
    for (const source of slice.sources) {
      let reach: ReadLevel;
      try {
        reach = await this.datasets.readLevel(principal, source.datasetId);
      } catch (error) {
        if (error instanceof AppError && error.code === 'DATASET_NOT_FOUND') throw sliceNotFound(id);
        throw error;
      }
      if (reach.episodes === 'sample' && !source.sampleOnly)
        throw sliceReadDenied(principal, id, `it holds episodes of ${source.datasetId} past its public sample; a grant is needed`);
      if (source.includesHeldOut && !isAdmin(principal)) throw sliceReadDenied(principal, id, 'it holds held-out evaluation episodes');
    }
    return slice;
  }

  /** Slices never change, so a recently read one is kept in memory (who may read it is checked every time). */
  private async findSlice(id: string): Promise<SliceRecord> {
    const cached = this.recent.get(id);
    if (cached) return cached;
    const slice = await this.slices.findById(id);
    if (!slice) throw sliceNotFound(id);
    this.remember(slice);
    return slice;
  }

  private remember(slice: SliceRecord): void {
    // Only slices with a short episode list, so the cache stays small whatever the slices hold.
    if (slice.sources.reduce((sum, source) => sum + source.episodes.length, 0) <= 4096) this.recent.set(slice.id, slice);
    if (this.recent.size > RECENT_SLICES) this.recent.delete(this.recent.keys().next().value!);
  }
}

function toView(slice: SliceRecord): SliceView {
  return {
    id: slice.id,
    episodeCount: slice.episodeCount,
    stepCount: Number(slice.stepCount),
    sources: slice.sources.map((source) => ({
      datasetId: source.datasetId,
      version: source.version,
      weight: source.weight,
      episodeCount: source.episodeCount,
      stepCount: Number(source.stepCount),
      episodes: source.episodes,
    })),
    columns: [...(slice.sources.length > 1 ? ['dataset_id'] : []), ...slice.columns.map((column) => column.name)],
    steps: slice.steps,
    withheld: { heldOut: slice.withheldHeldOut, grantRequired: slice.withheldGrant },
    createdAt: slice.createdAt.toISOString(),
  };
}
