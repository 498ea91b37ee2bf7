import ivm from 'isolated-vm';
import type { PolicyCallContext, PolicyManifest, PolicyObservation } from '@kura/schema';
import { actionLayout, PolicyError, truncateText, type ActionLayout, type PolicyRuntime, type PolicyRuntimeLimits } from './runtime-api.js';

/**
 * Runs inside the isolate before the policy's script. Its completion value (an object of three
 * functions) is held only by the host, never stored where the policy can reach it. It captures the
 * intrinsics it uses now, so that whatever the policy later does to `Array.isArray`,
 * `Array.prototype`, `Object.prototype`… cannot change how its result is checked, and it builds every
 * value that leaves the isolate itself: `{ kind: 'ok', values }` with a Float32Array of exactly H*D
 * numbers, or `{ kind, message }` with a message of at most 1000 characters.
 */
const HARNESS_SOURCE = `(() => {
  'use strict';
  const global = globalThis;
  const evalGlobally = eval;
  const isArray = Array.isArray;
  const isFiniteNumber = Number.isFinite;
  const Float32ArrayOf = Float32Array;
  const StringOf = String;
  const RangeErrorOf = RangeError;
  const TypeErrorOf = TypeError;
  const reflectApply = Reflect.apply;
  const reflectConstruct = Reflect.construct;
  const defineProperty = Object.defineProperty;
  const getPrototypeOf = Object.getPrototypeOf;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const sliceString = String.prototype.slice;
  const typedArrayPrototype = getPrototypeOf(Uint8Array.prototype);
  const typedArrayTag = getOwnPropertyDescriptor(typedArrayPrototype, Symbol.toStringTag).get;
  const typedArrayLength = getOwnPropertyDescriptor(typedArrayPrototype, 'length').get;
  const promisePrototype = Promise.prototype;
  const MAX_MESSAGE = 1000;

  // Memory that isolated-vm's memoryLimit does not count: WebAssembly memories, growable
  // SharedArrayBuffers and resizable ArrayBuffers (which also reserve their maximum size of address
  // space up front). A policy has no use for any of them.
  delete global.WebAssembly;
  delete global.SharedArrayBuffer;
  delete global.Atomics;
  const OriginalArrayBuffer = ArrayBuffer;
  const arrayBufferPrototype = OriginalArrayBuffer.prototype;
  const FixedArrayBuffer = function ArrayBuffer(length) {
    if (new.target === undefined) throw new TypeErrorOf("Constructor ArrayBuffer requires 'new'");
    return reflectConstruct(OriginalArrayBuffer, [length], new.target);
  };
  defineProperty(FixedArrayBuffer, 'prototype', { value: arrayBufferPrototype, writable: false });
  defineProperty(FixedArrayBuffer, 'isView', { value: OriginalArrayBuffer.isView, writable: true, configurable: true });
  defineProperty(FixedArrayBuffer, Symbol.species, getOwnPropertyDescriptor(OriginalArrayBuffer, Symbol.species));
  defineProperty(arrayBufferPrototype, 'constructor', { value: FixedArrayBuffer, writable: true, configurable: true });
  defineProperty(global, 'ArrayBuffer', { value: FixedArrayBuffer, writable: true, configurable: true });
  delete arrayBufferPrototype.resize;

  let act;
  let reset;
  let loaded = false;
  let horizon = 1;
  let width = 1;
  let chunked = false;
  let shapeText = '';

  function truncate(text) {
    return text.length > MAX_MESSAGE ? reflectApply(sliceString, text, [0, MAX_MESSAGE]) + '\u2026' : text;
  }

  // Reading a thrown object's name and message may run the policy's getters: still inside the call's
  // time limit, and anything they throw is caught here.
  function describeThrown(error) {
    try {
      if ((typeof error === 'object' && error !== null) || typeof error === 'function') {
        const name = error.name;
        const message = error.message;
        const text = typeof message === 'string' ? message : StringOf(message);
        return (typeof name === 'string' && name !== '' ? truncate(name) : 'Error') + ': ' + truncate(text);
      }
      return truncate(StringOf(error));
    } catch (describeError) {
      return 'an exception that could not be turned into text';
    }
  }

  function thrown(error) {
    const message = describeThrown(error);
    let outOfMemory = false;
    try {
      // instanceof may run a Proxy's getPrototypeOf trap.
      outOfMemory = message === 'RangeError: Array buffer allocation failed' && error instanceof RangeErrorOf;
    } catch (checkError) {
      outOfMemory = false;
    }
    return { kind: outOfMemory ? 'memory' : 'threw', message };
  }

  function badOutput(message) {
    return { kind: 'bad_output', message: message + ' (action shape ' + shapeText + ')' };
  }

  function describeType(value) {
    if (value === null) return 'null';
    if (value === undefined) return 'undefined';
    if (isArray(value)) return 'an array';
    if (typeof value === 'object') return getPrototypeOf(value) === promisePrototype ? 'a Promise (act() must not be async)' : 'an object';
    return typeof value === 'number' ? 'a number' : 'a ' + typeof value;
  }

  // The length of an array or typed array, else undefined. A Proxy of an array counts as an array;
  // its traps run inside the time limit and whatever they answer is checked like anything else.
  function lengthOf(value) {
    if (isArray(value)) {
      const length = value.length;
      return typeof length === 'number' ? length : undefined;
    }
    if (typeof value === 'object' && value !== null && reflectApply(typedArrayTag, value, []) !== undefined) {
      return reflectApply(typedArrayLength, value, []);
    }
    return undefined;
  }

  function copyNumbers(source, values, offset, where) {
    for (let index = 0; index < width; index++) {
      const value = source[index];
      if (typeof value !== 'number') return where + '[' + index + '] is ' + describeType(value) + ', expected a number';
      values[offset + index] = value;
      if (!isFiniteNumber(values[offset + index])) {
        return where + '[' + index + '] is ' + StringOf(value) + (isFiniteNumber(value) ? ', too large for a 32-bit float' : '');
      }
    }
    return undefined;
  }

  function checkOutput(output) {
    const values = new Float32ArrayOf(horizon * width);
    const length = lengthOf(output);
    if (!chunked) {
      if (length === undefined) return badOutput('act() returned ' + describeType(output) + ', expected an array of ' + width + ' numbers');
      if (length !== width) return badOutput('act() returned ' + length + ' numbers, expected ' + width);
      const problem = copyNumbers(output, values, 0, 'act()');
      return problem === undefined ? { kind: 'ok', values } : badOutput(problem);
    }
    const expected = horizon + ' arrays of ' + width + ' numbers';
    if (length === undefined) return badOutput('act() returned ' + describeType(output) + ', expected ' + expected);
    if (length !== horizon) {
      const what = typeof output[0] === 'number' ? ' numbers' : ' entries';
      return badOutput('act() returned ' + length + what + ', expected ' + expected);
    }
    for (let row = 0; row < horizon; row++) {
      const entry = output[row];
      const rowLength = lengthOf(entry);
      const where = 'act()[' + row + ']';
      if (rowLength === undefined) return badOutput(where + ' is ' + describeType(entry) + ', expected an array of ' + width + ' numbers');
      if (rowLength !== width) return badOutput(where + ' has ' + rowLength + ' numbers, expected ' + width);
      const problem = copyNumbers(entry, values, row * width, where);
      if (problem !== undefined) return badOutput(problem);
    }
    return { kind: 'ok', values };
  }

  // Runs the script as a global script (indirect eval), then the binder appended to it, whose value
  // is the script's act and reset: found even when declared with const or let, which a script's
  // global object does not hold.
  function load(source, filename, actionHorizon, actionWidth, actionChunked) {
    if (loaded) return { kind: 'threw', message: 'the policy is already loaded' };
    loaded = true;
    horizon = actionHorizon;
    width = actionWidth;
    chunked = actionChunked;
    shapeText = chunked ? '[' + horizon + ', ' + width + ']' : '[' + width + ']';
    let entryPoints;
    try {
      entryPoints = evalGlobally(
        source +
          '\\n;({ act: typeof act === "function" ? act : undefined, reset: typeof reset === "function" ? reset : undefined });' +
          '\\n//# sourceURL=' + filename,
      );
      if (typeof entryPoints === 'object' && entryPoints !== null) {
        act = entryPoints.act;
        reset = entryPoints.reset;
      }
    } catch (error) {
      return thrown(error);
    }
    if (typeof act !== 'function') {
      act = undefined;
      return { kind: 'no_act', message: 'the script defines no function act(observation, context)' };
    }
    if (typeof reset !== 'function') reset = undefined;
    return { kind: 'ok' };
  }

  function callAct(observation, context) {
    let output;
    try {
      output = act(observation, context);
    } catch (error) {
      return thrown(error);
    }
    try {
      return checkOutput(output);
    } catch (error) {
      return thrown(error);
    }
  }

  // Several steps in one crossing into the isolate (evaluations): in order, stopping at the first
  // that fails, whose index comes back with it.
  function callActMany(observations, contexts) {
    const size = horizon * width;
    const values = new Float32ArrayOf(observations.length * size);
    for (let index = 0; index < observations.length; index++) {
      const result = callAct(observations[index], contexts[index]);
      if (result.kind !== 'ok') return { kind: result.kind, message: result.message, index };
      values.set(result.values, index * size);
    }
    return { kind: 'ok', values };
  }

  function callReset() {
    if (reset === undefined) return { kind: 'ok' };
    try {
      reset();
    } catch (error) {
      return thrown(error);
    }
    return { kind: 'ok' };
  }

  return { load, act: callAct, actMany: callActMany, reset: callReset };
})()`;

