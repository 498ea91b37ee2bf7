import { policyManifestSchema, type FeatureSpec, type PolicyManifest } from '@kura/schema';
import { loadJsPolicyRuntime } from './js-runtime.js';
import { loadOnnxPolicyRuntime } from './onnx-runtime.js';
import { defaultPolicyRuntimeLimits, PolicyError, type PolicyRuntime, type PolicyRuntimeLimits } from './runtime-api.js';

export {
  defaultPolicyRuntimeLimits,
  isPolicyError,
  PolicyError,
  type PolicyErrorCode,
  type PolicyRuntime,
  type PolicyRuntimeLimits,
} from './runtime-api.js';
export { quarantinedIsolateCount } from './js-runtime.js';

/** The limits with defaults filled in; throws a RangeError naming a limit that is not a usable number. */
export function resolvePolicyRuntimeLimits(limits: Partial<PolicyRuntimeLimits> = {}): PolicyRuntimeLimits {
  const resolved: PolicyRuntimeLimits = { ...defaultPolicyRuntimeLimits };
  for (const key of Object.keys(defaultPolicyRuntimeLimits) as (keyof PolicyRuntimeLimits)[]) {
    const value = limits[key];
    if (value === undefined) continue;
    // isolated-vm refuses isolates under 8 MiB.
    const minimum = key === 'memoryMb' ? 8 : 1;
    if (!Number.isInteger(value) || value < minimum)
      throw new RangeError(`policy runtime limit ${key} must be an integer of at least ${minimum}, not ${value}`);
    resolved[key] = value;
  }
  return resolved;
}

/**
 * Loads a policy for calling: a JS script into its own isolate, or an ONNX model into an
 * onnxruntime session, as the manifest's `runtime` says. `entry` is the bytes of the manifest's
 * entry file. `features`, the dataset's feature spec when known, marks which features are images.
 * Fails with a PolicyError whose code says why (see PolicyErrorCode).
 */
export async function loadPolicyRuntime(params: {
  manifest: PolicyManifest;
  entry: Buffer;
  limits?: Partial<PolicyRuntimeLimits>;
  features?: FeatureSpec;
  /** JS: calls may block this thread (a policy host process, which serves nothing else). */
  blocking?: boolean;
}): Promise<PolicyRuntime> {
  const limits = resolvePolicyRuntimeLimits(params.limits);
  const parsed = policyManifestSchema.safeParse(params.manifest);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'manifest'}: ${issue.message}`);
    throw new PolicyError('POLICY_BAD_MANIFEST', `policy.json is not a valid manifest: ${problems.join('; ')}`, { details: { problems } });
  }
  const manifest = parsed.data;
  switch (manifest.runtime) {
    case 'js':
      return loadJsPolicyRuntime({ manifest, entry: params.entry, limits, blocking: params.blocking });
    case 'onnx':
      return loadOnnxPolicyRuntime({ manifest, entry: params.entry, limits, features: params.features });
    case 'python':
      // Python runs only in a jailed host (../hosts), which speaks to its own interpreter.
      throw new PolicyError('POLICY_BAD_MANIFEST', 'a Python policy runs in a policy host, not in this process');
  }
}
