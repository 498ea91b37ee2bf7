import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_RELATIVE_ACCURACY,
  DatasetStatsAccumulator,
  FeatureStatsAccumulator,
  MAX_ABS_VALUE,
  MAX_DISTINCT_VALUES,
  QuantileSketch,
  SUMMARY_QUANTILES,
  StatsError,
  type FeatureStatsJson,
  type FeatureStatsSummary,
  type NumericColumn,
  type NumericFeatureStatsSummary,
} from './index.js';

const ALPHA = DEFAULT_RELATIVE_ACCURACY;
const QUANTILE_NAMES: Array<keyof typeof SUMMARY_QUANTILES> = ['q01', 'q10', 'q50', 'q90', 'q99'];
const STATISTIC_NAMES: Array<keyof Omit<FeatureStatsSummary, 'count'>> = ['min', 'max', 'mean', 'std', ...QUANTILE_NAMES];
// Module-level copies: in Jest's vm context each `Math.` in a loop is a slow global lookup.
const { abs, cos, log, sqrt, PI } = Math;

// ---------------------------------------------------------------------------------------------
// Data: a seeded PRNG (mulberry32) so failures reproduce, and a few distributions.

type Random = () => number;

/** mulberry32: uniform in [0, 1) with 32 random bits. */
function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform in (0, 1), never 0 (Box-Muller takes its log). */
function open01(random: Random): number {
  return (random() * 4294967296 + random() + 0.5) / 4294967297;
}

function normal(random: Random): number {
  return sqrt(-2 * log(open01(random))) * cos(2 * PI * random());
}

const distributions: Record<string, (random: Random) => number> = {
  uniform: (random) => -5 + 15 * random(),
  normal: (random) => 3 + 2 * normal(random),
  // Heavy right tail over ~8 decades, within the bucket bound (so no folding).
  lognormal: (random) => Math.exp(2 * normal(random)),
  // Both signs, a fifth exact zeros, magnitudes from 1e-4 to 1e4.
  'negatives and zeros': (random) => (random() < 0.2 ? 0 : (random() < 0.5 ? -1 : 1) * 10 ** (-4 + 8 * random())),
  constant: () => 1.25,
};

function sample(random: Random, count: number, draw: (random: Random) => number): Float64Array {
  return Float64Array.from({ length: count }, () => draw(random));
}

/** Episode lengths summing to `steps`, 1 to `longest` each. */
function episodeLengths(random: Random, steps: number, longest: number): number[] {
  const lengths: number[] = [];
  for (let remaining = steps; remaining > 0;) {
    const length = Math.min(remaining, 1 + Math.floor(random() * longest));
    lengths.push(length);
    remaining -= length;
  }
  return lengths;
}

/** Adds row-major `values` to `accumulator` one episode at a time, as the upload job does. */
function addEpisodes(accumulator: FeatureStatsAccumulator, values: Float64Array, lengths: number[]): void {
  let step = 0;
  for (const length of lengths) {
    accumulator.addColumn(values.subarray(step * accumulator.components, (step + length) * accumulator.components), length);
    step += length;
  }
}

// ---------------------------------------------------------------------------------------------
// Exact reference statistics.

interface Exact {
  sorted: Float64Array;
  mean: number;
  std: number;
}

/** Neumaier's compensated sum: a reference accurate to about one rounding. */
function compensatedSum(values: Iterable<number>): number {
  let sum = 0;
  let compensation = 0;
  for (const value of values) {
    const next = sum + value;
    compensation += abs(sum) >= abs(value) ? sum - next + value : value - next + sum;
    sum = next;
  }
  return sum + compensation;
}

function exact(values: Float64Array): Exact {
  const mean = compensatedSum(values) / values.length;
  const m2 = compensatedSum(Array.from(values, (value) => (value - mean) ** 2));
  return { sorted: Float64Array.from(values).sort(), mean, std: Math.sqrt(m2 / values.length) };
}

/** The rank convention of the module: element floor(q·(n−1)) of the sorted values. */
function exactQuantile(sorted: Float64Array, q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}

function column(values: Float64Array, components: number, component: number): Float64Array {
  return Float64Array.from({ length: values.length / components }, (_, step) => values[step * components + component]!);
}

/** Within relative error α (plus rounding of log/pow, far below 1e-9 of α); exactly 0 for 0. */
function expectWithinAlpha(estimate: number | null, truth: number, context: string): void {
  const error = Math.abs((estimate ?? NaN) - truth);
  if (!(error <= ALPHA * Math.abs(truth) * (1 + 1e-9))) {
    throw new Error(`${context}: estimate ${estimate} is not within α = ${ALPHA} of ${truth}`);
  }
}

/** |actual − expected| ≤ tolerance × scale; scale is |expected| unless a larger natural scale is given. */
function expectRelative(actual: number, expected: number, tolerance: number, scale = Math.abs(expected)): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(tolerance * Math.max(scale, Math.abs(expected)));
}

function nonEmpty(summary: NumericFeatureStatsSummary): FeatureStatsSummary {
  if (summary.mean === null) throw new Error('expected a non-empty summary');
  return summary;
}

