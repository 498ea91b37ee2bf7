import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { FeatureSpec, PolicyCallContext, PolicyManifest, PolicyObservation } from '@kura/schema';
import { isOrtFormat, OnnxWireFormatError, scanOnnxModel } from './onnx-model-scan.js';
import { actionLayout, PolicyError, truncateText, type ActionLayout, type PolicyRuntime, type PolicyRuntimeLimits } from './runtime-api.js';

/** A model input fed from one observation feature. */
interface ModelInput {
  feature: string;
  /** The feature's shape: the model's input shape without its batch axis, symbolic dimensions resolved. */
  featureShape: number[];
}

/** Where a feature's shape can come from besides the model. */
interface ShapeSource {
  shape: number[];
  /** How a message names it. */
  label: string;
  /** The manifest field that sets it, when the manifest does. */
  field: string | undefined;
}

/** LeRobot's names for camera features, for when no feature spec says which features are images. */
const imageFeaturePattern = /^observation\.images?(\.|$)/;

/** A policy that is an ONNX model, run by onnxruntime on the CPU. */
class OnnxPolicyRuntime implements PolicyRuntime {
  private session: InferenceSession | undefined;
  readonly observationShapes: Readonly<Record<string, readonly number[]>>;

  constructor(
    session: InferenceSession,
    private readonly inputs: readonly ModelInput[],
    private readonly outputName: string,
    private readonly layout: ActionLayout,
  ) {
    this.session = session;
    this.observationShapes = Object.fromEntries(inputs.map((input) => [input.feature, input.featureShape]));
  }

  async act(observation: PolicyObservation, _context: PolicyCallContext): Promise<Float32Array> {
    const session = this.session;
    if (session === undefined) throw new PolicyError('POLICY_DISPOSED', 'the policy runtime was disposed');
    const feeds: Record<string, Tensor> = {};
    for (const input of this.inputs) {
      const values = numericFeature(observation, input.feature);
      feeds[input.feature] = new Tensor('float32', values, feedShape(input, values.length));
    }
    let outputs: InferenceSession.ReturnType;
    try {
      // onnxruntime-node runs the model synchronously on this thread; there is no per-call time limit.
      outputs = await session.run(feeds, [this.outputName]);
    } catch (error) {
      throw new PolicyError('POLICY_THREW', `the model failed: ${onnxMessage(error)}`, { cause: error });
    }
    const output = outputs[this.outputName];
    const { horizon, width, shapeText } = this.layout;
    if (!isTensorLike(output)) {
      throw new PolicyError('POLICY_BAD_OUTPUT', `the model's output "${this.outputName}" is not a tensor (action shape ${shapeText})`);
    }
    if (output.type !== 'float32' && output.type !== 'float64') {
      throw new PolicyError(
        'POLICY_BAD_OUTPUT',
        `the model's output "${this.outputName}" holds ${output.type}, expected float32 (action shape ${shapeText})`,
      );
    }
    const data = output.data as Float32Array | Float64Array;
    if (data.length !== horizon * width) {
      throw new PolicyError(
        'POLICY_BAD_OUTPUT',
        `the model's output "${this.outputName}" has ${data.length} numbers (shape [${output.dims.join(', ')}]), expected ${horizon * width} (action shape ${shapeText})`,
      );
    }
    const action = Float32Array.from(data);
    const index = action.findIndex((value) => !Number.isFinite(value));
    if (index >= 0) {
      throw new PolicyError(
        'POLICY_BAD_OUTPUT',
        `the model's output "${this.outputName}" has ${String(data[index])} at index ${index}${Number.isFinite(data[index]) ? ', too large for a 32-bit float' : ''} (action shape ${shapeText})`,
      );
    }
    return action;
  }

  async reset(): Promise<void> {
    // A model without state has nothing to reset.
  }

  dispose(): void {
    const session = this.session;
    this.session = undefined;
    // release() only frees native memory; a failure there leaves nothing for the caller to do.
    void session?.release().catch(() => undefined);
  }
}

/** Checked by shape: the binding builds output tensors with the class it registered, which may be another copy's. */
function isTensorLike(value: unknown): value is Tensor {
  return typeof value === 'object' && value !== null && 'data' in value && 'dims' in value && 'type' in value;
}

