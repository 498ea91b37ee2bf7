import { z } from 'zod';
import { StatsError } from './errors.js';
import {
  FeatureStatsAccumulator,
  featureStatsJsonSchema,
  type FeatureStatsJson,
  type NumericFeatureStatsSummary,
} from './feature-stats.js';
import {
  resolveQuantileSketchOptions,
  sameQuantileSketchOptions,
  type QuantileSketchOptions,
  type ResolvedQuantileSketchOptions,
} from './quantile-sketch.js';

/** Statistics of an image or video feature: only how many frames (steps) it has. */
export interface MediaFeatureStatsSummary {
  count: number;
}

/** Statistics of a dataset version, by feature name (sorted). Numeric features have `mean`; media features only `count`. */
export type DatasetStatsSummary = Record<string, NumericFeatureStatsSummary | MediaFeatureStatsSummary>;

/** One feature in {@link DatasetStatsJson}. */
export type DatasetFeatureStatsJson =
  ({ name: string; kind: 'numeric' } & FeatureStatsJson) | { name: string; kind: 'media'; count: number };

/** The serialized form of a {@link DatasetStatsAccumulator} (see README.md); features sorted by name. */
export interface DatasetStatsJson {
  version: 1;
  features: DatasetFeatureStatsJson[];
}

/** zod schema of {@link DatasetStatsJson} (structure only; `DatasetStatsAccumulator.fromJSON` checks the rest). */
export const datasetStatsJsonSchema = z.object({
  version: z.literal(1),
  features: z.array(
    z.discriminatedUnion('kind', [
      featureStatsJsonSchema.extend({ name: z.string(), kind: z.literal('numeric') }),
      z.object({ name: z.string(), kind: z.literal('media'), count: z.int().nonnegative() }),
    ]),
  ),
});

/** A media feature's running frame count; an object so the map holds one kind of value per name. */
interface MediaCounter {
  count: number;
}

/**
 * Mergeable statistics of every feature of a dataset version: a {@link FeatureStatsAccumulator}
 * per numeric feature, a frame count per image/video feature.
 *
 * ```ts
 * const upload = new DatasetStatsAccumulator();
 * for await (const episode of episodes) {
 *   upload.numeric('observation.state', 7).addColumn(values, episode.length);
 *   upload.addMediaFrames('observation.images.top', episode.length);
 * }
 * const next = DatasetStatsAccumulator.fromJSON(previousVersionJson);
 * next.merge(upload);
 * ```
 */
export class DatasetStatsAccumulator {
  /** Sketch options given to new numeric features. */
  readonly options: ResolvedQuantileSketchOptions;
  private readonly numericFeatures = new Map<string, FeatureStatsAccumulator>();
  private readonly mediaFeatures = new Map<string, MediaCounter>();

  constructor(options: QuantileSketchOptions = {}) {
    this.options = resolveQuantileSketchOptions(options);
  }

  /**
   * The accumulator of a numeric feature, created on first use. Throws `STATS_SHAPE_MISMATCH` when
   * the feature exists with another number of components, `STATS_FEATURE_KIND_MISMATCH` when it is
   * a media feature.
   */
  numeric(name: string, components: number): FeatureStatsAccumulator {
    this.assertKind(name, 'numeric');
    const existing = this.numericFeatures.get(name);
    if (existing !== undefined) {
      if (existing.components !== components) {
        throw new StatsError('STATS_SHAPE_MISMATCH', `Feature ${name} has ${existing.components} components, got ${components}`, {
          field: name,
        });
      }
      return existing;
    }
    const created = new FeatureStatsAccumulator(components, { ...this.options, label: name });
    this.numericFeatures.set(name, created);
    return created;
  }

  /** Counts `frames` more frames of an image or video feature (created on first use). */
  addMediaFrames(name: string, frames: number): void {
    if (!Number.isSafeInteger(frames) || frames < 0) {
      throw new StatsError('STATS_INVALID_ARGUMENT', `frames must be a non-negative integer, got ${frames}`, { field: name });
    }
    this.media(name).count += frames;
  }

  /** Feature names, sorted. */
  featureNames(): string[] {
    return [...this.numericFeatures.keys(), ...this.mediaFeatures.keys()].sort(compareNames);
  }