function expectMatchesExact(accumulator: FeatureStatsAccumulator, values: Float64Array, context: string): void {
  const { components } = accumulator;
  const summary = nonEmpty(accumulator.summary());
  expect(summary.count).toBe(values.length / components);
  for (let component = 0; component < components; component++) {
    const truth = exact(column(values, components, component));
    const where = `${context}, component ${component}`;
    expect(summary.min[component]).toBe(truth.sorted[0]);
    expect(summary.max[component]).toBe(truth.sorted[truth.sorted.length - 1]);
    // A mean near 0 is compared on the scale of the spread: relative to ~0 it would measure noise.
    expectRelative(summary.mean[component]!, truth.mean, 1e-9, truth.std);
    expectRelative(summary.std[component]!, truth.std, 1e-9);
    for (const name of QUANTILE_NAMES) {
      const q = SUMMARY_QUANTILES[name];
      expectWithinAlpha(summary[name][component]!, exactQuantile(truth.sorted, q), `${where}, ${name}`);
    }
    for (let q = 0; q <= 1; q += 1 / 64) {
      expectWithinAlpha(accumulator.quantile(component, q), exactQuantile(truth.sorted, q), `${where}, q = ${q}`);
    }
  }
}

function expectSummariesEqual(actual: NumericFeatureStatsSummary, expected: NumericFeatureStatsSummary, meanStdTolerance: number): void {
  const a = nonEmpty(actual);
  const e = nonEmpty(expected);
  expect({ ...a, mean: [], std: [] }).toEqual({ ...e, mean: [], std: [] });
  e.mean.forEach((mean, component) => expectRelative(a.mean[component]!, mean, meanStdTolerance, e.std[component]));
  e.std.forEach((std, component) => expectRelative(a.std[component]!, std, meanStdTolerance));
}

/** The parts of the JSON that must not depend on merge order at all (mean and M2 agree to rounding). */
function withoutMoments(json: FeatureStatsJson): Omit<FeatureStatsJson, 'mean' | 'm2'> {
  return { components: json.components, count: json.count, min: json.min, max: json.max, sketches: json.sketches, exact: json.exact };
}

function expectStatsError(action: () => unknown, code: string, message?: RegExp): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StatsError);
  if (caught instanceof StatsError) {
    expect(caught.code).toBe(code);
    if (message !== undefined) expect(caught.message).toMatch(message);
  }
}

// ---------------------------------------------------------------------------------------------

describe('FeatureStatsAccumulator against exact statistics', () => {
  Object.entries(distributions).forEach(([name, draw], index) => {
    it(`matches exact min/max, mean/std (1e-9) and quantiles (within α) on ${name} data`, () => {
      const random = mulberry32(1000 + index);
      const values = sample(random, 100_003, draw);
      const accumulator = new FeatureStatsAccumulator(1);
      addEpisodes(accumulator, values, episodeLengths(random, values.length, 9000));
      expectMatchesExact(accumulator, values, name);
    });
  });

  it('reports a constant feature exactly: std 0 and every quantile the constant', () => {
    const accumulator = new FeatureStatsAccumulator(2);
    const values = new Float64Array(20_000).fill(0.1);
    addEpisodes(accumulator, values, episodeLengths(mulberry32(7), 10_000, 5000));
    expect(accumulator.summary()).toEqual({
      count: 10_000,
      min: [0.1, 0.1],
      max: [0.1, 0.1],
      mean: [0.1, 0.1],
      std: [0, 0],
      q01: [0.1, 0.1],
      q10: [0.1, 0.1],
      q50: [0.1, 0.1],
      q90: [0.1, 0.1],
      q99: [0.1, 0.1],
    });
  });

  it('keeps the components of a [2, 3] feature apart (row-major)', () => {
    const random = mulberry32(42);
    const draws = Object.values(distributions);
    const steps = 30_011;
    const components = 6;
    const values = new Float64Array(steps * components);
    for (let step = 0; step < steps; step++) {
      for (let component = 0; component < components; component++) {
        values[step * components + component] = draws[component % draws.length]!(random) * (component + 1);
      }
    }
    const lengths = episodeLengths(random, steps, 6000);
    const together = new FeatureStatsAccumulator(components);
    addEpisodes(together, values, lengths);
    expectMatchesExact(together, values, '[2, 3] feature');
    const summary = nonEmpty(together.summary());
    for (let component = 0; component < components; component++) {
      const alone = new FeatureStatsAccumulator(1);
      addEpisodes(alone, column(values, components, component), lengths);
      const single = nonEmpty(alone.summary());
      for (const key of STATISTIC_NAMES) {
        expect(summary[key][component]).toBe(single[key][0]);
      }
    }
  });

  it('accepts every typed array an importer produces, converting 64-bit integers to the nearest double', () => {
    const random = mulberry32(5);
    const integers = Array.from({ length: 3000 }, () => Math.floor(random() * 200));
    const reference = new FeatureStatsAccumulator(3);
    reference.addColumn(Float64Array.from(integers), 1000);
    const columns: NumericColumn[] = [
      Int32Array.from(integers),
      Uint8Array.from(integers),
      Int16Array.from(integers),
      Uint16Array.from(integers),
      Uint32Array.from(integers),
      Float32Array.from(integers),
      BigInt64Array.from(integers, (value) => BigInt(value)),
      BigUint64Array.from(integers, (value) => BigInt(value)),
      integers,
    ];
    for (const values of columns) {
      const accumulator = new FeatureStatsAccumulator(3);
      accumulator.addColumn(values, 1000);
      expect(accumulator.toJSON()).toEqual(reference.toJSON());
    }
    const huge = new FeatureStatsAccumulator(1);
    huge.addColumn(BigInt64Array.of(2n ** 60n + 1n, -(2n ** 60n) - 1n), 2);
    expect(nonEmpty(huge.summary()).max).toEqual([2 ** 60]);
    expect(nonEmpty(huge.summary()).min).toEqual([-(2 ** 60)]);
  });

  it('adds ten million float32 values in one pass with exact count, min, max and accurate mean/std', () => {
    // A correctness check at benchmark size; the rate itself is measured outside the tests.
    const random = mulberry32(99);
    const components = 7;
    const steps = 1_428_572;
    const values = new Float32Array(steps * components);
    for (let i = 0; i < values.length; i++) values[i] = (random() - 0.3) * (1 + (i % components));
    const accumulator = new FeatureStatsAccumulator(components);
    for (let step = 0; step < steps; step += 500) {
      const length = Math.min(500, steps - step);
      accumulator.addColumn(values.subarray(step * components, (step + length) * components), length);
    }
    const summary = nonEmpty(accumulator.summary());
    expect(summary.count).toBe(steps);
    // Reference in plain loops (compensated sums), no per-component copies of ten million values.
    const min = new Float64Array(components).fill(Infinity);
    const max = new Float64Array(components).fill(-Infinity);
    const sum = new Float64Array(components);
    const sumCompensation = new Float64Array(components);
    for (let i = 0; i < values.length; i++) {
      const component = i % components;
      const value = values[i]!;
      if (value < min[component]!) min[component] = value;
      if (value > max[component]!) max[component] = value;
      const total = sum[component]!;
      const next = total + value;
      sumCompensation[component] = sumCompensation[component]! + (abs(total) >= abs(value) ? total - next + value : value - next + total);
      sum[component] = next;
    }
    const mean = Array.from(sum, (total, component) => (total + sumCompensation[component]!) / steps);
    const m2 = new Float64Array(components);
    for (let i = 0; i < values.length; i++) {
      const component = i % components;
      m2[component] = m2[component]! + (values[i]! - mean[component]!) ** 2;
    }
    for (let component = 0; component < components; component++) {
      const std = sqrt(m2[component]! / steps);
      expect(summary.min[component]).toBe(min[component]);
      expect(summary.max[component]).toBe(max[component]);
      expectRelative(summary.mean[component]!, mean[component]!, 1e-9, std);
      expectRelative(summary.std[component]!, std, 1e-9);
    }
  });
});