function numericFeature(observation: PolicyObservation, feature: string): Float32Array {
  const value: unknown = Object.hasOwn(observation, feature) ? observation[feature] : undefined;
  if (value === undefined) throw new PolicyError('POLICY_BAD_OBSERVATION', `the observation has no "${feature}"`);
  const tag = Object.prototype.toString.call(value);
  if (tag === '[object Uint8Array]') {
    throw new PolicyError('ONNX_IMAGE_UNSUPPORTED', `observation "${feature}" is image bytes; ONNX policies take numeric features only`);
  }
  if (tag === '[object Float32Array]') return Float32Array.from(value as Float32Array);
  if (Array.isArray(value) && value.every((item) => typeof item === 'number')) return Float32Array.from(value);
  throw new PolicyError('POLICY_BAD_OBSERVATION', `observation "${feature}" is not numbers (number[] or Float32Array)`);
}

/** The tensor shape for `count` values: a batch of one, then the feature's shape. */
function feedShape(input: ModelInput, count: number): number[] {
  const shape = [1, ...input.featureShape];
  if (count !== input.featureShape.reduce((product, dimension) => product * dimension, 1)) {
    throw new PolicyError(
      'POLICY_BAD_OBSERVATION',
      `observation "${input.feature}" has ${count} numbers; the model's input takes shape [${shape.join(', ')}]`,
      { details: { feature: input.feature, count, featureShape: input.featureShape } },
    );
  }
  return shape;
}

/** A dimension the model fixes (onnxruntime reports symbolic ones by name, unnamed ones as -1). */
function isFixed(dimension: number | string): dimension is number {
  return typeof dimension === 'number' && dimension > 0;
}

const shapeText = (shape: ReadonlyArray<number | string>): string => `[${shape.join(', ')}]`;

/** onnxruntime's messages carry terminal colour codes and source paths; keep the first useful part. */
function onnxMessage(error: unknown): string {
  const message = typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : String(error);
  // eslint-disable-next-line no-control-regex -- the escape character is what is being removed
  return truncateText(message.replace(/\u001b\[[0-9;]*m/g, '').trim(), 500);
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${bytes} bytes`;
}

function isImageFeature(feature: string, features: FeatureSpec | undefined): boolean {
  const dtype = features?.[feature]?.dtype;
  if (dtype !== undefined) return dtype === 'image' || dtype === 'video';
  return imageFeaturePattern.test(feature);
}

/**
 * Loads an ONNX policy: checks the size, that all tensor data is inside the file, that the model's
 * inputs are exactly the manifest's observation features (float32, batch dimension 1), resolves each
 * feature's shape (see resolveFeatureShape), and that its first output can hold the action. Fails
 * with ONNX_TOO_LARGE, ONNX_INVALID, ONNX_EXTERNAL_DATA, ONNX_IMAGE_UNSUPPORTED, ONNX_INPUT_MISMATCH,
 * ONNX_SHAPE_UNKNOWN or POLICY_BAD_OUTPUT.
 */
export async function loadOnnxPolicyRuntime(params: {
  manifest: PolicyManifest;
  entry: Buffer;
  limits: PolicyRuntimeLimits;
  features?: FeatureSpec | undefined;
}): Promise<PolicyRuntime> {
  const { manifest, entry, limits } = params;
  const file = manifest.entry;
  if (entry.length > limits.maxModelBytes) {
    throw new PolicyError(
      'ONNX_TOO_LARGE',
      `${file} is ${formatBytes(entry.length)}, larger than the limit of ${formatBytes(limits.maxModelBytes)}`,
      {
        details: { bytes: entry.length, maxModelBytes: limits.maxModelBytes },
      },
    );
  }
  const images = manifest.observation.filter((feature) => isImageFeature(feature, params.features));
  if (images.length > 0) {
    throw new PolicyError(
      'ONNX_IMAGE_UNSUPPORTED',
      `ONNX policies take numeric features only, but the manifest's observation lists images: ${images.join(', ')}`,
    );
  }
  if (isOrtFormat(entry)) {
    throw new PolicyError('ONNX_INVALID', `${file} is in onnxruntime's own format; upload the .onnx model instead`);
  }
  try {
    const { externalTensors } = scanOnnxModel(entry);
    if (externalTensors.length > 0) {
      throw new PolicyError(
        'ONNX_EXTERNAL_DATA',
        `${file} keeps tensor data outside the model file (${externalTensors.slice(0, 5).join(', ')}); save it with all data inside`,
      );
    }
  } catch (error) {
    if (error instanceof OnnxWireFormatError)
      throw new PolicyError('ONNX_INVALID', `${file} is not an ONNX model: ${error.message}`, { cause: error });
    throw error;
  }

  let session: InferenceSession;
  try {
    session = await InferenceSession.create(entry, {
      intraOpNumThreads: limits.onnxThreads,
      interOpNumThreads: 1,
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      // Load failures come back as errors with the same text; onnxruntime need not also print them.
      logSeverityLevel: 4,
    });
  } catch (error) {
    throw new PolicyError('ONNX_INVALID', `${file} could not be loaded: ${onnxMessage(error)}`, { cause: error });
  }
  try {
    const layout = actionLayout(manifest);
    const inputs = checkInputs(session, manifest, file, params.features);
    const outputName = checkOutput(session, layout, file);
    return new OnnxPolicyRuntime(session, inputs, outputName, layout);
  } catch (error) {
    await session.release().catch(() => undefined);
    throw error;
  }
}

