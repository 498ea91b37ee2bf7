import { z } from 'zod';
import { StatsError } from './errors.js';

/** Default relative accuracy α of {@link QuantileSketch}: quantiles are within 0.5 % of the true value. */
export const DEFAULT_RELATIVE_ACCURACY = 0.005;
/** Default bound on the bucket span of each store (positive values, negative values) of {@link QuantileSketch}. */
export const DEFAULT_MAX_BUCKETS_PER_STORE = 2048;
/** Default magnitude below which values count as zero: the smallest normal double, so only subnormals and ±0 do. */
export const DEFAULT_MIN_INDEXABLE_VALUE = 2 ** -1022;

/** Tuning of a {@link QuantileSketch}. Sketches merge only when all three options are equal. */
export interface QuantileSketchOptions {
  /** α in (0, 1): every quantile is within relative error α of the true value. Default {@link DEFAULT_RELATIVE_ACCURACY}. */
  relativeAccuracy?: number;
  /**
   * At most this many consecutive bucket indices per store (integer ≥ 2). When values span more,
   * the buckets of the smallest magnitudes are folded together (see README.md). Default
   * {@link DEFAULT_MAX_BUCKETS_PER_STORE}.
   */
  maxBucketsPerStore?: number;
  /** Values with |x| below this (positive) count as zero. Default {@link DEFAULT_MIN_INDEXABLE_VALUE}. */
  minIndexableValue?: number;
}

/** {@link QuantileSketchOptions} with every default filled in. */
export type ResolvedQuantileSketchOptions = Readonly<Required<QuantileSketchOptions>>;

/** Fills in defaults and checks ranges; throws `STATS_INVALID_ARGUMENT`. */
export function resolveQuantileSketchOptions(options: QuantileSketchOptions = {}): ResolvedQuantileSketchOptions {
  const relativeAccuracy = options.relativeAccuracy ?? DEFAULT_RELATIVE_ACCURACY;
  const maxBucketsPerStore = options.maxBucketsPerStore ?? DEFAULT_MAX_BUCKETS_PER_STORE;
  const minIndexableValue = options.minIndexableValue ?? DEFAULT_MIN_INDEXABLE_VALUE;
  if (!(relativeAccuracy > 0 && relativeAccuracy < 1)) {
    throw new StatsError('STATS_INVALID_ARGUMENT', `relativeAccuracy must be in (0, 1), got ${relativeAccuracy}`);
  }
  // The upper limit only keeps a corrupt option from allocating gigabytes.
  if (!Number.isInteger(maxBucketsPerStore) || maxBucketsPerStore < 2 || maxBucketsPerStore > 1 << 20) {
    throw new StatsError('STATS_INVALID_ARGUMENT', `maxBucketsPerStore must be an integer in [2, 2^20], got ${maxBucketsPerStore}`);
  }
  if (!(minIndexableValue > 0 && Number.isFinite(minIndexableValue))) {
    throw new StatsError('STATS_INVALID_ARGUMENT', `minIndexableValue must be a positive finite number, got ${minIndexableValue}`);
  }
  return { relativeAccuracy, maxBucketsPerStore, minIndexableValue };
}

/** Whether two sketches (or accumulators) were built with the same options, i.e. can be merged. */
export function sameQuantileSketchOptions(a: ResolvedQuantileSketchOptions, b: ResolvedQuantileSketchOptions): boolean {
  return (
    a.relativeAccuracy === b.relativeAccuracy &&
    a.maxBucketsPerStore === b.maxBucketsPerStore &&
    a.minIndexableValue === b.minIndexableValue
  );
}

/** Sparse buckets of one store: ascending indices and their (positive integer) counts. */
export interface BucketsJson {
  indexes: number[];
  counts: number[];
}

/** The serialized form of a {@link QuantileSketch} (see README.md). */
export interface QuantileSketchJson {
  relativeAccuracy: number;
  maxBucketsPerStore: number;
  minIndexableValue: number;
  zeroCount: number;
  /** Buckets of positive values: bucket i holds x with γ^(i−1) < x ≤ γ^i. */
  positive: BucketsJson;
  /** Buckets of negative values, indexed by |x|. */
  negative: BucketsJson;
}