describe('merging', () => {
  const cases: Array<{ name: string; draw: (random: Random) => number; maxBucketsPerStore?: number }> = [
    { name: 'normal data', draw: distributions.normal! },
    { name: 'negatives and zeros', draw: distributions['negatives and zeros']! },
    // A small bound forces folding of the lowest buckets at different moments in different orders.
    { name: 'folded buckets (bound 64)', draw: (random) => (random() < 0.5 ? -1 : 1) * 10 ** (-6 + 12 * random()), maxBucketsPerStore: 64 },
  ];
  cases.forEach(({ name, draw, maxBucketsPerStore }, index) => {
    it(`gives one-pass statistics whatever the split and merge order (${name})`, () => {
      const random = mulberry32(2000 + index);
      const components = 2;
      const steps = 40_000;
      const values = sample(random, steps * components, draw);
      const options = maxBucketsPerStore === undefined ? {} : { maxBucketsPerStore };

      const onePass = new FeatureStatsAccumulator(components, options);
      onePass.addColumn(values, steps);

      // Uploads of random sizes, each accumulated episode by episode.
      const uploads: FeatureStatsAccumulator[] = [];
      let step = 0;
      for (const uploadSteps of episodeLengths(random, steps, 9000)) {
        const upload = new FeatureStatsAccumulator(components, options);
        addEpisodes(
          upload,
          values.subarray(step * components, (step + uploadSteps) * components),
          episodeLengths(random, uploadSteps, 700),
        );
        uploads.push(upload);
        step += uploadSteps;
      }
      expect(uploads.length).toBeGreaterThan(3);

      const copy = (accumulator: FeatureStatsAccumulator): FeatureStatsAccumulator =>
        FeatureStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(accumulator)));
      const fold = (order: FeatureStatsAccumulator[]): FeatureStatsAccumulator => {
        const merged = new FeatureStatsAccumulator(components, options);
        for (const upload of order) merged.merge(upload);
        return merged;
      };
      const tree = (parts: FeatureStatsAccumulator[]): FeatureStatsAccumulator => {
        if (parts.length === 1) return copy(parts[0]!);
        const middle = Math.floor(parts.length / 2);
        const left = tree(parts.slice(0, middle));
        left.merge(tree(parts.slice(middle)));
        return left;
      };
      // Version N+1 = stats(version N) re-loaded from JSON, merged with the upload's.
      const versions = uploads.reduce(
        (version, upload) => {
          const next = copy(version);
          next.merge(upload);
          return next;
        },
        new FeatureStatsAccumulator(components, options),
      );
      const shuffled = [...uploads].sort(() => random() - 0.5);

      for (const merged of [fold(uploads), fold([...uploads].reverse()), fold(shuffled), tree(uploads), versions]) {
        expectSummariesEqual(merged.summary(), onePass.summary(), 1e-12);
        // Sketches, counts and extrema do not depend on the order at all.
        expect(withoutMoments(merged.toJSON())).toEqual(withoutMoments(onePass.toJSON()));
      }
      if (maxBucketsPerStore !== undefined) {
        for (const counts of onePass.bucketCounts()) {
          expect(counts.positive).toBeLessThanOrEqual(maxBucketsPerStore);
          expect(counts.negative).toBeLessThanOrEqual(maxBucketsPerStore);
          // 12 decades need ~2800 buckets per sign: folding did happen.
          expect(counts.positive + counts.negative).toBeGreaterThan(maxBucketsPerStore);
        }
      }
    });
  });

  it('treats merging with an empty accumulator and with itself as expected', () => {
    const random = mulberry32(3);
    const values = sample(random, 5000, distributions.uniform!);
    const accumulator = new FeatureStatsAccumulator(1);
    accumulator.addColumn(values, 5000);
    const before = accumulator.toJSON();

    accumulator.merge(new FeatureStatsAccumulator(1));
    expect(accumulator.toJSON()).toEqual(before);

    const empty = new FeatureStatsAccumulator(1);
    empty.merge(accumulator);
    expect(empty.toJSON()).toEqual(before);

    const doubled = new FeatureStatsAccumulator(1);
    doubled.addColumn(values, 5000);
    doubled.addColumn(values, 5000);
    accumulator.merge(accumulator);
    expectSummariesEqual(accumulator.summary(), doubled.summary(), 1e-12);
  });

  it('refuses statistics of another shape or built with other options', () => {
    const three = new FeatureStatsAccumulator(3, { label: 'action' });
    expectStatsError(() => three.merge(new FeatureStatsAccumulator(2)), 'STATS_SHAPE_MISMATCH', /action/);
    expectStatsError(() => three.merge(new FeatureStatsAccumulator(3, { relativeAccuracy: 0.01 })), 'STATS_INCOMPATIBLE_OPTIONS');
    const sketch = new QuantileSketch();
    expectStatsError(() => sketch.merge(new QuantileSketch({ maxBucketsPerStore: 100 })), 'STATS_INCOMPATIBLE_OPTIONS');
  });
});

