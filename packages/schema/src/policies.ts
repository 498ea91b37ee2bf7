import { z } from 'zod';
import { featureNamePattern } from './features.js';
import { listQuerySchema } from './pagination.js';

const featureNameSchema = z.string().regex(featureNamePattern, 'a feature name such as observation.state');

/**
 * How large a policy's numbers may be. Validation builds a synthetic observation from these shapes
 * before it calls the policy, and every act call copies an observation into the sandbox and an
 * action out of it, so they bound what an uploaded manifest (or model) can make Kura allocate.
 */
export const policyLimits = Object.freeze({
  /** Axes of one observation feature: as many as a dataset feature may have. */
  maxObservationRank: 8,
  /**
   * Numbers in one observation feature, 2^22: 16 MiB as float32. Room for a 3 × 1024 × 1024 image
   * tensor, a 2048 × 2048 depth map or a million-point cloud, far above any state vector.
   */
  maxNumbersPerFeature: 4_194_304,
  /** Numbers in a whole observation, 2^23: 32 MiB as float32, 64 MiB as JS numbers (half the default isolate heap). */
  maxNumbersPerObservation: 8_388_608,
  /** Numbers in one action (H × D), 2^16: a chunk of 1024 actions of 64 dimensions, or 16 of 4096. */
  maxActionNumbers: 65_536,
  /** Bytes of policy.json: it is read and parsed whole. */
  maxManifestBytes: 1_048_576,
});

const numbersIn = (shape: readonly number[]): number => shape.reduce((product, dimension) => product * dimension, 1);

/**
 * What is wrong with an observation feature's shape (from a manifest, a model's input or a
 * dataset), or undefined when Kura can build an observation of it. Checks before anything is allocated.
 */
export function observationShapeProblem(shape: readonly number[]): string | undefined {
  const text = `[${shape.join(', ')}]`;
  if (shape.length > policyLimits.maxObservationRank)
    return `${text} has ${shape.length} axes; a feature may have at most ${policyLimits.maxObservationRank}`;
  if (!shape.every((dimension) => Number.isSafeInteger(dimension) && dimension >= 1))
    return `${text} has a dimension that is not a whole number of at least 1`;
  return tooManyNumbers(shape);
}

function tooManyNumbers(shape: readonly number[]): string | undefined {
  const numbers = numbersIn(shape);
  if (numbers <= policyLimits.maxNumbersPerFeature) return undefined;
  return `[${shape.join(', ')}] holds ${numbers} numbers; a feature may hold at most ${policyLimits.maxNumbersPerFeature}`;
}

const statsVector = z.array(z.number()).max(policyLimits.maxNumbersPerFeature);

/** `policy.json` at the top of a policy bundle (API.md, the policies issue). */
export const policyManifestSchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit'),
    runtime: z.enum(['js', 'onnx', 'python']),
    /** Path of the script (js), model (onnx) or module defining act() (python) inside the bundle. */
    entry: z.string().min(1).max(500),
    /** Dataset features the policy reads, in order. */
    observation: z.array(featureNameSchema).min(1).max(64),
    /**
     * Shapes of numeric observation features, for the synthetic observation of validation when no
     * normalization dataset gives them (default [1]). An ONNX model's input gives its own (without the
     * batch axis): these must agree with it, and are needed for a dimension the model leaves open.
     */
    observationShapes: z
      .record(
        z.string(),
        z
          .array(z.number().int().min(1).max(policyLimits.maxNumbersPerFeature))
          .min(1)
          .max(policyLimits.maxObservationRank)
          .superRefine((shape, context) => {
            // Rank and dimensions have their own issues above; this adds only the size.
            const problem = tooManyNumbers(shape);
            if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
          }),
      )
      .optional(),
    action: z.strictObject({
      /** [D] for one action per call, [H, D] for a chunk of H actions; H × D ≤ maxActionNumbers. */
      shape: z
        .union([
          z.tuple([z.number().int().positive().max(4096)]),
          z.tuple([z.number().int().positive().max(1024), z.number().int().positive().max(4096)]),
        ])
        .superRefine((shape, context) => {
          // Zod runs this after a dimension failed its own bound too: then that issue says enough.
          const numbers = numbersIn(shape);
          if (Number.isSafeInteger(numbers) && numbers <= 1024 * 4096 && numbers > policyLimits.maxActionNumbers)
            context.addIssue({
              code: 'custom',
              message: `[${shape.join(', ')}] holds ${numbers} numbers; an action may hold at most ${policyLimits.maxActionNumbers} (H × D)`,
            });
        }),
    }),
    normalization: z
      .strictObject({
        datasetId: z.string().min(1).max(100).optional(),
        /** Per feature (observation features and `action`): { mean, std } or { min, max }, one number per component. */
        stats: z
          .record(
            z.string(),
            z.strictObject({
              mean: statsVector.optional(),
              std: statsVector.optional(),
              min: statsVector.optional(),
              max: statsVector.optional(),
            }),
          )
          .optional(),
        mode: z.enum(['zscore', 'bounds']),
      })
      .refine((normalization) => (normalization.datasetId === undefined) !== (normalization.stats === undefined), {
        message: 'give either datasetId or stats',
      })
      .optional(),
    description: z.string().max(10_000).optional(),
  })
  .superRefine((manifest, context) => {
    const shapes = manifest.observationShapes ?? {};
    const listed = new Set(manifest.observation);
    for (const feature of Object.keys(shapes)) {
      if (!listed.has(feature))
        context.addIssue({
          code: 'custom',
          path: ['observationShapes', feature],
          message: `"${feature}" is not one of the observation's features (${manifest.observation.join(', ')})`,
        });
    }
    // A feature without a shape is one number. A feature too large on its own has its own issue.
    const sizes = manifest.observation.map((feature) => numbersIn(shapes[feature] ?? [1]));
    const total = sizes.reduce((sum, size) => sum + size, 0);
    if (total > policyLimits.maxNumbersPerObservation && sizes.every((size) => size <= policyLimits.maxNumbersPerFeature))
      context.addIssue({
        code: 'custom',
        path: ['observationShapes'],
        message: `the observation's features hold ${total} numbers together; an observation may hold at most ${policyLimits.maxNumbersPerObservation}`,
      });
  });
