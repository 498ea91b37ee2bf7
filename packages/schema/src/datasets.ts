import { z } from 'zod';
import { featureSpecSchema } from './features.js';

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
