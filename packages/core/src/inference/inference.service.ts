import { Injectable } from '@nestjs/common';
import type { FeatureSpec, PolicyManifest } from '@kura/schema';
import { requireRole, type Principal } from '../auth/principal.js';
import { DatasetsRepository } from '../datasets/datasets.repository.js';
import { policyNotReady } from '../policies/policies.errors.js';
import { PoliciesService } from '../policies/policies.service.js';
import { isPolicyError } from '../policies/runtimes/policy-runtime.js';
import { QuotaService } from '../usage/quota.service.js';
import { UsageMeter } from '../usage/usage.meter.js';
import { policyActFailed } from './inference.errors.js';
import { actOnce, parseObservation, type JsonObservation } from './observation.js';
import { PolicyPool, type ReadyPolicy } from './policy-pool.js';

export interface ActResult {
  action: number[] | number[][];
  policyId: string;
  latencyMs: number;
}

/**
 * Calls deployed policies (`POST /v1/policies/:id/act`): checks the observation against the
 * manifest (and the normalization dataset's feature shapes when it names one), normalizes it,
 * runs a warm sandboxed instance, unnormalizes and shapes the action.
 */
@Injectable()
export class InferenceService {
  private readonly features = new Map<string, FeatureSpec>();

  constructor(
    private readonly policies: PoliciesService,
    private readonly datasets: DatasetsRepository,
    private readonly pool: PolicyPool,
    private readonly meter: UsageMeter,
    private readonly quotas: QuotaService,
  ) {}

  async act(
    principal: Principal,
    policyId: string,
    request: { observation: JsonObservation; task?: string | undefined },
  ): Promise<ActResult> {
    requireRole(principal, ['user', 'developer'], 'call policies');
    const policy = await this.policies.findVisible(principal, policyId);
    if (policy.status !== 'ready' || !policy.manifest || !policy.entryKey) throw policyNotReady(policy.id, policy.status);
    const ready: ReadyPolicy = { ...policy, manifest: policy.manifest, entryKey: policy.entryKey };
    const features = await this.featuresOf(ready.manifest);
    const parsed = parseObservation(ready.manifest, features, request.observation);
    await this.quotas.charge(principal, 'act');
    try {
      return await this.pool.with(ready, features, async (runtime, normalization) => {
        const { action, latencyMs } = await actOnce(runtime, ready.manifest, normalization, parsed, { step: 0, task: request.task });
        this.meter.record(principal.keyId, { actCalls: 1, inferenceMs: latencyMs }, policy.id);
        return { action, policyId: policy.id, latencyMs };
      });
    } catch (error) {
      if (isPolicyError(error)) {
        throw policyActFailed(error, { policyId: policy.id });
      }
      throw error;
    }
  }

  /**
   * The normalization dataset's features. A dataset's feature spec never changes once set, so it is
   * kept after the first call instead of read on every one.
   */
  private async featuresOf(manifest: PolicyManifest): Promise<FeatureSpec | undefined> {
    const datasetId = manifest.normalization?.datasetId;
    if (!datasetId) return undefined;
    const known = this.features.get(datasetId);
    if (known) return known;
    const features = (await this.datasets.findById(datasetId))?.features ?? undefined;
    if (features) this.features.set(datasetId, features);
    return features;
  }
}
