import { open } from 'node:fs/promises';
import {
  edgeRunnerSettings,
  loadPackagedPolicy,
  unpackEdgePackage,
  verifyEdgePackage,
  type EdgeRunnerSettings,
  type JsonObservation,
  type PackagedPolicy,
} from '@kura/core/edge-runtime';
import type { EdgeKeysView, EdgeLicense, PolicyManifest } from '@kura/schema';
import { EdgeRunError } from './edge.errors.js';
import { UsageLog } from './usage-log.js';

/** How long a window of calls stays open before it is written as a record: what a crash may lose. */
export const DEFAULT_WINDOW_MS = 60_000;
/** A package is its bundle and a few small files; anything far past the bundle limit is not one. */
const PACKAGE_OVERHEAD_BYTES = 16 * 1024 * 1024;

export interface EdgeRunnerOptions {
  /** The package (.tar) as exported. */
  packagePath: string;
  /** The deployment's published keys (`GET /v1/edge/keys`), from a source the device trusts. */
  keys: EdgeKeysView;
  /** This device's id: the license must name it. */
  deviceId: string;
  /** Where usage logs live (one per export). */
  stateDir: string;
  windowMs?: number;
  /** The clock (tests set it; a device uses its own). */
  now?: () => Date;
  settings?: EdgeRunnerSettings;
}

/**
 * An exported policy, running offline: the package was verified (signature, sha256s, expiry, device)
 * before the policy was loaded; each call is checked against the expiry, the quota and the clock,
 * and counted in the usage log.
 */
export class EdgeRunner {
  private window: { from: Date; to: Date; calls: number } | undefined;
  private flushing: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    readonly license: EdgeLicense,
    private readonly policy: PackagedPolicy,
    private readonly log: UsageLog,
    private readonly windowMs: number,
    private readonly now: () => Date,
  ) {}

  static async open(options: EdgeRunnerOptions): Promise<EdgeRunner> {
    const now = options.now ?? (() => new Date());
    const settings = options.settings ?? edgeRunnerSettings();
    const files = await unpackEdgePackage(await readPackage(options.packagePath, settings.bundle.maxBundleBytes + PACKAGE_OVERHEAD_BYTES));
    const license = verifyEdgePackage(files, options.keys, now());
    if (license.deviceId !== options.deviceId)
      throw new EdgeRunError(
        'EDGE_DEVICE_MISMATCH',
        `the package is licensed to device "${license.deviceId}", and this is "${options.deviceId}"`,
        { licensed: license.deviceId, device: options.deviceId },
      );
    const log = await UsageLog.open(options.stateDir, license.exportId);
    try {
      checkClock(log, now());
      checkQuota(license, log.calls);
      const policy = await loadPackagedPolicy({ files, license, settings });
      return new EdgeRunner(license, policy, log, options.windowMs ?? DEFAULT_WINDOW_MS, now);
    } catch (error) {
      await log.close();
      throw error;
    }
  }

  get manifest(): PolicyManifest {
    return this.policy.manifest;
  }

  /** Calls counted so far: written records and the open window. */
  get calls(): number {
    return this.log.calls + (this.window?.calls ?? 0);
  }

  /** One call: refused past expiry or quota or with the clock set back; counted when it answers. */
  async act(observation: JsonObservation, context: { step?: number; task?: string | undefined } = {}) {
    if (this.closed) throw new EdgeRunError('EDGE_PACKAGE_INVALID', 'the runner was closed');
    const started = this.now();
    if (!(started < new Date(this.license.expiresAt)))
      throw new EdgeRunError(
        'EDGE_LICENSE_EXPIRED',
        `the license expired at ${this.license.expiresAt}; renew the export (kura edge renew)`,
      );
    checkClock(this.log, started, this.window?.to);
    checkQuota(this.license, this.calls);
    if (this.window && started.getTime() - this.window.from.getTime() >= this.windowMs) await this.flush();
    const result = await this.policy.act(observation, context);
    const at = this.now();
    if (this.window) {
      this.window.calls += 1;
      if (at > this.window.to) this.window.to = at;
    } else this.window = { from: started, to: at, calls: 1 };
    return result;
  }

  reset(): Promise<void> {
    return this.policy.reset();
  }

  /** Writes the open window as a record every `windowMs` while serving, so an idle server holds none. */
  startWindowTimer(): void {
    this.timer ??= setInterval(() => void this.flush().catch(() => undefined), this.windowMs);
    this.timer.unref();
  }

  /** Writes the open window (if it has calls) as the next record of the usage log. */
  flush(): Promise<unknown> {
    const window = this.window;
    this.window = undefined;
    if (!window) return this.flushing;
    const written = this.flushing.then(() => this.log.append(window));
    this.flushing = written.catch(() => undefined);
    // Not written (a full disk): the calls go back into the open window, to be written with the next.
    return written.catch((error: unknown) => {
      this.window = this.window ? { from: window.from, to: this.window.to, calls: window.calls + this.window.calls } : window;
      throw error;
    });
  }

  /** Writes the open window, stops the policy's host and releases the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    try {
      await this.flush();
    } finally {
      await this.policy.close();
      await this.log.close();
    }
  }
}

/** A clock before the last record's end (or the open window's) was set back: refused, or windows could overlap. */
function checkClock(log: UsageLog, now: Date, windowEnd?: Date): void {
  // The open window starts after the last record ends, so its end, when there is one, is the latest.
  const latest = windowEnd ?? (log.head.to ? new Date(log.head.to) : undefined);
  if (latest && now < latest)
    throw new EdgeRunError(
      'EDGE_CLOCK_BACKWARDS',
      `the clock says ${now.toISOString()}, before the last counted call at ${latest.toISOString()}: set the clock right`,
      { now: now.toISOString(), lastCall: latest.toISOString() },
    );
}

function checkQuota(license: EdgeLicense, calls: number): void {
  if (license.callQuota !== null && calls >= license.callQuota)
    throw new EdgeRunError(
      'EDGE_QUOTA_EXCEEDED',
      `the license allows ${license.callQuota} calls and ${calls} were made; renew the export`,
      {
        callQuota: license.callQuota,
        calls,
      },
    );
}

/** The package's bytes, refused unread when larger than any package can be. */
async function readPackage(path: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new EdgeRunError('EDGE_PACKAGE_INVALID', `${path} has ${size} bytes; a package has at most ${maxBytes}`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
