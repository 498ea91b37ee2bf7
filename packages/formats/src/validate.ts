import {
  featureSpecProblem,
  describeUnstorableText,
  findUnstorableText,
  unstorableTextProblem,
  valuesPerStep,
  type ErrorLocation,
  type FeatureSpec,
} from '@kura/schema';
import { imageEncoding } from './image-header.js';
import { ImportError, type ImportedEpisode, type NumericArray } from './importer.js';
import { lookup } from './own-keys.js';

const arrayTypeByDtype: Record<string, string> = {
  float32: 'Float32Array',
  float64: 'Float64Array',
  int8: 'Int8Array',
  int16: 'Int16Array',
  int32: 'Int32Array',
  int64: 'BigInt64Array',
  uint8: 'Uint8Array',
  uint16: 'Uint16Array',
  uint32: 'Uint32Array',
  bool: 'Uint8Array',
};
const MAX_TASK_LENGTH = 10_000;
/** Feature specs whose text was checked already: a spec is checked once, not once per episode. */
const checkedSpecs = new WeakSet<FeatureSpec>();

/**
 * Checks the feature spec an upload gives (after featureMap) against the rules a dataset is created
 * with (@kura/schema's featureSpecSchema: name pattern and length, at most 8 dimensions of at most
 * 1,000,000 each, at most 1024 features): FEATURE_SPEC_INVALID at the feature otherwise.
 */
export function checkFeatureSpec(spec: FeatureSpec, at: ErrorLocation = {}): void {
  const problem = featureSpecProblem(spec);
  if (problem)
    throw new ImportError('FEATURE_SPEC_INVALID', problem.message, { ...at, ...(problem.feature ? { field: problem.feature } : {}) });
}

/**
 * Checks one imported episode against the feature spec, whatever format it came from: every feature
 * present with the declared shape and dtype, finite numbers, images that are JPEG/PNG, timestamps
 * that never go back, and text Postgres can store (STRING_INVALID: no U+0000 or unpaired surrogate in
 * the feature spec, the episode's ids and file, its tasks or metadata). Throws ImportError at the
 * first problem, with the episode, step and field.
 */
export function validateEpisode(episode: ImportedEpisode, features: FeatureSpec): void {
  const at = (field: string | undefined, step?: number) => ({
    file: episode.file,
    episode: episode.sourceId,
    ...(step !== undefined ? { step } : {}),
    ...(field !== undefined ? { field } : {}),
  });
  checkStorableText(episode, features, at);
  const { length } = episode;
  if (!Number.isInteger(length) || length < 1)
    throw new ImportError('EMPTY_EPISODE', `episode ${episode.sourceId} has no steps`, at(undefined));

  for (const name of Object.keys(episode.features)) {
    if (!Object.hasOwn(features, name))
      throw new ImportError(
        'FEATURE_UNEXPECTED',
        `episode ${episode.sourceId} has feature "${name}", which the feature spec does not declare`,
        at(name),
      );
  }
  for (const [name, feature] of Object.entries(features)) {
    const values = Object.hasOwn(episode.features, name) ? episode.features[name] : undefined;
    if (!values) throw new ImportError('FEATURE_MISSING', `episode ${episode.sourceId} lacks feature "${name}"`, at(name));
    switch (values.kind) {
      case 'tensor': {
        const expectedType = lookup(arrayTypeByDtype, feature.dtype);
        if (expectedType === undefined || values.values.constructor.name !== expectedType) {
          throw new ImportError(
            'DTYPE_MISMATCH',
            `feature "${name}" is declared ${feature.dtype} but holds ${values.values.constructor.name}`,
            at(name),
          );
        }
        const perStep = valuesPerStep(feature);
        if (values.values.length !== length * perStep) {
          throw new ImportError(
            'EPISODE_SHAPE_MISMATCH',
            `feature "${name}" has ${values.values.length} values for ${length} steps of shape [${feature.shape.join(', ')}] (expected ${length * perStep})`,
            at(name),
          );
        }
        const bad = firstNonFinite(values.values);
        if (bad !== undefined) {
          const step = Math.floor(bad / perStep);
          throw new ImportError(
            'NON_FINITE_VALUE',
            `feature "${name}" is ${String(values.values[bad])} at step ${step} (component ${bad % perStep})`,
            at(name, step),
          );
        }
        break;
      }
      case 'image': {
        if (feature.dtype !== 'image')
          throw new ImportError('DTYPE_MISMATCH', `feature "${name}" is declared ${feature.dtype} but holds images`, at(name));
        if (values.frames.length !== length)
          throw new ImportError(
            'EPISODE_SHAPE_MISMATCH',
            `feature "${name}" has ${values.frames.length} images for ${length} steps`,
            at(name),
          );
        values.frames.forEach((frame, step) => {
          const encoding = imageEncoding(frame);
          if (encoding === undefined)
            throw new ImportError('INVALID_IMAGE', `feature "${name}" at step ${step} is not a JPEG or PNG image`, at(name, step));
          if (feature.encoding !== undefined && feature.encoding !== encoding) {
            throw new ImportError(
              'INVALID_IMAGE',
              `feature "${name}" at step ${step} is ${encoding}, but the spec says ${feature.encoding}`,
              at(name, step),
            );
          }
        });
        break;
      }
      case 'video': {
        if (feature.dtype !== 'video')
          throw new ImportError('DTYPE_MISMATCH', `feature "${name}" is declared ${feature.dtype} but holds video frames`, at(name));
        checkTimes(values.timestamps, length, at, name);
        break;
      }
    }
  }
  if (episode.timestamp) checkTimes(episode.timestamp, length, at, 'timestamp');
  for (const [field, column] of [
    ['reward', episode.reward],
    ['discount', episode.discount],
    ['is_terminal', episode.isTerminal],
  ] as const) {
    if (column && column.length !== length)
      throw new ImportError('EPISODE_SHAPE_MISMATCH', `${field} has ${column.length} values for ${length} steps`, at(field));
  }
  if (episode.stepTasks && episode.stepTasks.length !== length) {
    throw new ImportError(
      'EPISODE_SHAPE_MISMATCH',
      `language_instruction has ${episode.stepTasks.length} values for ${length} steps`,
      at('language_instruction'),
    );
  }
  const tasks = episode.stepTasks ?? (episode.task ? [episode.task] : []);
  tasks.forEach((task, index) => {
    const step = episode.stepTasks ? index : undefined;
    const problem = unstorableTextProblem(task);
    if (problem) throw new ImportError('STRING_INVALID', `the task text: ${problem}`, at('language_instruction', step));
    if (task.length > MAX_TASK_LENGTH)
      throw new ImportError(
        'TASK_TOO_LONG',
        `the task text has ${task.length} characters (at most ${MAX_TASK_LENGTH})`,
        at('language_instruction', step),
      );
  });
}

