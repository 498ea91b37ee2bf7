import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { FeatureSpec, PolicyManifest } from '@kura/schema';
import type { KuraConfig } from '../config/config.js';
import { KURA_CONFIG } from '../database/database.tokens.js';
import type { PolicyRecord } from '../policies/policies.repository.js';
import type { PolicyNormalization } from '../policies/normalization.js';
import { PolicyLoader } from '../policies/policy-loader.service.js';
import { isPolicyError, type PolicyRuntime } from '../policies/runtimes/policy-runtime.js';
import { policyHostsBusy } from './inference.errors.js';

/** Most sandboxed instances of one policy kept at once (calls beyond wait for one to be free). */
const INSTANCES_PER_POLICY = 4;
/** Most policies kept warm; the least recently used one is unloaded past this. */
const WARM_POLICIES = 32;
/** Most sessions with an instance of their own. */
const SESSION_INSTANCES = 256;

/** A ready policy as the pool sees it. */
export type ReadyPolicy = PolicyRecord & { manifest: PolicyManifest; entryKey: string };

interface Warm {
  policy: ReadyPolicy;
  idle: PolicyRuntime[];
  instances: number;
  waiting: Array<(runtime: PolicyRuntime | Error) => void>;
  normalization: Promise<PolicyNormalization | undefined>;
  features: FeatureSpec | undefined;
}

/**
 * Warm sandboxed instances of ready policies, so a call does not pay for a new host process (0.2–1 s)
 * each time. Each instance serves one call at a time; an instance that hit its memory limit (or was
 * disposed) is dropped and the next call loads a fresh one. Policies are immutable versions, so an
 * instance never goes stale.
 *
 * Each instance is a jailed host process (policies/hosts: ~70 MB for JS or ONNX, ~250 MB for Python
 * with torch), so all of them together — warm and sessions' — are capped at KURA_POLICY_HOSTS_MAX:
 * a new one first unloads the least recently used idle instance, then the least recently stepped
 * session's (its next step starts afresh); when every host is busy with a call, 503 POLICY_HOSTS_BUSY.
 */
@Injectable()
export class PolicyPool implements OnApplicationShutdown {
  private readonly warm = new Map<string, Warm>();
  private readonly sessions = new Map<
    string,
    { runtime: Promise<PolicyRuntime>; normalization: Promise<PolicyNormalization | undefined>; calls: number }
  >();
  /** Instances loaded or loading, warm and sessions' together. */
  private hosts = 0;
  private readonly maxHosts: number;

  constructor(
    private readonly loader: PolicyLoader,
    @Inject(KURA_CONFIG) config: KuraConfig,
  ) {
    this.maxHosts = config.policies.maxHosts;
  }

  /** How many instances (host processes) are loaded or loading. */
  liveHosts(): number {
    return this.hosts;
  }

  /** Runs `use` with an instance of the policy, and its normalization. */
  async with<T>(
    policy: ReadyPolicy,
    features: FeatureSpec | undefined,
    use: (runtime: PolicyRuntime, normalization: PolicyNormalization | undefined) => Promise<T>,
  ): Promise<T> {
    // Checked at every call: the normalization kept warm must not outlive its owner's access.
    await this.loader.checkNormalizationAccess(policy);
    const warm = this.warmOf(policy, features);
    const runtime = await this.acquire(warm);
    let healthy = true;
    try {
      return await use(runtime, await warm.normalization);
    } catch (error) {
      // A policy that blew its memory is gone; any other failure leaves the instance usable.
      if (isPolicyError(error) && (error.code === 'POLICY_MEMORY_LIMIT' || error.code === 'POLICY_DISPOSED')) healthy = false;
      throw error;
    } finally {
      this.release(warm, runtime, healthy);
    }
  }

  /**
   * Runs `use` with the session's own instance (loaded and reset on its first step), so a policy
   * keeps its state across a session's steps. At most SESSION_INSTANCES are kept; past that the
   * least recently used session's instance is unloaded and its next step starts a fresh one.
   */
  async withSession<T>(
    sessionId: string,
    policy: ReadyPolicy,
    features: FeatureSpec | undefined,
    use: (runtime: PolicyRuntime, normalization: PolicyNormalization | undefined) => Promise<T>,
  ): Promise<T> {
    await this.loader.checkNormalizationAccess(policy);
    let pinned = this.sessions.get(sessionId);
    if (pinned) this.sessions.delete(sessionId);
    else {
      if (this.sessions.size >= SESSION_INSTANCES) {
        const [oldest] = this.sessions.keys();
        this.releaseSession(oldest!);
      }
      this.makeRoom();
      this.hosts++;
      const loading = this.loader.load(policy, features).then(async (runtime) => {
        await runtime.reset();
        return runtime;
      });
      pinned = { runtime: loading, normalization: this.loader.normalization(policy), calls: 0 };
    }
    this.sessions.set(sessionId, pinned);
    pinned.calls++;
    try {
      return await use(await pinned.runtime, await pinned.normalization);
    } catch (error) {
      // A lost instance (memory limit) is replaced at the session's next step.
      if (!isPolicyError(error) || error.code === 'POLICY_MEMORY_LIMIT' || error.code === 'POLICY_DISPOSED') this.releaseSession(sessionId);
      throw error;
    } finally {
      pinned.calls--;
    }
  }

