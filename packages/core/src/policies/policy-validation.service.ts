import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable } from '@nestjs/common';
import {
  observationShapeProblem,
  policyLimits,
  storableText,
  type FeatureSpec,
  type PolicyManifest,
  type PolicyObservation,
  type PolicyProblem,
} from '@kura/schema';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG, LOGGER } from '../database/database.tokens.js';
import { DatasetReachService } from '../datasets/dataset-reach.service.js';
import type { Logger } from '../logging/logger.js';
import { BundleRejection as Rejection } from '../common/bundle.js';
import { NormalizationUnavailable, readableNormalizationDataset } from './normalization-access.js';
import { PoliciesRepository, type PolicyRecord } from './policies.repository.js';
import { policyEntryPath, unpackPolicyBundle, type PolicyBundleLimits } from './policy-bundle.js';
import { PolicyHosts } from './hosts/policy-hosts.service.js';
import {
  isPolicyError,
  PolicyError,
  resolvePolicyRuntimeLimits,
  type PolicyRuntime,
  type PolicyRuntimeLimits,
} from './runtimes/policy-runtime.js';
import { truncateText } from './runtimes/runtime-api.js';

/** A 1×1 JPEG: what an image feature holds in the synthetic observation of validation. */
const TINY_JPEG = Buffer.from(
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==',
  'base64',
);

/**
 * Validates an uploaded policy bundle (the `policies.validate` job): unpacks it safely, reads and
 * checks policy.json, loads the entry in the sandbox and calls it once on a synthetic observation
 * built from the manifest. The result is `ready` (with the entry kept as its own blob, for the
 * evaluation and inference paths) or `rejected` with coded errors. Idempotent: a policy that is no
 * longer `validating` is left alone.
 */