/** How long after a call's time limit the host stops waiting for an isolate that did not stop. */
const UNRESPONSIVE_GRACE_MS = 10_000;

let quarantinedIsolates = 0;

/**
 * How many isolates in this process hit a failure V8 cannot unwind (an allocation too large for the
 * heap, or a builtin that ignored the time limit). Each keeps a parked thread and its heap until the
 * process ends; a service should restart the process once this grows.
 */
export function quarantinedIsolateCount(): number {
  return quarantinedIsolates;
}

type HarnessKind = 'ok' | 'threw' | 'memory' | 'bad_output' | 'no_act';

interface HarnessResult {
  kind: HarnessKind;
  message: string;
  values: ArrayLike<number> | undefined;
  /** actMany: the step that failed. */
  index: number | undefined;
}

const harnessKinds: ReadonlySet<string> = new Set(['ok', 'threw', 'memory', 'bad_output', 'no_act']);

/** The harness builds its results itself; this only turns the copied value into a typed one. */
function parseHarnessResult(value: unknown): HarnessResult {
  if (typeof value !== 'object' || value === null) throw new TypeError('the sandbox harness returned no result');
  const { kind, message, values, index } = value as { kind?: unknown; message?: unknown; values?: unknown; index?: unknown };
  if (typeof kind !== 'string' || !harnessKinds.has(kind)) throw new TypeError('the sandbox harness returned an unknown result');
  return {
    kind: kind as HarnessKind,
    message: typeof message === 'string' ? message : '',
    values: ArrayBuffer.isView(values) ? (values as unknown as ArrayLike<number>) : undefined,
    index: typeof index === 'number' && Number.isInteger(index) ? index : undefined,
  };
}

