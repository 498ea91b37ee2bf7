import { z } from 'zod';
import { listQuerySchema } from './pagination.js';

/** Inclusive ranges of episode indices, ascending and not overlapping: "0-9,12" → [[0, 9], [12, 12]]. */
export type EpisodeRanges = Array<[number, number]>;

const MAX_EPISODE_INDEX = 2 ** 31 - 1;

/**
 * Parses "0-9,12". Returns a message instead of throwing, so that callers can report it at their
 * field. Overlapping or unordered ranges are merged (the selection is a set).
 */
export function parseEpisodeRanges(text: string): EpisodeRanges | { error: string } {
  const ranges: EpisodeRanges = [];
  for (const part of text.split(',')) {
    const match = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!match) return { error: `"${part}" is not an episode index or a range like 0-9` };
    const start = Number(match[1]);
    const end = match[2] === undefined ? start : Number(match[2]);
    if (start > MAX_EPISODE_INDEX || end > MAX_EPISODE_INDEX) return { error: `"${part}" is past the largest episode index` };
    if (end < start) return { error: `range "${part}" runs backwards (write ${end}-${start})` };
    ranges.push([start, end]);
  }
  ranges.sort((first, second) => first[0] - second[0]);
  const merged: EpisodeRanges = [];
  for (const range of ranges) {
    const last = merged[merged.length - 1];
    if (last && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1]);
    else merged.push([range[0], range[1]]);
  }
  return merged;
}

/** Ascending episode indices as ranges text: [0,1,2,5] → "0-2,5". */
export function formatEpisodeRanges(indices: Iterable<number>): string {
  const parts: string[] = [];
  let start: number | undefined;
  let previous = -2;
  const flush = () => {
    if (start !== undefined) parts.push(start === previous ? `${start}` : `${start}-${previous}`);
  };
  for (const index of indices) {
    if (index !== previous + 1) {
      flush();
      start = index;
    }
    previous = index;
  }
  flush();
  return parts.join(',');
}

/** Every index in the ranges, ascending. */
export function* episodeIndicesOf(ranges: EpisodeRanges): Generator<number> {
  for (const [start, end] of ranges) for (let index = start; index <= end; index++) yield index;
}

export const episodeRangesSchema = z
  .string()
  .min(1)
  .max(100_000)
  .transform((text, context) => {
    const parsed = parseEpisodeRanges(text);
    if ('error' in parsed) {
      context.addIssue({ code: 'custom', message: parsed.error });
      return z.NEVER;
    }
    return parsed;
  });

const booleanQuery = z.enum(['true', 'false']).transform((value) => value === 'true');

/** Filters shared by the episode list, slices and training runs. */
export const episodeFilterShape = {
  task: z.string().min(1).max(1000).optional(),
  success: z.boolean().optional(),
  minLength: z.number().int().min(0).optional(),
  maxLength: z.number().int().min(0).optional(),
  uploadId: z.string().min(1).max(100).optional(),
};

/** `GET /v1/datasets/:id/episodes` query. */
export const episodeQuerySchema = listQuerySchema
  .extend({
    version: z.coerce.number().int().positive().optional(),
    episodes: episodeRangesSchema.optional(),
    ...episodeFilterShape,
    success: booleanQuery.optional(),
    minLength: z.coerce.number().int().min(0).optional(),
    maxLength: z.coerce.number().int().min(0).optional(),
  })
  .refine((query) => query.minLength === undefined || query.maxLength === undefined || query.minLength <= query.maxLength, {
    message: 'minLength is larger than maxLength',
    path: ['minLength'],
  });
export type EpisodeQuery = z.infer<typeof episodeQuerySchema>;

/** A slice's output column: a name, and where each source dataset keeps it when the name differs. */
export const sliceColumnSchema = z.union([
  z.string().min(1).max(200),
  z.strictObject({ name: z.string().min(1).max(200), from: z.record(z.string().min(1).max(100), z.string().min(1).max(200)) }),
]);

export const sliceStepsSchema = z
  .strictObject({
    start: z.number().int().min(0).optional(),
    stop: z.number().int().min(0).optional(),
    stride: z.number().int().min(1).max(1_000_000).optional(),
  })
  .refine((steps) => steps.start === undefined || steps.stop === undefined || steps.start < steps.stop, {
    message: 'steps.start must be below steps.stop',
    path: ['start'],
  });

/** A dataset a slice (or a training run) reads: a version (the latest when none) and a weight. */
export const sliceSourceSchema = z.strictObject({
  datasetId: z.string().min(1).max(100),
  version: z.number().int().positive().optional(),
  weight: z.number().positive().finite().max(1e6).optional(),
});

/** `POST /v1/slices` body. */
export const createSliceRequestSchema = z
  .strictObject({
    sources: z.array(sliceSourceSchema).min(1).max(64),
    episodes: episodeRangesSchema.optional(),
    ...episodeFilterShape,
    columns: z.array(sliceColumnSchema).min(1).max(1000).optional(),
    steps: sliceStepsSchema.optional(),
    sample: z
      .strictObject({
        episodes: z.number().int().min(1).max(10_000_000),
        seed: z
          .number()
          .int()
          .min(0)
          .max(2 ** 32 - 1)
          .default(0),
      })
      .optional(),
  })
  .refine((request) => request.minLength === undefined || request.maxLength === undefined || request.minLength <= request.maxLength, {
    message: 'minLength is larger than maxLength',
    path: ['minLength'],
  });
export type CreateSliceRequest = z.infer<typeof createSliceRequestSchema>;

/** The download formats of `GET /v1/slices/:id/data`. */
export const sliceFormats = ['arrow', 'arrow-file', 'parquet', 'ndjson', 'lerobot', 'lerobot-v2.1', 'mcap'] as const;
export type SliceFormat = (typeof sliceFormats)[number];
/** The file extension of each download format: the server names its downloads with it, the CLI reads `--out` by it. */
export const sliceFormatExtensions: Readonly<Record<SliceFormat, string>> = {
  arrow: 'arrows',
  'arrow-file': 'arrow',
  parquet: 'parquet',
  ndjson: 'ndjson',
  lerobot: 'tar',
  'lerobot-v2.1': 'tar',
  mcap: 'mcap',
};
export const sliceDataQuerySchema = z.strictObject({ format: z.enum(sliceFormats).default('arrow') });

export const sliceCreateQuerySchema = z.strictObject({ stats: booleanQuery.optional() });

/** `{ start, stop, stride }` inside each episode (Python slice semantics, stop exclusive). */
export interface SliceSteps {
  start: number;
  stop: number | null;
  stride: number;
}

/** A slice as the API shows it. */
export interface SliceView {
  id: string;
  episodeCount: number;
  stepCount: number;
  sources: Array<{ datasetId: string; version: number; weight: number; episodeCount: number; stepCount: number; episodes: string }>;
  columns: string[];
  steps: SliceSteps | null;
  /** Episodes the request matched that the slice leaves out, and why. */
  withheld: { heldOut: number; grantRequired: number };
  createdAt: string;
}

/** One step line of a Kura NDJSON export (what `GET /v1/slices/:id/data?format=ndjson` sends). */
export interface StepLine {
  dataset?: string;
  episode?: number;
  /** The episode's id in the data it was uploaded from (`29`, `demo_7`…). */
  sourceEpisode?: string;
  step?: number;
  timestamp?: number;
  observation?: Record<string, unknown>;
  action?: unknown;
  reward?: number;
  discount?: number;
  isTerminal?: boolean;
  language?: string;
  features?: Record<string, unknown>;
}
