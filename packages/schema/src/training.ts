import { z } from 'zod';
import { featureNamePattern } from './features.js';
import { episodeFilterShape, episodeRangesSchema, sliceSourceSchema } from './slices.js';

const featureNameSchema = z.string().regex(featureNamePattern, 'a feature name such as observation.state');
const nameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit');

/**
 * The most a trainer may ask for, whatever its manifest says (a run's budget may lower it). Kura's
 * operator can lower these further with KURA_TRAINING_* (README, configuration).
 */
export const trainingLimits = Object.freeze({
  maxCpuSeconds: 24 * 3600,
  maxWallSeconds: 24 * 3600,
  maxMemoryMb: 64 * 1024,
  /** Bytes of trainer.json and of a run's hyperparameters (JSON). */
  maxManifestBytes: 64 * 1024,
  maxHyperparameterBytes: 64 * 1024,
  /** Metric series a run may record, and points per series (more are dropped, and the run says so). */
  maxMetricSeries: 32,
  maxMetricPoints: 10_000,
  /** Log kept of a run that used only data its owner may download (the rest is cut, oldest first). */
  maxLogBytes: 4 * 1024 * 1024,
  /** Of a run that used data beyond its owner's access: metric lines plus this tail of other output. */
  guardedLogTailBytes: 4 * 1024,
  /** Characters of an error message a guarded run reports. */
  guardedErrorChars: 500,
});

const resourcesSchema = z.strictObject({
  cpuSeconds: z.number().int().min(1).max(trainingLimits.maxCpuSeconds),
  memoryMb: z.number().int().min(256).max(trainingLimits.maxMemoryMb),
  wallSeconds: z.number().int().min(1).max(trainingLimits.maxWallSeconds),
});
export type TrainingResources = z.infer<typeof resourcesSchema>;

/** `trainer.json` at the top of a trainer bundle. */
export const trainerManifestSchema = z.strictObject({
  name: nameSchema,
  runtime: z.literal('python'),
  /** The script Kura runs (`python3 <entry>`) with the bundle as working directory. */
  entry: z.string().min(1).max(500).regex(/\.py$/, 'a Python file (.py)'),
  /** Dataset features the trainer reads: each becomes `<feature>.npy` in /data. */
  features: z.array(featureNameSchema).min(1).max(64),
  /** What one run may use at most; a run's `budget` may ask for less. */
  resources: resourcesSchema,
  description: z.string().max(10_000).optional(),
});
export type TrainerManifest = z.infer<typeof trainerManifestSchema>;

/** `POST /v1/trainings` body. */
export const createTrainingRequestSchema = z
  .strictObject({
    trainerId: z.string().min(1).max(100),
    /** Datasets to train on, as a slice names them: a version (the latest when none) and a weight. */
    sources: z.array(sliceSourceSchema).min(1).max(16),
    episodes: episodeRangesSchema.optional(),
    ...episodeFilterShape,
    /** Written to /data/hyperparameters.json as given. */
    hyperparameters: z.record(z.string().max(200), z.unknown()).default({}),
    /** Lower limits than the trainer's `resources` for this run. */
    budget: resourcesSchema.partial().optional(),
    /** Train only on what the caller may download (a sample dataset's public part): full logs, to debug. */
    dryRun: z.boolean().default(false),
    /** The name of the policy the run registers (a new version of it); the trainer's name when absent. */
    policyName: nameSchema.optional(),
  })
  .refine((request) => request.minLength === undefined || request.maxLength === undefined || request.minLength <= request.maxLength, {
    message: 'minLength is larger than maxLength',
    path: ['minLength'],
  });
export type CreateTrainingRequest = z.infer<typeof createTrainingRequestSchema>;

export const trainerStatuses = ['validating', 'ready', 'rejected'] as const;
export type TrainerStatus = (typeof trainerStatuses)[number];

export const trainingStatuses = ['queued', 'preparing', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type TrainingStatus = (typeof trainingStatuses)[number];

/** A coded problem of a trainer bundle or a run, with where it is. */
export interface TrainingProblem {
  code: string;
  message: string;
  location?: { file?: string; field?: string; line?: number; datasetId?: string; episode?: number; step?: number } | undefined;
}

export interface TrainerView {
  id: string;
  name: string | null;
  status: TrainerStatus;
  manifest: TrainerManifest | null;
  errors: TrainingProblem[];
  bytes: number;
  sha256: string;
  createdAt: string;
}

/** One source of a run, pinned: the version and episodes it trained on. */
export interface TrainingSourceView {
  datasetId: string;
  version: number;
  weight: number;
  episodes: number;
  steps: number;
  /** Of `episodes`, how many the caller could not download (a sample dataset's non-public part). */
  beyondAccess: number;
}

export interface TrainingView {
  id: string;
  trainerId: string;
  status: TrainingStatus;
  dryRun: boolean;
  sources: TrainingSourceView[];
  hyperparameters: Record<string, unknown>;
  resources: TrainingResources;
  episodeCount: number;
  stepCount: number;
  /** Episodes the run used that its owner could not download; when above 0 its logs are guarded. */
  beyondAccessEpisodes: number;
  /** The last value of each metric series, and the step of the latest point. */
  latestMetrics: Record<string, number>;
  latestStep: number | null;
  policyId: string | null;
  evaluationIds: string[];
  error: TrainingProblem | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** `GET /v1/trainings/:id/metrics`: per series, its points as [step, value]. */
export interface TrainingMetricsView {
  trainingId: string;
  series: Record<string, Array<[number, number]>>;
  /** Series or points past the caps were dropped. */
  truncated: boolean;
}