type IsolateFunction = ivm.Reference<(...args: unknown[]) => unknown>;

/** A JS policy in its own isolate. */
class JsPolicyRuntime implements PolicyRuntime {
  private readonly isolate: ivm.Isolate;
  private readonly limits: PolicyRuntimeLimits;
  private readonly layout: ActionLayout;
  private readonly features: readonly string[];
  private context: ivm.Context | undefined;
  private loadFunction: IsolateFunction | undefined;
  private actFunction: IsolateFunction | undefined;
  private actManyFunction: IsolateFunction | undefined;
  private resetFunction: IsolateFunction | undefined;
  /** Why the runtime can no longer be called, once it cannot. */
  private failure: PolicyError | undefined;
  private disposedByCaller = false;
  private quarantined = false;
  /** Calls run one at a time, so a call's time limit never includes waiting for another call. */
  private queue: Promise<unknown> = Promise.resolve();
  private rejectPendingCall: ((error: PolicyError) => void) | undefined;

  constructor(
    manifest: PolicyManifest,
    limits: PolicyRuntimeLimits,
    /** Calls block this thread (applySync): for a process that serves this policy only, where it saves ~50 µs a call. */
    private readonly blocking = false,
  ) {
    this.limits = limits;
    this.layout = actionLayout(manifest);
    this.features = manifest.observation;
    this.isolate = new ivm.Isolate({
      memoryLimit: limits.memoryMb,
      // Without this handler isolated-vm aborts the whole process when V8 cannot recover the isolate.
      onCatastrophicError: (message) => this.quarantine(message),
    });
  }

