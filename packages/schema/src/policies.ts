import { z } from 'zod';
import { featureNamePattern } from './features.js';

const featureNameSchema = z.string().regex(featureNamePattern, 'a feature name such as observation.state');

/** `policy.json` at the top of a policy bundle (API.md, the policies issue). */
export const policyManifestSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit'),
  runtime: z.enum(['js', 'onnx']),
  /** Path of the script (js) or model (onnx) inside the bundle. */
  entry: z.string().min(1).max(500),
  /** Dataset features the policy reads, in order. */
  observation: z.array(featureNameSchema).min(1).max(64),
  /**
   * Shapes of numeric observation features, for the synthetic observation of validation when no
   * normalization dataset gives them (default [1]). An ONNX model's input gives its own (without the
   * batch axis): these must agree with it, and are needed for a dimension the model leaves open.
   */
  observationShapes: z.record(z.string(), z.array(z.number().int().positive()).min(1).max(4)).optional(),
  action: z.strictObject({
    /** [D] for one action per call, [H, D] for a chunk of H actions. */
    shape: z.union([
      z.tuple([z.number().int().positive().max(4096)]),
      z.tuple([z.number().int().positive().max(1024), z.number().int().positive().max(4096)]),
    ]),
  }),
  normalization: z
    .strictObject({
      datasetId: z.string().min(1).max(100).optional(),
      /** Per feature (observation features and `action`): { mean, std } or { min, max }, one number per component. */
      stats: z
        .record(
          z.string(),
          z.strictObject({
            mean: z.array(z.number()).optional(),
            std: z.array(z.number()).optional(),
            min: z.array(z.number()).optional(),
            max: z.array(z.number()).optional(),
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
