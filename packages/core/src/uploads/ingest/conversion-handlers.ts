import type { DatasetStatsJson, FormatName, ImportIssue } from '@kura/formats';
import type { FeatureSpec } from '@kura/schema';
import type { ConvertedShard } from './upload-conversion.js';

export type { ConvertedShard } from './upload-conversion.js';

// What a jailed conversion hands its parent (jailed-conversion.ts, arriving-conversion.ts).

export interface ConversionLimits {
  memoryBytes: number;
  cpuSeconds: number;
  wallClockMs: number;
  /** Largest file the child may write: an extracted file or a shard. */
  fileSizeBytes: number;
}

/** What the parent does with the child's news, in the order it comes. */
export interface ConversionHandlers {
  format(format: FormatName): Promise<void>;
  warning(issue: ImportIssue): void;
  progress(episodes: number, expected: number | null): Promise<void>;
  /** Takes the shard file (and the videos its episodes first used) into the blob store. */
  shard(shard: ConvertedShard): Promise<void>;
}

export interface ConversionOutcome {
  format: FormatName;
  features: FeatureSpec;
  fps: number;
  steps: number;
  episodes: number;
  stats: DatasetStatsJson;
}