@Injectable()
export class PolicyValidationService {
  constructor(
    private readonly policies: PoliciesRepository,
    private readonly datasets: DatasetReachService,
    private readonly hosts: PolicyHosts,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** What a bundle may expand to and hold here. */
  bundleLimits(): PolicyBundleLimits {
    const { maxBundleBytes, maxModelBytes } = this.config.policies;
    return { maxBundleBytes, maxModelBytes, archive: this.config.uploads.archive };
  }

  /** The sandbox limits of this deployment (KURA_POLICY_*). */
  runtimeLimits(): Partial<PolicyRuntimeLimits> {
    return {
      memoryMb: this.config.policies.memoryMb,
      callTimeoutMs: this.config.policies.callTimeoutMs,
      maxModelBytes: this.config.policies.maxModelBytes,
    };
  }

  /**
   * Validates one bundle and records the outcome: `ready`, or `rejected` with codes. It always ends
   * within KURA_POLICY_VALIDATION_TIMEOUT_S (POLICY_VALIDATION_TIMEOUT past it), and only a failure of
   * Kura's own storage, database or disk is retried — rejected POLICY_VALIDATION_FAILED on the last
   * `attempt`. Anything else the bundle makes go wrong, expected or not, rejects it at once.
   */
  async validate(policyId: string, attempt: { attempt: number; maxAttempts: number } = { attempt: 1, maxAttempts: 1 }): Promise<void> {
    const policy = await this.policies.findById(policyId);
    if (!policy || policy.status !== 'validating') return;
    const budgetMs = this.config.policies.validationTimeoutMs;
    const abort = new AbortController();
    const progress: ValidationProgress = { manifest: null, deadline: Date.now() + budgetMs };
    const checking = this.check(policy, progress, abort.signal).then(
      (ready): Outcome => ({ kind: 'ready', ...ready }),
      (error: unknown): Outcome => ({ kind: 'failed', error }),
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'timeout' }), budgetMs);
    });
    let outcome: Outcome;
    try {
      outcome = await Promise.race([checking, deadline]);
    } finally {
      clearTimeout(timer);
    }
    if (outcome.kind === 'failed' && outcome.error instanceof ValidationDeadlinePassed) outcome = { kind: 'timeout' };

    switch (outcome.kind) {
      case 'ready': {
        const recorded = await this.policies.finishValidation(policyId, {
          status: 'ready',
          manifest: outcome.manifest,
          errors: [],
          entryKey: outcome.entryKey,
        });
        if (recorded) this.logger.info({ policyId, name: outcome.manifest.name, runtime: outcome.manifest.runtime }, 'policy ready');
        return;
      }
      case 'timeout': {
        // The check goes on in the background until its current step returns; stop it at the next one.
        abort.abort();
        void checking.then((late) => {
          if (late.kind === 'failed' && !(late.error instanceof ValidationDeadlinePassed))
            this.logger.debug({ policyId, err: late.error }, 'a timed-out policy validation ended');
        });
        const seconds = budgetMs / 1000;
        await this.reject(policyId, progress.manifest, [
          {
            code: 'POLICY_VALIDATION_TIMEOUT',
            message: `validating the bundle took longer than ${seconds} s (KURA_POLICY_VALIDATION_TIMEOUT_S); it is not tried again`,
          },
        ]);
        return;
      }
      case 'failed':
        break;
    }
    const { error } = outcome;
    if (error instanceof Rejection) {
      await this.reject(policyId, error.manifest as PolicyManifest | null, error.problems);
      return;
    }
    if (isTransient(error)) {
      if (attempt.attempt < attempt.maxAttempts) throw error;
      await this.reject(policyId, progress.manifest, [
        {
          code: 'POLICY_VALIDATION_FAILED',
          message: `Kura could not validate the bundle after ${attempt.attempt} attempts (${describeError(error)}); upload it again later`,
        },
      ]);
      return;
    }
    // A bundle made validation fail in a way no check foresaw: a bug to fix, but never a retry loop.
    this.logger.error({ policyId, err: error }, 'policy validation failed unexpectedly');
    await this.reject(policyId, progress.manifest, [
      { code: 'POLICY_VALIDATION_FAILED', message: `validating the bundle failed: ${describeError(error)}` },
    ]);
  }

  /**
   * Unpacks, reads the manifest, runs the entry once and stores it: the result of a `ready` policy.
   * Throws a Rejection for a bad bundle, an InfrastructureFailure for Kura's own storage, anything
   * else for what nobody foresaw. Cleans its work folder up whenever it ends, even after its deadline.
   */
  private async check(
    policy: PolicyRecord,
    progress: ValidationProgress,
    signal: AbortSignal,
  ): Promise<{ manifest: PolicyManifest; entryKey: string }> {
    const work = join(this.config.dataDir, 'work', 'policies', policy.id);
    await infrastructure('preparing the work folder', async () => {
      await rm(work, { recursive: true, force: true });
      await mkdir(work, { recursive: true });
    });
    try {
      const bundle = join(work, 'bundle');
      await infrastructure('reading the bundle from the blob store', async () =>
        pipeline(await this.blobs.get({ key: policy.bundleKey }), createWriteStream(bundle), { signal }),
      );
      const { manifest, root } = await unpackPolicyBundle(bundle, join(work, 'files'), this.bundleLimits(), signal);
      progress.manifest = manifest;
      // A readable manifest names the policy: from here on the upload is a version of it, even if rejected.
      await infrastructure('numbering the version', () => this.policies.assignVersion(policy.id, manifest.name));
      const entry = await readFile(await policyEntryPath(manifest, root, this.config.policies.maxModelBytes));
      await this.tryInSandbox({ manifest, entry, policyId: policy.id, ownerKeyId: policy.ownerKeyId }, signal);
      stopPastDeadline(signal, progress.deadline);
      const entryKey = `policies/${policy.id}/entry`;
      await infrastructure('storing the entry in the blob store', () => this.blobs.put({ key: entryKey, body: entry }));
      return { manifest, entryKey };
    } finally {
      await rm(work, { recursive: true, force: true }).catch((error: unknown) =>
        this.logger.warn({ policyId: policy.id, err: error }, 'could not remove a policy validation work folder'),
      );
    }
  }

  /**
   * Records a rejection. Messages quote the bundle and the policy, so text Postgres cannot store is
   * replaced first; should the record still fail for its content, a bare rejection is recorded.
   */
  private async reject(policyId: string, manifest: PolicyManifest | null, problems: PolicyProblem[]): Promise<void> {
    const errors = problems.map(storableProblem);
    let recorded: boolean;
    try {
      recorded = await this.policies.finishValidation(policyId, { status: 'rejected', manifest, errors, entryKey: null });
    } catch (error) {
      // When the database itself is down the bare record fails too, and the job is retried.
      this.logger.error({ policyId, err: error }, 'a policy rejection could not be recorded with its details');
      recorded = await this.policies.finishValidation(policyId, {
        status: 'rejected',
        manifest: null,
        errors: [
          { code: errors[0]?.code ?? 'POLICY_VALIDATION_FAILED', message: 'the bundle was rejected; its details could not be recorded' },
        ],
        entryKey: null,
      });
    }
    if (recorded) this.logger.info({ policyId, errors }, 'policy rejected');
  }

  /** Rejects a bundle whose validation's process died `deaths` times: it is not tried again. */
  async abandon(policyId: string, deaths: number): Promise<void> {
    const policy = await this.policies.findById(policyId);
    if (!policy || policy.status !== 'validating') return;
    const message = `the process validating this bundle died ${deaths} times (killed or out of memory); it is not tried again`;
    await this.policies.finishValidation(policyId, {
      status: 'rejected',
      manifest: null,
      errors: [{ code: 'POLICY_VALIDATION_CRASHED', message, location: {} }],
      entryKey: null,
    });
    await rm(join(this.config.dataDir, 'work', 'policies', policyId), { recursive: true, force: true });
  }

  /**
   * Unpacks a stored bundle (a Python policy's, for its host) into `destination`; returns the folder
   * holding policy.json. The bundle passed validation, so the checks cannot fail but for storage.
   */
  async unpackStored(policyId: string, destination: string): Promise<string> {
    const policy = await this.policies.findById(policyId);
    if (!policy) throw new Error(`policy ${policyId} does not exist`);
    await mkdir(destination, { recursive: true });
    const bundle = `${destination}.bundle`;
    try {
      await pipeline(await this.blobs.get({ key: policy.bundleKey }), createWriteStream(bundle));
      return (await unpackPolicyBundle(bundle, destination, this.bundleLimits(), new AbortController().signal)).root;
    } finally {
      await rm(bundle, { force: true });
    }
  }

  /** Loads the policy in the sandbox and calls it once; a failure rejects it with the sandbox's code. */
  private async tryInSandbox(
    policy: { manifest: PolicyManifest; entry: Buffer; policyId: string; ownerKeyId: string },
    signal: AbortSignal,
  ): Promise<void> {
    const { manifest, entry } = policy;
    const features = await this.normalizationFeatures(manifest, policy.ownerKeyId);
    let runtime: PolicyRuntime | undefined;
    // Past the deadline, a pending call fails at once (POLICY_DISPOSED) and frees its isolate.
    const stop = (): void => runtime?.dispose();
    signal.addEventListener('abort', stop, { once: true });
    try {
      runtime = await this.hosts.load({
        manifest,
        entry,
        policyId: policy.policyId,
        limits: resolvePolicyRuntimeLimits(this.runtimeLimits()),
        features,
        unpack: (policyId, destination) => this.unpackStored(policyId, destination),
      });
      signal.throwIfAborted();
      await runtime.reset();
      signal.throwIfAborted();
      await runtime.act(syntheticObservation(manifest, features, runtime.observationShapes), { step: 0, episode: 0, task: '' });
    } catch (error) {
      if (signal.aborted) throw new ValidationDeadlinePassed();
      if (isPolicyError(error))
        throw new Rejection([{ code: error.code, message: error.message, location: problemLocation(manifest, error.details) }], manifest);
      throw error;
    } finally {
      signal.removeEventListener('abort', stop);
      runtime?.dispose();
    }
  }

  /**
   * The features of the normalization dataset, when the manifest names one (their shapes shape the
   * synthetic observation); rejected unless the policy's owner may read the dataset in full.
   */
  private async normalizationFeatures(manifest: PolicyManifest, ownerKeyId: string): Promise<FeatureSpec | undefined> {
    try {
      return (await readableNormalizationDataset(this.datasets, { ownerKeyId, manifest }))?.features ?? undefined;
    } catch (error) {
      if (error instanceof NormalizationUnavailable)
        throw new Rejection([{ code: error.code, message: error.message, location: error.location }], manifest);
      // The id is a checked string of the manifest; what fails here is the database.
      throw new InfrastructureFailure('reading the normalization dataset', error);
    }
  }
}

