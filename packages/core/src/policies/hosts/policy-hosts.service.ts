import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { JailLevelChoice } from '@kura/jail';
import type { FeatureSpec, PolicyManifest } from '@kura/schema';
import type { KuraConfig } from '../../config/config.js';
import { JAIL_LEVEL, KURA_CONFIG } from '../../database/database.tokens.js';
import { sandboxUnavailable } from '../policies.errors.js';
import type { PolicyRuntime, PolicyRuntimeLimits } from '../runtimes/runtime-api.js';
import { loadJailedPolicyRuntime, type PolicyHostSettings } from './jailed-policy-runtime.js';

/**
 * Where developers' code runs: every policy call of Kura goes through here, to a jailed host process
 * (jailed-policy-runtime.ts). Refuses, SANDBOX_UNAVAILABLE, where the jail would have no namespaces —
 * unless KURA_SANDBOX=unsafe-none says someone chose that, for development.
 */
@Injectable()
export class PolicyHosts implements OnApplicationShutdown {
  private readonly settings: PolicyHostSettings;
  /** Python bundles unpacked in this process, by policy id (immutable, so kept until shutdown). */
  private readonly bundles = new Map<string, Promise<string>>();
  private readonly bundleRoot = join(tmpdir(), `kura-policy-bundles-${process.pid}-${randomBytes(4).toString('hex')}`);

  constructor(
    @Inject(JAIL_LEVEL) private readonly jail: JailLevelChoice,
    @Inject(KURA_CONFIG) config: KuraConfig,
  ) {
    this.settings = { level: jail.level, ...config.sandbox.policyHosts };
  }

  /** SANDBOX_UNAVAILABLE (503) when developers' code may not run here; see the README's Safety section. */
  assertAvailable(): void {
    if (this.jail.level !== 'process') return;
    throw sandboxUnavailable(this.jail.level, this.jail.reason);
  }

  async load(params: {
    manifest: PolicyManifest;
    entry: Buffer;
    limits: PolicyRuntimeLimits;
    features?: FeatureSpec | undefined;
    /** Python: unpacks the bundle into the folder it is given and returns the folder holding policy.json. */
    unpack?: ((policyId: string, destination: string) => Promise<string>) | undefined;
    policyId: string;
  }): Promise<PolicyRuntime> {
    this.assertAvailable();
    const bundleDir =
      params.manifest.runtime === 'python' && params.unpack ? await this.bundleFolder(params.policyId, params.unpack) : undefined;
    return loadJailedPolicyRuntime({ ...params, bundleDir, host: this.settings });
  }

  async onApplicationShutdown(): Promise<void> {
    await rm(this.bundleRoot, { recursive: true, force: true });
  }

  /**
   * A Python bundle's folder, unpacked once per process. Under the system's temporary folder, 0711:
   * a host runs as a user of its own, which must reach the folder but need not list its neighbours.
   */
  private bundleFolder(policyId: string, unpack: (policyId: string, destination: string) => Promise<string>): Promise<string> {
    let folder = this.bundles.get(policyId);
    if (!folder) {
      folder = (async () => {
        await mkdir(this.bundleRoot, { recursive: true });
        await chmod(this.bundleRoot, 0o711);
        const destination = join(this.bundleRoot, policyId);
        await rm(destination, { recursive: true, force: true });
        return unpack(policyId, destination);
      })();
      folder.catch(() => this.bundles.delete(policyId));
      this.bundles.set(policyId, folder);
    }
    return folder;
  }
}
