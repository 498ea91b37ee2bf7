import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { JailLevel } from '@kura/jail';
import { jobQueueNames, jobQueues, type JobQueueName } from '@kura/schema';

const booleanString = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');
const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const emptyAsUndefined = (value: unknown) => (value === '' ? undefined : value);
const optional = <T extends z.ZodType>(schema: T) => z.preprocess(emptyAsUndefined, schema.optional());

const postgresUrl = z
  .string()
  .url()
  .refine((url) => /^postgres(ql)?:\/\//.test(url), 'must start with postgres:// or postgresql://');
const redisUrl = z
  .string()
  .url()
  .refine((url) => /^rediss?:\/\//.test(url), 'must start with redis:// or rediss://');

const jobConcurrency = optional(positiveInt.max(256));
type QueueConcurrencyVariable = `KURA_JOB_CONCURRENCY_${Uppercase<JobQueueName>}`;
/** The variable that sets one job queue's concurrency: `KURA_JOB_CONCURRENCY_INGEST` for `ingest`. */
export const queueConcurrencyVariable = (queue: JobQueueName) => `KURA_JOB_CONCURRENCY_${queue.toUpperCase()}` as QueueConcurrencyVariable;
const queueConcurrencyVariables = Object.fromEntries(
  jobQueueNames.map((queue) => [queueConcurrencyVariable(queue), jobConcurrency]),
) as Record<QueueConcurrencyVariable, typeof jobConcurrency>;

/** A currency's minor-unit digits as ICU knows them (USD 2, JPY 0, BHD 3; 2 for a code it does not know). */
export function currencyDigits(code: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** Every environment variable Kura reads. Anything else in the environment is ignored. */
const environmentSchema = z.object({
  PORT: z.preprocess(emptyAsUndefined, port.default(8080)),
  HOST: z.preprocess(emptyAsUndefined, z.string().default('0.0.0.0')),
  KURA_DATA_DIR: z.preprocess(emptyAsUndefined, z.string().default('./data')),
  DATABASE_URL: optional(postgresUrl),
  KURA_EMBEDDED_PG_PORT: optional(port),
  REDIS_URL: optional(redisUrl),
  KURA_QUEUE_NAME: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .default('kura-jobs'),
  ),
  S3_ENDPOINT: optional(z.string().url()),
  S3_BUCKET: optional(z.string().min(3).max(63)),
  S3_REGION: z.preprocess(emptyAsUndefined, z.string().default('us-east-1')),
  S3_ACCESS_KEY_ID: optional(z.string()),
  S3_SECRET_ACCESS_KEY: optional(z.string()),
  S3_FORCE_PATH_STYLE: z.preprocess(emptyAsUndefined, booleanString.default(true)),
  KURA_ADMIN_KEY: optional(z.string().min(32, 'must be at least 32 characters')),
  KURA_RUN_JOBS: optional(booleanString),
  KURA_JOB_CONCURRENCY: jobConcurrency,
  KURA_JOB_ATTEMPTS: z.preprocess(emptyAsUndefined, positiveInt.max(100).default(5)),
  KURA_JOB_BACKOFF_MS: z.preprocess(emptyAsUndefined, positiveInt.default(1000)),
  KURA_JOB_MAX_DEATHS: z.preprocess(emptyAsUndefined, positiveInt.max(100).default(2)),
  KURA_JOB_LOCK_MS: z.preprocess(emptyAsUndefined, positiveInt.min(500).default(30_000)),
  KURA_JOB_OUTAGE_WAIT_MS: z.preprocess(emptyAsUndefined, positiveInt.default(15 * 60_000)),
  KURA_JOB_RECOVER_MS: z.preprocess(emptyAsUndefined, positiveInt.min(100).default(30_000)),
  KURA_JSON_BODY_LIMIT: z.preprocess(emptyAsUndefined, positiveInt.default(1024 * 1024)),
  KURA_BODY_MODEL_LIMIT: z.preprocess(emptyAsUndefined, positiveInt.default(10 * 1024 * 1024)),
  KURA_SHARD_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(32 * 1024 * 1024)),
  KURA_MAX_UPLOAD_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(100 * 1024 ** 3)),
  KURA_ARCHIVE_MAX_EXPANSION: z.preprocess(emptyAsUndefined, positiveInt.default(200)),
  KURA_ARCHIVE_MAX_EXPANDED_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(200 * 1024 ** 3)),
  KURA_SANDBOX: z.preprocess(emptyAsUndefined, z.enum(['auto', 'bwrap', 'process', 'unsafe-none']).default('auto')),
  KURA_INGEST_MEMORY_MB: z.preprocess(emptyAsUndefined, positiveInt.min(256).max(65_536).default(2048)),
  KURA_INGEST_TIMEOUT_S: z.preprocess(emptyAsUndefined, positiveInt.max(7 * 24 * 3600).default(3600)),
  KURA_INGEST_MAX_LINE_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(64 * 1024 ** 2)),
  KURA_INGEST_MAX_TENSOR_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(1024 ** 3)),
  KURA_INGEST_MAX_EXPANSION: z.preprocess(emptyAsUndefined, z.coerce.number().positive().default(100)),
  KURA_INGEST_DECODED_FLOOR_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(256 * 1024 ** 2)),
  KURA_INGEST_STEPS_PER_BYTE: z.preprocess(emptyAsUndefined, z.coerce.number().positive().default(1)),
  KURA_INGEST_STEPS_FLOOR: z.preprocess(emptyAsUndefined, positiveInt.default(100_000)),
  KURA_POLICY_MAX_BUNDLE_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(256 * 1024 * 1024)),
  KURA_POLICY_MEMORY_MB: z.preprocess(emptyAsUndefined, positiveInt.min(8).max(4096).default(128)),
  KURA_POLICY_CALL_TIMEOUT_MS: z.preprocess(emptyAsUndefined, positiveInt.max(60_000).default(50)),
  KURA_POLICY_MAX_MODEL_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(64 * 1024 * 1024)),
  KURA_POLICY_VALIDATION_TIMEOUT_S: z.preprocess(emptyAsUndefined, positiveInt.max(24 * 3600).default(60)),
  KURA_POLICY_HOSTS_MAX: z.preprocess(emptyAsUndefined, positiveInt.max(10_000).default(64)),
  KURA_POLICY_HOST_MEMORY_MB: z.preprocess(emptyAsUndefined, positiveInt.min(256).max(65_536).default(512)),
  KURA_POLICY_HOST_START_S: z.preprocess(emptyAsUndefined, positiveInt.max(3600).default(10)),
  KURA_POLICY_HOST_CPU_S: z.preprocess(emptyAsUndefined, positiveInt.default(24 * 3600)),
  KURA_POLICY_HOST_PROCESSES: z.preprocess(emptyAsUndefined, positiveInt.min(16).default(256)),
  KURA_PYTHON: z.preprocess(emptyAsUndefined, z.string().min(1).default('/usr/bin/python3')),
  KURA_PYTHON_MEMORY_MB: z.preprocess(emptyAsUndefined, positiveInt.min(256).max(262_144).default(2048)),
  KURA_PYTHON_START_S: z.preprocess(emptyAsUndefined, positiveInt.max(3600).default(60)),
  KURA_TRAINER_MAX_BUNDLE_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(64 * 1024 * 1024)),
  KURA_TRAINING_MAX_OUTPUT_BYTES: z.preprocess(emptyAsUndefined, positiveInt.default(512 * 1024 * 1024)),
  KURA_TRAINING_MAX_OUTPUT_FILES: z.preprocess(emptyAsUndefined, positiveInt.max(100_000).default(1000)),
  KURA_TRAINING_DIR: z.preprocess(emptyAsUndefined, z.string().min(1).optional()),
  KURA_TRAINING_PROCESSES: z.preprocess(emptyAsUndefined, positiveInt.min(16).default(64)),
  KURA_TRAINING_GPUS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^(all|none|\d{1,3}(,\d{1,3})*)$/, '"all", "none" or GPU numbers like "0,1"')
      .default('none'),
  ),
  KURA_EDGE_REPORT_MAX_AGE_DAYS: z.preprocess(emptyAsUndefined, positiveInt.max(3660).default(30)),
  KURA_CURRENCY: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[A-Z]{3}$/, 'an ISO 4217 currency code like "USD"')
      .default('USD'),
  ),
  KURA_SESSION_IDLE_S: z.preprocess(emptyAsUndefined, positiveInt.max(7 * 24 * 3600).default(300)),
  KURA_SHUTDOWN_TIMEOUT_MS: z.preprocess(emptyAsUndefined, positiveInt.default(30_000)),
  LOG_LEVEL: z.preprocess(emptyAsUndefined, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  ...queueConcurrencyVariables,
});

