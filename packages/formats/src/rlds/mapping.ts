import type { ErrorLocation, FeatureSpec } from '@kura/schema';
import type { IngestBudget } from '../budget.js';
import type { FeatureValues, ImportContext, ImportedEpisode, NumericArray } from '../importer.js';
import { ImportError } from '../importer.js';
import { IssueTally } from '../issue-tally.js';
import { lookup } from '../own-keys.js';
import type { DecodedExample, ExampleFeature } from './example.js';
import { featureValueCount } from './example.js';
import { imageEncoding, imageShape } from '../image-header.js';
import type { TfdsLeaf } from './tfds-features.js';

/*
 * From RLDS (one tf.train.Example per episode, steps flattened under `steps/...`) to Kura's
 * column-per-feature episodes. The README in this folder has the mapping table; keep them in step.
 */

/** Kura numeric dtypes an RLDS tensor can become. */
type TensorDtype = 'float32' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32' | 'bool';

const tensorDtypeOfTfds: Record<string, TensorDtype> = {
  // tf.train.Example only stores 32-bit floats, so every float dtype arrives as float32.
  float16: 'float32',
  bfloat16: 'float32',
  float32: 'float32',
  float64: 'float32',
  int8: 'int8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  uint16: 'uint16',
  uint32: 'uint32',
  // Stored in an Int64List anyway: values past 2^63 already wrapped when TFDS wrote them.
  uint64: 'int64',
  bool: 'bool',
};

/** How one per-step RLDS feature becomes part of a Kura episode. */
export type StepField =
  | {
      role: 'tensor';
      source: string;
      name: string;
      dtype: TensorDtype;
      shape: number[];
      /** Values per step: the product of `shape`. */
      perStep: number;
      shapeFrom: 'features.json' | 'the first record';
    }
  | { role: 'image'; source: string; name: string; encoding: 'jpeg' | 'png' }
  | { role: 'reward' | 'discount' | 'isTerminal' | 'isFirst' | 'isLast' | 'instruction'; source: string };

/** Everything the importer decided from features.json and the first record, used for every episode. */
export interface RldsPlan {
  /** The Kura feature spec. */
  features: FeatureSpec;
  /** Per-step fields, those that give the step count most directly first. */
  stepFields: StepField[];
  /** Per-step source features deliberately left out (already reported). */
  skipped: Set<string>;
  /** features.json's leaves, when it was given (for decoding episode metadata). */
  leaves: Map<string, TfdsLeaf> | undefined;
}

export interface PlanInput {
  /** Leaves of features.json, or undefined to infer everything from the first record. */
  leaves: Map<string, TfdsLeaf> | undefined;
  firstExample: DecodedExample;
  /** The file the first record came from (for locations). */
  firstFile: string;
  context: ImportContext;
}

const STEPS_PREFIX = 'steps/';
const EPISODE_METADATA_PREFIX = 'episode_metadata/';

