import { open } from 'node:fs/promises';
import type { ErrorLocation, Feature, FeatureSpec } from '@kura/schema';
import { IngestBudget } from '../budget.js';
import { withoutDroppedFeatures } from '../drop-features.js';
import { imageShape } from '../image-header.js';
import { setOwn } from '../own-keys.js';
import { ImportError, type ImportedEpisode, type Importer, type ImportSource, type SourceFile } from '../importer.js';
import { readLineBatches, readLines, type TextLine } from './lines.js';
import { stepLineKeys } from './step-line.js';

const stepKeys = new Set<string>(stepLineKeys);

type StepValue = { kind: 'vector'; values: number[] } | { kind: 'image'; encoding: 'jpeg' | 'png'; bytes: Uint8Array };
interface ParsedStep {
  /** The line it was read from. */
  line: number;
  episode: string;
  /** The episode's id in the data it came from, when it differs from `episode` (a Kura export's lines carry it). */
  sourceEpisode: string | undefined;
  step: number;
  timestamp: number | undefined;
  reward: number | undefined;
  discount: number | undefined;
  isTerminal: boolean | undefined;
  success: boolean | undefined;
  language: string | undefined;
  values: Map<string, StepValue>;
}

/**
 * Kura NDJSON (API.md): one JSON object per line, one step each; an episode is a run of lines with
 * the same `episode` value and steps 0, 1, 2… in order. What robots stream.
 */
export const kuraNdjsonImporter: Importer = {
  format: 'kura-ndjson',
  looksFor: 'a single file whose first line is a JSON object with "episode" and "step" (or "steps")',

  async detect(source) {
    const file = onlyFile(source);
    if (!file) return false;
    const handle = await open(file.absolutePath, 'r');
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(4096), 0, 4096, 0);
      const head = buffer.subarray(0, bytesRead).toString('utf8').trimStart();
      const firstLine = head.split('\n')[0] ?? '';
      // A step line has "step"; an episode document has "steps".
      return head.startsWith('{') && /"episode"\s*:/.test(firstLine) && /"steps?"\s*:/.test(firstLine);
    } finally {
      await handle.close();
    }
  },

  async open(source, context) {
    const file = onlyFile(source);
    if (!file) throw new ImportError('NDJSON_SINGLE_FILE', `kura-ndjson takes one file; the upload has ${source.files.length}`, {});
    const budget = IngestBudget.of(context, source);
    const step = await firstStep(file, budget);
    if (!step) throw new ImportError('NO_EPISODES', `${file.path} holds no steps`, { file: file.path });
    const features = specOf(step, file.path);
    return withoutDroppedFeatures({ features, featuresFile: file.path, episodes: readEpisodes(file, budget) }, context, file.path);
  },
};

function onlyFile(source: ImportSource): SourceFile | undefined {
  return source.files.length === 1 ? source.files[0] : undefined;
}

/**
 * The file's steps, a chunk of lines at a time (see readLineBatches). A line that fails ends the
 * batch before it: the steps read until then are handed out first, so that what is wrong with them
 * is reported before what is wrong with a later line, as when steps came one at a time.
 */
async function* parseStepBatches(file: SourceFile, budget: IngestBudget): AsyncGenerator<ParsedStep[]> {
  const images = new Base64Slabs();
  for await (const lines of readLineBatches(file, budget.limits.maxLineBytes)) {
    const steps: ParsedStep[] = [];
    try {
      for (const line of lines) parseLine(line, file, budget, images, steps);
    } catch (error) {
      if (steps.length > 0) yield steps;
      throw error;
    }
    if (steps.length > 0) yield steps;
  }
}

/** The first step of the file (its features are the upload's), reading no further than its line. */
async function firstStep(file: SourceFile, budget: IngestBudget): Promise<ParsedStep | undefined> {
  const steps: ParsedStep[] = [];
  for await (const line of readLines(file, budget.limits.maxLineBytes)) {
    parseLine(line, file, budget, new Base64Slabs(), steps);
    if (steps.length > 0) return steps[0];
  }
  return undefined;
}