/**
 * Where a sandbox failure points: the entry file, and the manifest field the runtime names (an ONNX
 * input's observationShapes entry) or, for a shape the normalization dataset gave, that dataset.
 */
function problemLocation(manifest: PolicyManifest, details: Record<string, unknown> | undefined): PolicyProblem['location'] {
  const field = typeof details?.field === 'string' ? details.field : undefined;
  if (field !== undefined) return { file: manifest.entry, field };
  if (details?.featureShape !== undefined && manifest.normalization?.datasetId !== undefined)
    return { file: manifest.entry, field: 'normalization.datasetId' };
  return { file: manifest.entry };
}

/**
 * Zeros of each observation feature's shape (the one the policy fixes — an ONNX model's input — else
 * the dataset's, the manifest's, or [1]); a tiny JPEG for images, whatever their size. Every shape is
 * checked against `policyLimits` before anything is allocated: a model's input or a dataset's
 * feature can be larger than a manifest may declare (POLICY_OBSERVATION_TOO_LARGE).
 */
export function syntheticObservation(
  manifest: PolicyManifest,
  features: FeatureSpec | undefined,
  policyShapes?: Readonly<Record<string, readonly number[]>>,
): PolicyObservation {
  const observation: PolicyObservation = {};
  let total = 0;
  for (const name of manifest.observation) {
    const feature = features?.[name];
    if (feature?.dtype === 'image') {
      observation[name] = new Uint8Array(TINY_JPEG);
      continue;
    }
    const source = shapeSource(name, manifest, feature, policyShapes);
    const tooLarge = (message: string): PolicyError =>
      new PolicyError('POLICY_OBSERVATION_TOO_LARGE', `observation "${name}": ${source.label} ${message}`, {
        details: { feature: name, shape: source.shape, ...(source.field ? { field: source.field } : {}) },
      });
    const problem = observationShapeProblem(source.shape);
    if (problem !== undefined) throw tooLarge(problem);
    const numbers = source.shape.reduce((product, dimension) => product * dimension, 1);
    total += numbers;
    if (total > policyLimits.maxNumbersPerObservation)
      throw tooLarge(
        `${shapeText(source.shape)} brings the observation to ${total} numbers; an observation may hold at most ${policyLimits.maxNumbersPerObservation}`,
      );
    observation[name] = new Float32Array(numbers);
  }
  return observation;
}