/** Decides the Kura features of a dataset from its features.json (if any) and its first record. */
export function planFromFirstRecord(input: PlanInput): RldsPlan {
  const { firstExample, firstFile, context } = input;
  const firstLocation: ErrorLocation = { file: firstFile, episode: 0 };
  const leaves = input.leaves ?? inferLeaves(firstExample);
  const shapeFrom = input.leaves ? 'features.json' : 'the first record';
  const skipped = new Set<string>();
  const skip = (source: string, why: string): void => {
    skipped.add(source);
    context.warn({
      code: 'RLDS_FEATURE_SKIPPED',
      message: `${source} is not imported: ${why}`,
      location: { file: firstFile, field: source },
    });
  };

  // Tensors whose shape is only complete once the first record's step count is known.
  const pendingTensors: Array<{ leaf: Extract<TfdsLeaf, { type: 'tensor' }>; name: string; dtype: TensorDtype }> = [];
  const pendingImages: Array<Extract<TfdsLeaf, { type: 'image' }> & { name: string }> = [];
  const fields: StepField[] = [];
  for (const leaf of leaves.values()) {
    if (!leaf.path.startsWith(STEPS_PREFIX)) continue;
    const source = leaf.path;
    const stepPath = source.slice(STEPS_PREFIX.length);
    if (leaf.type === 'unsupported') {
      skip(source, `TFDS feature type ${leaf.pythonClassName} has no Kura equivalent`);
      continue;
    }
    if (stepPath === 'language_instruction' && (leaf.type === 'text' || (leaf.type === 'tensor' && leaf.dtype === 'string'))) {
      fields.push({ role: 'instruction', source });
      continue;
    }
    if (leaf.type === 'text' || (leaf.type === 'tensor' && leaf.dtype === 'string')) {
      skip(source, 'per-step text other than language_instruction has no Kura column');
      continue;
    }
    if (leaf.type === 'image') {
      pendingImages.push({ ...leaf, name: kuraFeatureName(stepPath, true) });
      continue;
    }
    if (leaf.encoded) {
      skip(source, 'encoded (serialised) tensors are not decoded');
      continue;
    }
    const dtype = lookup(tensorDtypeOfTfds, leaf.dtype);
    if (dtype === undefined) {
      skip(source, `dtype ${leaf.dtype} has no Kura equivalent`);
      continue;
    }
    const scalarRole = lookup(scalarRoles, stepPath);
    if (scalarRole !== undefined) {
      // Declared shapes are checked here; inferred ones are checked per episode (one value per step).
      if (input.leaves && leaf.shape.length !== 0)
        skip(source, `Kura keeps one ${stepPath} value per step, but features.json gives shape [${leaf.shape.join(', ')}]`);
      else fields.push({ role: scalarRole, source });
      continue;
    }
    pendingTensors.push({ leaf, name: kuraFeatureName(stepPath, false), dtype });
  }

  // Declared tensors with a complete shape can give the step count too.
  const knownTensors: StepField[] = [];
  const unknownTensors: typeof pendingTensors = [];
  for (const pending of pendingTensors) {
    const { leaf } = pending;
    if (input.leaves && leaf.shape.every((dimension) => dimension >= 0)) knownTensors.push(tensorField(pending, leaf.shape, shapeFrom));
    else unknownTensors.push(pending);
  }
  // Only role and values per step matter for counting, so an image's encoding can be a placeholder here.
  const countingFields = [
    ...fields,
    ...pendingImages.map((image) => ({ role: 'image' as const, source: image.path, name: image.name, encoding: image.encoding ?? 'jpeg' })),
    ...knownTensors,
  ];
  const stepCount = countSteps(firstExample, orderedFields(countingFields), firstLocation);

  for (const pending of unknownTensors) {
    const { leaf } = pending;
    const feature = firstExample.get(leaf.path);
    if (feature === undefined) throw missingFeature(leaf.path, firstLocation);
    if (stepCount === undefined || stepCount.steps === 0) {
      throw new ImportError(
        stepCount === undefined ? 'RLDS_STEP_COUNT_UNKNOWN' : 'RLDS_SHAPE_UNKNOWN',
        stepCount === undefined
          ? `cannot tell how many steps the first episode has: it has none of steps/is_first, is_last, is_terminal, reward, discount, language_instruction or an image, and ${leaf.path} has no declared shape`
          : `cannot infer the shape of ${leaf.path}: it is not declared and the first episode has no steps to count its values by`,
        { ...firstLocation, field: leaf.path },
      );
    }
    const shape = inferShape(leaf.path, featureValueCount(feature), stepCount, input.leaves ? leaf.shape : undefined, firstLocation);
    if (shape === undefined) {
      skip(leaf.path, `its shape [${leaf.shape.join(', ')}] has more than one unknown dimension`);
      continue;
    }
    knownTensors.push(tensorField(pending, shape, shapeFrom));
  }

  const images: StepField[] = pendingImages.map((image) => resolveImage(image, firstExample, firstLocation));
  const stepFields = orderedFields([...fields, ...images, ...knownTensors]);

  const features: FeatureSpec = {};
  const sourceOfName = new Map<string, string>();
  // The spec in name order (action, observation.images.*, observation.*), whatever order the source has.
  const byName = stepFields.flatMap((field) => (field.role === 'tensor' || field.role === 'image' ? [field] : []));
  byName.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const field of byName) {
    const earlier = sourceOfName.get(field.name);
    if (earlier !== undefined) {
      throw new ImportError(
        'RLDS_FEATURE_NAME_COLLISION',
        `${earlier} and ${field.source} would both become the Kura feature ${field.name}`,
        { file: firstFile, field: field.source },
      );
    }
    sourceOfName.set(field.name, field.source);
    if (field.role === 'tensor' && field.shape.some((dimension) => dimension === 0)) {
      skip(field.source, `its shape [${field.shape.join(', ')}] holds no values`);
      continue;
    }
    const leaf = leaves.get(field.source);
    const description = leaf?.description?.slice(0, 2000);
    features[field.name] =
      field.role === 'tensor'
        ? { dtype: field.dtype, shape: field.shape, ...(description ? { description } : {}) }
        : {
            dtype: 'image',
            shape: imageShapeFor(field, leaves, firstExample, firstLocation),
            encoding: field.encoding,
            ...(description ? { description } : {}),
          };
  }
  return { features, stepFields: stepFields.filter((field) => !skipped.has(field.source)), skipped, leaves: input.leaves };
}

