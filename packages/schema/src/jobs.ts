import { z } from 'zod';

/**
 * The queues background jobs wait in, each with how many of its jobs one consuming process runs at
 * once. A queue's jobs never wait for another queue's, so a slow kind of job (an ingest, an
 * evaluation) cannot starve the others. KURA_JOB_CONCURRENCY sets every queue's concurrency and
 * KURA_JOB_CONCURRENCY_<QUEUE> (e.g. KURA_JOB_CONCURRENCY_INGEST) one queue's; see README,
 * "Configuration". With BullMQ each is a BullMQ queue named `<KURA_QUEUE_NAME>.<queue>`.
 */
export const jobQueues = {
  /** Short work: deleting unreferenced blobs, validating a policy bundle. */
  default: { concurrency: 2 },
  /** Parsing uploads into shards (a jailed child of up to KURA_INGEST_MEMORY_MB each). */
  ingest: { concurrency: 2 },
  /** Running policies over held-out episodes (one policy host each). */
  evaluations: { concurrency: 2 },
  /** Training runs: long, and as large as their budget; one at a time per worker unless told. */
  training: { concurrency: 1 },
} as const satisfies Record<string, { concurrency: number }>;

export type JobQueueName = keyof typeof jobQueues;
export const jobQueueNames = Object.keys(jobQueues) as JobQueueName[];

/**
 * Every background job Kura runs: its name, payload schema and queue. A process that consumes jobs
 * refuses to start when one of these has no handler.
 */
export const jobDefinitions = {
  /** Deletes a blob that nothing references any more (e.g. a replaced body model). */
  'blobs.delete': { payload: z.strictObject({ key: z.string().min(1) }), queue: 'default' },
  /** Turns an upload into Arrow shards and publishes the next dataset version. */
  'uploads.ingest': { payload: z.strictObject({ uploadId: z.string().min(1) }), queue: 'ingest' },
  /** Checks a policy bundle in the sandbox: ready or rejected (at most KURA_POLICY_VALIDATION_TIMEOUT_S). */
  'policies.validate': { payload: z.strictObject({ policyId: z.string().min(1) }), queue: 'default' },
  /** Runs a policy over a dataset version's held-out episodes and records its metrics. */
  'policies.evaluate': { payload: z.strictObject({ evaluationId: z.string().min(1) }), queue: 'evaluations' },
  /** Checks a trainer bundle: manifest, entry, a syntax check in the jail; ready or rejected. */
  'trainers.validate': { payload: z.strictObject({ trainerId: z.string().min(1) }), queue: 'default' },
  /** Runs a training: data hand-off, the trainer in the jail, its policy registered and evaluated. */
  'trainings.run': { payload: z.strictObject({ trainingId: z.string().min(1) }), queue: 'training' },
} as const satisfies Record<string, { payload: z.ZodType; queue: JobQueueName }>;

export type JobName = keyof typeof jobDefinitions;
export type JobPayload<N extends JobName> = z.infer<(typeof jobDefinitions)[N]['payload']>;
export const jobNames = Object.keys(jobDefinitions) as JobName[];

/** The payload schema of each job, by name. */
export const jobPayloadSchemas = Object.fromEntries(jobNames.map((name) => [name, jobDefinitions[name].payload])) as {
  [N in JobName]: (typeof jobDefinitions)[N]['payload'];
};

/** The queue a job of this name goes to; a name no longer defined (an old row) goes to `default`. */
export function jobQueueOf(name: string): JobQueueName {
  return Object.hasOwn(jobDefinitions, name) ? jobDefinitions[name as JobName].queue : 'default';
}