/**
 * The text of an upload that goes into Postgres (the feature spec, the episode's ids and file, its
 * metadata) must be storable there: a NUL would otherwise fail the publishing statement, and the
 * upload with it, only after retries. Task texts are checked with the tasks.
 */
function checkStorableText(
  episode: ImportedEpisode,
  features: FeatureSpec,
  at: (field: string | undefined, step?: number) => ErrorLocation,
): void {
  if (!checkedSpecs.has(features)) {
    const finding = findUnstorableText(features);
    if (finding) {
      const { field, message } = describeUnstorableText(finding);
      throw new ImportError('STRING_INVALID', `the feature spec's ${message}`, at(field));
    }
    checkedSpecs.add(features);
  }
  for (const [field, text] of [
    ['episode', episode.sourceId],
    ['episode', episode.sourceEpisode],
    ['file', episode.file],
  ] as const) {
    const problem = unstorableTextProblem(text);
    if (problem) throw new ImportError('STRING_INVALID', `the episode's ${field === 'file' ? 'file name' : 'id'}: ${problem}`, at(field));
  }
  const metadata = episode.metadata && findUnstorableText(episode.metadata);
  if (metadata) {
    const { field, message } = describeUnstorableText(metadata, ['metadata']);
    throw new ImportError('STRING_INVALID', `the episode's ${message}`, at(field));
  }
}

function firstNonFinite(values: NumericArray): number | undefined {
  if (!(values instanceof Float32Array || values instanceof Float64Array)) return undefined;
  for (let index = 0; index < values.length; index++) if (!Number.isFinite(values[index]!)) return index;
  return undefined;
}

function checkTimes(times: Float64Array, length: number, at: (field: string, step?: number) => object, field: string): void {
  if (times.length !== length)
    throw new ImportError('EPISODE_SHAPE_MISMATCH', `${field} has ${times.length} values for ${length} steps`, at(field));
  for (let step = 0; step < length; step++) {
    const time = times[step]!;
    if (!Number.isFinite(time)) throw new ImportError('NON_FINITE_VALUE', `${field} is ${time} at step ${step}`, at(field, step));
    if (step > 0 && time < times[step - 1]!) {
      throw new ImportError(
        'NON_MONOTONIC_TIMESTAMP',
        `${field} goes back from ${times[step - 1]} to ${time} at step ${step}`,
        at(field, step),
      );
    }
  }
}
