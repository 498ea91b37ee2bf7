import { Injectable } from '@nestjs/common';
import { shortFloat32 } from '@kura/formats';
import type { FeatureSpec, PolicyManifest, PolicyObservation } from '@kura/schema';
import { requireRole, type Principal } from '../auth/principal.js';
import { DatasetsRepository } from '../datasets/datasets.repository.js';
import { policyNotReady } from '../policies/policies.errors.js';
import { PoliciesService } from '../policies/policies.service.js';
import { normalize, unnormalize } from '../policies/policy-loader.service.js';
import { isPolicyError } from '../policies/runtimes/policy-runtime.js';
import { QuotaService } from '../usage/quota.service.js';
import { UsageMeter } from '../usage/usage.meter.js';
import { invalidObservation, policyActFailed } from './inference.errors.js';
import { PolicyPool, type ReadyPolicy } from './policy-pool.js';

/** An observation as JSON carries it: numbers (nested arrays allowed), or an image as base64 of its encoded bytes. */
export type JsonObservation = Record<string, unknown>;

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
        const observation: PolicyObservation = {};
        for (const [name, value] of Object.entries(parsed))
          observation[name] = value instanceof Uint8Array ? value : normalize(value, normalization, name);
        const started = performance.now();
        const output = await runtime.act(observation, { step: 0, task: request.task });
        const latencyMs = Math.round((performance.now() - started) * 1000) / 1000;
        this.meter.record(principal.keyId, { actCalls: 1, inferenceMs: latencyMs }, policy.id);
        // float32 out of the sandbox: written with the fewest digits that read back the same.
        const action = unnormalize(Array.from(output, shortFloat32), normalization);
        return { action: shapeAction(action, ready.manifest), policyId: policy.id, latencyMs };
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

/** The observation's features as number arrays (flattened) or image bytes; refuses missing, unknown and malformed ones. */
export function parseObservation(
  manifest: PolicyManifest,
  features: FeatureSpec | undefined,
  observation: JsonObservation,
): Record<string, number[] | Uint8Array> {
  const parsed: Record<string, number[] | Uint8Array> = {};
  for (const key of Object.keys(observation)) {
    if (!manifest.observation.includes(key))
      throw invalidObservation(
        `observation.${key}`,
        `the policy does not observe "${key}" (it observes ${manifest.observation.join(', ')})`,
      );
  }
  for (const name of manifest.observation) {
    const field = `observation.${name}`;
    const value = observation[name];
    const feature = features?.[name];
    if (value === undefined) throw invalidObservation(field, 'missing');
    if (typeof value === 'string') {
      if (feature && feature.dtype !== 'image') throw invalidObservation(field, `a ${feature.dtype} feature takes numbers, not an image`);
      const bytes = Buffer.from(value, 'base64');
      const isJpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
      const isPng = bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      if (!isJpeg && !isPng) throw invalidObservation(field, 'an image is the base64 of its JPEG or PNG bytes');
      parsed[name] = new Uint8Array(bytes);
      continue;
    }
    if (feature?.dtype === 'image') throw invalidObservation(field, 'an image feature takes the base64 of the encoded image');
    const numbers = flatten(value, field);
    const shape = feature?.shape ?? manifest.observationShapes?.[name];
    const expected = shape?.reduce((product, dimension) => product * dimension, 1);
    if (expected !== undefined && numbers.length !== expected) {
      throw invalidObservation(field, `has ${numbers.length} numbers, expected ${expected} (shape [${shape!.join(', ')}])`);
    }
    parsed[name] = numbers;
  }
  return parsed;
}

/** Deepest nesting of an observation's arrays: a feature's rank is at most 8. */
const MAX_OBSERVATION_DEPTH = 8;

function flatten(value: unknown, field: string): number[] {
  const numbers: number[] = [];
  const walk = (item: unknown, path: string, depth: number): void => {
    if (typeof item === 'number') {
      if (!Number.isFinite(item)) throw invalidObservation(path, 'numbers must be finite');
      numbers.push(item);
    } else if (Array.isArray(item)) {
      // Checked before going deeper: a hostile nesting must not exhaust the stack.
      if (depth >= MAX_OBSERVATION_DEPTH) throw invalidObservation(path, `arrays may nest at most ${MAX_OBSERVATION_DEPTH} levels deep`);
      item.forEach((inner, index) => walk(inner, `${path}.${index}`, depth + 1));
    } else throw invalidObservation(path, 'must be a number array (nested arrays allowed) or a base64 image');
  };
  if (!Array.isArray(value)) throw invalidObservation(field, 'must be a number array (nested arrays allowed) or a base64 image');
  walk(value, field, 0);
  return numbers;
}

/** [D] → D numbers; [H, D] → H arrays of D. */
export function shapeAction(values: number[], manifest: PolicyManifest): number[] | number[][] {
  const shape = manifest.action.shape;
  if (shape.length === 1) return values;
  const [rows, columns] = shape;
  return Array.from({ length: rows }, (_, row) => values.slice(row * columns, (row + 1) * columns));
}
