import type { PolicyCallContext, PolicyManifest, PolicyObservation } from '@kura/schema';

/** What one policy runtime may use. Each runtime instance gets its own budget. */
export interface PolicyRuntimeLimits {
  /** Heap of a JS policy's isolate, in MiB (isolated-vm's minimum is 8). */
  memoryMb: number;
  /** Wall time of one `act()` call of a JS policy, in milliseconds. */
  callTimeoutMs: number;
  /** Wall time of a JS policy's top level, and of each `reset()`, in milliseconds. */
  loadTimeoutMs: number;
  /** Largest ONNX model accepted, in bytes. */
  maxModelBytes: number;
  /** Threads onnxruntime may use inside one operator. */
  onnxThreads: number;
}

/** The limits a runtime gets when the caller gives none. */
export const defaultPolicyRuntimeLimits: Readonly<PolicyRuntimeLimits> = Object.freeze({
  memoryMb: 128,
  callTimeoutMs: 50,
  loadTimeoutMs: 1000,
  maxModelBytes: 64 * 1024 * 1024,
  onnxThreads: 1,
});

/** A loaded policy: call it with observations, get actions. */
export interface PolicyRuntime {
  /** Calls the policy; resolves to the action flattened row-major (H*D numbers), checked: right count, finite numbers. */
  act(observation: PolicyObservation, context: PolicyCallContext): Promise<Float32Array>;
  /**
   * Calls the policy on several steps in order, as act() one after the other would (a host process
   * answers them in one round trip). Optional: without it, callers call act() per step.
   */
  actMany?(calls: ReadonlyArray<{ observation: PolicyObservation; context: PolicyCallContext }>): Promise<Float32Array[]>;
  /** Between episodes (calls the policy's optional reset()). */
  reset(): Promise<void>;
  /** Releases the isolate or inference session; later calls fail with POLICY_DISPOSED. */
  dispose(): void;
  /**
   * The shape of each observation feature the policy itself fixes (an ONNX model's inputs, without
   * the batch axis), after checking it against the manifest and the dataset; absent for JS policies.
   */
  readonly observationShapes?: Readonly<Record<string, readonly number[]>>;
}

/** What went wrong while loading or calling a policy. */
export type PolicyErrorCode =
  /** The policy ran past its time limit. */
  | 'POLICY_TIMEOUT'
  /** The policy's isolate (or its host process) ran out of memory. */
  | 'POLICY_MEMORY_LIMIT'
  /** The policy's host process ended during a call for another reason (a signal, an exit). */
  | 'POLICY_CRASHED'
  /** The action had the wrong shape, held something other than numbers, or a non-finite number. */
  | 'POLICY_BAD_OUTPUT'
  /** The policy threw, or the model failed while running. */
  | 'POLICY_THREW'
  /** The script defines no `act` function. */
  | 'POLICY_NO_ACT'
  /** The runtime was disposed, or shut down after an earlier failure. */
  | 'POLICY_DISPOSED'
  /** The script is not valid UTF-8 or not valid JavaScript. */
  | 'POLICY_SYNTAX_ERROR'
  /** The observation passed to act() lacks a feature the manifest lists, or has the wrong size or kind. */
  | 'POLICY_BAD_OBSERVATION'
  /** The manifest does not satisfy the policy manifest schema. */
  | 'POLICY_BAD_MANIFEST'
  /**
   * An observation feature's shape (a model's input, or a dataset's feature) is larger than Kura
   * builds observations of (`policyLimits` in @kura/schema); refused before anything is allocated.
   */
  | 'POLICY_OBSERVATION_TOO_LARGE'
  /** The file is not an ONNX model onnxruntime can load. */
  | 'ONNX_INVALID'
  /** The model is larger than `maxModelBytes`. */
  | 'ONNX_TOO_LARGE'
  /** The model's inputs do not match the manifest's observation features (names, types or shapes). */
  | 'ONNX_INPUT_MISMATCH'
  /** A model input has a dimension the model leaves open and neither the manifest nor a dataset fixes. */
  | 'ONNX_SHAPE_UNKNOWN'
  /** An image feature was given to an ONNX policy; only numeric features are supported. */
  | 'ONNX_IMAGE_UNSUPPORTED'
  /** The model refers to tensor data outside the model file. */
  | 'ONNX_EXTERNAL_DATA';

/** A failure of a policy runtime, with a stable code and a message that says what and where. */
export class PolicyError extends Error {
  readonly code: PolicyErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: PolicyErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, { cause: options.cause });
    this.name = 'PolicyError';
    this.code = code;
    this.details = options.details;
  }
}

/**
 * Whether `error` is a PolicyError. Checks the shape rather than `instanceof`, which fails when the
 * error comes from another copy of this module (Jest's ESM registry, two bundles).
 */
export function isPolicyError(error: unknown): error is PolicyError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { name?: unknown }).name === 'PolicyError' &&
    typeof (error as { code?: unknown }).code === 'string'
  );
}

/** The action's layout: `horizon` rows of `width` numbers (horizon 1 for a single action). */
export interface ActionLayout {
  horizon: number;
  width: number;
  /** Whether the manifest's action shape is [H, D] (the policy returns H arrays) rather than [D]. */
  chunked: boolean;
  /** The manifest's shape as text for messages, e.g. "[7]" or "[4, 7]". */
  shapeText: string;
}

/** Reads the action layout from a manifest's `action.shape`. */
export function actionLayout(manifest: PolicyManifest): ActionLayout {
  const shape = manifest.action.shape;
  if (shape.length === 2) {
    const [horizon, width] = shape;
    return { horizon, width, chunked: true, shapeText: `[${horizon}, ${width}]` };
  }
  const [width] = shape;
  return { horizon: 1, width, chunked: false, shapeText: `[${width}]` };
}

/** Shortens text (an error message from the policy or the model) to at most `maxLength` characters. */
export function truncateText(text: string, maxLength = 1000): string {
  return text.length > maxLength ? `${text.slice(0, maxLength)}…` : text;
}
