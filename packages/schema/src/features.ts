import { z } from 'zod';

export const numericDtypes = ['float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'bool'] as const;
export const mediaDtypes = ['image', 'video'] as const;
export const featureDtypes = [...numericDtypes, ...mediaDtypes, 'string'] as const;

const dimension = z.number().int().positive().max(1_000_000);

/**
 * Component names: a flat list for the last axis (`["x","y","z"]`), one list per axis
 * (`[["x","y"],["a","b","c"]]`), or LeRobot's `{ "motors": [...] }`.
 */
const namesSchema = z.union([
  z.array(z.string().min(1)),
  z.array(z.array(z.string().min(1))),
  z.record(z.string(), z.array(z.string().min(1))),
]);

/** One entry of a feature spec, e.g. `{ dtype: "float32", shape: [7], names: [...] }`. */
export const featureSchema = z
  .strictObject({
    dtype: z.enum(featureDtypes),
    shape: z.array(dimension).max(8),
    names: namesSchema.optional(),
    encoding: z.enum(['jpeg', 'png', 'mp4', 'raw']).optional(),
    description: z.string().max(2000).optional(),
  })
  .superRefine((feature, context) => {
    const isMedia = feature.dtype === 'image' || feature.dtype === 'video';
    if (isMedia && feature.shape.length !== 3) {
      context.addIssue({ code: 'custom', path: ['shape'], message: `${feature.dtype} features have shape [height, width, channels]` });
    }
    if (!isMedia && feature.encoding !== undefined) {
      context.addIssue({
        code: 'custom',
        path: ['encoding'],
        message: `encoding applies to image and video features only, not ${feature.dtype}`,
      });
    }
    if (feature.names !== undefined) {
      for (const problem of namesShapeMismatches(feature.names, feature.shape)) {
        context.addIssue({ code: 'custom', path: ['names'], message: problem });
      }
    }
  });
export type Feature = z.infer<typeof featureSchema>;

/** Feature names: `observation.state`, `action`, `action.gripper`, `observation.images.top`… */
export const featureNamePattern = /^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;

/** The limits of a feature spec (API.md, "Feature specs"), the same for dataset creation and for ingest. */
export const featureSpecLimits = { maxFeatures: 1024, maxNameLength: 256, maxRank: 8, maxDimension: 1_000_000 } as const;

const featureMapSchema = z
  .record(
    z
      .string()
      .regex(featureNamePattern, 'feature names are dot-separated words, e.g. observation.images.top')
      .max(featureSpecLimits.maxNameLength),
    featureSchema,
  )
  .refine((spec) => Object.keys(spec).length <= featureSpecLimits.maxFeatures, `at most ${featureSpecLimits.maxFeatures} features`);

/**
 * A feature spec: feature name → feature. zod leaves a `__proto__` key out of a record without a
 * word (it would replace the prototype of the result), so such a name is refused here instead of
 * being lost: it is no feature name anyway.
 */
export const featureSpecSchema = z.preprocess<Record<string, Feature>, typeof featureMapSchema, z.input<typeof featureMapSchema>>(
  (spec, context) => {
    if (typeof spec === 'object' && spec !== null && Object.hasOwn(spec, '__proto__'))
      context.issues.push({
        code: 'custom',
        input: spec,
        path: ['__proto__'],
        message: 'feature names are dot-separated words, e.g. observation.images.top',
      });
    return spec;
  },
  featureMapSchema,
);
export type FeatureSpec = z.infer<typeof featureSpecSchema>;

/** What is wrong with a feature spec, at which feature: the first problem, in words. */
export interface FeatureSpecProblem {
  /** The feature's name (`observation.state`), or `''` for the spec as a whole. */
  feature: string;
  message: string;
}

/**
 * The first way a feature spec breaks the rules of {@link featureSpecSchema} — the check dataset
 * creation makes — or undefined when it keeps them. Ingest runs it on the spec an importer made
 * (after featureMap), so an upload can publish nothing a dataset could not be created with.
 */
export function featureSpecProblem(spec: unknown): FeatureSpecProblem | undefined {
  const result = featureSpecSchema.safeParse(spec);
  if (result.success) return undefined;
  const issue = result.error.issues[0]!;
  const [first, ...rest] = issue.path;
  const feature = typeof first === 'string' ? first : '';
  const shown = feature.length > 80 ? `${feature.slice(0, 80)}…` : feature;
  if (issue.code === 'invalid_key' || feature === '__proto__') {
    const tooLong = feature.length > featureSpecLimits.maxNameLength;
    return {
      feature,
      message: tooLong
        ? `the feature name "${shown}" has ${feature.length} characters (at most ${featureSpecLimits.maxNameLength})`
        : `"${shown}" is not a feature name: names are dot-separated words of letters, digits and _, starting with a letter (e.g. observation.images.top)`,
    };
  }
  const where = rest.length > 0 ? ` ${rest.map(String).join('.')}` : '';
  if (issue.code === 'too_big' && rest[0] === 'shape' && rest.length === 1)
    return { feature, message: `feature "${shown}" has ${featureRank(spec, feature)} dimensions (at most ${featureSpecLimits.maxRank})` };
  if (issue.code === 'too_big' && rest[0] === 'shape')
    return {
      feature,
      message: `feature "${shown}" has a dimension of ${String(dimensionAt(spec, feature, rest[1]))} (at most ${featureSpecLimits.maxDimension.toLocaleString('en')})`,
    };
  if (issue.code === 'too_small' && rest[0] === 'shape')
    return { feature, message: `feature "${shown}" has a dimension of 0: every dimension holds at least one value` };
  return { feature, message: feature ? `feature "${shown}"${where}: ${issue.message}` : issue.message };
}

function featureAt(spec: unknown, name: string): unknown {
  return typeof spec === 'object' && spec !== null ? (Object.getOwnPropertyDescriptor(spec, name)?.value as unknown) : undefined;
}

function featureRank(spec: unknown, name: string): number | undefined {
  const feature = featureAt(spec, name);
  const shape = typeof feature === 'object' && feature !== null && 'shape' in feature ? feature.shape : undefined;
  return Array.isArray(shape) ? shape.length : undefined;
}

function dimensionAt(spec: unknown, name: string, axis: PropertyKey | undefined): unknown {
  const feature = featureAt(spec, name);
  const shape = typeof feature === 'object' && feature !== null && 'shape' in feature ? feature.shape : undefined;
  return Array.isArray(shape) && typeof axis === 'number' ? shape[axis] : undefined;
}

/** Lists what is inconsistent between `names` and `shape`; empty when they agree. */
export function namesShapeMismatches(names: NonNullable<Feature['names']>, shape: number[]): string[] {
  if (shape.length === 0) return ['names were given for a scalar feature (shape [])'];
  if (isFlatList(names)) {
    const last = shape[shape.length - 1];
    return names.length === last ? [] : [`${names.length} names for a last dimension of ${last}`];
  }
  const perAxis = Array.isArray(names) ? names : Object.values(names);
  if (!Array.isArray(names) && perAxis.length === 1) {
    // `{ "motors": [...] }` names the last axis.
    const only = perAxis[0] ?? [];
    const last = shape[shape.length - 1];
    return only.length === last ? [] : [`${only.length} names for a last dimension of ${last}`];
  }
  if (perAxis.length !== shape.length) return [`names for ${perAxis.length} axes, but the shape has ${shape.length}`];
  return perAxis.flatMap((axisNames, axis) =>
    axisNames.length === shape[axis] ? [] : [`axis ${axis}: ${axisNames.length} names for a dimension of ${shape[axis]}`],
  );
}

function isFlatList(names: NonNullable<Feature['names']>): names is string[] {
  return Array.isArray(names) && names.every((name) => typeof name === 'string');
}
