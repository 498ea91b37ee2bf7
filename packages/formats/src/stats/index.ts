/**
 * Mergeable per-feature statistics of dataset versions (count, min, max, mean, population std,
 * quantiles exact for few distinct values, else from a DDSketch). See README.md for the error bound and conventions.
 */
export { StatsError, type StatsErrorCode } from './errors.js';
export { DistinctValueCounts, distinctValuesJsonSchema, MAX_DISTINCT_VALUES, type DistinctValuesJson } from './distinct-values.js';
export {
  DEFAULT_MAX_BUCKETS_PER_STORE,
  DEFAULT_MIN_INDEXABLE_VALUE,
  DEFAULT_RELATIVE_ACCURACY,
  QuantileSketch,
  quantileSketchJsonSchema,
  resolveQuantileSketchOptions,
  sameQuantileSketchOptions,
  type BucketsJson,
  type QuantileSketchJson,
  type QuantileSketchOptions,
  type ResolvedQuantileSketchOptions,
} from './quantile-sketch.js';
export {
  FeatureStatsAccumulator,
  featureStatsJsonSchema,
  MAX_ABS_VALUE,
  SUMMARY_QUANTILES,
  type EmptyFeatureStatsSummary,
  type FeatureStatsJson,
  type FeatureStatsSummary,
  type NumericColumn,
  type NumericFeatureStatsSummary,
} from './feature-stats.js';
export {
  DatasetStatsAccumulator,
  datasetStatsJsonSchema,
  type DatasetFeatureStatsJson,
  type DatasetStatsJson,
  type DatasetStatsSummary,
  type MediaFeatureStatsSummary,
} from './dataset-stats.js';