const bucketsJsonSchema = z
  .object({
    indexes: z.array(z.int()),
    counts: z.array(z.int().positive()),
  })
  .superRefine((buckets, context) => {
    if (buckets.indexes.length !== buckets.counts.length) {
      context.addIssue({ code: 'custom', message: 'indexes and counts must have the same length' });
    }
    for (let i = 1; i < buckets.indexes.length; i++) {
      if (buckets.indexes[i - 1]! >= buckets.indexes[i]!) {
        context.addIssue({ code: 'custom', message: 'indexes must be strictly ascending', path: ['indexes', i] });
        return;
      }
    }
  });

/** zod schema of {@link QuantileSketchJson} (structure only; `QuantileSketch.fromJSON` checks the rest). */
export const quantileSketchJsonSchema = z.object({
  relativeAccuracy: z.number(),
  maxBucketsPerStore: z.int(),
  minIndexableValue: z.number(),
  zeroCount: z.int().nonnegative(),
  positive: bucketsJsonSchema,
  negative: bucketsJsonSchema,
});

const EMPTY_COUNTS = new Float64Array(0);
// Module-level copies: in a vm context (Jest) every `Math.` in the hot loop is a slow global lookup.
const log = Math.log;
const ceil = Math.ceil;

/**
 * Counts per bucket index over a window of at most `maxBuckets` consecutive indices, kept in a
 * dense typed array because the window is small and adding must be cheap. The array has slack on
 * both sides so a drifting window seldom moves. Its state is only (lowest, highest, counts): where
 * the window sits in the array never shows outside.
 */
class BucketStore {
  private counts: Float64Array = EMPTY_COUNTS;
  /** Bucket index held in counts[0]. */
  private offset = 0;
  /** Lowest and highest bucket index in the window (meaningful only when total > 0). */
  private lowest = 0;
  private highest = 0;
  total = 0;

  constructor(private readonly maxBuckets: number) {}

  add(index: number, count: number): void {
    const target = this.total === 0 || index < this.lowest || index > this.highest ? this.widen(index) : index;
    const slot = target - this.offset;
    this.counts[slot] = this.counts[slot]! + count;
    this.total += count;
  }

  /** Number of non-empty buckets. */
  nonEmptyBuckets(): number {
    let buckets = 0;
    this.forEach(() => buckets++);
    return buckets;
  }

  /** Calls `visit` for each non-empty bucket, in ascending index order. */
  forEach(visit: (index: number, count: number) => void): void {
    if (this.total === 0) return;
    for (let index = this.lowest; index <= this.highest; index++) {
      const count = this.counts[index - this.offset]!;
      if (count > 0) visit(index, count);
    }
  }

  /** The index of the bucket holding the element of 0-based `rank` in ascending index order (rank < total). */
  indexAtRank(rank: number): number {
    let seen = 0;
    for (let index = this.lowest; index < this.highest; index++) {
      seen += this.counts[index - this.offset]!;
      if (seen > rank) return index;
    }
    return this.highest;
  }

  toJSON(): BucketsJson {
    const indexes: number[] = [];
    const counts: number[] = [];
    this.forEach((index, count) => {
      indexes.push(index);
      counts.push(count);
    });
    return { indexes, counts };
  }

  /**
   * Makes the window include `index` and returns the index to count it in. Beyond `maxBuckets`, the
   * lowest indices fold into the lowest kept one. The end state is "every count sits at
   * max(index, highestEver − maxBuckets + 1)", whatever the order of adds and merges: this keeps
   * merged sketches identical to one-pass sketches.
   */
  private widen(index: number): number {
    const empty = this.total === 0;
    const highest = empty ? index : Math.max(this.highest, index);
    const floor = highest - this.maxBuckets + 1;
    const lowest = Math.max(empty ? index : Math.min(this.lowest, index), floor);
    this.moveWindow(lowest, highest);
    return Math.max(index, floor);
  }