describe('JSON', () => {
  it('round-trips everything, through JSON text, and accumulation continues as if never serialized', () => {
    const random = mulberry32(11);
    const values = sample(random, 3 * 20_000, distributions['negatives and zeros']!);
    const first = values.subarray(0, 3 * 12_000);
    const rest = values.subarray(3 * 12_000);

    const straight = new FeatureStatsAccumulator(3);
    straight.addColumn(first, 12_000);
    const restored = FeatureStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(straight)));
    expect(restored.toJSON()).toEqual(straight.toJSON());
    expect(restored.summary()).toEqual(straight.summary());

    straight.addColumn(rest, 8000);
    restored.addColumn(rest, 8000);
    expect(JSON.stringify(restored)).toBe(JSON.stringify(straight));
  });

  it('is compact: sparse bucket arrays, no per-step data', () => {
    const accumulator = new FeatureStatsAccumulator(1);
    accumulator.addColumn(sample(mulberry32(12), 200_000, distributions.normal!), 200_000);
    const json = accumulator.toJSON();
    const sketch = json.sketches[0]!;
    expect(sketch.positive.indexes).toHaveLength(sketch.positive.counts.length);
    expect(sketch.positive.indexes.length + sketch.negative.indexes.length).toBeLessThan(2000);
    expect(JSON.stringify(json).length).toBeLessThan(40_000);
  });

  it('rejects what toJSON cannot have written, with STATS_INVALID_JSON', () => {
    const accumulator = new FeatureStatsAccumulator(2);
    accumulator.addColumn(Float64Array.of(1, -2, 3, 0, 5, 6), 3);
    const good = accumulator.toJSON();
    const sketch = good.sketches[0]!;
    const broken: unknown[] = [
      null,
      'stats',
      { ...good, components: 0 },
      { ...good, mean: [1] },
      { ...good, count: 4 },
      { ...good, min: null },
      { ...good, min: [7, 0] },
      { ...good, sketches: [{ ...sketch, positive: { indexes: [5, 1], counts: [1, 1] } }, good.sketches[1]] },
      { ...good, sketches: [{ ...sketch, positive: { indexes: [1], counts: [1, 1] } }, good.sketches[1]] },
      // Span wider than the bound (counts add up, so only the span is wrong).
      {
        ...good,
        sketches: [
          { ...sketch, positive: { indexes: [0, 5000], counts: [1, 2] }, zeroCount: 0, negative: { indexes: [], counts: [] } },
          good.sketches[1],
        ],
      },
      { ...good, sketches: [{ ...sketch, relativeAccuracy: 2 }, good.sketches[1]] },
      { ...good, sketches: [{ ...sketch, relativeAccuracy: 0.01 }, good.sketches[1]] },
    ];
    expect(FeatureStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(good))).toJSON()).toEqual(good);
    for (const json of broken) expectStatsError(() => FeatureStatsAccumulator.fromJSON(json), 'STATS_INVALID_JSON');
    expectStatsError(() => QuantileSketch.fromJSON({ ...sketch, zeroCount: -1 }), 'STATS_INVALID_JSON');
    expectStatsError(() => DatasetStatsAccumulator.fromJSON({ version: 2, features: [] }), 'STATS_INVALID_JSON');
  });
});