  async load(source: string, entry: string): Promise<void> {
    const context = await this.isolate.createContext();
    this.context = context;
    const harness = (await context.eval(HARNESS_SOURCE, { reference: true, timeout: this.limits.loadTimeoutMs })) as ivm.Reference<
      Record<string, unknown>
    >;
    this.loadFunction = await this.harnessFunction(harness, 'load');
    this.actFunction = await this.harnessFunction(harness, 'act');
    this.actManyFunction = await this.harnessFunction(harness, 'actMany');
    this.resetFunction = await this.harnessFunction(harness, 'reset');
    harness.release();

    const filename = `policy:///${entry.replace(/[^A-Za-z0-9._/-]/g, '_')}`;
    // Compiled once here only for the error message: V8 reports a syntax error's line and column
    // for a compiled script, not for eval.
    try {
      const script = await this.isolate.compileScript(source, { filename });
      script.release();
    } catch (error) {
      throw new PolicyError('POLICY_SYNTAX_ERROR', `${entry}: ${truncateText(errorMessage(error))}`, { cause: error });
    }

    const { horizon, width, chunked } = this.layout;
    const result = await this.call(
      this.loadFunction,
      [source, filename, horizon, width, chunked],
      this.limits.loadTimeoutMs,
      `${entry} (top level)`,
    );
    switch (result.kind) {
      case 'ok':
        return;
      case 'no_act':
        throw new PolicyError('POLICY_NO_ACT', `${entry}: ${result.message}`);
      case 'threw':
      case 'memory':
      case 'bad_output':
        throw this.policyFailure(result, `${entry} (top level)`);
    }
  }

  act(observation: PolicyObservation, context: PolicyCallContext): Promise<Float32Array> {
    return this.serialize(async () => {
      const args = [isolateObservation(observation, this.features), isolateContext(context)];
      const result = await this.call(this.actFunction, args, this.limits.callTimeoutMs, 'act()');
      if (result.kind !== 'ok') throw this.policyFailure(result, 'act()');
      const { horizon, width, shapeText } = this.layout;
      if (result.values === undefined || result.values.length !== horizon * width) {
        throw new PolicyError('POLICY_BAD_OUTPUT', `act() returned no action of ${horizon * width} numbers (action shape ${shapeText})`);
      }
      return Float32Array.from(result.values);
    });
  }

  /**
   * act() on several steps in one call into the isolate (~87 µs each saved). The steps share one
   * time limit, callTimeoutMs per step: a slow step may use what fast ones left.
   */
  actMany(calls: ReadonlyArray<{ observation: PolicyObservation; context: PolicyCallContext }>): Promise<Float32Array[]> {
    return this.serialize(async () => {
      const args = [
        calls.map((call) => isolateObservation(call.observation, this.features)),
        calls.map((call) => isolateContext(call.context)),
      ];
      const result = await this.call(this.actManyFunction, args, this.limits.callTimeoutMs * calls.length, 'act()');
      if (result.kind !== 'ok') {
        const failure = this.policyFailure(result, 'act()');
        throw new PolicyError(failure.code, failure.message, { details: { callIndex: result.index ?? 0 } });
      }
      const size = this.layout.horizon * this.layout.width;
      if (result.values === undefined || result.values.length !== size * calls.length)
        throw new PolicyError('POLICY_BAD_OUTPUT', `act() returned no actions of ${size} numbers (action shape ${this.layout.shapeText})`);
      const all = Float32Array.from(result.values);
      return calls.map((_, index) => all.subarray(index * size, (index + 1) * size));
    });
  }

  reset(): Promise<void> {
    return this.serialize(async () => {
      const result = await this.call(this.resetFunction, [], this.limits.loadTimeoutMs, 'reset()');
      if (result.kind !== 'ok') throw this.policyFailure(result, 'reset()');
    });
  }