  private moveWindow(lowest: number, highest: number): void {
    const old = this.counts;
    const oldOffset = this.offset;
    // Counts below the new lowest index (only when the window slid up) fold into it.
    let folded = 0;
    if (this.total > 0) {
      // The whole old window may lie below the new one (a jump up by more than maxBuckets).
      const foldEnd = Math.min(lowest - 1, this.highest);
      for (let index = this.lowest; index <= foldEnd; index++) {
        const slot = index - oldOffset;
        folded += old[slot]!;
        old[slot] = 0;
      }
    }
    const fits = lowest >= oldOffset && highest < oldOffset + old.length;
    if (!fits) {
      const span = highest - lowest + 1;
      const capacity = Math.max(old.length, Math.min(2 * this.maxBuckets, Math.max(64, 2 * span)));
      const counts = new Float64Array(capacity);
      const offset = lowest - Math.floor((capacity - span) / 2);
      if (this.total > 0) {
        for (let index = Math.max(this.lowest, lowest); index <= this.highest; index++) {
          counts[index - offset] = old[index - oldOffset]!;
        }
      }
      this.counts = counts;
      this.offset = offset;
    }
    const lowestSlot = lowest - this.offset;
    this.counts[lowestSlot] = this.counts[lowestSlot]! + folded;
    this.lowest = lowest;
    this.highest = highest;
  }
}

/**
 * DDSketch (Masson, Rim, Lee 2019): a mergeable quantile sketch with relative error α.
 *
 * Positive x goes to bucket i = ceil(log_γ x) with γ = (1+α)/(1−α), i.e. γ^(i−1) < x ≤ γ^i; a bucket
 * is reported as 2γ^i/(γ+1), which is within α of every value in it. Negative values use a mirror
 * store on |x|; |x| < minIndexableValue counts as zero. Merging adds bucket counts, so it is exact:
 * merging sketches of parts gives the sketch of the whole, bit for bit.
 *
 * Rank convention: `quantile(q)` is (within α) the element at 0-based index floor(q·(n−1)) of the
 * sorted values. See README.md for the effect of the bucket bound.
 */
export class QuantileSketch {
  /** The options in effect (defaults filled in). */
  readonly options: ResolvedQuantileSketchOptions;
  private readonly gamma: number;
  private readonly inverseLogGamma: number;
  private readonly positive: BucketStore;
  private readonly negative: BucketStore;
  private zeroCount = 0;

  constructor(options: QuantileSketchOptions = {}) {
    this.options = resolveQuantileSketchOptions(options);
    const alpha = this.options.relativeAccuracy;
    this.gamma = (1 + alpha) / (1 - alpha);
    this.inverseLogGamma = 1 / Math.log(this.gamma);
    this.positive = new BucketStore(this.options.maxBucketsPerStore);
    this.negative = new BucketStore(this.options.maxBucketsPerStore);
  }

  /** Number of values added (merged ones included). */
  get count(): number {
    return this.zeroCount + this.positive.total + this.negative.total;
  }

  /** Adds one value. Throws `STATS_NON_FINITE_VALUE` for NaN and ±Infinity. */
  add(value: number): void {
    if (!Number.isFinite(value)) {
      throw new StatsError('STATS_NON_FINITE_VALUE', `Cannot add ${value} to a quantile sketch: values must be finite`);
    }
    const minIndexable = this.options.minIndexableValue;
    if (value >= minIndexable) this.positive.add(Math.ceil(Math.log(value) * this.inverseLogGamma), 1);
    else if (value <= -minIndexable) this.negative.add(Math.ceil(Math.log(-value) * this.inverseLogGamma), 1);
    else this.zeroCount++;
  }

  /**
   * Adds `values[0..length)`, which the caller has checked to be finite: the hot path of
   * `FeatureStatsAccumulator.addColumn` (one typed array, no check or allocation per value).
   * Non-finite values here corrupt the sketch; use {@link add} for unchecked input.
   *
   * @internal
   */
  addFiniteValues(values: Float64Array, length: number): void {
    const minIndexable = this.options.minIndexableValue;
    const inverseLogGamma = this.inverseLogGamma;
    const positive = this.positive;
    const negative = this.negative;
    let zeros = 0;
    for (let i = 0; i < length; i++) {
      const value = values[i]!;
      if (value >= minIndexable) positive.add(ceil(log(value) * inverseLogGamma), 1);
      else if (value <= -minIndexable) negative.add(ceil(log(-value) * inverseLogGamma), 1);
      else zeros++;
    }
    this.zeroCount += zeros;
  }

