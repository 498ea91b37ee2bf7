import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startJailed, type Frame, type JailedProcess, type JailExit } from '@kura/jail';
import type { FeatureSpec, PolicyCallContext, PolicyManifest, PolicyObservation } from '@kura/schema';
import type { PolicyHostSettings } from '../../config/config.js';
import {
  actionLayout,
  PolicyError,
  truncateText,
  type PolicyErrorCode,
  type PolicyRuntime,
  type PolicyRuntimeLimits,
} from '../runtimes/runtime-api.js';
import { encodeObservation, encodeObservations, type HostAnswer, type HostRequest } from './host-protocol.js';

/** Where Kura's code is: the jail mounts its `packages/` and `node_modules/` read-only, nothing else of it. */
const codeRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..');
const nodeHost = join(codeRoot, 'packages/core/dist/policies/hosts/policy-host-child.js');
const pythonHost = join(codeRoot, 'packages/core/src/policies/hosts/python/kura_policy_host.py');

export type { PolicyHostSettings };

/** Past a call's own limit, how long the api waits before it kills the host. */
export const HOST_GRACE_MS = 250;
/** Largest frame a host may send: 64 steps of the largest action (65,536 float32) with room to spare. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** What a jailed policy runtime is made of. */
export interface JailedPolicyParams {
  manifest: PolicyManifest;
  entry: Buffer;
  /** The bundle's folder (Python: read-only in the jail, its working directory). */
  bundleDir?: string | undefined;
  limits: PolicyRuntimeLimits;
  features?: FeatureSpec | undefined;
  host: PolicyHostSettings;
}

/** A host between calls holds none: no deadline (setTimeout's largest delay). */
const NO_DEADLINE_MS = 2 ** 31 - 1;

/**
 * Loads a policy in a jailed host process and returns it as a PolicyRuntime: every call crosses a
 * pipe to a process the api can kill. A host that passes a call's deadline (its limit plus
 * HOST_GRACE_MS) or its memory is killed; that call fails POLICY_TIMEOUT / POLICY_MEMORY_LIMIT /
 * POLICY_CRASHED, and the next call starts a new host (the policy's state starts afresh).
 */
export async function loadJailedPolicyRuntime(params: JailedPolicyParams): Promise<PolicyRuntime> {
  const runtime = new JailedPolicyRuntime(params);
  await runtime.start();
  return runtime;
}

class JailedPolicyRuntime implements PolicyRuntime {
  observationShapes?: Readonly<Record<string, readonly number[]>>;
  private host: JailedProcess | undefined;
  private answers: AsyncGenerator<Frame> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(private readonly params: JailedPolicyParams) {}