const scalarRoles: Record<string, 'reward' | 'discount' | 'isTerminal' | 'isFirst' | 'isLast' | undefined> = {
  reward: 'reward',
  discount: 'discount',
  is_terminal: 'isTerminal',
  is_first: 'isFirst',
  is_last: 'isLast',
};

function tensorField(
  pending: { leaf: Extract<TfdsLeaf, { type: 'tensor' }>; name: string; dtype: TensorDtype },
  shape: number[],
  shapeFrom: 'features.json' | 'the first record',
): StepField {
  return {
    role: 'tensor',
    source: pending.leaf.path,
    name: pending.name,
    dtype: pending.dtype,
    shape,
    perStep: shape.reduce((product, dimension) => product * dimension, 1),
    shapeFrom,
  };
}

/** Flags first (one value per step, cheapest), then the others; tensors by name for a stable order. */
function orderedFields(fields: StepField[]): StepField[] {
  const rank: Record<StepField['role'], number> = {
    isFirst: 0,
    isLast: 1,
    isTerminal: 2,
    reward: 3,
    discount: 4,
    instruction: 5,
    image: 6,
    tensor: 7,
  };
  return [...fields].sort((a, b) => rank[a.role] - rank[b.role] || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
}

/**
 * Shape of a tensor from the first record: unknown dimensions (-1 in features.json) are solved from
 * the value count; without features.json one value per step is a scalar and n values a vector [n].
 */
function inferShape(
  source: string,
  valueCount: number,
  stepCount: { steps: number; from: string },
  declared: number[] | undefined,
  location: ErrorLocation,
): number[] | undefined {
  const perStep = valueCount / stepCount.steps;
  if (!Number.isInteger(perStep)) {
    throw new ImportError(
      'EPISODE_SHAPE_MISMATCH',
      `${source} has ${valueCount} values, which is not a whole number per step for ${stepCount.steps} steps (step count from ${stepCount.from})`,
      { ...location, field: source },
    );
  }
  if (declared === undefined) return perStep === 1 ? [] : [perStep];
  const unknown = declared.filter((dimension) => dimension < 0).length;
  if (unknown !== 1) return undefined;
  const known = declared.reduce((product, dimension) => (dimension < 0 ? product : product * dimension), 1);
  const missing = perStep / known;
  if (!Number.isInteger(missing)) {
    throw new ImportError(
      'EPISODE_SHAPE_MISMATCH',
      `${source} has ${perStep} values per step, which does not fit features.json's shape [${declared.join(', ')}]`,
      { ...location, field: source },
    );
  }
  return declared.map((dimension) => (dimension < 0 ? missing : dimension));
}

function resolveImage(
  image: Extract<TfdsLeaf, { type: 'image' }> & { name: string },
  example: DecodedExample,
  location: ErrorLocation,
): StepField {
  if (image.encoding !== undefined) return { role: 'image', source: image.path, name: image.name, encoding: image.encoding };
  const feature = example.get(image.path);
  const firstFrame = feature?.kind === 'bytes' ? feature.values[0] : undefined;
  const encoding = firstFrame ? imageEncoding(firstFrame) : undefined;
  if (encoding === undefined) {
    throw new ImportError(
      'RLDS_IMAGE_INVALID',
      `cannot tell how ${image.path} is encoded: features.json does not say and the first frame is neither JPEG nor PNG`,
      { ...location, field: image.path },
    );
  }
  return { role: 'image', source: image.path, name: image.name, encoding };
}

/** [height, width, channels] from features.json, or from the first frame's header when it does not say. */
function imageShapeFor(
  field: Extract<StepField, { role: 'image' }>,
  leaves: Map<string, TfdsLeaf>,
  example: DecodedExample,
  location: ErrorLocation,
): number[] {
  const leaf = leaves.get(field.source);
  if (leaf?.type === 'image' && leaf.shape.length === 3 && leaf.shape.every((dimension) => dimension > 0)) return leaf.shape;
  const feature = example.get(field.source);
  const firstFrame = feature?.kind === 'bytes' ? feature.values[0] : undefined;
  const shape = firstFrame ? imageShape(firstFrame) : undefined;
  if (shape === undefined) {
    throw new ImportError(
      'RLDS_IMAGE_INVALID',
      `cannot tell the size of ${field.source}: features.json does not give it and the first frame's header cannot be read`,
      { ...location, field: field.source },
    );
  }
  return shape;
}

/** Leaves guessed from a record, for datasets without features.json. */
function inferLeaves(example: DecodedExample): Map<string, TfdsLeaf> {
  const leaves = new Map<string, TfdsLeaf>();
  for (const [path, feature] of [...example.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!path.startsWith(STEPS_PREFIX)) continue;
    switch (feature.kind) {
      case 'bytes': {
        const first = feature.values[0];
        const encoding = first ? imageEncoding(first) : undefined;
        leaves.set(path, encoding ? { type: 'image', path, shape: [-1, -1, -1], encoding } : { type: 'text', path });
        break;
      }
      case 'float':
        leaves.set(path, { type: 'tensor', path, dtype: 'float32', shape: [-1], encoded: false });
        break;
      case 'int64':
        leaves.set(path, { type: 'tensor', path, dtype: 'int64', shape: [-1], encoded: false });
        break;
      case 'empty':
        leaves.set(path, { type: 'unsupported', path, pythonClassName: 'an empty list in the first record (type unknown)' });
        break;
    }
  }
  return leaves;
}

/**
 * Kura name of a per-step feature: `observation/<x>` → `observation.<x>`, images → `observation.images.<x>`,
 * `action[/<x>]` → `action[.<x>]`, anything else (`language_embedding`) → `observation.<x>`.
 * Characters Kura names do not allow become `_`.
 */
export function kuraFeatureName(stepPath: string, isImage: boolean): string {
  const segments = stepPath.split('/').map((segment) => segment.replace(/[^A-Za-z0-9_]/g, '_') || '_');
  if (segments[0] === 'action') return segments.join('.');
  let rest = segments[0] === 'observation' ? segments.slice(1) : segments;
  if (isImage) {
    if (rest[0] === 'images' && rest.length > 1) rest = rest.slice(1);
    return ['observation', 'images', ...(rest.length > 0 ? rest : ['image'])].join('.');
  }
  return ['observation', ...rest].join('.');
}

/** The number of steps of an episode, from the first per-step field the record has. */
function countSteps(example: DecodedExample, fields: StepField[], location: ErrorLocation): { steps: number; from: string } | undefined {
  for (const field of fields) {
    const feature = example.get(field.source);
    if (feature === undefined) continue;
    const perStep = field.role === 'tensor' ? field.perStep : 1;
    const count = featureValueCount(feature);
    if (perStep === 0) continue;
    if (count % perStep !== 0) {
      throw new ImportError(
        'EPISODE_SHAPE_MISMATCH',
        `${field.source} has ${count} values, not a whole number of steps of ${perStep} values (shape from ${field.role === 'tensor' ? field.shapeFrom : 'the format'})`,
        { ...location, field: field.source },
      );
    }
    return { steps: count / perStep, from: field.source };
  }
  return undefined;
}

function missingFeature(source: string, location: ErrorLocation): ImportError {
  return new ImportError(
    'RLDS_FEATURE_MISSING',
    `the record has no ${source}, which the dataset's other episodes (or features.json) have`,
    { ...location, field: source },
  );
}

/** Where an episode came from. */
export interface RecordPosition {
  file: string;
  indexInFile: number;
  /** Running index over all files. */
  episodeIndex: number;
}

// Warnings that would repeat once per episode (the fixture's is_last, for one) are counted, each kind reported once.
export { IssueTally };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Builds one Kura episode from one RLDS record. Throws ImportError for data that does not fit the plan. */
export function episodeFromExample(
  example: DecodedExample,
  plan: RldsPlan,
  position: RecordPosition,
  tally: IssueTally,
  budget?: IngestBudget,
): ImportedEpisode {
  const location: ErrorLocation = { file: position.file, episode: position.episodeIndex };
  const describe = `record ${position.indexInFile} of ${position.file}`;
  if (![...example.keys()].some((key) => key.startsWith(STEPS_PREFIX))) {
    throw new ImportError(
      'RLDS_NO_STEPS',
      `${describe} has no steps/... features, so it is not an RLDS episode (keys: ${[...example.keys()].slice(0, 8).join(', ')})`,
      location,
    );
  }
  for (const field of plan.stepFields) if (!example.has(field.source)) throw missingFeature(field.source, location);
  const known = new Set(plan.stepFields.map((field) => field.source));
  for (const key of example.keys()) {
    if (key.startsWith(STEPS_PREFIX) && !known.has(key) && !plan.skipped.has(key)) {
      tally.note(`undeclared ${key}`, () => ({
        code: 'RLDS_FEATURE_UNDECLARED',
        message: `${key} is in the record but not in ${plan.leaves ? 'features.json' : 'the first record'}, so it is not imported`,
        location: { ...location, field: key },
      }));
    }
  }

  const stepCount = countSteps(example, plan.stepFields, location);
  if (stepCount === undefined)
    throw new ImportError('RLDS_STEP_COUNT_UNKNOWN', `${describe}: no per-step feature tells how many steps the episode has`, location);
  const { steps } = stepCount;
  budget?.reserveSteps(steps, { ...location, field: stepCount.from });

  const episode: ImportedEpisode = {
    sourceId: `${position.file}#${position.indexInFile}`,
    sourceEpisode: `${position.file}#${position.indexInFile}`,
    file: position.file,
    sourceIndex: position.episodeIndex,
    length: steps,
    features: {},
  };
  for (const field of plan.stepFields) {
    const feature = example.get(field.source);
    if (feature === undefined) throw missingFeature(field.source, location);
    const fieldLocation: ErrorLocation = { ...location, field: field.source };
    const perStep = field.role === 'tensor' ? field.perStep : 1;
    const count = featureValueCount(feature);
    if (count !== steps * perStep) {
      const shape = field.role === 'tensor' ? ` of shape [${field.shape.join(', ')}] (from ${field.shapeFrom})` : ' (one per step)';
      throw new ImportError(
        'EPISODE_SHAPE_MISMATCH',
        `${describe}: ${field.source} has ${count} values, but ${steps} steps (counted from ${stepCount.from}) of values${shape} need ${steps * perStep}`,
        fieldLocation,
      );
    }
    switch (field.role) {
      case 'tensor':
        episode.features[field.name] = { kind: 'tensor', values: tensorValues(feature, field.dtype, field.source, perStep, fieldLocation) };
        break;
      case 'image':
        episode.features[field.name] = imageFrames(feature, field, fieldLocation);
        break;
      case 'reward':
        episode.reward = Float32Array.from(numbersOf(feature, field.source, fieldLocation));
        break;
      case 'discount':
        episode.discount = Float32Array.from(numbersOf(feature, field.source, fieldLocation));
        break;
      case 'isTerminal':
        episode.isTerminal = Uint8Array.from(numbersOf(feature, field.source, fieldLocation), (value) => (value !== 0 ? 1 : 0));
        break;
      case 'isFirst':
      case 'isLast': {
        const flags = numbersOf(feature, field.source, fieldLocation);
        const expectedStep = field.role === 'isFirst' ? 0 : steps - 1;
        const wrongStep = flags.findIndex((value, step) => (value !== 0) !== (step === expectedStep));
        if (wrongStep >= 0) {
          const which = field.role === 'isFirst' ? 'first' : 'last';
          tally.note(field.role, () => ({
            code: field.role === 'isFirst' ? 'RLDS_IS_FIRST_INCONSISTENT' : 'RLDS_IS_LAST_INCONSISTENT',
            message: `${field.source} should be true on the ${which} step only, but is ${flags[wrongStep] !== 0} at step ${wrongStep} of ${steps}; Kura sets is_first/is_last from the step order`,
            location: { ...fieldLocation, step: wrongStep },
          }));
        }
        break;
      }
      case 'instruction':
        Object.assign(episode, tasksOf(feature, field.source, fieldLocation));
        break;
    }
  }
  const metadata = metadataOf(example, plan.leaves);
  if (Object.keys(metadata).length > 0) episode.metadata = metadata;
  return episode;
}

function typeMismatch(source: string, expected: string, feature: ExampleFeature, location: ErrorLocation): ImportError {
  return new ImportError(
    'RLDS_FEATURE_TYPE_MISMATCH',
    `${source} is stored as a ${feature.kind} list, but ${expected} was expected`,
    location,
  );
}

/** Numbers of a float or int64 list (flags, reward, discount). */
function numbersOf(feature: ExampleFeature, source: string, location: ErrorLocation): number[] {
  switch (feature.kind) {
    case 'empty':
      return [];
    case 'float':
      return Array.from(feature.values);
    case 'int64':
      return Array.from(feature.values, (value) => Number(value));
    case 'bytes':
      throw typeMismatch(source, 'numbers', feature, location);
  }
}

const integerRanges: Record<
  Exclude<TensorDtype, 'float32' | 'int64' | 'bool'>,
  { min: bigint; max: bigint; make: (length: number) => Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array }
> = {
  int8: { min: -128n, max: 127n, make: (length) => new Int8Array(length) },
  int16: { min: -32768n, max: 32767n, make: (length) => new Int16Array(length) },
  int32: { min: -2147483648n, max: 2147483647n, make: (length) => new Int32Array(length) },
  uint8: { min: 0n, max: 255n, make: (length) => new Uint8Array(length) },
  uint16: { min: 0n, max: 65535n, make: (length) => new Uint16Array(length) },
  uint32: { min: 0n, max: 4294967295n, make: (length) => new Uint32Array(length) },
};

function tensorValues(feature: ExampleFeature, dtype: TensorDtype, source: string, perStep: number, location: ErrorLocation): NumericArray {
  if (feature.kind === 'bytes') throw typeMismatch(source, `${dtype} numbers`, feature, location);
  if (dtype === 'float32') {
    if (feature.kind === 'int64') throw typeMismatch(source, 'a float list', feature, location);
    return feature.kind === 'empty' ? new Float32Array(0) : feature.values;
  }
  if (feature.kind === 'float') throw typeMismatch(source, 'an int64 list', feature, location);
  const integers = feature.kind === 'empty' ? new BigInt64Array(0) : feature.values;
  if (dtype === 'int64') return integers;
  if (dtype === 'bool') return Uint8Array.from(integers, (value) => (value !== 0n ? 1 : 0));
  const range = integerRanges[dtype];
  const values = range.make(integers.length);
  for (let index = 0; index < integers.length; index++) {
    const value = integers[index] ?? 0n;
    if (value < range.min || value > range.max) {
      throw new ImportError('RLDS_VALUE_OUT_OF_RANGE', `${source} holds ${value}, outside ${dtype}`, {
        ...location,
        step: Math.floor(index / perStep),
      });
    }
    values[index] = Number(value);
  }
  return values;
}

function imageFrames(feature: ExampleFeature, field: Extract<StepField, { role: 'image' }>, location: ErrorLocation): FeatureValues {
  if (feature.kind === 'empty') return { kind: 'image', frames: [] };
  if (feature.kind !== 'bytes') throw typeMismatch(field.source, 'encoded images (a bytes list)', feature, location);
  feature.values.forEach((frame, step) => {
    if (imageEncoding(frame) !== field.encoding) {
      throw new ImportError(
        'RLDS_IMAGE_INVALID',
        `${field.source} at step ${step} is not a ${field.encoding.toUpperCase()} image (${frame.length} bytes starting ${Buffer.from(frame.subarray(0, 4)).toString('hex') || '(empty)'})`,
        { ...location, step },
      );
    }
  });
  return { kind: 'image', frames: feature.values };
}

/** One task for the episode when every step says the same, else one per step. */
function tasksOf(feature: ExampleFeature, source: string, location: ErrorLocation): Pick<ImportedEpisode, 'task' | 'stepTasks'> {
  if (feature.kind === 'empty') return {};
  if (feature.kind !== 'bytes') throw typeMismatch(source, 'UTF-8 text (a bytes list)', feature, location);
  const texts = feature.values.map((bytes, step) => {
    try {
      return utf8.decode(bytes);
    } catch {
      throw new ImportError('INVALID_UTF8', `${source} at step ${step} is not valid UTF-8`, { ...location, step });
    }
  });
  const [first] = texts;
  if (first === undefined) return {};
  if (texts.every((text) => text === first)) return { task: first === '' ? null : first };
  return { stepTasks: texts };
}

/** Episode-level features (`episode_metadata/...` and anything else outside `steps/`), as JSON values. */
function metadataOf(example: DecodedExample, leaves: Map<string, TfdsLeaf> | undefined): Record<string, unknown> {
  const metadata: Array<[string, unknown]> = [];
  for (const [path, feature] of [...example.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (path.startsWith(STEPS_PREFIX)) continue;
    const key = path.startsWith(EPISODE_METADATA_PREFIX) ? path.slice(EPISODE_METADATA_PREFIX.length) : path;
    const leaf = leaves?.get(path);
    const isScalar =
      leaf === undefined
        ? featureValueCount(feature) === 1
        : leaf.type === 'tensor'
          ? leaf.shape.length === 0
          : leaf.type !== 'unsupported';
    const values = metadataValues(feature, leaf);
    metadata.push([key, isScalar && values.length === 1 ? values[0] : values]);
  }
  // Own keys whatever the name: an `episode_metadata/__proto__` is kept, not lost to the prototype.
  return Object.fromEntries(metadata);
}

function metadataValues(feature: ExampleFeature, leaf: TfdsLeaf | undefined): unknown[] {
  switch (feature.kind) {
    case 'empty':
      return [];
    case 'float':
      return Array.from(feature.values);
    case 'int64':
      if (leaf?.type === 'tensor' && leaf.dtype === 'bool') return Array.from(feature.values, (value) => value !== 0n);
      // Numbers when exact, else decimal strings (JSON has no 64-bit integers).
      return Array.from(feature.values, (value) =>
        value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString(),
      );
    case 'bytes':
      return feature.values.map((bytes) => {
        try {
          return utf8.decode(bytes);
        } catch {
          return Buffer.from(bytes).toString('base64');
        }
      });
  }
}
