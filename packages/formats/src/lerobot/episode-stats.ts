import { decodeRgb } from '../image-decode.js';

/** One feature's statistics over one episode, shaped as LeRobot v2.1 writes them in `meta/episodes_stats.jsonl`. */
export interface LerobotFeatureStats {
  min: NestedNumbers;
  max: NestedNumbers;
  mean: NestedNumbers;
  std: NestedNumbers;
  count: [number];
}

export type NestedNumbers = number[] | NestedNumbers[];

/**
 * Per-component min/max/mean/std (population, as numpy's `np.std`) of `rows` steps of
 * `components` values each (row-major), reshaped to the feature's shape (`[]` and `[1]` become
 * `[1]`, as LeRobot reduces a scalar column with keepdims). NaN values (Kura's "no reward") are left
 * out; a component without values is reported as NaN, so all components keep their place.
 */
export function numericStats(values: ArrayLike<number>, rows: number, shape: readonly number[]): LerobotFeatureStats | undefined {
  const components = shape.reduce((product, dimension) => product * dimension, 1);
  const min: number[] = [];
  const max: number[] = [];
  const mean: number[] = [];
  const std: number[] = [];
  let counted = 0;
  for (let component = 0; component < components; component++) {
    let low = Infinity;
    let high = -Infinity;
    let sum = 0;
    let count = 0;
    for (let row = 0; row < rows; row++) {
      const value = values[row * components + component]!;
      if (Number.isNaN(value)) continue;
      low = Math.min(low, value);
      high = Math.max(high, value);
      sum += value;
      count++;
    }
    const average = sum / count;
    // Two passes: the episode is in memory anyway, and it avoids the cancellation of sum-of-squares.
    let squares = 0;
    for (let row = 0; row < rows; row++) {
      const value = values[row * components + component]!;
      if (!Number.isNaN(value)) squares += (value - average) ** 2;
    }
    min.push(count ? low : NaN);
    max.push(count ? high : NaN);
    mean.push(average);
    std.push(Math.sqrt(squares / count));
    counted = Math.max(counted, count);
  }
  if (counted === 0) return undefined;
  const outShape = shape.length === 0 ? [1] : shape;
  return {
    min: reshape(min, outShape),
    max: reshape(max, outShape),
    mean: reshape(mean, outShape),
    std: reshape(std, outShape),
    count: [counted],
  };
}

function reshape(flat: number[], shape: readonly number[]): NestedNumbers {
  if (shape.length <= 1) return flat;
  const [first = 1, ...rest] = shape;
  const size = flat.length / first;
  return Array.from({ length: first }, (_, index) => reshape(flat.slice(index * size, (index + 1) * size), rest));
}

/**
 * Image statistics as LeRobot v2.1's `compute_episode_stats` makes them: a sample of the frames
 * (`sample_indices`: about n^0.75 of them, at least 100 or all, evenly spaced), each decoded to RGB
 * and, when its larger side is ≥ 300 pixels, subsampled every ⌊side/150⌋ pixels
 * (`auto_downsample_height_width`); then per channel min/max/mean/std over all sampled pixels,
 * divided by 255, each shaped `[3, 1, 1]`; `count` is the number of sampled frames.
 * Undefined when a frame cannot be decoded (an unusual PNG bit depth): the stats are then left out.
 */
export function imageStats(frames: readonly Uint8Array[]): LerobotFeatureStats | undefined {
  if (frames.length === 0) return undefined;
  const low = [255, 255, 255];
  const high = [0, 0, 0];
  const sums = [0, 0, 0];
  const squares = [0, 0, 0];
  let pixels = 0;
  const samples = sampleIndices(frames.length);
  for (const index of samples) {
    const image = decodeRgb(frames[index]!);
    if (!image) return undefined;
    const { width, height, rgb } = image;
    const factor = Math.max(width, height) < 300 ? 1 : Math.trunc((width > height ? width : height) / 150);
    for (let y = 0; y < height; y += factor) {
      for (let x = 0; x < width; x += factor) {
        const at = (y * width + x) * 3;
        for (let channel = 0; channel < 3; channel++) {
          const value = rgb[at + channel]!;
          if (value < low[channel]!) low[channel] = value;
          if (value > high[channel]!) high[channel] = value;
          sums[channel]! += value;
          squares[channel]! += value * value;
        }
        pixels++;
      }
    }
  }
  // Pixel values are integers, so these sums are exact in float64.
  const mean = sums.map((sum) => sum / pixels);
  const std = squares.map((square, channel) => Math.sqrt(Math.max(0, square / pixels - mean[channel]! ** 2)));
  const perChannel = (values: number[]): NestedNumbers => values.map((value) => [[value / 255]]);
  return { min: perChannel(low), max: perChannel(high), mean: perChannel(mean), std: perChannel(std), count: [samples.length] };
}

/** LeRobot's `sample_indices`: `np.round(np.linspace(0, n − 1, estimate_num_samples(n)))`. */
export function sampleIndices(length: number): number[] {
  const wanted = Math.max(Math.min(100, length), Math.min(Math.trunc(length ** 0.75), 10_000));
  if (wanted === 1) return [0];
  const step = (length - 1) / (wanted - 1);
  return Array.from({ length: wanted }, (_, index) => (index === wanted - 1 ? length - 1 : roundHalfEven(index * step)));
}

/** numpy rounds halves to even. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}