/** Adds the steps of one line to `steps`: none for a blank line, one for a step, all of an episode document's. */
function parseLine(
  { line, text, tooLong, bytes }: TextLine,
  file: SourceFile,
  budget: IngestBudget,
  images: Base64Slabs,
  steps: ParsedStep[],
): void {
  const at = { file: file.path, line };
  if (tooLong) budget.checkLine(bytes, at, `line ${line}`);
  if (text === undefined) throw new ImportError('INVALID_UTF8', `line ${line} is not valid UTF-8`, at);
  if (text.trim() === '') return;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ImportError(
      'NDJSON_INVALID_JSON',
      `line ${line} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
      at,
    );
  }
  if (isEpisodeDocument(json)) {
    for (const step of expandEpisodeDocument(json, file.path, line)) steps.push(parseStep(step, file.path, line, images));
  } else steps.push(parseStep(json, file.path, line, images));
}

const episodeDocumentKeys = new Set(['episode', 'sourceEpisode', 'language', 'success', 'steps']);

function isEpisodeDocument(json: unknown): json is Record<string, unknown> & { steps: unknown } {
  return typeof json === 'object' && json !== null && !Array.isArray(json) && 'steps' in json;
}

/**
 * A whole episode on one line: `{ "episode": 7, "language": "…", "steps": [{ "observation": …, "action": … }, …] }`.
 * Its steps take the episode id, their position as step number, and the episode's language unless they carry their own.
 */
function expandEpisodeDocument(
  document: Record<string, unknown> & { steps: unknown },
  file: string,
  line: number,
): Array<Record<string, unknown>> {
  const fail = (field: string, message: string): never => {
    throw new ImportError('NDJSON_INVALID_STEP', `line ${line}: ${message}`, { file, line, field });
  };
  for (const key of Object.keys(document))
    if (!episodeDocumentKeys.has(key))
      fail(key, `unknown field "${key}" in an episode document (known: ${[...episodeDocumentKeys].join(', ')})`);
  if (!Array.isArray(document.steps) || document.steps.length === 0) return fail('steps', '"steps" must be a non-empty array of steps');
  return document.steps.map((step: unknown, index) => {
    if (typeof step !== 'object' || step === null || Array.isArray(step)) return fail(`steps.${index}`, 'each step must be a JSON object');
    const { episode: _episode, ...fields } = step as Record<string, unknown>;
    return {
      step: index,
      ...(document.sourceEpisode !== undefined ? { sourceEpisode: document.sourceEpisode } : {}),
      ...(document.language !== undefined ? { language: document.language } : {}),
      ...(document.success !== undefined ? { success: document.success } : {}),
      ...fields,
      episode: document.episode,
    };
  });
}

function parseStep(json: unknown, file: string, line: number, images: Base64Slabs): ParsedStep {
  const fail = (field: string, message: string, episode?: string, step?: number): never => {
    throw new ImportError('NDJSON_INVALID_STEP', `line ${line}: ${message}`, {
      file,
      line,
      field,
      ...(episode !== undefined ? { episode } : {}),
      ...(step !== undefined ? { step } : {}),
    });
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return fail('', 'a step must be a JSON object');
  const record = json as Record<string, unknown>;
  for (const key of Object.keys(record)) if (!stepKeys.has(key)) fail(key, `unknown field "${key}" (known: ${[...stepKeys].join(', ')})`);
  const rawEpisode = record.episode;
  if (!(typeof rawEpisode === 'string' && rawEpisode.length > 0) && !(typeof rawEpisode === 'number' && Number.isInteger(rawEpisode)))
    fail('episode', '"episode" must be an integer or a non-empty string');
  const episode = String(rawEpisode);
  const sourceEpisode = record.sourceEpisode;
  if (sourceEpisode !== undefined && !(typeof sourceEpisode === 'string' && sourceEpisode.length > 0))
    fail('sourceEpisode', '"sourceEpisode" must be a non-empty string', episode);
  const step = record.step;
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) return fail('step', '"step" must be an integer ≥ 0', episode);
  const optionalNumber = (key: string): number | undefined => {
    const value = record[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number') return fail(key, `"${key}" must be a number`, episode, step);
    return value;
  };
  const values = new Map<string, StepValue>();
  const observation = record.observation;
  if (observation !== undefined) {
    if (typeof observation !== 'object' || observation === null || Array.isArray(observation))
      fail('observation', '"observation" must be an object of named values', episode, step);
    for (const [name, value] of Object.entries(observation as Record<string, unknown>)) {
      values.set(
        `observation.${name}`,
        parseValue(value, `observation.${name}`, (message) => fail(`observation.${name}`, message, episode, step), images),
      );
    }
  }
  const action = record.action;
  if (Array.isArray(action))
    values.set(
      'action',
      parseValue(action, 'action', (message) => fail('action', message, episode, step), images),
    );
  else if (typeof action === 'object' && action !== null) {
    for (const [name, value] of Object.entries(action))
      values.set(
        `action.${name}`,
        parseValue(value, `action.${name}`, (message) => fail(`action.${name}`, message, episode, step), images),
      );
  } else if (action !== undefined) fail('action', '"action" must be an array of numbers or an object of named arrays', episode, step);
  const isTerminal = record.isTerminal;
  if (isTerminal !== undefined && typeof isTerminal !== 'boolean') fail('isTerminal', '"isTerminal" must be true or false', episode, step);
  const success = record.success;
  if (success !== undefined && typeof success !== 'boolean') fail('success', '"success" must be true or false', episode, step);
  const language = record.language;
  if (language !== undefined && language !== null && typeof language !== 'string')
    fail('language', '"language" must be a string', episode, step);
  return {
    line,
    episode,
    sourceEpisode: sourceEpisode as string | undefined,
    step,
    timestamp: optionalNumber('timestamp'),
    reward: optionalNumber('reward'),
    discount: optionalNumber('discount'),
    isTerminal: isTerminal as boolean | undefined,
    success: success as boolean | undefined,
    language: (language as string | null | undefined) ?? undefined,
    values,
  };
}

function parseValue(value: unknown, field: string, fail: (message: string) => never, images: Base64Slabs): StepValue {
  if (Array.isArray(value)) {
    // JSON has no NaN or Infinity, so only type errors can occur here.
    if (!value.every((item) => typeof item === 'number')) return fail(`"${field}" must hold numbers only`);
    return { kind: 'vector', values: value };
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    const [encoding, data] = entries[0] ?? [];
    if (entries.length === 1 && (encoding === 'jpeg' || encoding === 'png') && typeof data === 'string') {
      const bytes = images.decode(data);
      if (bytes.length === 0) return fail(`"${field}" holds an empty image`);
      return { kind: 'image', encoding, bytes };
    }
  }
  return fail(`"${field}" must be an array of numbers or { "jpeg" | "png": "<base64>" }`);
}

/** The feature spec, from the first step: vectors are float32 [n]; images have the size of their header. */
function specOf(step: ParsedStep, file: string): FeatureSpec {
  const spec = new Map<string, Feature>();
  for (const [name, value] of step.values) {
    if (value.kind === 'vector') spec.set(name, { dtype: 'float32', shape: [value.values.length] });
    else {
      const shape = imageShape(value.bytes);
      if (!shape)
        throw new ImportError('INVALID_IMAGE', `"${name}" is not a readable ${value.encoding} image`, {
          file,
          episode: step.episode,
          step: step.step,
          field: name,
        });
      spec.set(name, { dtype: 'image', shape, encoding: value.encoding });
    }
  }
  // Own keys whatever the name (`observation.__proto__` is a feature like any other).
  return Object.fromEntries(spec);
}

async function* readEpisodes(file: SourceFile, budget: IngestBudget): AsyncGenerator<ImportedEpisode> {
  const finished = new Set<string>();
  // One growing column per feature for the whole file, reused by each episode in turn.
  const columns = new Map<string, Float32Column>();
  const slabs = new Float32Slabs();
  let current: EpisodeBuilder | undefined;
  for await (const steps of parseStepBatches(file, budget))
    for (const step of steps) {
      if (current && current.id !== step.episode) {
        finished.add(current.id);
        yield current.build();
        current = undefined;
      }
      if (!current) {
        if (finished.has(step.episode)) {
          throw new ImportError(
            'NDJSON_EPISODE_NOT_CONTIGUOUS',
            `line ${step.line}: episode ${step.episode} appears again after other episodes; its steps must be contiguous`,
            {
              file: file.path,
              line: step.line,
              episode: step.episode,
              step: step.step,
            },
          );
        }
        current = new EpisodeBuilder(step.episode, file.path, budget, columns, slabs);
      }
      current.add(step);
    }
  if (current) yield current.build();
}

class EpisodeBuilder {
  private readonly vectors = new Map<string, Float32Column>();
  private readonly images = new Map<string, { frames: Uint8Array[]; bytes: number }>();
  private readonly timestamps: number[] = [];
  private readonly rewards: number[] = [];
  private readonly discounts: number[] = [];
  private readonly terminal: number[] = [];
  /** True once any step says the episode succeeded; false when steps say so and none says true. */
  private success: boolean | undefined;
  private readonly tasks: string[] = [];
  private hasTimestamps: boolean | undefined;
  private length = 0;
  private sourceEpisode: string | undefined;

  constructor(
    readonly id: string,
    private readonly file: string,
    private readonly budget: IngestBudget,
    /** The reader's columns, shared by its episodes one after the other: each is emptied as an episode takes it. */
    private readonly columns: Map<string, Float32Column>,
    private readonly slabs: Float32Slabs,
  ) {}

  add(step: ParsedStep): void {
    // Built only for an error: this runs once per step of every upload.
    const at = (field?: string) => ({ file: this.file, line: step.line, episode: this.id, step: step.step, ...(field ? { field } : {}) });
    if (step.step !== this.length) {
      throw new ImportError(
        'NDJSON_STEP_ORDER',
        `line ${step.line}: episode ${this.id} expected step ${this.length}, got ${step.step}`,
        at('step'),
      );
    }
    if (this.length === 0) this.sourceEpisode = step.sourceEpisode;
    if (this.hasTimestamps === undefined) this.hasTimestamps = step.timestamp !== undefined;
    if (this.hasTimestamps !== (step.timestamp !== undefined)) {
      throw new ImportError(
        'NDJSON_INVALID_STEP',
        `line ${step.line}: either every step of an episode has a timestamp or none does`,
        at('timestamp'),
      );
    }
    if (step.timestamp !== undefined) this.timestamps.push(step.timestamp);
    this.rewards.push(step.reward ?? Number.NaN);
    this.discounts.push(step.discount ?? Number.NaN);
    this.terminal.push(step.isTerminal ? 1 : 0);
    if (step.success !== undefined) this.success = this.success === true || step.success;
    this.tasks.push(step.language ?? '');
    const maxBytes = this.budget.limits.maxTensorBytes;
    for (const [name, value] of step.values) {
      const what = () => `"${name}" of episode ${this.id}`;
      if (value.kind === 'vector') {
        let column = this.vectors.get(name);
        if (!column) {
          if (this.length > 0 && !this.images.has(name)) this.unexpected(name, step, at);
          column = this.columns.get(name);
          if (column) column.length = 0;
          else this.columns.set(name, (column = new Float32Column()));
          this.vectors.set(name, column);
        }
        if (column.length !== this.length * value.values.length) {
          throw new ImportError(
            'EPISODE_SHAPE_MISMATCH',
            `line ${step.line}: "${name}" has ${value.values.length} values, unlike earlier steps`,
            at(name),
          );
        }
        const bytes = (column.length + value.values.length) * Float32Array.BYTES_PER_ELEMENT;
        if (!(bytes <= maxBytes)) this.budget.checkTensor(bytes, at(name), what());
        column.push(value.values);
      } else {
        let column = this.images.get(name);
        if (!column) {
          if (this.length > 0 && !this.vectors.has(name)) this.unexpected(name, step, at);
          this.images.set(name, (column = { frames: [], bytes: 0 }));
        }
        const bytes = column.bytes + value.bytes.byteLength;
        if (!(bytes <= maxBytes)) this.budget.checkTensor(bytes, at(name), what());
        column.frames.push(value.bytes);
        column.bytes = bytes;
      }
    }
    // Every name of this step is known by now: fewer of them than known means one is missing.
    if (step.values.size !== this.vectors.size + this.images.size) {
      for (const name of [...this.vectors.keys(), ...this.images.keys()])
        if (!step.values.has(name))
          throw new ImportError('FEATURE_MISSING', `line ${step.line}: "${name}" is missing at step ${step.step}`, at(name));
    }
    this.length++;
  }

  private unexpected(name: string, step: ParsedStep, at: (field: string) => ErrorLocation): never {
    throw new ImportError('FEATURE_UNEXPECTED', `line ${step.line}: "${name}" appears at step ${step.step} but not at step 0`, at(name));
  }

  /**
   * The episode. Runs once per episode, so it builds plainly (no spreads or intermediate arrays):
   * with five-step episodes its allocations were a tenth of an upload's time.
   */
  build(): ImportedEpisode {
    const features: ImportedEpisode['features'] = {};
    for (const [name, column] of this.vectors) setOwn(features, name, { kind: 'tensor', values: this.slabs.copy(column) });
    for (const [name, column] of this.images) setOwn(features, name, { kind: 'image', frames: column.frames });
    const episode: ImportedEpisode = {
      sourceId: this.id,
      sourceEpisode: this.sourceEpisode ?? this.id,
      file: this.file,
      length: this.length,
      isTerminal: Uint8Array.from(this.terminal),
      features,
    };
    if (this.hasTimestamps) episode.timestamp = Float64Array.from(this.timestamps);
    if (this.rewards.some((reward) => !Number.isNaN(reward))) episode.reward = Float32Array.from(this.rewards);
    if (this.discounts.some((discount) => !Number.isNaN(discount))) episode.discount = Float32Array.from(this.discounts);
    if (this.success !== undefined) episode.success = this.success;
    const first = this.tasks[0]!;
    if (this.tasks.every((task) => task === first)) episode.task = first || null;
    else episode.stepTasks = this.tasks;
    return episode;
  }
}

/** A float32 column that grows as steps arrive: 4 bytes a value, where a number[] would take 8 or more. */
class Float32Column {
  private buffer = new Float32Array(64);
  length = 0;

  push(items: readonly number[]): void {
    if (this.length + items.length > this.buffer.length) {
      const grown = new Float32Array(Math.max(this.buffer.length * 2, this.length + items.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(items, this.length);
    this.length += items.length;
  }

  /** The values so far (a view that the next push may overwrite). */
  view(): Float32Array {
    return this.buffer.subarray(0, this.length);
  }
}

/** Float32 values per slab that episodes' tensors are copied into. */
const FLOAT_SLAB_VALUES = 256 * 1024;

/**
 * Copies columns into shared 1 MiB slabs, as Base64Slabs does for images: a short episode's tensor
 * is a few dozen values, and a typed array of its own cost an allocation outside the heap for each.
 * A slab lives as long as a tensor cut from it.
 */
class Float32Slabs {
  private slab = new Float32Array(0);
  private used = 0;

  copy(column: Float32Column): Float32Array {
    const values = column.view();
    if (values.length > FLOAT_SLAB_VALUES / 8) return values.slice();
    if (this.used + values.length > this.slab.length) {
      this.slab = new Float32Array(FLOAT_SLAB_VALUES);
      this.used = 0;
    }
    const copy = this.slab.subarray(this.used, this.used + values.length);
    copy.set(values);
    this.used += values.length;
    return copy;
  }
}

/** Bytes of one slab images are decoded into. */
const SLAB_BYTES = 1024 * 1024;

/**
 * Decodes base64 images into shared 1 MiB slabs: one allocation per slab instead of one per image
 * (~80,000 of them in a 200 MB upload of two cameras). A slab lives as long as an image cut from it.
 */
class Base64Slabs {
  private slab = Buffer.allocUnsafe(0);
  private used = 0;

  decode(text: string): Buffer {
    // At most this many bytes: 3 for every 4 characters.
    const most = Math.ceil(text.length / 4) * 3;
    if (most > SLAB_BYTES / 8) return Buffer.from(text, 'base64');
    if (this.used + most > this.slab.length) {
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.used = 0;
    }
    const written = this.slab.write(text, this.used, 'base64');
    const bytes = this.slab.subarray(this.used, this.used + written);
    this.used += written;
    return bytes;
  }
}
