import { Inject, Injectable } from '@nestjs/common';
import type { FeatureSpec, PolicyManifest } from '@kura/schema';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { readBlobBytes, readJsonBlob } from '../blobs/json-blobs.js';
import { DatasetsRepository } from '../datasets/datasets.repository.js';
import { DatasetReachService } from '../datasets/dataset-reach.service.js';
import { VersionsRepository } from '../datasets/versions.repository.js';
import { NormalizationUnavailable, readableNormalizationDataset } from './normalization-access.js';
import type { PolicyRecord } from './policies.repository.js';
import { PolicyValidationService } from './policy-validation.service.js';
import { PolicyHosts } from './hosts/policy-hosts.service.js';
import type { FeatureNormalization, PolicyNormalization } from './normalization.js';
import { resolvePolicyRuntimeLimits, type PolicyRuntime } from './runtimes/policy-runtime.js';

export { NormalizationUnavailable };

/** Turns a ready policy into something to call: its entry in the sandbox, with this deployment's limits, and its normalization. */
@Injectable()
export class PolicyLoader {
  constructor(
    private readonly validation: PolicyValidationService,
    private readonly datasets: DatasetsRepository,
    private readonly versions: VersionsRepository,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    private readonly datasetAccess: DatasetReachService,
    private readonly hosts: PolicyHosts,
  ) {}

  /**
   * Throws NormalizationUnavailable unless the policy's owner may (still) read its normalization
   * dataset; called before every use of a policy, whose normalization a warm instance keeps.
   */
  async checkNormalizationAccess(policy: Pick<PolicyRecord, 'ownerKeyId'> & { manifest: PolicyManifest }): Promise<void> {
    await readableNormalizationDataset(this.datasetAccess, policy);
  }

  /**
   * `features` are those of the data the policy will see; without them, the normalization dataset's
   * (as validation had), so an ONNX input's shape resolves the same way it did there.
   */
  async load(policy: PolicyRecord & { manifest: PolicyManifest; entryKey: string }, features?: FeatureSpec): Promise<PolicyRuntime> {
    const known = features ?? (await this.normalizationFeatures(policy.manifest));
    return this.hosts.load({
      manifest: policy.manifest,
      entry: await readBlobBytes(this.blobs, policy.entryKey),
      policyId: policy.id,
      limits: resolvePolicyRuntimeLimits(this.validation.runtimeLimits()),
      features: known,
      unpack: (policyId, destination) => this.validation.unpackStored(policyId, destination),
    });
  }

  /** The normalization dataset's features (what observations are checked against), when the manifest names one. */
  async normalizationFeatures(manifest: PolicyManifest): Promise<FeatureSpec | undefined> {
    const datasetId = manifest.normalization?.datasetId;
    if (!datasetId) return undefined;
    return (await this.datasets.findById(datasetId))?.features ?? undefined;
  }

  /**
   * The manifest's own statistics, or those of the latest version of the dataset it names when the
   * policy's owner may read it (NormalizationUnavailable otherwise).
   */
  async normalization(policy: Pick<PolicyRecord, 'ownerKeyId'> & { manifest: PolicyManifest }): Promise<PolicyNormalization | undefined> {
    const spec = policy.manifest.normalization;
    if (!spec) return undefined;
    if (spec.stats) return { mode: spec.mode, stats: new Map(Object.entries(spec.stats)) };
    const dataset = await readableNormalizationDataset(this.datasetAccess, policy);
    const version = dataset ? await this.versions.find(dataset.id, dataset.latestVersion) : null;
    if (!version)
      throw new NormalizationUnavailable(`normalization.datasetId "${spec.datasetId}" has no published version`, spec.datasetId ?? '');
    const stats = (await readJsonBlob(this.blobs, version.statsKey)) as Record<string, FeatureNormalization>;
    return { mode: spec.mode, stats: new Map(Object.entries(stats)) };
  }
}
