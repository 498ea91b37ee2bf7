import { Inject, Injectable } from '@nestjs/common';
import {
  findUnstorableText,
  formatEpisodeRanges,
  formatTextPath,
  trainingLimits,
  type CreateTrainingRequest,
  type FeatureSpec,
  type ListQuery,
  type Page,
  type TrainerManifest,
  type TrainingMetricsView,
  type TrainingResources,
  type TrainingSourceView,
  type TrainingView,
} from '@kura/schema';
import { isAdmin, ownsOrAdmin, requireRole, type Principal } from '../auth/principal.js';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { newId } from '../common/ids.js';
import { decodeCursor, toPage } from '../common/pagination.js';
import { DatasetsService } from '../datasets/datasets.service.js';
import { isHeldOut, SAMPLE_BUCKET_LIMIT } from '../datasets/episode-buckets.js';
import { EpisodesRepository } from '../datasets/episodes/episodes.repository.js';
import { VersionsRepository } from '../datasets/versions.repository.js';
import { JobsService } from '../jobs/jobs.service.js';
import { PolicyHosts } from '../policies/hosts/policy-hosts.service.js';
import { resolveSliceColumns } from '../slices/slice-columns.js';
import { TrainersService } from './trainers.service.js';
import { trainerNotReady, trainingFinished, trainingNotFound, trainingUnprocessable } from './training.errors.js';
import { TrainingsRepository, type TrainingRecord, type TrainingSourceRecord } from './trainings.repository.js';

const EPISODE_PAGE = 20_000;
export const runTrainingJobId = (trainingId: string) => `trainings.run:${trainingId}`;

/**
 * Training runs: a ready trainer on pinned dataset versions. Creation resolves the data a run may use
 * — every episode of its sources that is not held out, where the caller may read the dataset or the
 * dataset is `sample` (the sample level lets anyone train on the rest, on the platform) — into an
 * explicit episode list per source, so the record is enough to run it again.
 */
@Injectable()
export class TrainingsService {
  constructor(
    private readonly trainings: TrainingsRepository,
    private readonly trainers: TrainersService,
    private readonly datasets: DatasetsService,
    private readonly versions: VersionsRepository,
    private readonly episodes: EpisodesRepository,
    private readonly jobs: JobsService,
    private readonly hosts: PolicyHosts,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
  ) {}

