import { z } from 'zod';
import { DistinctValueCounts, distinctValuesJsonSchema, type DistinctValuesJson } from './distinct-values.js';
import { StatsError } from './errors.js';
import {
  QuantileSketch,
  quantileSketchJsonSchema,
  resolveQuantileSketchOptions,
  sameQuantileSketchOptions,
  type QuantileSketchJson,
  type QuantileSketchOptions,
  type ResolvedQuantileSketchOptions,
} from './quantile-sketch.js';

/**
 * The values of a numeric feature over some steps, row-major (`steps × components`). Any typed
 * array an importer produces is accepted; 64-bit integers are converted to numbers, so values above
 * 2^53 in magnitude lose precision (the nearest double is used).
 */
export type NumericColumn =
  | Float64Array
  | Float32Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | readonly number[];

/** The quantiles every summary reports, by name. */
export const SUMMARY_QUANTILES: Readonly<Record<'q01' | 'q10' | 'q50' | 'q90' | 'q99', number>> = {
  q01: 0.01,
  q10: 0.1,
  q50: 0.5,
  q90: 0.9,
  q99: 0.99,
};

/**
 * Statistics of a numeric feature with at least one step; every array has one entry per component
 * (row-major over the feature's shape). `std` is the population standard deviation (divides by n,
 * as numpy's default and LeRobot do). Quantiles are the element at 0-based index floor(q·(n−1)) of
 * the sorted values — exactly for a component with at most `MAX_DISTINCT_VALUES` (1,024) distinct
 * values, else within relative error α — and never outside [min, max].
 */
export interface FeatureStatsSummary {
  /** Number of steps (each step contributes one value per component). */
  count: number;
  min: number[];
  max: number[];
  mean: number[];
  std: number[];
  q01: number[];
  q10: number[];
  q50: number[];
  q90: number[];
  q99: number[];
}

/** Statistics of a numeric feature without steps: every statistic is null (JSON-safe, unlike NaN). */
export interface EmptyFeatureStatsSummary {
  count: 0;
  min: null;
  max: null;
  mean: null;
  std: null;
  q01: null;
  q10: null;
  q50: null;
  q90: null;
  q99: null;
}

/** What {@link FeatureStatsAccumulator.summary} returns; test `summary.mean === null` to tell the cases apart. */
export type NumericFeatureStatsSummary = FeatureStatsSummary | EmptyFeatureStatsSummary;

/** The serialized form of a {@link FeatureStatsAccumulator} (see README.md). */
export interface FeatureStatsJson {
  components: number;
  count: number;
  /** Per component. */
  mean: number[];
  /** Per component: the sum of squared deviations from the mean (Chan et al.'s M2). */
  m2: number[];
  /** Per component; null when count is 0. */
  min: number[] | null;
  max: number[] | null;
  /** One quantile sketch per component (of every value, also where `exact` is kept). */
  sketches: QuantileSketchJson[];
  /**
   * Per component: the exact count of each distinct value, or null once there were more than
   * `MAX_DISTINCT_VALUES` (1,024). Absent in statistics stored before exact counts existed: read as
   * all null (unknown), so those components keep sketch quantiles.
   */
  exact?: Array<DistinctValuesJson | null>;
}

/** zod schema of {@link FeatureStatsJson} (structure only; `FeatureStatsAccumulator.fromJSON` checks the rest). */
export const featureStatsJsonSchema = z.object({
  components: z.int().positive(),
  count: z.int().nonnegative(),
  mean: z.array(z.number()),
  m2: z.array(z.number().nonnegative()),
  min: z.array(z.number()).nullable(),
  max: z.array(z.number()).nullable(),
  sketches: z.array(quantileSketchJsonSchema),
  exact: z.array(distinctValuesJsonSchema.nullable()).optional(),
});

/**
 * Largest magnitude {@link FeatureStatsAccumulator.addColumn} accepts. Squares of larger values,
 * summed over up to 2^53 steps, could overflow M2 to Infinity, which JSON cannot store. No sensor or
 * action comes near it; a value beyond it is corrupt data.
 */
export const MAX_ABS_VALUE = 1e100;

/** Steps handled at once: the scratch column stays in cache and memory stays flat. */
const CHUNK_STEPS = 4096;
/** One component of one chunk, copied out of the (any-typed, strided) input so the hot loops see one Float64Array. */
const scratch = new Float64Array(CHUNK_STEPS);