  dispose(): void {
    if (this.disposedByCaller) return;
    this.disposedByCaller = true;
    this.failure ??= new PolicyError('POLICY_DISPOSED', 'the policy runtime was disposed');
    this.rejectPendingCall?.(this.failure);
    this.releaseIsolate();
  }

  private async harnessFunction(harness: ivm.Reference<Record<string, unknown>>, name: string): Promise<IsolateFunction> {
    return (await harness.get(name, { reference: true })) as IsolateFunction;
  }

  private serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Calls a harness function with copied arguments and a time limit. A watchdog settles the call if
   * the isolate neither finishes nor stops (isolated-vm's own limit failed), and shuts the runtime down.
   */
  private call(fn: IsolateFunction | undefined, args: unknown[], timeoutMs: number, what: string): Promise<HarnessResult> {
    const failure = this.failure;
    if (failure !== undefined) {
      const message =
        failure.code === 'POLICY_DISPOSED' ? failure.message : `the policy runtime was shut down after ${failure.code}: ${failure.message}`;
      return Promise.reject(new PolicyError('POLICY_DISPOSED', message, { details: { after: failure.code } }));
    }
    if (fn === undefined) return Promise.reject(new PolicyError('POLICY_DISPOSED', 'the policy runtime is not loaded'));
    if (this.blocking) {
      // No watchdog: nothing runs on this thread meanwhile; the host's parent kills the process instead.
      try {
        const value: unknown = fn.applySync(undefined, args, { timeout: timeoutMs, arguments: { copy: true }, result: { copy: true } });
        return Promise.resolve(parseHarnessResult(value));
      } catch (error) {
        return Promise.reject(this.isolateFailure(error, what, timeoutMs));
      }
    }
    return new Promise<HarnessResult>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        this.rejectPendingCall = undefined;
        outcome();
      };
      const watchdog = setTimeout(() => {
        this.quarantine(`${what} did not stop ${UNRESPONSIVE_GRACE_MS} ms after its time limit of ${timeoutMs} ms`);
      }, timeoutMs + UNRESPONSIVE_GRACE_MS);
      this.rejectPendingCall = (error) => settle(() => reject(error));
      const onFailure = (error: unknown): void => settle(() => reject(this.isolateFailure(error, what, timeoutMs)));
      try {
        fn.apply(undefined, args, { timeout: timeoutMs, arguments: { copy: true }, result: { copy: true } }).then(
          (value) => settle(() => resolve(parseHarnessResult(value))),
          onFailure,
        );
      } catch (error) {
        onFailure(error);
      }
    });
  }

  /** Maps an error isolated-vm raised for a call (the harness itself never throws) to a code. */
  private isolateFailure(error: unknown, what: string, timeoutMs: number): PolicyError {
    if (this.failure !== undefined) return this.failure;
    const message = errorMessage(error);
    if (this.isolate.isDisposed) {
      const outOfMemory = new PolicyError('POLICY_MEMORY_LIMIT', `${what} used more than the ${this.limits.memoryMb} MiB memory limit`, {
        cause: error,
      });
      this.failure = outOfMemory;
      return outOfMemory;
    }
    if (message.includes('Script execution timed out')) {
      return new PolicyError('POLICY_TIMEOUT', `${what} ran longer than its limit of ${timeoutMs} ms`, { cause: error });
    }
    // A stack overflow in the harness's own error handling, for one, arrives here.
    return new PolicyError('POLICY_THREW', `${what} threw ${truncateText(message)}`, { cause: error });
  }

  private policyFailure(result: HarnessResult, what: string): PolicyError {
    switch (result.kind) {
      case 'threw':
        return new PolicyError('POLICY_THREW', `${what} threw ${result.message}`);
      case 'memory':
        return new PolicyError(
          'POLICY_MEMORY_LIMIT',
          `${what} could not allocate memory within the ${this.limits.memoryMb} MiB limit: ${result.message}`,
        );
      case 'bad_output':
        return new PolicyError('POLICY_BAD_OUTPUT', result.message);
      case 'no_act':
      case 'ok':
        return new PolicyError('POLICY_NO_ACT', `${what}: ${result.message}`);
    }
  }

  /**
   * After a failure V8 cannot unwind (reported by isolated-vm, or a call that outlived its watchdog):
   * fail the pending call and every later one, and free what can still be freed.
   */
  private quarantine(reason: string): void {
    if (this.quarantined) return;
    this.quarantined = true;
    quarantinedIsolates += 1;
    const code = reason.toLowerCase().includes('memory') ? 'POLICY_MEMORY_LIMIT' : 'POLICY_TIMEOUT';
    const failure = new PolicyError(code, `the policy's isolate could not be stopped (${reason}); the runtime was shut down`);
    if (this.failure === undefined || this.failure.code === 'POLICY_DISPOSED') this.failure = failure;
    this.rejectPendingCall?.(failure);
    this.releaseIsolate();
  }

  private releaseIsolate(): void {
    for (const reference of [this.loadFunction, this.actFunction, this.actManyFunction, this.resetFunction]) {
      try {
        reference?.release();
      } catch {
        // Already released with its isolate.
      }
    }
    this.loadFunction = this.actFunction = this.actManyFunction = this.resetFunction = undefined;
    try {
      this.context?.release();
    } catch {
      // Already released with its isolate.
    }
    this.context = undefined;
    if (!this.isolate.isDisposed) {
      try {
        this.isolate.dispose();
      } catch {
        // Disposed concurrently (memory limit): nothing left to free.
      }
    }
  }
}