  async create(principal: Principal, request: CreateTrainingRequest): Promise<TrainingView> {
    requireRole(principal, ['developer'], 'train policies');
    this.hosts.assertAvailable();
    const trainer = await this.trainers.findOwned(principal, request.trainerId);
    if (trainer.status !== 'ready') throw trainerNotReady(trainer.id, trainer.status);
    const manifest = trainer.manifest!;
    checkHyperparameters(request.hyperparameters);

    const sources: TrainingSourceRecord[] = [];
    const specs: Array<{ datasetId: string; features: FeatureSpec }> = [];
    const seen = new Set<string>();
    for (const [position, source] of request.sources.entries()) {
      const field = `sources.${position}`;
      if (seen.has(source.datasetId))
        throw trainingUnprocessable('DUPLICATE_SOURCE', `dataset ${source.datasetId} is listed twice in sources`, `${field}.datasetId`, {
          datasetId: source.datasetId,
        });
      seen.add(source.datasetId);
      const reach = await this.datasets.reachReferenced(principal, source.datasetId, `${field}.datasetId`);
      const version = source.version ?? reach.dataset.latestVersion;
      if (version < 1 || !(await this.versions.find(source.datasetId, version)))
        throw trainingUnprocessable('VERSION_NOT_FOUND', `dataset ${source.datasetId} has no version ${version}`, `${field}.version`, {
          datasetId: source.datasetId,
          version,
        });
      const features = reach.dataset.features ?? {};
      checkFeatures(manifest, features, source.datasetId, field);
      specs.push({ datasetId: source.datasetId, features });

      // Never held-out episodes (evaluation stays honest), whoever asks. A dry run keeps to what the
      // caller may download; a real run also takes a sample dataset's non-public part.
      const downloadOnly = reach.episodes === 'sample';
      const fallbackIndex = downloadOnly ? await this.episodes.sampleFallbackIndex(source.datasetId) : undefined;
      const indices: number[] = [];
      let steps = 0;
      let beyondAccess = 0;
      let afterIndex: number | undefined;
      for (;;) {
        const page = await this.episodes.list({
          datasetId: source.datasetId,
          version,
          episodes: request.episodes,
          task: request.task,
          success: request.success,
          minLength: request.minLength,
          maxLength: request.maxLength,
          uploadId: request.uploadId,
          excludeHeldOut: true,
          sampleOnly: downloadOnly && request.dryRun ? { fallbackIndex } : undefined,
          afterIndex,
          take: EPISODE_PAGE,
        });
        for (const episode of page) {
          if (isHeldOut(episode.bucket) || episode.length === 0) continue;
          indices.push(episode.episodeIndex);
          steps += episode.length;
          if (downloadOnly && !(episode.bucket < SAMPLE_BUCKET_LIMIT || episode.episodeIndex === fallbackIndex)) beyondAccess++;
        }
        if (page.length < EPISODE_PAGE) break;
        afterIndex = page[page.length - 1]!.episodeIndex;
      }
      sources.push({
        datasetId: source.datasetId,
        version,
        weight: source.weight ?? 1,
        episodes: formatEpisodeRanges(indices),
        episodeCount: indices.length,
        stepCount: steps,
        beyondAccess,
      });
    }
    // The trainer's features must agree across sources (dtype and shape), as a slice's columns do.
    resolveSliceColumns(specs, manifest.features);
    const episodeCount = sources.reduce((sum, source) => sum + source.episodeCount, 0);
    if (episodeCount === 0)
      throw trainingUnprocessable(
        'EMPTY_SELECTION',
        'the run selects no episode: none matches its filters outside the held-out ones',
        'sources',
      );

    const training = await this.trainings.create({
      id: newId('trn'),
      trainerId: trainer.id,
      ownerKeyId: principal.keyId,
      dryRun: request.dryRun,
      request,
      sources,
      resources: runResources(manifest.resources, request.budget),
      episodeCount,
      stepCount: BigInt(sources.reduce((sum, source) => sum + source.stepCount, 0)),
      beyondAccessEpisodes: sources.reduce((sum, source) => sum + source.beyondAccess, 0),
    });
    await this.jobs.enqueue('trainings.run', { trainingId: training.id }, { id: runTrainingJobId(training.id) });
    return toTrainingView(training);
  }

  async get(principal: Principal, id: string): Promise<TrainingView> {
    return toTrainingView(await this.findOwned(principal, id));
  }

  async list(principal: Principal, query: ListQuery): Promise<Page<TrainingView>> {
    requireRole(principal, ['developer'], 'list trainings');
    const rows = await this.trainings.list({
      ownerKeyId: isAdmin(principal) ? undefined : principal.keyId,
      afterId: decodeCursor(query.cursor, 'trn'),
      take: query.limit + 1,
    });
    return toPage(rows, query.limit, toTrainingView);
  }

  /** Cancels a run: at once when queued; a running one is killed by its worker within about a second. */
  async cancel(principal: Principal, id: string): Promise<TrainingView> {
    const training = await this.findOwned(principal, id);
    const outcome = await this.trainings.requestCancel(training.id);
    if (outcome === 'finished') {
      const now = await this.trainings.findById(id);
      throw trainingFinished(id, now?.status ?? training.status);
    }
    return toTrainingView((await this.trainings.findById(id))!);
  }

  async metrics(principal: Principal, id: string): Promise<TrainingMetricsView> {
    const training = await this.findOwned(principal, id);
    return { trainingId: training.id, series: training.metrics.series, truncated: training.metrics.truncated };
  }

  /** The run's log once it has ended (guarded when it used data beyond its owner's access), else undefined. */
  async log(principal: Principal, id: string): Promise<{ training: TrainingRecord; text: string | undefined }> {
    const training = await this.findOwned(principal, id);
    if (!training.logKey) return { training, text: undefined };
    const chunks: Buffer[] = [];
    for await (const chunk of await this.blobs.get({ key: training.logKey })) chunks.push(chunk as Buffer);
    return { training, text: Buffer.concat(chunks).toString('utf8') };
  }

  /** The run, or TRAINING_NOT_FOUND unless the caller started it (or is an admin). */
  private async findOwned(principal: Principal, id: string): Promise<TrainingRecord> {
    const training = await this.trainings.findById(id);
    if (!training || principal.kind !== 'key' || !ownsOrAdmin(principal, training.ownerKeyId)) throw trainingNotFound(id);
    return training;
  }
}