/**
 * Mergeable statistics of one numeric feature, per component: count, min, max, mean, population
 * std (exact, Chan et al.'s parallel combination of count/mean/M2) and quantiles (a
 * {@link QuantileSketch} per component, plus exact counts of each distinct value while there are at
 * most `MAX_DISTINCT_VALUES` (1,024)). Memory does not depend on the number of steps.
 *
 * Accumulate an upload episode by episode with {@link addColumn}; then merge it into the previous
 * version's statistics (re-loaded with {@link fromJSON}) to get the new version's.
 */
export class FeatureStatsAccumulator {
  /** Values per step (the product of the feature's shape; 1 for a scalar). */
  readonly components: number;
  /** Sketch options in effect; accumulators merge only when they are equal. */
  readonly options: ResolvedQuantileSketchOptions;
  /** Optional label for error messages (the feature's name). */
  readonly label: string | undefined;
  private steps = 0;
  private readonly means: Float64Array;
  private readonly m2s: Float64Array;
  private readonly mins: Float64Array;
  private readonly maxs: Float64Array;
  private readonly sketches: QuantileSketch[];
  /** Per component; null once it saw more than MAX_DISTINCT_VALUES distinct values (or came from stats stored without them). */
  private readonly distinctValues: Array<DistinctValueCounts | null>;

  constructor(components: number, options: QuantileSketchOptions & { label?: string } = {}) {
    if (!Number.isSafeInteger(components) || components < 1) {
      throw new StatsError('STATS_INVALID_ARGUMENT', `A feature has at least one component, got ${components}`);
    }
    this.components = components;
    this.options = resolveQuantileSketchOptions(options);
    this.label = options.label;
    this.means = new Float64Array(components);
    this.m2s = new Float64Array(components);
    this.mins = new Float64Array(components).fill(Infinity);
    this.maxs = new Float64Array(components).fill(-Infinity);
    this.sketches = Array.from({ length: components }, () => new QuantileSketch(this.options));
    this.distinctValues = Array.from({ length: components }, () => new DistinctValueCounts());
  }

  /** Number of steps added (merged ones included). */
  get count(): number {
    return this.steps;
  }

  /**
   * Adds `steps` steps: `values[step × components + component]`. Throws `STATS_SHAPE_MISMATCH`
   * when the length is not `steps × components`, `STATS_NON_FINITE_VALUE` for NaN/±Infinity and
   * `STATS_VALUE_OUT_OF_RANGE` for |x| > {@link MAX_ABS_VALUE}; then nothing is added. −0 counts as 0.
   */
  addColumn(values: NumericColumn, steps: number): void {
    if (!Number.isSafeInteger(steps) || steps < 0) {
      throw new StatsError('STATS_INVALID_ARGUMENT', `steps must be a non-negative integer, got ${steps}`, this.location());
    }
    if (values.length !== steps * this.components) {
      throw new StatsError(
        'STATS_SHAPE_MISMATCH',
        `Expected ${steps} steps × ${this.components} components = ${steps * this.components} values${this.where()}, got ${values.length}`,
        this.location(),
      );
    }
    if (isBigIntColumn(values)) {
      this.addChunks(steps, (start, length, component) => gatherBigInts(values, this.components, start, length, component));
    } else {
      // Checked before anything is added, so a rejected column leaves the statistics untouched.
      if (mayHoldNonFinite(values)) this.assertInRange(values);
      this.addChunks(steps, (start, length, component) => gatherNumbers(values, this.components, start, length, component));
    }
  }

