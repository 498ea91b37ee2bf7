// How a policy's inputs and outputs are scaled, shared by the server and the edge runner (@kura/edge).

/** Per-component statistics used to normalize one feature. */
export interface FeatureNormalization {
  mean?: number[] | undefined;
  std?: number[] | undefined;
  min?: number[] | undefined;
  max?: number[] | undefined;
}

/** How a policy's inputs and outputs are scaled: the manifest's mode and the statistics per feature. */
export interface PolicyNormalization {
  mode: 'zscore' | 'bounds';
  stats: Map<string, FeatureNormalization>;
}

/** LeRobot's guard against a zero spread. */
const EPSILON = 1e-8;

/** Scales an observation feature's values for the policy (LeRobot's normalize). */
export function normalize(values: number[], normalization: PolicyNormalization | undefined, feature: string): number[] {
  const stats = normalization?.stats.get(feature);
  if (!normalization || !stats) return values;
  return values.map((value, index) => {
    if (normalization.mode === 'zscore' && stats.mean && stats.std) return (value - stats.mean[index]!) / (stats.std[index]! + EPSILON);
    if (normalization.mode === 'bounds' && stats.min && stats.max)
      return ((value - stats.min[index]!) / (stats.max[index]! - stats.min[index]! + EPSILON)) * 2 - 1;
    return value;
  });
}

/** Maps a policy's action back to the dataset's units (LeRobot's unnormalize); `index` offsets into the per-component stats. */
export function unnormalize(values: number[], normalization: PolicyNormalization | undefined, feature = 'action'): number[] {
  const stats = normalization?.stats.get(feature);
  if (!normalization || !stats) return values;
  const components = (stats.mean ?? stats.min ?? []).length || values.length;
  return values.map((value, index) => {
    const component = index % components;
    if (normalization.mode === 'zscore' && stats.mean && stats.std) return value * stats.std[component]! + stats.mean[component]!;
    if (normalization.mode === 'bounds' && stats.min && stats.max)
      return ((value + 1) / 2) * (stats.max[component]! - stats.min[component]!) + stats.min[component]!;
    return value;
  });
}
