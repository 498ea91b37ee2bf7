import type { ErrorLocation } from '@kura/schema';

/** Stable codes of {@link StatsError}. */
export type StatsErrorCode =
  /** NaN or ±Infinity given to an accumulator (callers reject these earlier; reaching here is a bug upstream). */
  | 'STATS_NON_FINITE_VALUE'
  /** A magnitude above MAX_ABS_VALUE (1e100): corrupt data, and its square would overflow the std. */
  | 'STATS_VALUE_OUT_OF_RANGE'
  /** `values.length` is not `steps × components`, or two statistics of one feature disagree on the number of components. */
  | 'STATS_SHAPE_MISMATCH'
  /** Merging statistics built with different sketch options (relative accuracy, bucket bound, zero threshold). */
  | 'STATS_INCOMPATIBLE_OPTIONS'
  /** One feature name used for a numeric feature and for an image/video feature. */
  | 'STATS_FEATURE_KIND_MISMATCH'
  /** A serialized statistics object that `fromJSON` cannot accept. */
  | 'STATS_INVALID_JSON'
  /** An argument out of range (a quantile outside [0, 1], a negative step count, bad options). */
  | 'STATS_INVALID_ARGUMENT';

/**
 * A problem with statistics input. `code` is stable; `location` says where when known (`field` is
 * `feature[component]`, `step` is the step within the column that was being added).
 */
export class StatsError extends Error {
  override name = 'StatsError';
  constructor(
    readonly code: StatsErrorCode,
    message: string,
    readonly location: ErrorLocation = {},
  ) {
    super(message);
  }
}
