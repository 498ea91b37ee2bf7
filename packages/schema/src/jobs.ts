import { z } from 'zod';

/**
 * Every background job Kura runs: its name and payload schema. A process that consumes jobs
 * refuses to start when one of these has no handler.
 */
export const jobPayloadSchemas = {
  /** Deletes a blob that nothing references any more (e.g. a replaced body model). */
  'blobs.delete': z.strictObject({ key: z.string().min(1) }),
  /** Turns an upload into Arrow shards and publishes the next dataset version. */
  'uploads.ingest': z.strictObject({ uploadId: z.string().min(1) }),
  /** Checks a policy bundle in the sandbox: ready or rejected. */
  'policies.validate': z.strictObject({ policyId: z.string().min(1) }),
  /** Runs a policy over a dataset version's held-out episodes and records its metrics. */
  'policies.evaluate': z.strictObject({ evaluationId: z.string().min(1) }),
} as const;

export type JobName = keyof typeof jobPayloadSchemas;
export type JobPayload<N extends JobName> = z.infer<(typeof jobPayloadSchemas)[N]>;
export const jobNames = Object.keys(jobPayloadSchemas) as JobName[];
