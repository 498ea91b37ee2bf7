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

export const featureSpecSchema = z
  .record(
    z.string().regex(featureNamePattern, 'feature names are dot-separated words, e.g. observation.images.top').max(256),
    featureSchema,
  )
  .refine((spec) => Object.keys(spec).length <= 1024, 'at most 1024 features');
export type FeatureSpec = z.infer<typeof featureSpecSchema>;

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