  /** Unloads a session's instance (when it ends, or to make room). */
  releaseSession(sessionId: string): void {
    const pinned = this.sessions.get(sessionId);
    if (!pinned) return;
    this.sessions.delete(sessionId);
    this.hosts--;
    pinned.runtime.then(
      (runtime) => runtime.dispose(),
      () => undefined,
    );
  }

  /** How many instances of a policy are loaded (for tests and metrics). */
  instances(policyId: string): number {
    return this.warm.get(policyId)?.instances ?? 0;
  }

  onApplicationShutdown(): void {
    for (const warm of this.warm.values()) for (const runtime of warm.idle) runtime.dispose();
    this.warm.clear();
    this.hosts = 0;
    for (const sessionId of [...this.sessions.keys()]) this.releaseSession(sessionId);
  }

  private warmOf(policy: ReadyPolicy, features: FeatureSpec | undefined): Warm {
    let warm = this.warm.get(policy.id);
    if (warm) {
      // Most recently used last, so the first entry is the one to unload.
      this.warm.delete(policy.id);
      this.warm.set(policy.id, warm);
      return warm;
    }
    warm = { policy, idle: [], instances: 0, waiting: [], normalization: this.loader.normalization(policy), features };
    warm.normalization.catch(() => this.warm.delete(policy.id));
    this.warm.set(policy.id, warm);
    if (this.warm.size > WARM_POLICIES) {
      const [oldestId, oldest] = this.warm.entries().next().value!;
      this.warm.delete(oldestId);
      for (const runtime of oldest.idle.splice(0)) this.unload(oldest, runtime);
    }
    return warm;
  }

  private async acquire(warm: Warm): Promise<PolicyRuntime> {
    const idle = warm.idle.pop();
    if (idle) return idle;
    if (warm.instances < INSTANCES_PER_POLICY) {
      this.makeRoom();
      warm.instances++;
      this.hosts++;
      // A new host takes ~0.25 s to start: the call takes whichever instance is free first, this new
      // one or one that ends its call meanwhile; the other then waits idle for the next call.
      const loading = this.loader.load(warm.policy, warm.features);
      const next = await new Promise<PolicyRuntime | Error>((resolve) => {
        warm.waiting.push(resolve);
        loading.then(
          (runtime) => {
            const index = warm.waiting.indexOf(resolve);
            if (index !== -1) {
              warm.waiting.splice(index, 1);
              resolve(runtime);
            } else this.release(warm, runtime, true);
          },
          (error: unknown) => {
            warm.instances--;
            this.hosts--;
            const index = warm.waiting.indexOf(resolve);
            if (index !== -1) {
              warm.waiting.splice(index, 1);
              resolve(error instanceof Error ? error : new Error(String(error)));
            }
          },
        );
      });
      if (next instanceof Error) throw next;
      return next;
    }
    const next = await new Promise<PolicyRuntime | Error>((resolve) => warm.waiting.push(resolve));
    if (next instanceof Error) throw next;
    return next;
  }

  private release(warm: Warm, runtime: PolicyRuntime, healthy: boolean): void {
    const waiter = warm.waiting.shift();
    if (!healthy) {
      runtime.dispose();
      if (!waiter) {
        warm.instances--;
        this.hosts--;
        return;
      }
      // The waiting call gets a fresh instance in place of the lost one (its load error is the call's).
      this.loader.load(warm.policy, warm.features).then(waiter, (error: unknown) => {
        warm.instances--;
        this.hosts--;
        waiter(error instanceof Error ? error : new Error(String(error)));
      });
      return;
    }
    if (waiter) waiter(runtime);
    else if (this.warm.get(warm.policy.id) === warm) warm.idle.push(runtime);
    // The policy was unloaded while this call ran.
    else this.unload(warm, runtime);
  }

  private unload(warm: Warm, runtime: PolicyRuntime): void {
    runtime.dispose();
    warm.instances--;
    this.hosts--;
  }

  /**
   * Frees a host when all KURA_POLICY_HOSTS_MAX are loaded: the least recently used policy's idle
   * instance, else the least recently stepped session's that is not in a call; else 503.
   */
  private makeRoom(): void {
    while (this.hosts >= this.maxHosts) {
      const warm = [...this.warm.values()].find((candidate) => candidate.idle.length > 0);
      if (warm) {
        this.unload(warm, warm.idle.shift()!);
        continue;
      }
      const session = [...this.sessions.entries()].find(([, pinned]) => pinned.calls === 0);
      if (session) {
        this.releaseSession(session[0]);
        continue;
      }
      throw policyHostsBusy(this.maxHosts);
    }
  }
}