function checkInputs(session: InferenceSession, manifest: PolicyManifest, file: string, features: FeatureSpec | undefined): ModelInput[] {
  const modelInputs = new Set(session.inputNames);
  const missing = manifest.observation.filter((feature) => !modelInputs.has(feature));
  const extra = session.inputNames.filter((name) => !manifest.observation.includes(name));
  if (missing.length > 0 || extra.length > 0) {
    const parts = [
      ...(missing.length > 0 ? [`no input for ${missing.map((name) => `"${name}"`).join(', ')}`] : []),
      ...(extra.length > 0 ? [`inputs the manifest's observation does not list: ${extra.map((name) => `"${name}"`).join(', ')}`] : []),
    ];
    throw new PolicyError(
      'ONNX_INPUT_MISMATCH',
      `${file} has ${parts.join('; ')} (model inputs: ${session.inputNames.join(', ') || 'none'})`,
      {
        details: { missing, extra, modelInputs: session.inputNames },
      },
    );
  }
  return manifest.observation.map((feature) => {
    const metadata = session.inputMetadata.find((entry) => entry.name === feature);
    if (metadata === undefined || !metadata.isTensor || metadata.type !== 'float32') {
      const type = metadata === undefined ? 'unknown' : metadata.isTensor ? metadata.type : 'not a tensor';
      throw new PolicyError('ONNX_INPUT_MISMATCH', `${file}: input "${feature}" is ${type}; Kura feeds float32 tensors`);
    }
    const sources: ShapeSource[] = [];
    const declared = manifest.observationShapes?.[feature];
    if (declared !== undefined)
      sources.push({ shape: declared, label: "policy.json's observationShapes gives", field: `observationShapes.${feature}` });
    const datasetShape = features?.[feature]?.shape;
    // A scalar feature (shape []) is one number, as a feature of shape [1] is.
    if (datasetShape !== undefined)
      sources.push({
        shape: datasetShape.length > 0 ? datasetShape : [1],
        label: `the dataset's feature "${feature}" has shape`,
        field: undefined,
      });
    return { feature, featureShape: resolveFeatureShape({ file, feature, modelShape: metadata.shape, sources }) };
  });
}

/**
 * The shape of the feature an input takes. The model's first axis is the batch (Kura feeds one: it
 * must be 1 or symbolic); the rest is the feature's shape, e.g. [7] for a model input [1, 7] or
 * [batch, 7]. The manifest's observationShapes and the dataset's feature shape, where given, must
 * agree with every dimension the model fixes and with each other (ONNX_INPUT_MISMATCH); a dimension
 * that none of them fixes is ONNX_SHAPE_UNKNOWN.
 */