  /**
   * Adds another accumulator's statistics (e.g. an upload's into the previous version's). Throws
   * `STATS_SHAPE_MISMATCH` when the component counts differ, `STATS_INCOMPATIBLE_OPTIONS` when the
   * sketch options do.
   */
  merge(other: FeatureStatsAccumulator): void {
    if (other.components !== this.components) {
      throw new StatsError(
        'STATS_SHAPE_MISMATCH',
        `Cannot merge statistics of ${other.components} components into statistics of ${this.components}${this.where()}`,
        this.location(),
      );
    }
    if (!sameQuantileSketchOptions(this.options, other.options)) {
      throw new StatsError(
        'STATS_INCOMPATIBLE_OPTIONS',
        `Cannot merge statistics built with different sketch options${this.where()}: ${JSON.stringify(this.options)} and ${JSON.stringify(other.options)}`,
        this.location(),
      );
    }
    const otherSteps = other.steps;
    if (otherSteps === 0) return;
    const countBefore = this.steps;
    for (let component = 0; component < this.components; component++) {
      // Reads `other` before writing `this`, so merging an accumulator into itself doubles it.
      this.combine(component, countBefore, otherSteps, other.means[component]!, other.m2s[component]!);
      this.mins[component] = Math.min(this.mins[component]!, other.mins[component]!);
      this.maxs[component] = Math.max(this.maxs[component]!, other.maxs[component]!);
      this.sketches[component]!.merge(other.sketches[component]!);
      const mine = this.distinctValues[component]!;
      const theirs = other.distinctValues[component]!;
      // Either side past the limit (or unknown) makes the union so too; the sketch already holds every value.
      if (mine !== null && (theirs === null || !mine.merge(theirs))) this.distinctValues[component] = null;
    }
    this.steps = countBefore + otherSteps;
  }

  /**
   * The q-quantile of one component (q in [0, 1], same rank convention and bound as the summary),
   * or null when there are no steps.
   */
  quantile(component: number, q: number): number | null {
    const sketch = this.sketches[component];
    if (sketch === undefined) {
      throw new StatsError('STATS_INVALID_ARGUMENT', `Component ${component} is out of range [0, ${this.components})${this.where()}`);
    }
    // Checked first (also when exact counts answer) so that a bad q fails the same way whatever the data.
    const value = sketch.quantile(q);
    const distinct = this.distinctValues[component];
    if (distinct !== null && distinct !== undefined && value !== null) return distinct.quantile(q);
    // Clamping to the exact range only moves the estimate towards the true value, which lies in it.
    return value === null ? null : Math.min(Math.max(value, this.mins[component]!), this.maxs[component]!);
  }

  /** Whether each component's quantiles are exact (at most `MAX_DISTINCT_VALUES` (1,024) distinct values, all known). */
  exactQuantiles(): boolean[] {
    return this.distinctValues.map((distinct) => distinct !== null);
  }

  /** Non-empty sketch buckets of each component (each store stays within `maxBucketsPerStore`). */
  bucketCounts(): Array<{ positive: number; negative: number }> {
    return this.sketches.map((sketch) => sketch.bucketCount());
  }

  /** The statistics, per component; all null when no step was added. */
  summary(): NumericFeatureStatsSummary {
    if (this.steps === 0) {
      return { count: 0, min: null, max: null, mean: null, std: null, q01: null, q10: null, q50: null, q90: null, q99: null };
    }
    const perComponent = (q: number): number[] =>
      Array.from({ length: this.components }, (_, component) => this.quantile(component, q) ?? 0);
    return {
      count: this.steps,
      min: Array.from(this.mins),
      max: Array.from(this.maxs),
      mean: Array.from(this.means),
      std: Array.from(this.m2s, (m2) => Math.sqrt(m2 / this.steps)),
      q01: perComponent(SUMMARY_QUANTILES.q01),
      q10: perComponent(SUMMARY_QUANTILES.q10),
      q50: perComponent(SUMMARY_QUANTILES.q50),
      q90: perComponent(SUMMARY_QUANTILES.q90),
      q99: perComponent(SUMMARY_QUANTILES.q99),
    };
  }

  /** A JSON form that {@link fromJSON} restores exactly (bucket arrays are sorted, so it is deterministic). */
  toJSON(): FeatureStatsJson {
    const empty = this.steps === 0;
    return {
      components: this.components,
      count: this.steps,
      mean: Array.from(this.means),
      m2: Array.from(this.m2s),
      min: empty ? null : Array.from(this.mins),
      max: empty ? null : Array.from(this.maxs),
      sketches: this.sketches.map((sketch) => sketch.toJSON()),
      exact: this.distinctValues.map((distinct) => distinct?.toJSON() ?? null),
    };
  }