export type PolicyManifest = z.infer<typeof policyManifestSchema>;

/** What a policy sees at each step: numeric features as number arrays, images as their encoded bytes. */
export type PolicyObservation = Record<string, number[] | Float32Array | Uint8Array>;

/** The context of a call: the episode's task and the step's place. */
export interface PolicyCallContext {
  task?: string | undefined;
  step: number;
  episode?: number | undefined;
}

export const policyAccessLevels = ['public', 'private'] as const;
/** public: every key may see and run it; private: its owner and admins. */
export type PolicyAccess = (typeof policyAccessLevels)[number];
export type PolicyStatus = 'validating' | 'ready' | 'rejected';

/** Why validation rejected a bundle, and where. */
export interface PolicyProblem {
  code: string;
  message: string;
  location?: { file?: string; field?: string };
}

/** `POST /v1/policies` query. */
export const policyUploadQuerySchema = z.strictObject({ access: z.enum(policyAccessLevels).default('private') });
export type PolicyUploadQuery = z.infer<typeof policyUploadQuerySchema>;
/** `GET /v1/policies` query. */
export const policyListQuerySchema = listQuerySchema.extend({ name: z.string().min(1).max(100).optional() });
export type PolicyListQuery = z.infer<typeof policyListQuerySchema>;

/** A policy version as the API shows it. */
export interface PolicyView {
  id: string;
  name: string | null;
  version: number | null;
  runtime: string;
  access: PolicyAccess;
  status: PolicyStatus;
  errors: PolicyProblem[];
  manifest: PolicyManifest | null;
  ownerKeyId: string;
  bytes: number;
  sha256: string;
  createdAt: string;
  /** Where a policy trained on the platform came from: its run, trainer and pinned sources; null for an uploaded one. */
  trainedBy: PolicyLineage | null;
}

export interface PolicyLineage {
  trainingId: string;
  trainerId: string;
  sources: Array<{ datasetId: string; version: number; weight: number }>;
}

/** `POST /v1/policies/:id/evaluations` body: the dataset's held-out episodes to evaluate on (its latest version by default). */
export const evaluationRequestSchema = z.strictObject({
  datasetId: z.string().min(1).max(100),
  version: z.number().int().positive().optional(),
});
export type EvaluationRequest = z.infer<typeof evaluationRequestSchema>;

export type EvaluationStatus = 'queued' | 'running' | 'completed' | 'failed';

export interface EvaluationMetrics {
  actionMse: number;
  actionMae: number;
  /** Mean squared error of each action dimension. */
  perDimension: number[];
  stepsEvaluated: number;
  episodesEvaluated: number;
}

export interface EvaluationView {
  id: string;
  policyId: string;
  datasetId: string;
  version: number;
  status: EvaluationStatus;
  metrics: EvaluationMetrics | null;
  timing: { latencyMsP50: number; latencyMsP99: number } | null;
  error: { code: string; message: string; location?: Record<string, unknown> } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface LeaderboardEntry {
  rank: number;
  policyId: string;
  name: string | null;
  version: number | null;
  evaluationId: string;
  datasetVersion: number;
  metrics: EvaluationMetrics;
  evaluatedAt: string;
}