  /**
   * Adds another accumulator's statistics, feature by feature; features only in `other` are
   * copied. Checks every feature before changing anything, so a failed merge leaves this
   * accumulator as it was. Throws as {@link FeatureStatsAccumulator.merge} and
   * `STATS_FEATURE_KIND_MISMATCH`.
   */
  merge(other: DatasetStatsAccumulator): void {
    for (const [name, feature] of other.numericFeatures) {
      this.assertKind(name, 'numeric');
      const mine = this.numericFeatures.get(name);
      if (mine !== undefined && mine.components !== feature.components) {
        throw new StatsError(
          'STATS_SHAPE_MISMATCH',
          `Feature ${name} has ${mine.components} components here, ${feature.components} in the other`,
          {
            field: name,
          },
        );
      }
      if (mine !== undefined && !sameQuantileSketchOptions(mine.options, feature.options)) {
        throw new StatsError('STATS_INCOMPATIBLE_OPTIONS', `Feature ${name} was accumulated with different sketch options`, {
          field: name,
        });
      }
    }
    for (const name of other.mediaFeatures.keys()) this.assertKind(name, 'media');
    // Snapshots first, so that merging an accumulator into itself doubles it.
    const numericEntries = [...other.numericFeatures];
    const mediaEntries = [...other.mediaFeatures].map(([name, counter]): [string, number] => [name, counter.count]);
    for (const [name, feature] of numericEntries) {
      const mine = this.numericFeatures.get(name);
      if (mine === undefined) this.numericFeatures.set(name, FeatureStatsAccumulator.fromJSON(feature.toJSON(), { label: name }));
      else mine.merge(feature);
    }
    for (const [name, count] of mediaEntries) this.media(name).count += count;
  }

  /** Statistics of every feature, keyed by name in sorted order. */
  summary(): DatasetStatsSummary {
    return Object.fromEntries(
      this.featureNames().map((name) => {
        const numeric = this.numericFeatures.get(name);
        return [name, numeric === undefined ? { count: this.mediaFeatures.get(name)?.count ?? 0 } : numeric.summary()];
      }),
    );
  }

  /** A deterministic JSON form (features sorted by name) that {@link fromJSON} restores exactly. */
  toJSON(): DatasetStatsJson {
    return {
      version: 1,
      features: this.featureNames().map((name): DatasetFeatureStatsJson => {
        const numeric = this.numericFeatures.get(name);
        if (numeric !== undefined) return { name, kind: 'numeric', ...numeric.toJSON() };
        return { name, kind: 'media', count: this.mediaFeatures.get(name)?.count ?? 0 };
      }),
    };
  }

  /**
   * Re-creates an accumulator from {@link toJSON} output, e.g. the previous version's statistics
   * from the blob store. Throws `STATS_INVALID_JSON` for anything else (duplicate names included).
   * `options` apply to numeric features added later; they default to those of the stored features.
   */
  static fromJSON(json: unknown, options?: QuantileSketchOptions): DatasetStatsAccumulator {
    const parsed = datasetStatsJsonSchema.safeParse(json);
    if (!parsed.success) throw new StatsError('STATS_INVALID_JSON', `Invalid dataset statistics JSON: ${z.prettifyError(parsed.error)}`);
    const numericFeatures: Array<[string, FeatureStatsAccumulator]> = [];
    const mediaFeatures: Array<[string, number]> = [];
    const seen = new Set<string>();
    for (const feature of parsed.data.features) {
      if (seen.has(feature.name))
        throw new StatsError('STATS_INVALID_JSON', `Invalid dataset statistics JSON: feature ${feature.name} appears twice`);
      seen.add(feature.name);
      if (feature.kind === 'media') mediaFeatures.push([feature.name, feature.count]);
      else numericFeatures.push([feature.name, FeatureStatsAccumulator.fromJSON(feature, { label: feature.name })]);
    }
    const accumulator = new DatasetStatsAccumulator(options ?? numericFeatures[0]?.[1].options ?? {});
    for (const [name, feature] of numericFeatures) accumulator.numericFeatures.set(name, feature);
    for (const [name, count] of mediaFeatures) accumulator.mediaFeatures.set(name, { count });
    return accumulator;
  }

  private media(name: string): MediaCounter {
    this.assertKind(name, 'media');
    let counter = this.mediaFeatures.get(name);
    if (counter === undefined) {
      counter = { count: 0 };
      this.mediaFeatures.set(name, counter);
    }
    return counter;
  }

  private assertKind(name: string, kind: 'numeric' | 'media'): void {
    const clash = kind === 'numeric' ? this.mediaFeatures.has(name) : this.numericFeatures.has(name);
    if (clash) {
      throw new StatsError(
        'STATS_FEATURE_KIND_MISMATCH',
        `Feature ${name} is ${kind === 'numeric' ? 'an image/video' : 'a numeric'} feature, not ${kind === 'numeric' ? 'a numeric' : 'an image/video'} one`,
        { field: name },
      );
    }
  }
}

/** Code-unit order, not locale order: the JSON must not depend on the machine's locale. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
