import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable } from '@nestjs/common';
import { policyManifestSchema, type FeatureSpec, type PolicyManifest, type PolicyObservation } from '@kura/schema';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG, LOGGER } from '../database/database.tokens.js';
import { DatasetReachService } from '../datasets/dataset-reach.service.js';
import type { Logger } from '../logging/logger.js';
import { detectArchiveKind, extractArchive } from '../uploads/archive.js';
import { NormalizationUnavailable, readableNormalizationDataset } from './normalization-access.js';
import { PoliciesRepository, type PolicyProblem } from './policies.repository.js';
import { isPolicyError, loadPolicyRuntime, type PolicyRuntimeLimits } from './runtimes/policy-runtime.js';

const MiB = 1024 * 1024;

/** A 1×1 JPEG: what an image feature holds in the synthetic observation of validation. */
const TINY_JPEG = Buffer.from(
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==',
  'base64',
);

/** Why a bundle is rejected; carries the manifest when it was read (the version keeps it). */
class Rejection extends Error {
  constructor(
    readonly problems: PolicyProblem[],
    readonly manifest: PolicyManifest | null = null,
  ) {
    super(problems.map((problem) => problem.message).join('; '));
  }
}

const reject = (code: string, message: string, location?: PolicyProblem['location'], manifest: PolicyManifest | null = null): never => {
  throw new Rejection([{ code, message, ...(location ? { location } : {}) }], manifest);
};

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
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** The sandbox limits of this deployment (KURA_POLICY_*). */
  runtimeLimits(): Partial<PolicyRuntimeLimits> {
    return {
      memoryMb: this.config.policies.memoryMb,
      callTimeoutMs: this.config.policies.callTimeoutMs,
      maxModelBytes: this.config.policies.maxModelBytes,
    };
  }

  async validate(policyId: string): Promise<void> {
    const policy = await this.policies.findById(policyId);
    if (!policy || policy.status !== 'validating') return;
    const work = join(this.config.dataDir, 'work', 'policies', policyId);
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    try {
      const bundle = join(work, 'bundle');
      await pipeline(await this.blobs.get({ key: policy.bundleKey }), createWriteStream(bundle));
      const { manifest, root } = await this.unpack(bundle, join(work, 'files'));
      // A readable manifest names the policy: from here on the upload is a version of it, even if rejected.
      await this.policies.assignVersion(policyId, manifest.name);
      const entry = await readFile(await this.entryPath(manifest, root));
      await this.tryInSandbox(manifest, entry, policy.ownerKeyId);
      const entryKey = `policies/${policyId}/entry`;
      await this.blobs.put({ key: entryKey, body: entry });
      await this.policies.finishValidation(policyId, { status: 'ready', manifest, errors: [], entryKey });
      this.logger.info({ policyId, name: manifest.name, runtime: manifest.runtime }, 'policy ready');
    } catch (error) {
      if (!(error instanceof Rejection)) throw error;
      await this.policies.finishValidation(policyId, {
        status: 'rejected',
        manifest: error.manifest,
        errors: error.problems,
        entryKey: null,
      });
      this.logger.info({ policyId, errors: error.problems }, 'policy rejected');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
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

  /** Extracts the bundle and returns its checked manifest and the entry file's path. */
  private async unpack(bundle: string, destination: string): Promise<{ manifest: PolicyManifest; root: string }> {
    const head = Buffer.alloc(512);
    const handle = await open(bundle, 'r');
    try {
      await handle.read(head, 0, 512, 0);
    } finally {
      await handle.close();
    }
    const kind = detectArchiveKind(head);
    if (!kind) reject('BUNDLE_NOT_ARCHIVE', 'a policy bundle is a .tar.gz, .tar or .zip holding policy.json');
    let files: Array<{ path: string }>;
    try {
      ({ files } = await extractArchive({
        file: bundle,
        kind: kind!,
        destination,
        limits: {
          maxExpandedBytes: Math.min(4 * this.config.policies.maxBundleBytes, 1024 * MiB, this.config.uploads.archive.maxExpandedBytes),
          maxTotalExpansionRatio: this.config.uploads.archive.maxTotalExpansionRatio,
          maxFiles: 10_000,
        },
      }));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('ARCHIVE_')) {
        const file = (error as { location?: { file?: string } }).location?.file;
        reject(code.replace(/^ARCHIVE_/, 'BUNDLE_'), (error as Error).message, file ? { file } : undefined);
      }
      throw error;
    }
    // policy.json at the top, or inside the bundle's one top-level folder.
    const manifestFile =
      files.find((file) => file.path === 'policy.json') ??
      (files.filter((file) => /^[^/]+\/policy\.json$/.test(file.path)).length === 1
        ? files.find((file) => /^[^/]+\/policy\.json$/.test(file.path))
        : undefined);
    if (!manifestFile) return reject('MANIFEST_MISSING', 'the bundle has no policy.json at its top (or in its one top-level folder)');
    const root = resolve(destination, manifestFile.path.includes('/') ? manifestFile.path.split('/')[0]! : '.');
    let json: unknown;
    try {
      json = JSON.parse(await readFile(join(destination, manifestFile.path), 'utf8'));
    } catch (error) {
      return reject('MANIFEST_INVALID', `policy.json is not valid JSON: ${(error as Error).message}`, { file: manifestFile.path });
    }
    const parsed = policyManifestSchema.safeParse(json);
    if (!parsed.success) {
      throw new Rejection(
        parsed.error.issues.map((issue) => ({
          code: 'MANIFEST_INVALID',
          message: `policy.json ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`,
          location: { file: manifestFile.path, field: issue.path.join('.') },
        })),
      );
    }
    return { manifest: parsed.data, root };
  }

  /** The entry file inside the bundle folder `root`: present, not outside it, not too large to load. */
  private async entryPath(manifest: PolicyManifest, root: string): Promise<string> {
    const path = resolve(root, manifest.entry);
    if (!path.startsWith(root + sep))
      reject('BUNDLE_PATH_TRAVERSAL', `entry "${manifest.entry}" points outside the bundle`, { field: 'entry' }, manifest);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile())
      reject(
        'BUNDLE_ENTRY_MISSING',
        `entry "${manifest.entry}" is not a file in the bundle`,
        { file: manifest.entry, field: 'entry' },
        manifest,
      );
    if (manifest.runtime === 'onnx' && info!.size > this.config.policies.maxModelBytes) {
      reject(
        'ONNX_TOO_LARGE',
        `model "${manifest.entry}" has ${info!.size} bytes; the limit is ${this.config.policies.maxModelBytes} (KURA_POLICY_MAX_MODEL_BYTES)`,
        { file: manifest.entry },
        manifest,
      );
    }
    return path;
  }

  /** Loads the policy in the sandbox and calls it once; a failure rejects it with the sandbox's code. */
  private async tryInSandbox(manifest: PolicyManifest, entry: Buffer, ownerKeyId: string): Promise<void> {
    const features = await this.normalizationFeatures(manifest, ownerKeyId);
    let runtime: Awaited<ReturnType<typeof loadPolicyRuntime>> | undefined;
    try {
      runtime = await loadPolicyRuntime({ manifest, entry, limits: this.runtimeLimits(), ...(features ? { features } : {}) });
      await runtime.reset();
      await runtime.act(syntheticObservation(manifest, features, runtime.observationShapes), { step: 0, episode: 0, task: '' });
    } catch (error) {
      if (isPolicyError(error))
        throw new Rejection([{ code: error.code, message: error.message, location: problemLocation(manifest, error.details) }], manifest);
      throw error;
    } finally {
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
      if (!(error instanceof NormalizationUnavailable)) throw error;
      throw new Rejection([{ code: error.code, message: error.message, location: error.location }], manifest);
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
 * the dataset's, the manifest's, or [1]); a tiny JPEG for images.
 */
export function syntheticObservation(
  manifest: PolicyManifest,
  features: FeatureSpec | undefined,
  policyShapes?: Readonly<Record<string, readonly number[]>>,
): PolicyObservation {
  const observation: PolicyObservation = {};
  for (const name of manifest.observation) {
    const feature = features?.[name];
    if (feature?.dtype === 'image') {
      observation[name] = new Uint8Array(TINY_JPEG);
      continue;
    }
    const shape = policyShapes?.[name] ?? feature?.shape ?? manifest.observationShapes?.[name] ?? [1];
    observation[name] = new Array<number>(shape.reduce((product, dimension) => product * dimension, 1)).fill(0);
  }
  return observation;
}
