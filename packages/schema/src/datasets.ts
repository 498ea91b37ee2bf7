import { z } from 'zod';
import { featureSpecSchema, type FeatureSpec } from './features.js';
import { listQuerySchema } from './pagination.js';

export const datasetAccessLevels = ['public', 'sample', 'private'] as const;
/** public: anyone; sample: a fixed 10 % of episodes public, the rest by grant; private: owner, grantees, admins. */
export const datasetAccessSchema = z.enum(datasetAccessLevels);
export type DatasetAccess = z.infer<typeof datasetAccessSchema>;

/** An SPDX license id or expression, e.g. `MIT`, `CC-BY-4.0`, `Apache-2.0 OR MIT`. */
export const spdxLicenseSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(
    /^(?:\(?[A-Za-z0-9.+-]+\)?)(?:\s+(?:AND|OR|WITH)\s+\(?[A-Za-z0-9.+-]+\)?)*$/,
    'an SPDX license id or expression, e.g. "CC-BY-4.0"',
  );

export const createDatasetRequestSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.\-/]*$/, 'letters, digits and _ . - /, starting with a letter or digit'),
  robotId: z.string().min(1).max(100),
  access: datasetAccessSchema,
  features: featureSpecSchema.optional(),
  license: spdxLicenseSchema.optional(),
  description: z.string().max(10_000).optional(),
});
export type CreateDatasetRequest = z.infer<typeof createDatasetRequestSchema>;

/** `GET /v1/datasets` query. */
export const datasetListQuerySchema = listQuerySchema.extend({ robotId: z.string().min(1).max(100).optional() });
export type DatasetListQuery = z.infer<typeof datasetListQuerySchema>;

/** `POST /v1/datasets/:id/grants` body. */
export const grantRequestSchema = z.strictObject({ keyId: z.string().min(1).max(100) });
export type GrantRequest = z.infer<typeof grantRequestSchema>;

/** `GET /v1/datasets/:id/stats` query: the version (the latest when absent). */
export const datasetStatsQuerySchema = z.strictObject({ version: z.coerce.number().int().positive().optional() });
export type DatasetStatsQuery = z.infer<typeof datasetStatsQuerySchema>;

/** A dataset as the API shows it. */
export interface DatasetView {
  id: string;
  name: string;
  robotId: string;
  access: DatasetAccess;
  license: string | null;
  description: string | null;
  features: FeatureSpec | null;
  ownerKeyId: string;
  latestVersion: number;
  episodeCount: number;
  stepCount: number;
  createdAt: string;
}

export interface GrantView {
  datasetId: string;
  keyId: string;
  grantedBy: string;
  createdAt: string;
}

export interface VersionView {
  version: number;
  episodeCount: number;
  stepCount: number;
  uploadId: string;
  createdAt: string;
}

export interface EpisodeView {
  episodeIndex: number;
  /** The source's own id of the episode: `29` (LeRobot), `demo_7`, `episode_3.hdf5`, `<tfrecord file>#12`, an NDJSON `episode`. */
  sourceEpisode: string;
  length: number;
  task: string | null;
  success: boolean | null;
  uploadId: string;
  version: number;
  /** Kept for evaluation: slices of non-admin keys leave it out. */
  heldOut: boolean;
  /** In the public part of a `sample` dataset. */
  publicSample: boolean;
}