describe('exact quantiles for few distinct values', () => {
  /** A gripper action (exactly 0 or 1, mostly closed) beside a continuous joint, in episodes of 1..400 steps. */
  function gripperColumns(seed: number, steps: number): Float64Array {
    const random = mulberry32(seed);
    const values = new Float64Array(steps * 2);
    let closed = 1;
    for (let step = 0; step < steps; step++) {
      if (random() < 0.02) closed = random() < 0.7 ? 1 : 0;
      values[2 * step] = closed;
      values[2 * step + 1] = distributions.normal!(random);
    }
    return values;
  }

  it('reports a binary gripper action exactly: every quantile 0 or 1, never 0.995', () => {
    const steps = 20_000;
    const values = gripperColumns(71, steps);
    const accumulator = new FeatureStatsAccumulator(2);
    addEpisodes(accumulator, values, episodeLengths(mulberry32(72), steps, 400));
    expect(accumulator.exactQuantiles()).toEqual([true, false]);
    const gripper = exact(column(values, 2, 0)).sorted;
    const zeros = gripper.indexOf(1);
    // The data have both values, and enough of each for q01 to be 0 and q50 to be 1.
    expect(zeros).toBeGreaterThan(0.01 * steps);
    expect(zeros).toBeLessThan(0.5 * steps);
    const summary = nonEmpty(accumulator.summary());
    expect([summary.q01[0], summary.q10[0], summary.q50[0], summary.q90[0], summary.q99[0]]).toEqual(
      QUANTILE_NAMES.map((name) => exactQuantile(gripper, SUMMARY_QUANTILES[name])),
    );
    expect(summary.q50[0]).toBe(1);
    expect(summary.q99[0]).toBe(1);
    for (let q = 0; q <= 1; q += 1 / 128) expect(accumulator.quantile(0, q)).toBe(exactQuantile(gripper, q));
    // The continuous joint keeps the sketch's bound.
    expectWithinAlpha(summary.q50[1]!, exactQuantile(exact(column(values, 2, 1)).sorted, 0.5), 'joint q50');
  });

  it('follows the numpy "lower" convention: the element at floor(q·(n−1)), no interpolation', () => {
    const accumulator = new FeatureStatsAccumulator(1);
    // Sorted: 0, 0, 1, 1 — numpy's default "linear" would say 0.5 for the median; "lower" says 0.
    accumulator.addColumn(Float64Array.of(1, 0, 1, 0), 4);
    expect(accumulator.quantile(0, 0.5)).toBe(0);
    expect(accumulator.quantile(0, 0.99)).toBe(1);
    expect(accumulator.quantile(0, 2 / 3)).toBe(1);
    expect(accumulator.quantile(0, 0.6)).toBe(0);
  });

  it('merges exact counts exactly: any split, through JSON, equals one pass over all values', () => {
    const steps = 30_000;
    const values = gripperColumns(81, steps).map((value, index) => (index % 2 === 1 ? Math.round(value * 50) / 10 : value));
    const onePass = new FeatureStatsAccumulator(2);
    onePass.addColumn(values, steps);
    expect(onePass.exactQuantiles()).toEqual([true, true]);
    const random = mulberry32(82);
    let version = new FeatureStatsAccumulator(2);
    let step = 0;
    for (const uploadSteps of episodeLengths(random, steps, 8000)) {
      const upload = new FeatureStatsAccumulator(2);
      addEpisodes(upload, values.subarray(step * 2, (step + uploadSteps) * 2), episodeLengths(random, uploadSteps, 500));
      // Version N+1 = stats(version N) re-loaded from its stored JSON, merged with the upload's.
      version = FeatureStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(version)));
      version.merge(upload);
      step += uploadSteps;
    }
    expect(withoutMoments(version.toJSON())).toEqual(withoutMoments(onePass.toJSON()));
    expectSummariesEqual(version.summary(), onePass.summary(), 1e-12);
    const sorted = exact(column(values, 2, 1)).sorted;
    for (const name of QUANTILE_NAMES) expect(nonEmpty(version.summary())[name][1]).toBe(exactQuantile(sorted, SUMMARY_QUANTILES[name]));
  });

  it(`falls back to the sketch past ${MAX_DISTINCT_VALUES} distinct values (also when only the merge passes it), within [min, max]`, () => {
    // Distinct integers 1..n, each twice, shuffled: quantiles fall on values the sketch cannot hit exactly.
    const shuffled = (n: number): Float64Array => {
      const values = Float64Array.from({ length: 2 * n }, (_, index) => 1 + (index % n));
      const random = mulberry32(n);
      for (let i = values.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [values[i], values[j]] = [values[j]!, values[i]!];
      }
      return values;
    };
    const atLimit = new FeatureStatsAccumulator(1);
    const atLimitValues = shuffled(MAX_DISTINCT_VALUES);
    addEpisodes(atLimit, atLimitValues, episodeLengths(mulberry32(91), atLimitValues.length, 300));
    expect(atLimit.exactQuantiles()).toEqual([true]);
    const atLimitSorted = exact(atLimitValues).sorted;
    for (let q = 0; q <= 1; q += 1 / 64) expect(atLimit.quantile(0, q)).toBe(exactQuantile(atLimitSorted, q));
    expect(atLimit.toJSON().exact![0]!.values).toHaveLength(MAX_DISTINCT_VALUES);

    const overValues = shuffled(MAX_DISTINCT_VALUES + 1);
    const over = new FeatureStatsAccumulator(1);
    addEpisodes(over, overValues, episodeLengths(mulberry32(92), overValues.length, 300));
    // Two halves, each under the limit, whose union is over it.
    const low = new FeatureStatsAccumulator(1);
    const high = new FeatureStatsAccumulator(1);
    const sortedOver = exact(overValues).sorted;
    low.addColumn(sortedOver.subarray(0, MAX_DISTINCT_VALUES), MAX_DISTINCT_VALUES);
    high.addColumn(sortedOver.subarray(MAX_DISTINCT_VALUES), sortedOver.length - MAX_DISTINCT_VALUES);
    expect([low.exactQuantiles(), high.exactQuantiles()]).toEqual([[true], [true]]);
    low.merge(high);
    for (const accumulator of [over, low]) {
      expect(accumulator.exactQuantiles()).toEqual([false]);
      // Bounded memory: the counts are gone, only the sketch is stored.
      expect(accumulator.toJSON().exact).toEqual([null]);
      let inexact = 0;
      for (let q = 0; q <= 1; q += 1 / 256) {
        const estimate = accumulator.quantile(0, q)!;
        expectWithinAlpha(estimate, exactQuantile(sortedOver, q), `q = ${q}`);
        expect(estimate).toBeGreaterThanOrEqual(1);
        expect(estimate).toBeLessThanOrEqual(MAX_DISTINCT_VALUES + 1);
        if (estimate !== exactQuantile(sortedOver, q)) inexact++;
      }
      expect(inexact).toBeGreaterThan(100);
      // The sketch's bucket for the maximum is reported above it; clamped to max.
      expect(accumulator.quantile(0, 1)).toBe(MAX_DISTINCT_VALUES + 1);
    }
    expect(withoutMoments(low.toJSON())).toEqual(withoutMoments(over.toJSON()));
  });

  it('reads statistics stored before exact counts existed: sketch quantiles, and merges keep working', () => {
    // A version's stats.sketch.json as written before: action = 0, 1, 1 (no `exact`).
    const stored = {
      version: 1,
      features: [
        {
          name: 'action',
          kind: 'numeric',
          components: 1,
          count: 3,
          mean: [2 / 3],
          m2: [2 / 3],
          min: [0],
          max: [1],
          sketches: [
            {
              relativeAccuracy: 0.005,
              maxBucketsPerStore: 2048,
              minIndexableValue: 2.2250738585072014e-308,
              zeroCount: 1,
              positive: { indexes: [0], counts: [2] },
              negative: { indexes: [], counts: [] },
            },
          ],
        },
        { name: 'observation.images.top', kind: 'media', count: 3 },
      ],
    };
    const previous = DatasetStatsAccumulator.fromJSON(stored);
    const action = previous.numeric('action', 1);
    expect(action.exactQuantiles()).toEqual([false]);
    // What is unknown stays unknown: the old sketch's answer (within α, clamped).
    expectWithinAlpha(action.quantile(0, 0.5), 1, 'old q50');
    const upload = new DatasetStatsAccumulator();
    upload.numeric('action', 1).addColumn(Float64Array.of(0, 1, 1, 1), 4);
    previous.merge(upload);
    expect(previous.summary().action).toMatchObject({ count: 7, min: [0], max: [1] });
    expect(previous.toJSON().features[0]).toMatchObject({ name: 'action', exact: [null] });
    // A stored feature without steps knows its (no) values: counting exactly can start.
    const empty = DatasetStatsAccumulator.fromJSON({
      version: 1,
      features: [
        {
          ...stored.features[0],
          count: 0,
          mean: [0],
          m2: [0],
          min: null,
          max: null,
          sketches: [{ ...stored.features[0]!.sketches![0], zeroCount: 0, positive: { indexes: [], counts: [] } }],
        },
      ],
    });
    empty.merge(upload);
    expect(empty.numeric('action', 1).exactQuantiles()).toEqual([true]);
    expect(empty.summary().action).toMatchObject({ q50: [1], q99: [1], q01: [0] });
  });

  it('rejects exact counts toJSON cannot have written, with STATS_INVALID_JSON', () => {
    const accumulator = new FeatureStatsAccumulator(1);
    accumulator.addColumn(Float64Array.of(0, 1, 1, 0.5), 4);
    const good = accumulator.toJSON();
    expect(good.exact).toEqual([{ values: [0, 0.5, 1], counts: [1, 1, 2] }]);
    const broken: unknown[] = [
      { ...good, exact: [{ values: [0, 1, 0.5], counts: [1, 2, 1] }] },
      { ...good, exact: [{ values: [0, 0, 1], counts: [1, 1, 2] }] },
      { ...good, exact: [{ values: [0, 0.5, 1], counts: [1, 1, 1] }] },
      { ...good, exact: [{ values: [0, 0.5, 1], counts: [1, 3] }] },
      { ...good, exact: [{ values: [0.25, 0.5, 1], counts: [1, 1, 2] }] },
      { ...good, exact: [{ values: [0, 0.5, 0.75], counts: [1, 1, 2] }] },
      { ...good, exact: [] },
      {
        ...good,
        exact: [
          { values: Array.from({ length: MAX_DISTINCT_VALUES + 1 }, (_, i) => i), counts: new Array(MAX_DISTINCT_VALUES + 1).fill(1) },
        ],
      },
    ];
    expect(FeatureStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(good))).toJSON()).toEqual(good);
    for (const json of broken) expectStatsError(() => FeatureStatsAccumulator.fromJSON(json), 'STATS_INVALID_JSON');
  });
});

