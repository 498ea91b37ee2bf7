import type { FeatureSpec } from '@kura/schema';
import { ImportError, type ImportedEpisode } from './importer.js';

/**
 * Renames features on the way in (`{ "observation.images.top": "observation.images.high" }`), so an
 * upload can match its dataset's names. Unknown sources and clashing targets are errors. Names are
 * looked up as own keys and results built with Object.fromEntries: a name such as `constructor` or
 * `__proto__` is a name like any other here (the spec check refuses what is no feature name).
 */
export function renameFeatures(spec: FeatureSpec, featureMap: Record<string, string>): FeatureSpec {
  for (const source of Object.keys(featureMap)) {
    if (!Object.hasOwn(spec, source))
      throw new ImportError(
        'FEATURE_MAP_UNKNOWN',
        `featureMap renames "${source}", which the upload does not have (it has: ${Object.keys(spec).join(', ')})`,
        { field: source },
      );
  }
  const taken = new Set<string>();
  const renamed = Object.entries(spec).map(([name, feature]): [string, FeatureSpec[string]] => {
    const target = renamedTo(featureMap, name);
    if (taken.has(target))
      throw new ImportError('FEATURE_MAP_CONFLICT', `featureMap makes two features named "${target}"`, { field: target });
    taken.add(target);
    return [target, feature];
  });
  return Object.fromEntries(renamed);
}

export function renameEpisodeFeatures(episode: ImportedEpisode, featureMap: Record<string, string>): ImportedEpisode {
  if (Object.keys(featureMap).length === 0) return episode;
  const features = Object.fromEntries(Object.entries(episode.features).map(([name, values]) => [renamedTo(featureMap, name), values]));
  return { ...episode, features };
}

function renamedTo(featureMap: Record<string, string>, name: string): string {
  const target: unknown = Object.hasOwn(featureMap, name) ? featureMap[name] : undefined;
  return typeof target === 'string' ? target : name;
}

/** How an upload's spec differs from its dataset's: one entry per feature that does not match. */
export function diffFeatureSpecs(expected: FeatureSpec, actual: FeatureSpec): Array<{ feature: string; expected: string; actual: string }> {
  const describe = (spec: FeatureSpec, name: string) => {
    const feature = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (!feature) return 'absent';
    return `${feature.dtype}[${feature.shape.join(', ')}]${feature.encoding ? ` ${feature.encoding}` : ''}`;
  };
  const names = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
  return names
    .map((feature) => ({ feature, expected: describe(expected, feature), actual: describe(actual, feature) }))
    .filter((entry) => {
      // Video and image encodings are part of the type; names of components are not.
      return entry.expected !== entry.actual;
    });
}