/** The run's limits: the trainer's, lowered by the request's budget. */
function runResources(trainer: TrainingResources, budget: Partial<TrainingResources> | undefined): TrainingResources {
  return {
    cpuSeconds: Math.min(trainer.cpuSeconds, budget?.cpuSeconds ?? Infinity),
    memoryMb: Math.min(trainer.memoryMb, budget?.memoryMb ?? Infinity),
    wallSeconds: Math.min(trainer.wallSeconds, budget?.wallSeconds ?? Infinity),
  };
}

function checkHyperparameters(hyperparameters: Record<string, unknown>): void {
  const bytes = Buffer.byteLength(JSON.stringify(hyperparameters));
  if (bytes > trainingLimits.maxHyperparameterBytes)
    throw trainingUnprocessable(
      'HYPERPARAMETERS_TOO_LARGE',
      `hyperparameters hold ${bytes} bytes of JSON; a run may have at most ${trainingLimits.maxHyperparameterBytes}`,
      'hyperparameters',
      { bytes, limit: trainingLimits.maxHyperparameterBytes },
    );
  const unstorable = findUnstorableText(hyperparameters);
  if (unstorable) {
    const field = formatTextPath(unstorable.path);
    throw trainingUnprocessable(
      'VALIDATION_FAILED',
      `hyperparameters${field ? `.${field}` : ''}: ${unstorable.problem}`,
      `hyperparameters${field ? `.${field}` : ''}`,
    );
  }
}

/** Each feature the trainer reads is in the dataset and is numbers or images (video is not decoded yet). */
function checkFeatures(manifest: TrainerManifest, features: FeatureSpec, datasetId: string, field: string): void {
  for (const name of manifest.features) {
    const feature = features[name];
    if (!feature)
      throw trainingUnprocessable(
        'TRAINING_FEATURE_MISSING',
        `dataset ${datasetId} has no feature "${name}", which trainer.json lists (it has ${Object.keys(features).sort().join(', ')})`,
        `${field}.datasetId`,
        { datasetId, feature: name },
      );
    if (feature.dtype === 'video')
      throw trainingUnprocessable(
        'TRAINING_VIDEO_UNSUPPORTED',
        `feature "${name}" of dataset ${datasetId} is video, which training does not decode yet; list numeric features only`,
        `${field}.datasetId`,
        { datasetId, feature: name },
      );
    if (feature.dtype === 'string')
      throw trainingUnprocessable(
        'TRAINING_FEATURE_UNSUPPORTED',
        `feature "${name}" of dataset ${datasetId} is text; training hands over numbers and images (tasks come as task_index.npy)`,
        `${field}.datasetId`,
        { datasetId, feature: name, dtype: feature.dtype },
      );
  }
}

/** A pinned source as runs show it (and as a training set's meta.json lists it). */
export function toSourceView(source: TrainingSourceRecord): TrainingSourceView {
  return {
    datasetId: source.datasetId,
    version: source.version,
    weight: source.weight,
    episodes: source.episodeCount,
    steps: source.stepCount,
    beyondAccess: source.beyondAccess,
  };
}

export function toTrainingView(training: TrainingRecord): TrainingView {
  return {
    id: training.id,
    trainerId: training.trainerId,
    status: training.status,
    dryRun: training.dryRun,
    sources: training.sources.map(toSourceView),
    hyperparameters: training.request.hyperparameters,
    resources: training.resources,
    episodeCount: training.episodeCount,
    stepCount: Number(training.stepCount),
    beyondAccessEpisodes: training.beyondAccessEpisodes,
    latestMetrics: Object.fromEntries(
      Object.entries(training.metrics.series).flatMap(([name, points]) => (points.length ? [[name, points[points.length - 1]![1]]] : [])),
    ),
    latestStep: Object.values(training.metrics.series).reduce<number | null>(
      (latest, points) => (points.length ? Math.max(latest ?? -Infinity, points[points.length - 1]![0]) : latest),
      null,
    ),
    policyId: training.policyId,
    evaluationIds: training.evaluationIds,
    error: training.error,
    createdAt: training.createdAt.toISOString(),
    startedAt: training.startedAt?.toISOString() ?? null,
    finishedAt: training.finishedAt?.toISOString() ?? null,
  };
}
