import type { FeatureSpec } from '@kura/schema';
import { ImportError, type ImportedEpisode } from './importer.js';

/**
 * Renames features on the way in (`{ "observation.images.top": "observation.images.high" }`), so an
 * upload can match its dataset's names. Unknown sources and clashing targets are errors.
 */
export function renameFeatures(spec: FeatureSpec, featureMap: Record<string, string>): FeatureSpec {
  for (const source of Object.keys(featureMap)) {
    if (!(source in spec))
      throw new ImportError(
        'FEATURE_MAP_UNKNOWN',
        `featureMap renames "${source}", which the upload does not have (it has: ${Object.keys(spec).join(', ')})`,
        { field: source },
      );
  }
  const renamed: FeatureSpec = {};
  for (const [name, feature] of Object.entries(spec)) {
    const target = featureMap[name] ?? name;
    if (target in renamed)
      throw new ImportError('FEATURE_MAP_CONFLICT', `featureMap makes two features named "${target}"`, { field: target });
    renamed[target] = feature;
  }
  return renamed;
}

export function renameEpisodeFeatures(episode: ImportedEpisode, featureMap: Record<string, string>): ImportedEpisode {
  if (Object.keys(featureMap).length === 0) return episode;
  const features: ImportedEpisode['features'] = {};
  for (const [name, values] of Object.entries(episode.features)) features[featureMap[name] ?? name] = values;
  return { ...episode, features };
}

/** How an upload's spec differs from its dataset's: one entry per feature that does not match. */
export function diffFeatureSpecs(expected: FeatureSpec, actual: FeatureSpec): Array<{ feature: string; expected: string; actual: string }> {
  const describe = (spec: FeatureSpec, name: string) => {
    const feature = spec[name];
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