function resolveFeatureShape(params: {
  file: string;
  feature: string;
  modelShape: ReadonlyArray<number | string>;
  sources: ShapeSource[];
}): number[] {
  const { file, feature, modelShape, sources } = params;
  const declaresShape = modelShape.length > 0;
  const batch = modelShape[0];
  if (declaresShape && (modelShape.length < 2 || (batch !== undefined && isFixed(batch) && batch !== 1))) {
    throw new PolicyError(
      'ONNX_INPUT_MISMATCH',
      `${file}: input "${feature}" has shape ${shapeText(modelShape)}; Kura feeds [1, ...] (a batch of one, then the feature's shape)`,
      { details: { input: feature, modelShape } },
    );
  }
  const inner = modelShape.slice(1);
  const modelSays = declaresShape
    ? `input "${feature}" has shape ${shapeText(modelShape)}, so its feature shape is ${shapeText(inner)} (the first axis is the batch)`
    : `the model does not declare the shape of input "${feature}"`;
  for (const source of sources) {
    const agrees =
      !declaresShape ||
      (source.shape.length === inner.length && inner.every((dimension, axis) => !isFixed(dimension) || dimension === source.shape[axis]));
    if (!agrees) {
      throw new PolicyError('ONNX_INPUT_MISMATCH', `${file}: ${modelSays}, but ${source.label} ${shapeText(source.shape)}`, {
        details: { input: feature, modelShape, featureShape: source.shape, ...(source.field ? { field: source.field } : {}) },
      });
    }
  }
  const [first, second] = sources;
  if (first !== undefined && second !== undefined && shapeText(first.shape) !== shapeText(second.shape)) {
    throw new PolicyError(
      'ONNX_INPUT_MISMATCH',
      `${file}: for input "${feature}" ${first.label} ${shapeText(first.shape)}, but ${second.label} ${shapeText(second.shape)}`,
      { details: { input: feature, modelShape, featureShape: first.shape, datasetShape: second.shape, field: first.field } },
    );
  }
  if (first !== undefined) return [...first.shape];
  if (declaresShape && inner.every(isFixed)) return inner.filter(isFixed);
  const field = `observationShapes.${feature}`;
  const example = declaresShape ? shapeText(inner) : '[...]';
  const open = inner
    .filter((dimension) => !isFixed(dimension))
    .map((dimension) => (typeof dimension === 'string' ? `"${dimension}"` : '?'));
  throw new PolicyError(
    'ONNX_SHAPE_UNKNOWN',
    `${file}: ${declaresShape ? `input "${feature}" has shape ${shapeText(modelShape)}, whose dimension${open.length > 1 ? 's' : ''} ${open.join(', ')} the model leaves open` : modelSays}; give the feature's shape in policy.json's observationShapes, e.g. "observationShapes": { "${feature}": ${example} }`,
    { details: { input: feature, modelShape, field } },
  );
}

/**
 * The first output is the action. When the model declares its size (every dimension known, or all
 * but a leading batch dimension), it must already hold H*D numbers, so a wrong model fails at load.
 */
function checkOutput(session: InferenceSession, layout: ActionLayout, file: string): string {
  const [name] = session.outputNames;
  const metadata = session.outputMetadata[0];
  if (name === undefined || metadata === undefined) throw new PolicyError('ONNX_INVALID', `${file} has no outputs`);
  if (!metadata.isTensor || (metadata.type !== 'float32' && metadata.type !== 'float64')) {
    const type = metadata.isTensor ? metadata.type : 'not a tensor';
    throw new PolicyError(
      'POLICY_BAD_OUTPUT',
      `${file}: output "${name}" (the action) is ${type}, expected float32 (action shape ${layout.shapeText})`,
    );
  }
  const sizes = metadata.shape.map((dimension, axis) => (typeof dimension === 'number' ? dimension : axis === 0 ? 1 : undefined));
  if (metadata.shape.length > 0 && sizes.every((size) => size !== undefined)) {
    const count = sizes.reduce<number>((product, size) => product * (size ?? 1), 1);
    if (count !== layout.horizon * layout.width) {
      throw new PolicyError(
        'POLICY_BAD_OUTPUT',
        `${file}: output "${name}" has shape [${metadata.shape.join(', ')}], ${count} numbers per call, expected ${layout.horizon * layout.width} (action shape ${layout.shapeText})`,
      );
    }
  }
  return name;
}