describe('bounded memory', () => {
  it('keeps at most maxBucketsPerStore buckets for a million values spanning 200 decades', () => {
    const random = mulberry32(21);
    const steps = 1_000_000;
    // Component 0 positive only; component 1 both signs.
    const values = new Float64Array(steps * 2);
    for (let step = 0; step < steps; step++) {
      values[2 * step] = 10 ** (-100 + 200 * random());
      values[2 * step + 1] = (random() < 0.5 ? -1 : 1) * 10 ** (-100 + 200 * random());
    }
    const accumulator = new FeatureStatsAccumulator(2);
    addEpisodes(accumulator, values, episodeLengths(random, steps, 50_000));
    const [positiveOnly, bothSigns] = accumulator.bucketCounts();
    expect(positiveOnly!.positive).toBeLessThanOrEqual(2048);
    expect(positiveOnly!.positive).toBeGreaterThan(1500);
    expect(positiveOnly!.negative).toBe(0);
    expect(bothSigns!.positive).toBeLessThanOrEqual(2048);
    expect(bothSigns!.negative).toBeLessThanOrEqual(2048);
    for (const sketch of accumulator.toJSON().sketches) {
      expect(sketch.positive.indexes.length).toBeLessThanOrEqual(2048);
      expect(sketch.negative.indexes.length).toBeLessThanOrEqual(2048);
    }

    // The README's bound: values within ~8.9 decades of the largest magnitude keep relative error
    // α; smaller magnitudes are folded, with an absolute error below max·γ^(2−bound) ≈ 1.3e-9·max.
    const gamma = (1 + ALPHA) / (1 - ALPHA);
    for (let component = 0; component < 2; component++) {
      const { sorted } = exact(column(values, 2, component));
      const largest = Math.max(Math.abs(sorted[0]!), Math.abs(sorted[sorted.length - 1]!));
      const folded = largest * gamma ** (2 - 2048);
      let checkedWithinAlpha = 0;
      for (let q = 0; q <= 1; q += 1 / 256) {
        const expected = exactQuantile(sorted, q);
        const estimate = accumulator.quantile(component, q)!;
        if (Math.abs(expected) > folded * gamma) {
          expectWithinAlpha(estimate, expected, `component ${component}, q = ${q}`);
          checkedWithinAlpha++;
        } else {
          expect(Math.abs(estimate - expected)).toBeLessThanOrEqual(folded);
        }
      }
      // The kept window covers the top ~9 of 200 decades of each sign: ~4.5 % of the quantiles.
      expect(checkedWithinAlpha).toBeGreaterThanOrEqual(10);
      if (component === 0) expectWithinAlpha(nonEmpty(accumulator.summary()).q99[0]!, exactQuantile(sorted, 0.99), 'q99');
    }
  });
});