  /** Starts the host and loads the policy (the first time, and after a host died). */
  async start(): Promise<void> {
    const { manifest, host: settings } = this.params;
    const python = manifest.runtime === 'python';
    if (!python && !existsSync(nodeHost)) throw new Error(`${nodeHost} is missing: build Kura first (npm run build)`);
    const bundleDir = this.params.bundleDir;
    if (python && !bundleDir) throw new Error('a Python policy needs its bundle folder');
    const host = startJailed({
      level: settings.level,
      ...(python
        ? { command: [settings.python.interpreter, '-I', '-B', pythonHost] }
        : { script: nodeHost, nodeOptions: ['--max-semi-space-size=4'] }),
      channel: 'frames',
      separateUser: true,
      mounts: [
        ...(python
          ? [{ path: pythonHost }, { path: bundleDir! }]
          : [{ path: join(codeRoot, 'packages') }, { path: join(codeRoot, 'node_modules') }]),
      ],
      cwd: python ? bundleDir! : '/tmp',
      // One thread per numeric library: calls are small, and threads count against `processes`.
      env: python ? { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' } : {},
      limits: {
        memoryBytes: python ? settings.python.memoryBytes : settings.memoryBytes,
        cpuSeconds: settings.cpuSeconds,
        wallClockMs: NO_DEADLINE_MS, // per call, below
        fileSizeBytes: 64 * 1024 * 1024,
        maxMessageBytes: MAX_ANSWER_BYTES,
        openFiles: 256,
        processes: settings.processes,
      },
    });
    this.host = host;
    this.answers = host.frames();
    const loadTimeoutMs = python ? settings.python.loadTimeoutMs : settings.loadTimeoutMs + this.params.limits.loadTimeoutMs;
    const request: HostRequest = {
      type: 'load',
      manifest,
      limits: this.params.limits,
      features: this.params.features ?? null,
      ...(python ? { bundleDir } : {}),
    };
    const loaded = await this.exchange(request, python ? undefined : this.params.entry, loadTimeoutMs);
    if (loaded.header.type !== 'loaded') throw notWhatItSaid('load');
    // A Python policy can write to the channel itself: only a Node host's (the runtimes', which no
    // policy code can reach) shapes are taken, and only when they are shapes.
    const shapes = (loaded.header as Extract<HostAnswer, { type: 'loaded' }>).observationShapes;
    if (!python && isShapeRecord(shapes)) this.observationShapes = shapes;
  }

  act(observation: PolicyObservation, context: PolicyCallContext): Promise<Float32Array> {
    return this.serially(async () => {
      const { arrays, body } = encodeObservation(observation);
      const answer = await this.exchange({ type: 'act', context, arrays }, body, this.params.limits.callTimeoutMs + HOST_GRACE_MS);
      if (answer.header.type !== 'action') throw notWhatItSaid('act()');
      return this.checkedActions(answer.body, 1)[0]!;
    });
  }

  actMany(calls: ReadonlyArray<{ observation: PolicyObservation; context: PolicyCallContext }>): Promise<Float32Array[]> {
    return this.serially(async () => {
      const [arrays, body] = encodeObservations(calls.map((call) => call.observation));
      const contexts = calls.map((call) => call.context);
      // Each step has the call limit; the host is killed past all of them together.
      const deadline = this.params.limits.callTimeoutMs * calls.length + HOST_GRACE_MS;
      const answer = await this.exchange({ type: 'actMany', contexts, arrays }, body, deadline);
      if (answer.header.type !== 'actions') throw notWhatItSaid('act()');
      return this.checkedActions(answer.body, calls.length);
    });
  }

  /**
   * The actions in an answer's body, checked here again: a Python policy can write to the channel
   * itself, so what the host checked proves nothing. `count` actions of the manifest's H×D numbers,
   * each finite.
   */
  private checkedActions(body: Buffer, count: number): Float32Array[] {
    const { horizon, width } = actionLayout(this.params.manifest);
    const size = horizon * width;
    if (body.length !== count * size * 4) throw notWhatItSaid('act()');
    const all = new Float32Array(new Uint8Array(body).buffer);
    for (const value of all) if (!Number.isFinite(value)) throw notWhatItSaid('act()');
    return Array.from({ length: count }, (_, index) => all.subarray(index * size, (index + 1) * size));
  }

  reset(): Promise<void> {
    return this.serially(async () => {
      await this.exchange({ type: 'reset' }, undefined, this.params.limits.loadTimeoutMs + HOST_GRACE_MS);
    });
  }

  dispose(): void {
    this.disposed = true;
    this.host?.kill();
    this.host = undefined;
  }

  /** Calls run one after another; one that finds its host gone starts a new one first. */
  private serially<T>(call: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.disposed) throw new PolicyError('POLICY_DISPOSED', 'the policy runtime was disposed');
      if (!this.host?.alive) await this.start();
      return call();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** One request and its answer within `deadlineMs`; a host that does not answer in time is killed. */
  private async exchange(request: HostRequest, body: Uint8Array | undefined, deadlineMs: number): Promise<Frame> {
    const host = this.host!;
    host.sendFrame(request, body);
    host.restartDeadline(deadlineMs);
    const next = await this.answers!.next();
    // An answer buffered before the deadline killed its host is late all the same: the call failed,
    // and the next one must find a fresh host rather than take this answer as on time.
    if (next.done || !host.alive) {
      const exit = await host.exit;
      if (this.host === host) this.host = undefined;
      throw hostDeath(exit, request.type, deadlineMs);
    }
    // Idle between calls: no deadline (the host holds no call).
    host.restartDeadline(NO_DEADLINE_MS);
    const header = next.value.header as HostAnswer;
    if (header.type === 'error') throw hostError(header);
    return next.value;
  }
}

/** The codes a host may answer with; anything else is POLICY_CRASHED. */
const hostErrorCodes: ReadonlySet<string> = new Set<PolicyErrorCode>([
  'POLICY_TIMEOUT',
  'POLICY_MEMORY_LIMIT',
  'POLICY_CRASHED',
  'POLICY_BAD_OUTPUT',
  'POLICY_THREW',
  'POLICY_NO_ACT',
  'POLICY_DISPOSED',
  'POLICY_SYNTAX_ERROR',
  'POLICY_BAD_OBSERVATION',
  'POLICY_BAD_MANIFEST',
  'POLICY_OBSERVATION_TOO_LARGE',
  'ONNX_INVALID',
  'ONNX_TOO_LARGE',
  'ONNX_INPUT_MISMATCH',
  'ONNX_SHAPE_UNKNOWN',
  'ONNX_IMAGE_UNSUPPORTED',
  'ONNX_EXTERNAL_DATA',
]);
/** Most JSON text of an error's details a host may pass on. */
const MAX_DETAILS_CHARS = 4000;

/** A host's error answer as a PolicyError, bounded: the answer may have been written by the policy. */
function hostError(header: Extract<HostAnswer, { type: 'error' }>): PolicyError {
  const code = typeof header.code === 'string' && hostErrorCodes.has(header.code) ? (header.code as PolicyErrorCode) : 'POLICY_CRASHED';
  const message = truncateText(typeof header.message === 'string' ? header.message : 'the policy failed');
  const details =
    typeof header.details === 'object' && header.details !== null && !Array.isArray(header.details) ? header.details : undefined;
  const bounded = details && JSON.stringify(details).length <= MAX_DETAILS_CHARS ? details : undefined;
  return new PolicyError(code, message, bounded ? { details: bounded } : {});
}

const notWhatItSaid = (what: string) =>
  new PolicyError('POLICY_CRASHED', `the policy's host answered ${what} with something that is not an answer to it`);

function isShapeRecord(value: unknown): value is Record<string, number[]> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.values(value).every(
    (shape) => Array.isArray(shape) && shape.length <= 8 && shape.every((dimension) => Number.isSafeInteger(dimension) && dimension >= 1),
  );
}

/** The coded error for a host that ended during a call. */
function hostDeath(exit: JailExit, during: HostRequest['type'], deadlineMs: number): PolicyError {
  const what = during === 'load' ? 'loading the policy' : during === 'reset' ? 'reset()' : 'act()';
  switch (exit.outcome) {
    case 'timeout':
    case 'cpu':
      return new PolicyError('POLICY_TIMEOUT', `${what} did not end within ${deadlineMs} ms; its host process was stopped`);
    case 'memory':
      return new PolicyError('POLICY_MEMORY_LIMIT', `${what} used more memory than its host may; its host process was stopped`);
    case 'message-too-large':
      return new PolicyError('POLICY_BAD_OUTPUT', `${what} answered more than ${MAX_ANSWER_BYTES} bytes; its host process was stopped`);
    case 'crashed':
    case 'failed':
    case 'file-size':
    case 'ok': {
      const last = exit.stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 500);
      const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`;
      return new PolicyError('POLICY_CRASHED', `the policy's host process ended during ${what} (${how})${last ? `: ${last}` : ''}`);
    }
  }
}
