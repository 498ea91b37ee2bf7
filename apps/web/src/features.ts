import type { Feature, FeatureSpec, Location, Names } from './api';

/** How many numbers one step of a feature holds (the product of its shape; a scalar holds 1). */
export const valuesPerStep = (feature: Feature): number => feature.shape.reduce((product, size) => product * size, 1);

export const isMedia = (feature: Feature): boolean => feature.dtype === 'image' || feature.dtype === 'video';
export const isNumeric = (feature: Feature): boolean => !isMedia(feature) && feature.dtype !== 'string';

/**
 * A name per component of a feature, in row-major order: its `names` when they fit (a flat list for
 * the last axis, one list per axis, or LeRobot's `{ "motors": [...] }`), else `name[i]`.
 */
export function componentNames(name: string, feature: Feature): string[] {
  const count = valuesPerStep(feature);
  const fallback = () => Array.from({ length: count }, (_, index) => `${name}[${index}]`);
  const names = feature.names;
  if (!names || feature.shape.length === 0) return fallback();
  const perAxis: string[][] = isFlatList(names) ? [names] : Array.isArray(names) ? names : Object.values(names);
  // One list names the last axis; one list per axis names every axis.
  const axes =
    perAxis.length === feature.shape.length
      ? perAxis
      : perAxis.length === 1
        ? [...feature.shape.slice(0, -1).map(() => null), perAxis[0]!]
        : null;
  if (!axes) return fallback();
  let out = [''];
  for (const [axis, size] of feature.shape.entries()) {
    const labels = axes[axis] ?? Array.from({ length: size }, (_, index) => String(index));
    if (labels.length !== size) return fallback();
    out = out.flatMap((prefix) => labels.map((label) => (prefix ? `${prefix}/${label}` : label)));
  }
  return out.length === count ? out : fallback();
}

const isFlatList = (names: Names): names is string[] => Array.isArray(names) && names.every((entry) => typeof entry === 'string');

/** Features in a stable order: actions, then observations, then the rest, each by name. */
export function sortedFeatures(spec: FeatureSpec | null): Array<[string, Feature]> {
  const rank = (name: string) => (name === 'action' || name.startsWith('action.') ? 0 : name.startsWith('observation.') ? 1 : 2);
  return Object.entries(spec ?? {}).sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
}

/** "file data/x.parquet · episode 3 · step 12 · field action" */
export function formatLocation(location: Location | undefined): string {
  if (!location) return '';
  const parts: string[] = [];
  if (location.file !== undefined) parts.push(`file ${location.file}`);
  if (location.line !== undefined) parts.push(`line ${location.line}`);
  if (location.episode !== undefined) parts.push(`episode ${location.episode}`);
  if (location.step !== undefined) parts.push(`step ${location.step}`);
  if (location.field !== undefined) parts.push(`field ${location.field}`);
  return parts.join(' · ');
}