describe('invalid input', () => {
  it.each([
    ['NaN in a Float64Array', Float64Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, NaN, 12)],
    ['Infinity in a Float32Array', Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, Infinity, 12)],
    ['-Infinity in an array', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -Infinity, 12]],
  ])('rejects %s with its step and component, adding nothing', (_name, values) => {
    const accumulator = new FeatureStatsAccumulator(2, { label: 'observation.state' });
    accumulator.addColumn(Float64Array.of(0.5, 0.25), 1);
    const before = JSON.stringify(accumulator);
    expectStatsError(() => accumulator.addColumn(values, 6), 'STATS_NON_FINITE_VALUE', /step 5, component 0 of observation\.state/);
    expect(JSON.stringify(accumulator)).toBe(before);
    try {
      accumulator.addColumn(values, 6);
    } catch (error) {
      expect(error instanceof StatsError && error.location).toEqual({ field: 'observation.state[0]', step: 5 });
    }
  });

  it('rejects magnitudes above MAX_ABS_VALUE, whose squares could overflow the std', () => {
    const accumulator = new FeatureStatsAccumulator(1);
    expectStatsError(() => accumulator.addColumn(Float64Array.of(1, -2e100), 2), 'STATS_VALUE_OUT_OF_RANGE', /step 1, component 0/);
    accumulator.addColumn(Float64Array.of(MAX_ABS_VALUE, -MAX_ABS_VALUE), 2);
    expect(nonEmpty(accumulator.summary()).std).toEqual([MAX_ABS_VALUE]);
  });

  it('rejects non-finite values in a bare sketch and bad arguments', () => {
    const sketch = new QuantileSketch();
    expectStatsError(() => sketch.add(NaN), 'STATS_NON_FINITE_VALUE');
    expectStatsError(() => sketch.add(-Infinity), 'STATS_NON_FINITE_VALUE');
    expect(sketch.count).toBe(0);
    expectStatsError(() => sketch.quantile(1.5), 'STATS_INVALID_ARGUMENT');
    expectStatsError(() => new QuantileSketch({ relativeAccuracy: 0 }), 'STATS_INVALID_ARGUMENT');
    expectStatsError(() => new FeatureStatsAccumulator(0), 'STATS_INVALID_ARGUMENT');
    const accumulator = new FeatureStatsAccumulator(3);
    expectStatsError(() => accumulator.addColumn(new Float64Array(7), 2), 'STATS_SHAPE_MISMATCH', /2 steps × 3 components = 6 values/);
    expectStatsError(() => accumulator.addColumn(new Float64Array(0), -1), 'STATS_INVALID_ARGUMENT');
  });
});

