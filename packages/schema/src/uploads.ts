import { z } from 'zod';
import type { ImportIssue } from './errors.js';
import { formatNames } from './formats.js';
import { featureNamePattern } from './features.js';
import type { McapInspection } from './mcap.js';
import { listQuerySchema } from './pagination.js';
import { findUnstorableText } from './text.js';

export const uploadStatuses = ['uploading', 'received', 'processing', 'published', 'failed', 'needs_mapping'] as const;
export type UploadStatus = (typeof uploadStatuses)[number];
/**
 * Where an upload ends: `published`, `failed`, or `needs_mapping` (a ROS 2 bag that came without a
 * mapping: its `inspection` lists the topics and suggests one; upload again with `options.mapping`).
 */
export const finishedUploadStatuses: readonly UploadStatus[] = ['published', 'failed', 'needs_mapping'];
export const isFinishedUpload = (status: UploadStatus): boolean => finishedUploadStatuses.includes(status);
/** The error code of an upload that ended `needs_mapping`; its details hold the inspection. */
export const MAPPING_REQUIRED = 'MAPPING_REQUIRED';

/**
 * A feature-name map; `__proto__` (which a plain object cannot hold as a key: zod would drop it without
 * a word) and text Postgres cannot store are refused rather than lost.
 */
export const featureNameMapSchema = z
  .unknown()
  .superRefine((value, context) => {
    if (value !== null && typeof value === 'object' && Object.hasOwn(value, '__proto__'))
      context.addIssue({ code: 'custom', message: 'a feature may not be named "__proto__"' });
    const unstorable = findUnstorableText(value);
    if (unstorable) context.addIssue({ code: 'custom', message: unstorable.problem, path: unstorable.path });
  })
  .pipe(z.record(z.string().min(1), z.string().regex(/^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/, 'a feature name')));

/** `?featureMap={"observation.images.top":"observation.images.high"}`: the map as JSON text. */
export const featureMapQuerySchema = z
  .string()
  .transform((text, context) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      context.addIssue({
        code: 'custom',
        message: 'featureMap must be a JSON object, e.g. {"observation.images.top":"observation.images.high"}',
      });
      return z.NEVER;
    }
  })
  .pipe(featureNameMapSchema);

const featureNameSchema = z.string().regex(featureNamePattern, 'a feature name, e.g. observation.images.front');
/** `?dropFeatures=observation.images.front,observation.images.wrist`: features the upload leaves out. */
export const dropFeaturesQuerySchema = z
  .string()
  .transform((text) => text.split(',').map((name) => name.trim()))
  .pipe(z.array(featureNameSchema).min(1).max(1000));

/**
 * The format's options for one upload: a JSON object, checked here for what Postgres cannot store and
 * then, by the api, against the format's own options schema (its registration in @kura/formats).
 */
export const uploadOptionsSchema = z
  .unknown()
  .superRefine((value, context) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      context.addIssue({ code: 'custom', message: 'options must be a JSON object, e.g. {}' });
      return;
    }
    const unstorable = findUnstorableText(value);
    if (unstorable) context.addIssue({ code: 'custom', message: unstorable.problem, path: unstorable.path });
  })
  // Kept as parsed (not rebuilt, which would turn a `__proto__` key into a prototype): the format's
  // strict options schema then sees every key.
  .transform((value) => value as Record<string, unknown>);

/** `?options={"topics":[…]}`: the options as JSON text. */
export const uploadOptionsQuerySchema = z
  .string()
  .transform((text, context) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      context.addIssue({ code: 'custom', message: 'options must be a JSON object, e.g. {}' });
      return z.NEVER;
    }
  })
  .pipe(uploadOptionsSchema);

/** `POST /v1/datasets/:id/uploads` query. */
export const uploadQuerySchema = z.strictObject({
  format: z.enum(formatNames).optional(),
  fileName: z.string().min(1).max(255).optional(),
  featureMap: featureMapQuerySchema.optional(),
  dropFeatures: dropFeaturesQuerySchema.optional(),
  options: uploadOptionsQuerySchema.optional(),
});
export type UploadQuery = z.infer<typeof uploadQuerySchema>;

/** A JSON body `{ multipart: true, bytes, sha256 }` to `POST /v1/datasets/:id/uploads`: starts a resumable upload. */
export const startMultipartRequestSchema = z.strictObject({
  multipart: z.literal(true),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex digits'),
  partSize: z.number().int().positive().optional(),
  fileName: z.string().min(1).max(255).optional(),
  format: z.enum(formatNames).optional(),
  featureMap: featureNameMapSchema.optional(),
  dropFeatures: z.array(featureNameSchema).min(1).max(1000).optional(),
  options: uploadOptionsSchema.optional(),
});

/** `POST /v1/uploads/:id/complete` body: each part's ETag. */
export const completeMultipartRequestSchema = z.strictObject({
  parts: z
    .array(z.strictObject({ partNumber: z.number().int().positive(), etag: z.string().min(1).max(200) }))
    .min(1)
    .max(10_000),
});
export type CompleteMultipartRequest = z.infer<typeof completeMultipartRequestSchema>;

/** `GET /v1/datasets/:id/uploads` query. */
export const uploadListQuerySchema = listQuerySchema.extend({ status: z.enum(uploadStatuses).optional() });
export type UploadListQuery = z.infer<typeof uploadListQuerySchema>;

/** An upload as the API shows it (API.md). */
export interface UploadView {
  id: string;
  datasetId: string;
  status: UploadStatus;
  progress: number;
  format: string | null;
  /** The format's options for this upload (`?options=`), null when none were given. */
  options: Record<string, unknown> | null;
  fileName: string | null;
  sha256: string | null;
  bytes: number;
  episodeCount: number | null;
  stepCount: number | null;
  version: number | null;
  errors: ImportIssue[];
  warnings: ImportIssue[];
  /** When `needs_mapping`: the bag's topics and a suggested mapping (docs/mcap.md); else null. */
  inspection: McapInspection | null;
  createdAt: string;
  finishedAt: string | null;
}

/** Where to send each part of a resumable upload. */
export interface MultipartPlan {
  upload: UploadView;
  partSize: number;
  /** PUT each part's bytes to its url; `viaApi` urls are relative to the API and need the API key, presigned ones need nothing. */
  parts: Array<{ partNumber: number; offset: number; bytes: number; url: string; viaApi: boolean }>;
  /** Then POST the parts' ETags here. */
  completeUrl: string;
}