  /**
   * The q-quantile, q in [0, 1]: within relative error α of the element at 0-based index
   * floor(q·(n−1)) of the sorted values (exactly 0 when that element is 0). Null when empty.
   */
  quantile(q: number): number | null {
    if (!(q >= 0 && q <= 1)) throw new StatsError('STATS_INVALID_ARGUMENT', `A quantile must be in [0, 1], got ${q}`);
    const count = this.count;
    if (count === 0) return null;
    const rank = Math.floor(q * (count - 1));
    // Sorted order: negatives from the largest magnitude down, then zeros, then positives up.
    if (rank < this.negative.total) return -this.bucketValue(this.negative.indexAtRank(this.negative.total - 1 - rank));
    if (rank < this.negative.total + this.zeroCount) return 0;
    return this.bucketValue(this.positive.indexAtRank(rank - this.negative.total - this.zeroCount));
  }

  /** Adds another sketch's counts to this one. Throws `STATS_INCOMPATIBLE_OPTIONS` when the options differ. */
  merge(other: QuantileSketch): void {
    if (!sameQuantileSketchOptions(this.options, other.options)) {
      throw new StatsError(
        'STATS_INCOMPATIBLE_OPTIONS',
        `Cannot merge quantile sketches with different options: ${JSON.stringify(this.options)} and ${JSON.stringify(other.options)}`,
      );
    }
    // Snapshots first, so that merging a sketch into itself doubles it.
    const positive = other.positive.toJSON();
    const negative = other.negative.toJSON();
    this.zeroCount += other.zeroCount;
    addBuckets(this.positive, positive);
    addBuckets(this.negative, negative);
  }

  /** Non-empty buckets per store; each is at most `maxBucketsPerStore`. */
  bucketCount(): { positive: number; negative: number } {
    return { positive: this.positive.nonEmptyBuckets(), negative: this.negative.nonEmptyBuckets() };
  }

  /** A deterministic JSON form: equal sketches (however they were built) give equal JSON. */
  toJSON(): QuantileSketchJson {
    return {
      relativeAccuracy: this.options.relativeAccuracy,
      maxBucketsPerStore: this.options.maxBucketsPerStore,
      minIndexableValue: this.options.minIndexableValue,
      zeroCount: this.zeroCount,
      positive: this.positive.toJSON(),
      negative: this.negative.toJSON(),
    };
  }

  /** Re-creates a sketch from {@link QuantileSketch.toJSON} output. Throws `STATS_INVALID_JSON` for anything else. */
  static fromJSON(json: unknown): QuantileSketch {
    const parsed = quantileSketchJsonSchema.safeParse(json);
    if (!parsed.success) {
      throw new StatsError('STATS_INVALID_JSON', `Invalid quantile sketch JSON: ${z.prettifyError(parsed.error)}`);
    }
    const data = parsed.data;
    let sketch: QuantileSketch;
    try {
      sketch = new QuantileSketch(data);
    } catch (error) {
      throw new StatsError('STATS_INVALID_JSON', `Invalid quantile sketch JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    checkSpan('positive', data.positive, data.maxBucketsPerStore);
    checkSpan('negative', data.negative, data.maxBucketsPerStore);
    sketch.zeroCount = data.zeroCount;
    addBuckets(sketch.positive, data.positive);
    addBuckets(sketch.negative, data.negative);
    return sketch;
  }

  /**
   * The representative of bucket i: 2γ^i/(γ+1) = (1+α)·γ^(i−1), within α of every value in
   * (γ^(i−1), γ^i]. Written with γ^(i−1), which is below the bucket's values and so never overflows;
   * capped at the largest double, which is then closer to the values than the representative.
   */
  private bucketValue(index: number): number {
    return Math.min(Number.MAX_VALUE, (1 + this.options.relativeAccuracy) * Math.pow(this.gamma, index - 1));
  }
}

function addBuckets(store: BucketStore, buckets: BucketsJson): void {
  for (let i = 0; i < buckets.indexes.length; i++) store.add(buckets.indexes[i]!, buckets.counts[i]!);
}

/** toJSON never writes a span wider than the bound; accepting one would silently fold buckets. */
function checkSpan(store: string, buckets: BucketsJson, maxBuckets: number): void {
  const { indexes } = buckets;
  const span = indexes.length === 0 ? 0 : indexes[indexes.length - 1]! - indexes[0]! + 1;
  if (span > maxBuckets) {
    throw new StatsError(
      'STATS_INVALID_JSON',
      `Invalid quantile sketch JSON: ${store} buckets span ${span} indices, more than maxBucketsPerStore ${maxBuckets}`,
    );
  }
}