/** Where a feature's shape in the synthetic observation comes from, and how a message names it. */
function shapeSource(
  name: string,
  manifest: PolicyManifest,
  feature: FeatureSpec[string] | undefined,
  policyShapes: Readonly<Record<string, readonly number[]>> | undefined,
): { shape: readonly number[]; label: string; field: string | undefined } {
  const fromModel = policyShapes?.[name];
  if (fromModel !== undefined)
    return { shape: fromModel, label: `the model's input takes ${shapeText([1, ...fromModel])}, and`, field: undefined };
  if (feature !== undefined)
    return { shape: feature.shape, label: "the normalization dataset's feature has shape", field: 'normalization.datasetId' };
  const declared = manifest.observationShapes?.[name];
  if (declared !== undefined) return { shape: declared, label: 'observationShapes gives', field: `observationShapes.${name}` };
  return { shape: [1], label: 'the default shape', field: undefined };
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** What is known while a validation runs: the manifest once read, and when the budget ends. */
interface ValidationProgress {
  manifest: PolicyManifest | null;
  deadline: number;
}

type Outcome = { kind: 'ready'; manifest: PolicyManifest; entryKey: string } | { kind: 'failed'; error: unknown } | { kind: 'timeout' };

/** A step that failed in Kura's own storage, database or disk, not because of the bundle: retried. */
class InfrastructureFailure extends Error {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super(`${step}: ${errorMessage(cause)}`, { cause });
    this.name = 'InfrastructureFailure';
  }
}

/** The validation's budget ran out while it was still working. */
class ValidationDeadlinePassed extends Error {
  constructor() {
    super('the validation ran past its deadline');
    this.name = 'ValidationDeadlinePassed';
  }
}

/** Runs one step that uses Kura's own storage; its failure is an InfrastructureFailure. */
async function infrastructure<T>(step: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new InfrastructureFailure(step, error);
  }
}

function stopPastDeadline(signal: AbortSignal, deadline: number): void {
  if (signal.aborted || Date.now() > deadline) throw new ValidationDeadlinePassed();
}

/** The host, not the bundle, ran out of something: disk, quota, file handles. */
const hostExhaustionCodes: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE']);

/** Whether retrying could help: Kura's storage failed, or the host ran out of disk or file handles. */
function isTransient(error: unknown): boolean {
  if (error instanceof InfrastructureFailure) return true;
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' && hostExhaustionCodes.has(code);
}

function errorMessage(error: unknown): string {
  return typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string'
    ? error.message
    : String(error);
}

/** An error as a short line for a rejection: its kind and message. */
function describeError(error: unknown): string {
  const name = error instanceof Error && error.name !== 'Error' && !(error instanceof InfrastructureFailure) ? `${error.name}: ` : '';
  return truncateText(`${name}${errorMessage(error)}`, 1000);
}

/** A problem as Postgres can store it: characters it refuses replaced, and the message of bounded length. */
function storableProblem(problem: PolicyProblem): PolicyProblem {
  const location = problem.location
    ? Object.fromEntries(Object.entries(problem.location).map(([key, value]) => [key, storableText(String(value))]))
    : undefined;
  return {
    code: problem.code,
    message: storableText(truncateText(problem.message, 2000)),
    ...(location ? { location } : {}),
  };
}
