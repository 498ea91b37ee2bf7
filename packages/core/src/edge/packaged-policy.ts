import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseJailLevel } from '@kura/jail';
import { edgePackageFiles, type EdgeLicense, type FeatureSpec, type PolicyManifest } from '@kura/schema';
import { loadConfig, type PolicyHostSettings } from '../config/config.js';
import { actOnce, parseObservation, type JsonObservation } from '../inference/observation.js';
import { loadJailedPolicyRuntime } from '../policies/hosts/jailed-policy-runtime.js';
import type { FeatureNormalization, PolicyNormalization } from '../policies/normalization.js';
import { sandboxUnavailable } from '../policies/policies.errors.js';
import { policyEntryPath, unpackPolicyBundle, type PolicyBundleLimits } from '../policies/policy-bundle.js';
import { resolvePolicyRuntimeLimits } from '../policies/runtimes/policy-runtime.js';
import type { PolicyRuntime, PolicyRuntimeLimits } from '../policies/runtimes/runtime-api.js';
import { EdgePackageError } from './edge-package.js';

/** What the edge runner needs of a deployment's settings: the same KURA_POLICY_* / KURA_SANDBOX variables as the server. */
export interface EdgeRunnerSettings {
  host: PolicyHostSettings;
  limits: PolicyRuntimeLimits;
  bundle: PolicyBundleLimits;
}

/**
 * The runner's settings from the environment, read as the server reads them. Refuses
 * (SANDBOX_UNAVAILABLE) where the jail would have no namespaces, as the server does, unless
 * KURA_SANDBOX=unsafe-none says someone chose that.
 */
export function edgeRunnerSettings(environment: NodeJS.ProcessEnv = process.env): EdgeRunnerSettings {
  const config = loadConfig(environment);
  const jail = chooseJailLevel(config.sandbox.setting);
  if (jail.level === 'process') throw sandboxUnavailable(jail.level, jail.reason);
  const { memoryMb, callTimeoutMs, maxModelBytes, maxBundleBytes } = config.policies;
  return {
    host: { level: jail.level, ...config.sandbox.policyHosts },
    limits: resolvePolicyRuntimeLimits({ memoryMb, callTimeoutMs, maxModelBytes }),
    bundle: { maxBundleBytes, maxModelBytes, archive: config.uploads.archive },
  };
}

/** normalization.json as the deployment writes it into a package. */
interface PackagedNormalization {
  mode: PolicyNormalization['mode'];
  stats: Record<string, FeatureNormalization>;
  /** The normalization dataset's features, when it has them: the shapes the server checks observations against. */
  features?: FeatureSpec;
}

/** A package's policy, loaded in a jailed host as the server loads it, called as the server calls it. */
export interface PackagedPolicy {
  manifest: PolicyManifest;
  act(
    observation: JsonObservation,
    context?: { step?: number; task?: string | undefined },
  ): Promise<{ action: number[] | number[][]; latencyMs: number }>;
  reset(): Promise<void>;
  /** Stops the host and removes the unpacked bundle. */
  close(): Promise<void>;
}

/**
 * Loads the policy of a package whose license was verified (verifyEdgePackage): unpacks its bundle
 * under the archive rules into a private temporary folder, reads the entry, and starts it in a jailed
 * host with the deployment's limits and the normalization resolved at export.
 */
export async function loadPackagedPolicy(params: {
  files: ReadonlyMap<string, Uint8Array>;
  license: EdgeLicense;
  settings: EdgeRunnerSettings;
}): Promise<PackagedPolicy> {
  const { files, settings } = params;
  const work = await mkdtemp(join(tmpdir(), 'kura-edge-'));
  try {
    // A host runs as a user of its own: it must reach the folder, not list it.
    await chmod(work, 0o711);
    const bundle = join(work, 'policy.tar.gz');
    await writeFile(bundle, files.get(edgePackageFiles.bundle)!);
    const { manifest, root } = await unpackPolicyBundle(bundle, join(work, 'policy'), settings.bundle, new AbortController().signal);
    await rm(bundle);
    const normalization = packagedNormalization(files.get(edgePackageFiles.normalization), manifest);
    const features = normalization?.features;
    const runtime: PolicyRuntime = await loadJailedPolicyRuntime({
      manifest,
      entry: await readFile(await policyEntryPath(manifest, root, settings.bundle.maxModelBytes)),
      bundleDir: manifest.runtime === 'python' ? root : undefined,
      limits: settings.limits,
      features,
      host: settings.host,
    });
    const scaling: PolicyNormalization | undefined = normalization && {
      mode: normalization.mode,
      stats: new Map(Object.entries(normalization.stats)),
    };
    return {
      manifest,
      act: (observation, context = {}) =>
        actOnce(runtime, manifest, scaling, parseObservation(manifest, features, observation), {
          step: context.step ?? 0,
          task: context.task,
        }),
      reset: () => runtime.reset(),
      close: async () => {
        runtime.dispose();
        await rm(work, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    throw error;
  }
}

/** The package's normalization, or the manifest's own statistics; a policy that needs a dataset's must have them in the package. */
function packagedNormalization(bytes: Uint8Array | undefined, manifest: PolicyManifest): PackagedNormalization | undefined {
  const spec = manifest.normalization;
  if (bytes) {
    try {
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as PackagedNormalization;
    } catch {
      throw new EdgePackageError('EDGE_PACKAGE_INVALID', `${edgePackageFiles.normalization} is not JSON`);
    }
  }
  if (!spec) return undefined;
  if (spec.stats) return { mode: spec.mode, stats: spec.stats };
  throw new EdgePackageError(
    'EDGE_PACKAGE_INVALID',
    `the policy normalizes by dataset ${spec.datasetId} and the package has no ${edgePackageFiles.normalization}`,
  );
}