/** What a policy host process may use; see README "Safety" and the runtimes README. */
export interface PolicyHostSettings {
  level: JailLevel;
  /** RLIMIT_DATA of a JS or ONNX host (the isolate's own `memoryMb` is inside it). */
  memoryBytes: number;
  /** How long a host may take to start and load its policy. */
  loadTimeoutMs: number;
  /** RLIMIT_CPU of a host over its life (a warm host serves many calls). */
  cpuSeconds: number;
  /** Processes and threads of one host (only where it runs as a user of its own: Kura as root). */
  processes: number;
  python: { interpreter: string; memoryBytes: number; loadTimeoutMs: number };
}

/** Kura's configuration, validated once at boot. */
export interface KuraConfig {
  http: { port: number; host: string; jsonBodyLimit: number; bodyModelLimit: number };
  dataDir: string;
  /** Limits of uploaded policies and of their sandbox; `validationTimeoutMs`: the wall-clock budget of one validation. */
  policies: {
    maxBundleBytes: number;
    memoryMb: number;
    callTimeoutMs: number;
    maxModelBytes: number;
    validationTimeoutMs: number;
    /** Policy host processes one process keeps loaded, warm and sessions' together (inference/policy-pool.ts). */
    maxHosts: number;
  };
  /** Sessions without a step for this long end as truncated. */
  sessions: { idleSeconds: number };
  /** The currency of dataset fees and the ledger (docs/ledger.md), and its minor-unit digits (2 for USD, 0 for JPY). */
  ledger: { currency: string; digits: number };
  /** Edge exports (docs/edge.md): a renewal needs a usage report at most `reportMaxAgeDays` old. */
  edge: { reportMaxAgeDays: number };
  /**
   * Training on the platform (docs/training.md): trainer bundles' size, what a run may leave in /out,
   * its processes and threads, the interpreter (KURA_PYTHON) and the work folder of runs (their code,
   * materialised data and output: as large as a run's data; a trainer's own user must be able to
   * reach it, so it is not under KURA_DATA_DIR, which may be private).
   */
  training: {
    maxBundleBytes: number;
    maxOutputBytes: number;
    maxOutputFiles: number;
    processes: number;
    python: string;
    directory: string;
    /** GPUs (NVIDIA device numbers) every run is given: `all` found at start, or none (`[]`). */
    gpus: 'all' | number[];
  };
  /**
   * The jail for untrusted work (packages/jail): `auto` takes bubblewrap where it runs. `ingest`:
   * limits of the child that parses one upload.
   */
  sandbox: {
    setting: 'auto' | 'bwrap' | 'process' | 'unsafe-none';
    ingest: { memoryBytes: number; timeoutSeconds: number };
    /** Policy host processes (policies/hosts): all but the jail level, which is chosen at start. */
    policyHosts: Omit<PolicyHostSettings, 'level'>;
  };
  database: { kind: 'external'; url: string } | { kind: 'embedded'; directory: string; port: number | undefined };
  queue: { kind: 'bullmq'; redisUrl: string; name: string } | { kind: 'in-process'; name: string };
  blobs:
    | {
        kind: 's3';
        endpoint: string | undefined;
        bucket: string;
        region: string;
        accessKeyId: string | undefined;
        secretAccessKey: string | undefined;
        forcePathStyle: boolean;
      }
    | { kind: 'filesystem'; directory: string };
  /**
   * `concurrency`: jobs of each queue one process runs at once (@kura/schema jobQueues, unless
   * KURA_JOB_CONCURRENCY_<QUEUE> or KURA_JOB_CONCURRENCY says otherwise). `maxDeaths`: a job whose
   * process died in it this many times is failed for good instead of run again. `outageWaitMs`: how
   * long a job waits out a dependency that is down (database, object store, Redis) before the
   * attempt counts as failed. `recoverMs`: how often a process consuming a shared queue (Redis)
   * enqueues again the jobs it lost (a Redis restarted without persistence loses every one).
   */
  jobs: {
    runInThisProcess: boolean;
    concurrency: Record<JobQueueName, number>;
    attempts: number;
    backoffMs: number;
    lockMs: number;
    maxDeaths: number;
    outageWaitMs: number;
    recoverMs: number;
  };
  /**
   * `archive`: what an uploaded archive may expand to as a whole, at most `maxTotalExpansionRatio`
   * times its own size and at most `maxExpandedBytes`.
   */
  uploads: {
    maxBytes: number;
    shardBytes: number;
    archive: { maxTotalExpansionRatio: number; maxExpandedBytes: number };
    /** What parsing one upload may decode (@kura/formats IngestLimits; README, "Resource budgets"). */
    ingestLimits: {
      maxLineBytes: number;
      maxTensorBytes: number;
      maxExpansion: number;
      decodedFloorBytes: number;
      stepsPerByte: number;
      stepsFloor: number;
    };
  };
  adminKey: string | undefined;
  shutdownTimeoutMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** Thrown when the environment is invalid; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the environment. Throws ConfigError naming each bad variable. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): KuraConfig {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? '?');
        return `${variable}: ${issue.message} (got ${JSON.stringify(environment[variable] ?? null)})`;
      }),
    );
  }
  const env = parsed.data;
  const s3Variables = ['S3_ENDPOINT', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'] as const;
  if (!env.S3_BUCKET && s3Variables.some((name) => env[name] !== undefined)) {
    throw new ConfigError([`S3_BUCKET: required when ${s3Variables.filter((name) => env[name] !== undefined).join(', ')} is set`]);
  }
  if (Boolean(env.S3_ACCESS_KEY_ID) !== Boolean(env.S3_SECRET_ACCESS_KEY)) {
    throw new ConfigError(['S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY: set both or neither']);
  }

  const dataDir = resolve(env.KURA_DATA_DIR);
  const queue: KuraConfig['queue'] = env.REDIS_URL
    ? { kind: 'bullmq', redisUrl: env.REDIS_URL, name: env.KURA_QUEUE_NAME }
    : { kind: 'in-process', name: env.KURA_QUEUE_NAME };
  return {
    http: { port: env.PORT, host: env.HOST, jsonBodyLimit: env.KURA_JSON_BODY_LIMIT, bodyModelLimit: env.KURA_BODY_MODEL_LIMIT },
    dataDir,
    database: env.DATABASE_URL
      ? { kind: 'external', url: env.DATABASE_URL }
      : { kind: 'embedded', directory: resolve(dataDir, 'pg'), port: env.KURA_EMBEDDED_PG_PORT },
    queue,
    blobs: env.S3_BUCKET
      ? {
          kind: 's3',
          endpoint: env.S3_ENDPOINT,
          bucket: env.S3_BUCKET,
          region: env.S3_REGION,
          accessKeyId: env.S3_ACCESS_KEY_ID,
          secretAccessKey: env.S3_SECRET_ACCESS_KEY,
          forcePathStyle: env.S3_FORCE_PATH_STYLE,
        }
      : { kind: 'filesystem', directory: resolve(dataDir, 'blobs') },
    // With an in-process queue nobody else can run the jobs, so this process must.
    jobs: {
      runInThisProcess: queue.kind === 'in-process' ? true : (env.KURA_RUN_JOBS ?? false),
      concurrency: Object.fromEntries(
        jobQueueNames.map((queue) => [
          queue,
          env[queueConcurrencyVariable(queue)] ?? env.KURA_JOB_CONCURRENCY ?? jobQueues[queue].concurrency,
        ]),
      ) as Record<JobQueueName, number>,
      attempts: env.KURA_JOB_ATTEMPTS,
      backoffMs: env.KURA_JOB_BACKOFF_MS,
      lockMs: env.KURA_JOB_LOCK_MS,
      maxDeaths: env.KURA_JOB_MAX_DEATHS,
      outageWaitMs: env.KURA_JOB_OUTAGE_WAIT_MS,
      recoverMs: env.KURA_JOB_RECOVER_MS,
    },
    uploads: {
      maxBytes: env.KURA_MAX_UPLOAD_BYTES,
      shardBytes: env.KURA_SHARD_BYTES,
      archive: { maxTotalExpansionRatio: env.KURA_ARCHIVE_MAX_EXPANSION, maxExpandedBytes: env.KURA_ARCHIVE_MAX_EXPANDED_BYTES },
      ingestLimits: {
        maxLineBytes: env.KURA_INGEST_MAX_LINE_BYTES,
        maxTensorBytes: env.KURA_INGEST_MAX_TENSOR_BYTES,
        maxExpansion: env.KURA_INGEST_MAX_EXPANSION,
        decodedFloorBytes: env.KURA_INGEST_DECODED_FLOOR_BYTES,
        stepsPerByte: env.KURA_INGEST_STEPS_PER_BYTE,
        stepsFloor: env.KURA_INGEST_STEPS_FLOOR,
      },
    },
    policies: {
      maxBundleBytes: env.KURA_POLICY_MAX_BUNDLE_BYTES,
      memoryMb: env.KURA_POLICY_MEMORY_MB,
      callTimeoutMs: env.KURA_POLICY_CALL_TIMEOUT_MS,
      maxModelBytes: env.KURA_POLICY_MAX_MODEL_BYTES,
      validationTimeoutMs: env.KURA_POLICY_VALIDATION_TIMEOUT_S * 1000,
      maxHosts: env.KURA_POLICY_HOSTS_MAX,
    },
    sessions: { idleSeconds: env.KURA_SESSION_IDLE_S },
    ledger: { currency: env.KURA_CURRENCY, digits: currencyDigits(env.KURA_CURRENCY) },
    edge: { reportMaxAgeDays: env.KURA_EDGE_REPORT_MAX_AGE_DAYS },
    training: {
      maxBundleBytes: env.KURA_TRAINER_MAX_BUNDLE_BYTES,
      maxOutputBytes: env.KURA_TRAINING_MAX_OUTPUT_BYTES,
      maxOutputFiles: env.KURA_TRAINING_MAX_OUTPUT_FILES,
      processes: env.KURA_TRAINING_PROCESSES,
      python: env.KURA_PYTHON,
      directory: resolve(env.KURA_TRAINING_DIR ?? join(tmpdir(), 'kura-training')),
      gpus:
        env.KURA_TRAINING_GPUS === 'all' ? 'all' : env.KURA_TRAINING_GPUS === 'none' ? [] : env.KURA_TRAINING_GPUS.split(',').map(Number),
    },
    sandbox: {
      setting: env.KURA_SANDBOX,
      ingest: { memoryBytes: env.KURA_INGEST_MEMORY_MB * 1024 * 1024, timeoutSeconds: env.KURA_INGEST_TIMEOUT_S },
      policyHosts: {
        memoryBytes: env.KURA_POLICY_HOST_MEMORY_MB * 1024 * 1024,
        loadTimeoutMs: env.KURA_POLICY_HOST_START_S * 1000,
        cpuSeconds: env.KURA_POLICY_HOST_CPU_S,
        processes: env.KURA_POLICY_HOST_PROCESSES,
        python: {
          interpreter: env.KURA_PYTHON,
          memoryBytes: env.KURA_PYTHON_MEMORY_MB * 1024 * 1024,
          loadTimeoutMs: env.KURA_PYTHON_START_S * 1000,
        },
      },
    },
    adminKey: env.KURA_ADMIN_KEY,
    shutdownTimeoutMs: env.KURA_SHUTDOWN_TIMEOUT_MS,
    logLevel: env.LOG_LEVEL,
  };
}