  /**
   * Re-creates an accumulator from {@link toJSON} output. Throws `STATS_INVALID_JSON` when the input
   * is not such output (wrong structure, array lengths, counts that do not add up, min > max…).
   */
  static fromJSON(json: unknown, options: { label?: string } = {}): FeatureStatsAccumulator {
    const parsed = featureStatsJsonSchema.safeParse(json);
    const prefix = `Invalid feature statistics JSON${options.label === undefined ? '' : ` for ${options.label}`}`;
    if (!parsed.success) throw new StatsError('STATS_INVALID_JSON', `${prefix}: ${z.prettifyError(parsed.error)}`);
    const data = parsed.data;
    const invalid = (problem: string): StatsError => new StatsError('STATS_INVALID_JSON', `${prefix}: ${problem}`);
    const { components, count } = data;
    // Stored before exact counts existed: nothing is known about distinct values.
    const exact = data.exact ?? Array.from({ length: components }, () => null);
    const perComponent = { mean: data.mean, m2: data.m2, sketches: data.sketches, exact, min: data.min ?? [], max: data.max ?? [] };
    for (const [name, array] of Object.entries(perComponent)) {
      const nullable = name === 'min' || name === 'max';
      if (nullable && count === 0) continue;
      if (array.length !== components) throw invalid(`${name} has ${array.length} entries for ${components} components`);
    }
    if ((data.min === null) !== (count === 0) || (data.max === null) !== (count === 0)) {
      throw invalid('min and max must be null exactly when count is 0');
    }
    const sketches = data.sketches.map((sketchJson) => QuantileSketch.fromJSON(sketchJson));
    const first = sketches[0]!;
    const accumulator = new FeatureStatsAccumulator(components, { ...first.options, label: options.label });
    for (let component = 0; component < components; component++) {
      const sketch = sketches[component]!;
      if (!sameQuantileSketchOptions(sketch.options, first.options)) throw invalid(`sketch ${component} has different options`);
      if (sketch.count !== count) throw invalid(`sketch ${component} holds ${sketch.count} values, count is ${count}`);
      if (count > 0) {
        const min = perComponent.min[component]!;
        const max = perComponent.max[component]!;
        if (!(min <= max)) throw invalid(`component ${component} has min ${min} > max ${max}`);
        accumulator.mins[component] = min;
        accumulator.maxs[component] = max;
      }
      accumulator.means[component] = data.mean[component]!;
      accumulator.m2s[component] = data.m2[component]!;
      accumulator.sketches[component] = sketch;
      const distinctJson = exact[component]!;
      if (distinctJson === null) {
        // No steps: nothing unknown, so later values can still be counted exactly.
        if (count > 0) accumulator.distinctValues[component] = null;
        continue;
      }
      let distinct: DistinctValueCounts;
      try {
        distinct = DistinctValueCounts.fromJSON(distinctJson);
      } catch (error) {
        throw invalid(`exact counts of component ${component}: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (distinct.count !== count)
        throw invalid(`exact counts of component ${component} hold ${distinct.count} values, count is ${count}`);
      if (count > 0) {
        const { values } = distinctJson;
        if (values[0] !== perComponent.min[component] || values[values.length - 1] !== perComponent.max[component]) {
          throw invalid(`exact values of component ${component} do not span its min and max`);
        }
      }
      accumulator.distinctValues[component] = distinct;
    }
    accumulator.steps = count;
    return accumulator;
  }

  /** Runs `gather` per chunk and component (it fills `scratch`), then folds the chunk in. */
  private addChunks(steps: number, gather: (start: number, length: number, component: number) => void): void {
    for (let start = 0; start < steps; start += CHUNK_STEPS) {
      const length = Math.min(CHUNK_STEPS, steps - start);
      const countBefore = this.steps;
      for (let component = 0; component < this.components; component++) {
        gather(start, length, component);
        this.addChunk(component, countBefore, length);
      }
      this.steps = countBefore + length;
    }
  }

  /** Folds `scratch[0..length)` into one component: exact moments of the chunk, then Chan's combination. */
  private addChunk(component: number, countBefore: number, length: number): void {
    let sum = 0;
    let min = scratch[0]!;
    let max = min;
    for (let i = 0; i < length; i++) {
      const value = scratch[i]!;
      sum += value;
      if (value < min) min = value;
      if (value > max) max = value;
    }
    let chunkMean: number;
    let chunkM2: number;
    if (min === max) {
      // A constant chunk: exact, where sum/length could be off by an ulp and leave a spurious std.
      chunkMean = min;
      chunkM2 = 0;
    } else {
      chunkMean = Math.min(Math.max(sum / length, min), max);
      // Corrected two-pass algorithm (Chan, Golub, LeVeque 1983): the second term cancels the rounding of the mean.
      let deviationSum = 0;
      let squaredSum = 0;
      for (let i = 0; i < length; i++) {
        const deviation = scratch[i]! - chunkMean;
        deviationSum += deviation;
        squaredSum += deviation * deviation;
      }
      chunkM2 = Math.max(0, squaredSum - (deviationSum * deviationSum) / length);
    }
    this.combine(component, countBefore, length, chunkMean, chunkM2);
    if (min < this.mins[component]!) this.mins[component] = min;
    if (max > this.maxs[component]!) this.maxs[component] = max;
    this.sketches[component]!.addFiniteValues(scratch, length);
    const distinct = this.distinctValues[component];
    // Past the limit the counts are dropped: memory stays at most MAX_DISTINCT_VALUES entries per component.
    if (distinct !== null && distinct !== undefined && !distinct.addFiniteValues(scratch, length)) this.distinctValues[component] = null;
  }

  /** Chan et al.'s pairwise update of (count, mean, M2) with another part's (count, mean, M2). */
  private combine(component: number, countBefore: number, otherCount: number, otherMean: number, otherM2: number): void {
    if (countBefore === 0) {
      this.means[component] = otherMean;
      this.m2s[component] = otherM2;
      return;
    }
    const total = countBefore + otherCount;
    const mean = this.means[component]!;
    const delta = otherMean - mean;
    this.means[component] = mean + (delta * otherCount) / total;
    this.m2s[component] = this.m2s[component]! + otherM2 + ((delta * delta * countBefore) / total) * otherCount;
  }

  /** Rejects NaN, ±Infinity and magnitudes above {@link MAX_ABS_VALUE}, naming the step and component. */
  private assertInRange(values: Float64Array | Float32Array | readonly number[]): void {
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      // One comparison pair in the common case; false for NaN too.
      if (value <= MAX_ABS_VALUE && value >= -MAX_ABS_VALUE) continue;
      const step = Math.floor(i / this.components);
      const component = i % this.components;
      const location = { ...this.location(component), step };
      if (!Number.isFinite(value)) {
        throw new StatsError(
          'STATS_NON_FINITE_VALUE',
          `${value} at step ${step}, component ${component}${this.where()}: statistics need finite values`,
          location,
        );
      }
      throw new StatsError(
        'STATS_VALUE_OUT_OF_RANGE',
        `${value} at step ${step}, component ${component}${this.where()}: statistics need |x| ≤ ${MAX_ABS_VALUE} (so that sums of squares stay finite)`,
        location,
      );
    }
  }

  private where(): string {
    return this.label === undefined ? '' : ` of ${this.label}`;
  }

  private location(component?: number): { field?: string } {
    if (this.label === undefined) return {};
    return { field: component === undefined ? this.label : `${this.label}[${component}]` };
  }
}

function isBigIntColumn(values: NumericColumn): values is BigInt64Array | BigUint64Array {
  return values instanceof BigInt64Array || values instanceof BigUint64Array;
}

/** Only these can hold NaN or ±Infinity; integer arrays skip the check. */
function mayHoldNonFinite(values: NumericColumn): values is Float64Array | Float32Array | readonly number[] {
  return values instanceof Float64Array || values instanceof Float32Array || !ArrayBuffer.isView(values);
}

function gatherNumbers(
  values: Exclude<NumericColumn, BigInt64Array | BigUint64Array>,
  components: number,
  start: number,
  length: number,
  component: number,
): void {
  let source = start * components + component;
  for (let i = 0; i < length; i++, source += components) {
    // + 0 turns −0 into 0, so min/max do not depend on the order of ±0.
    scratch[i] = values[source]! + 0;
  }
}

function gatherBigInts(values: BigInt64Array | BigUint64Array, components: number, start: number, length: number, component: number): void {
  let source = start * components + component;
  for (let i = 0; i < length; i++, source += components) scratch[i] = Number(values[source]!);
}