describe('empty statistics and edge values', () => {
  it('summarises no steps with JSON-safe nulls, and round-trips', () => {
    const accumulator = new FeatureStatsAccumulator(4);
    accumulator.addColumn(new Float64Array(0), 0);
    const summary = accumulator.summary();
    expect(summary).toEqual({
      count: 0,
      min: null,
      max: null,
      mean: null,
      std: null,
      q01: null,
      q10: null,
      q50: null,
      q90: null,
      q99: null,
    });
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary);
    expect(accumulator.quantile(0, 0.5)).toBeNull();
    expect(new QuantileSketch().quantile(0.5)).toBeNull();
    const restored = FeatureStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(accumulator)));
    expect(restored.summary()).toEqual(summary);
    expect(restored.components).toBe(4);
  });

  it('counts −0 as 0, so the order of ±0 does not show', () => {
    const a = new FeatureStatsAccumulator(1);
    a.addColumn(Float64Array.of(-0, 0, -0), 3);
    const b = new FeatureStatsAccumulator(1);
    b.addColumn(Float64Array.of(0, -0, 0), 3);
    expect(a.toJSON()).toEqual(b.toJSON());
    expect(Object.is(nonEmpty(a.summary()).min[0], 0)).toBe(true);
  });

  it('counts subnormal magnitudes as zero and keeps the smallest normal ones', () => {
    const sketch = new QuantileSketch();
    for (const value of [5e-324, -1e-310, 2 ** -1022, -(2 ** -1022), 3 * 2 ** -1022]) sketch.add(value);
    expect(sketch.toJSON().zeroCount).toBe(2);
    // Sorted: −2^-1022, 0, 0, 2^-1022, 3·2^-1022; rank floor(q·4).
    expectWithinAlpha(sketch.quantile(0), -(2 ** -1022), 'smallest negative');
    expect(sketch.quantile(0.25)).toBe(0);
    expect(sketch.quantile(0.5)).toBe(0);
    expectWithinAlpha(sketch.quantile(0.75), 2 ** -1022, 'smallest positive');
    expectWithinAlpha(sketch.quantile(1), 3 * 2 ** -1022, 'largest');
  });

  it('reports the largest doubles without overflowing to Infinity', () => {
    const sketch = new QuantileSketch();
    for (const value of [Number.MAX_VALUE, -Number.MAX_VALUE, 1e308]) sketch.add(value);
    expectWithinAlpha(sketch.quantile(0), -Number.MAX_VALUE, 'min');
    expectWithinAlpha(sketch.quantile(0.5), 1e308, 'median');
    expectWithinAlpha(sketch.quantile(1), Number.MAX_VALUE, 'max');
  });
});

describe('DatasetStatsAccumulator', () => {
  function upload(seed: number, episodes: number): DatasetStatsAccumulator {
    const random = mulberry32(seed);
    const stats = new DatasetStatsAccumulator();
    for (let episode = 0; episode < episodes; episode++) {
      const length = 50 + Math.floor(random() * 200);
      stats.numeric('observation.state', 7).addColumn(sample(random, length * 7, distributions.normal!), length);
      stats.numeric('action', 2).addColumn(sample(random, length * 2, distributions.uniform!), length);
      stats.addMediaFrames('observation.images.top', length);
    }
    return stats;
  }

  it('summarises numeric features and counts media frames, keyed by sorted name', () => {
    const stats = upload(31, 5);
    const summary = stats.summary();
    expect(Object.keys(summary)).toEqual(['action', 'observation.images.top', 'observation.state']);
    const state = summary['observation.state']!;
    const images = summary['observation.images.top']!;
    expect(images).toEqual({ count: state.count });
    expect('mean' in state && state.mean?.length).toBe(7);
  });

  it('merges version statistics with an upload, through JSON, as if accumulated at once', () => {
    const version1 = upload(41, 6);
    const uploadStats = upload(42, 4);
    const stored = JSON.parse(JSON.stringify(version1));
    const version2 = DatasetStatsAccumulator.fromJSON(stored);
    version2.merge(DatasetStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(uploadStats))));

    const reversed = DatasetStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(uploadStats)));
    reversed.merge(version1);
    const merged = version2.summary();
    const other = reversed.summary();
    expect(Object.keys(merged)).toEqual(Object.keys(other));
    for (const name of Object.keys(merged)) {
      const a = merged[name]!;
      const b = other[name]!;
      if ('mean' in a && 'mean' in b) expectSummariesEqual(a, b, 1e-12);
      else expect(a).toEqual(b);
    }
    expect(merged['observation.images.top']!.count).toBe(
      version1.summary()['observation.images.top']!.count + uploadStats.summary()['observation.images.top']!.count,
    );
    expect(DatasetStatsAccumulator.fromJSON(JSON.parse(JSON.stringify(version2))).toJSON()).toEqual(version2.toJSON());
  });

  it('copies features that only the other side has, and doubles when merged into itself', () => {
    const stats = new DatasetStatsAccumulator();
    stats.addMediaFrames('video', 3);
    const other = upload(51, 2);
    stats.merge(other);
    expect(stats.featureNames()).toEqual(['action', 'observation.images.top', 'observation.state', 'video']);
    // A copy, not a shared object: adding to `stats` leaves `other` alone.
    stats.numeric('action', 2).addColumn(Float64Array.of(1, 2), 1);
    expect(other.summary().action!.count).toBe(stats.summary().action!.count - 1);
    const count = stats.summary().video!.count;
    stats.merge(stats);
    expect(stats.summary().video!.count).toBe(2 * count);
  });

  it('refuses a name used for two kinds or shapes, and leaves itself unchanged', () => {
    const stats = upload(61, 1);
    const before = JSON.stringify(stats);
    expectStatsError(() => stats.numeric('observation.images.top', 1), 'STATS_FEATURE_KIND_MISMATCH');
    expectStatsError(() => stats.addMediaFrames('action', 1), 'STATS_FEATURE_KIND_MISMATCH');
    expectStatsError(() => stats.numeric('action', 3), 'STATS_SHAPE_MISMATCH', /action has 2 components/);
    const clash = new DatasetStatsAccumulator();
    clash.addMediaFrames('extra', 1);
    clash.numeric('observation.state', 6);
    expectStatsError(() => stats.merge(clash), 'STATS_SHAPE_MISMATCH');
    expect(JSON.stringify(stats)).toBe(before);
    const duplicate = stats.toJSON();
    duplicate.features.push(duplicate.features[0]!);
    expectStatsError(() => DatasetStatsAccumulator.fromJSON(duplicate), 'STATS_INVALID_JSON', /appears twice/);
  });
});
