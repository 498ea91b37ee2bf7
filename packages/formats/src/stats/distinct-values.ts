import { z } from 'zod';
import { StatsError } from './errors.js';

/**
 * Most distinct values a component's exact counts hold. Beyond this the component's quantiles come
 * from its sketch alone; up to it they are exact (a gripper's 0/1, discrete modes, small integers).
 */
export const MAX_DISTINCT_VALUES = 1024;

/** Starts small (most components are constant or binary) and doubles up to 2 × MAX_DISTINCT_VALUES slots. */
const INITIAL_CAPACITY = 8;
/** Scratch for a double's bits, for hashing. */
const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);

/** The serialized form of {@link DistinctValueCounts}: strictly ascending values and their (positive integer) counts. */
export interface DistinctValuesJson {
  values: number[];
  counts: number[];
}

/** zod schema of {@link DistinctValuesJson} (structure only; `DistinctValueCounts.fromJSON` checks the rest). */
export const distinctValuesJsonSchema = z.object({
  values: z.array(z.number()).max(MAX_DISTINCT_VALUES),
  counts: z.array(z.int().positive()),
});

/**
 * Exact counts of each distinct value of one component, while there are at most
 * {@link MAX_DISTINCT_VALUES} of them. Merging adds counts, so merged counts equal one-pass counts.
 * Quantiles use the sketch's rank convention — the element at 0-based index floor(q·(n−1)) of the
 * sorted values (numpy's `method='lower'`) — without its error: always a value that occurred.
 */
export class DistinctValueCounts {
  // Open addressing on the value's bits, not a Map: a Map boxes every non-integer double it is asked about.
  private keys = new Float64Array(INITIAL_CAPACITY);
  private counts = new Float64Array(INITIAL_CAPACITY);
  /** 1 where `keys` holds a value; a separate array because every double (0 included) is a valid key. */
  private used = new Uint8Array(INITIAL_CAPACITY);
  private distinct = 0;
  private total = 0;

  /** Number of values counted. */
  get count(): number {
    return this.total;
  }

  /**
   * Counts `values[0..length)` (finite, −0 already turned into 0). Returns false when that would
   * exceed {@link MAX_DISTINCT_VALUES} distinct values: this object is then incomplete, and the
   * caller drops it.
   */
  addFiniteValues(values: Float64Array, length: number): boolean {
    if (length === 0) return true;
    // Robot signals repeat values in runs (a gripper held closed): one table update per run.
    let runValue = values[0]!;
    let runLength = 0;
    for (let i = 0; i < length; i++) {
      const value = values[i]!;
      if (value === runValue) {
        runLength++;
        continue;
      }
      if (!this.increment(runValue, runLength)) return false;
      runValue = value;
      runLength = 1;
    }
    return this.increment(runValue, runLength);
  }

  /** Adds `other`'s counts; false when the union exceeds {@link MAX_DISTINCT_VALUES} (then drop this object). */
  merge(other: DistinctValueCounts): boolean {
    // A snapshot first, so that merging into itself doubles.
    const { values, counts } = other.toJSON();
    for (let i = 0; i < values.length; i++) {
      if (!this.increment(values[i]!, counts[i]!)) return false;
    }
    return true;
  }

  /** The element at 0-based index floor(q·(n−1)) of the sorted values, q in [0, 1]; null when empty. */
  quantile(q: number): number | null {
    if (this.total === 0) return null;
    const rank = Math.floor(q * (this.total - 1));
    const { values, counts } = this.toJSON();
    let seen = 0;
    for (let i = 0; i < values.length; i++) {
      seen += counts[i]!;
      if (seen > rank) return values[i]!;
    }
    return values[values.length - 1]!;
  }

  /** Values in ascending order with their counts: equal counts give equal JSON, however they were built. */
  toJSON(): DistinctValuesJson {
    const slots: number[] = [];
    for (let slot = 0; slot < this.used.length; slot++) if (this.used[slot] === 1) slots.push(slot);
    slots.sort((a, b) => this.keys[a]! - this.keys[b]!);
    return { values: slots.map((slot) => this.keys[slot]!), counts: slots.map((slot) => this.counts[slot]!) };
  }

  /**
   * Re-creates counts from {@link toJSON} output. Throws `STATS_INVALID_JSON` for anything else
   * (unsorted or repeated values, more than {@link MAX_DISTINCT_VALUES}, lengths that differ).
   */
  static fromJSON(json: unknown): DistinctValueCounts {
    const parsed = distinctValuesJsonSchema.safeParse(json);
    const invalid = (problem: string): StatsError => new StatsError('STATS_INVALID_JSON', `Invalid distinct value counts JSON: ${problem}`);
    if (!parsed.success) throw invalid(z.prettifyError(parsed.error));
    const { values, counts } = parsed.data;
    if (values.length !== counts.length) throw invalid(`${values.length} values but ${counts.length} counts`);
    const restored = new DistinctValueCounts();
    for (let i = 0; i < values.length; i++) {
      if (i > 0 && !(values[i - 1]! < values[i]!)) throw invalid(`values must be strictly ascending (at index ${i})`);
      // + 0: a stored −0 is the same value as 0, as when adding.
      restored.increment(values[i]! + 0, counts[i]!);
    }
    return restored;
  }

  private increment(value: number, count: number): boolean {
    const slot = this.slotOf(value);
    if (this.used[slot] === 1) {
      this.counts[slot] = this.counts[slot]! + count;
    } else {
      if (this.distinct >= MAX_DISTINCT_VALUES) return false;
      if (2 * (this.distinct + 1) > this.keys.length) {
        this.grow();
        return this.increment(value, count);
      }
      this.used[slot] = 1;
      this.keys[slot] = value;
      this.counts[slot] = count;
      this.distinct++;
    }
    this.total += count;
    return true;
  }

  /** The slot holding `value`, or the empty slot where it would go (linear probing; the table is at most half full). */
  private slotOf(value: number): number {
    bits[0] = value;
    const mask = this.keys.length - 1;
    // murmur3's finalizer over both words: integers differ only in the high word, fractions mostly in the low one.
    let hash = words[0]! ^ Math.imul(words[1]!, 0x9e3779b1);
    hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
    hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
    let slot = hash ^ (hash >>> 16);
    for (slot &= mask; this.used[slot] === 1 && this.keys[slot] !== value; slot = (slot + 1) & mask);
    return slot;
  }

  private grow(): void {
    const { keys, counts, used } = this;
    this.keys = new Float64Array(keys.length * 2);
    this.counts = new Float64Array(keys.length * 2);
    this.used = new Uint8Array(keys.length * 2);
    for (let slot = 0; slot < keys.length; slot++) {
      if (used[slot] !== 1) continue;
      const target = this.slotOf(keys[slot]!);
      this.used[target] = 1;
      this.keys[target] = keys[slot]!;
      this.counts[target] = counts[slot]!;
    }
  }
}