function errorMessage(error: unknown): string {
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') {
    return (error as { message: string }).message;
  }
  return String(error);
}

function tagOf(value: unknown): string {
  return Object.prototype.toString.call(value);
}

/**
 * The observation as the isolate receives it: only the manifest's features, numbers as plain arrays,
 * images as a Uint8Array of their encoded bytes. Every value is a fresh copy: a Buffer can be a view
 * into Node's shared pool, and copying the view's whole ArrayBuffer would hand the policy other data.
 */
function isolateObservation(observation: PolicyObservation, features: readonly string[]): Record<string, number[] | Uint8Array> {
  const copied: Record<string, number[] | Uint8Array> = {};
  for (const feature of features) {
    const value: unknown = Object.hasOwn(observation, feature) ? observation[feature] : undefined;
    if (value === undefined) {
      throw new PolicyError(
        'POLICY_BAD_OBSERVATION',
        `the observation has no "${feature}" (the manifest's observation lists ${features.join(', ')})`,
      );
    }
    if (tagOf(value) === '[object Uint8Array]') {
      copied[feature] = new Uint8Array(value as Uint8Array);
    } else if (tagOf(value) === '[object Float32Array]') {
      copied[feature] = Array.from(value as Float32Array);
    } else if (Array.isArray(value) && value.every((item) => typeof item === 'number')) {
      copied[feature] = value.slice();
    } else {
      throw new PolicyError(
        'POLICY_BAD_OBSERVATION',
        `observation "${feature}" is neither numbers (number[] or Float32Array) nor image bytes (Uint8Array)`,
      );
    }
  }
  return copied;
}

function isolateContext(context: PolicyCallContext): PolicyCallContext {
  return {
    step: context.step,
    ...(typeof context.task === 'string' ? { task: context.task } : {}),
    ...(typeof context.episode === 'number' ? { episode: context.episode } : {}),
  };
}

/**
 * Loads a JS policy into a fresh isolate: runs the script's top level within `loadTimeoutMs` and
 * checks that it defines `act`. Fails with POLICY_SYNTAX_ERROR, POLICY_THREW, POLICY_TIMEOUT,
 * POLICY_MEMORY_LIMIT or POLICY_NO_ACT, having released the isolate.
 */
export async function loadJsPolicyRuntime(params: {
  manifest: PolicyManifest;
  entry: Buffer;
  limits: PolicyRuntimeLimits;
  blocking?: boolean | undefined;
}): Promise<PolicyRuntime> {
  const { manifest, entry, limits } = params;
  let source: string;
  try {
    source = new TextDecoder('utf-8', { fatal: true }).decode(entry);
  } catch (error) {
    throw new PolicyError('POLICY_SYNTAX_ERROR', `${manifest.entry} is not valid UTF-8 text`, { cause: error });
  }
  const runtime = new JsPolicyRuntime(manifest, limits, params.blocking);
  try {
    await runtime.load(source, manifest.entry);
  } catch (error) {
    runtime.dispose();
    throw error;
  }
  return runtime;
}
