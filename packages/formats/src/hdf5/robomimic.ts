import type { ErrorLocation, FeatureSpec } from '@kura/schema';
import {
  ImportError,
  type FeatureValues,
  type ImportContext,
  type ImportedEpisode,
  type Importer,
  type ImportResult,
  type ImportSource,
  type SourceFile,
} from '../importer.js';
import {
  addFeature,
  checkColumn,
  columnFeature,
  featureSegment,
  isRawImage,
  joinPath,
  planRawImage,
  planTensor,
  readColumn,
  readPerStep,
  toFloat64,
  type RawImageColumn,
  type TensorColumn,
} from './columns.js';
import { type Hdf5File, hasHdf5Signature, hdf5Candidates, naturalOrder, withHdf5File } from './h5.js';
import type { Hdf5ImportOptions } from './images.js';

type RobomimicColumn = TensorColumn | RawImageColumn;

/** What open() learns about one file: its demos in order and the facts shared by them. */
interface RobomimicFile {
  file: SourceFile;
  demos: string[];
  /** Demo name → the masks (`train`, `valid`, …) listing it; undefined when the file has no /mask group. */
  masks: Map<string, string[]> | undefined;
  task: string | null;
  /** robosuite's control frequency from env_args, when given. */
  controlFrequency: number | undefined;
}

interface RobomimicPlan {
  features: FeatureSpec;
  columns: RobomimicColumn[];
}

const demoPattern = /^demo_(\d+)$/;
/** obs keys that name camera frames; a dataset so named must be uint8 [steps, H, W, 3]. */
const imageKeyPattern = /_(image|rgb)$/;

/** Creates the `hdf5-robomimic` importer with the given image options (see {@link Hdf5ImportOptions}). */
export function createHdf5RobomimicImporter(options: Hdf5ImportOptions = {}): Importer {
  return {
    format: 'hdf5-robomimic',

    async detect(source: ImportSource): Promise<boolean> {
      const first = hdf5Candidates(source.files)[0];
      if (!first || !(await hasHdf5Signature(first.absolutePath))) return false;
      try {
        return await withHdf5File(first, (hdf5) => hdf5.keys('/data', {}).some((name) => demoPattern.test(name)));
      } catch {
        // A damaged file is not recognised; with ?format=hdf5-robomimic it gets HDF5_INVALID.
        return false;
      }
    },

    async open(source: ImportSource, context: ImportContext): Promise<ImportResult> {
      const candidates = hdf5Candidates(source.files);
      if (candidates.length === 0) throw new ImportError('HDF5_DATASET_MISSING', 'the upload holds no .hdf5 / .h5 file', {});
      const files: RobomimicFile[] = [];
      for (const file of candidates) files.push(await withHdf5File(file, (hdf5) => describeFile(hdf5, file, context)));
      const first = files.find((described) => described.demos.length > 0);
      if (!first) {
        const file = candidates[0]!.path;
        throw new ImportError('HDF5_DATASET_MISSING', `${file}: /data holds no demo_<n> group`, { file, field: '/data' });
      }
      const firstDemo = first.demos[0]!;
      const plan = await withHdf5File(first.file, (hdf5) =>
        planRobomimic(hdf5, firstDemo, { file: first.file.path, episode: firstDemo }, options),
      );
      return {
        features: plan.features,
        ...(first.controlFrequency !== undefined ? { fps: first.controlFrequency } : {}),
        expectedEpisodes: files.reduce((total, described) => total + described.demos.length, 0),
        episodes: readEpisodes(files, plan, options, context),
      };
    },
  };
}

/**
 * Imports robomimic datasets (`hdf5-robomimic`; also LIBERO and MimicGen, which share the
 * layout): one episode per `data/demo_<n>` group, in numeric order. See `hdf5/README.md`.
 */
export const hdf5RobomimicImporter: Importer = createHdf5RobomimicImporter();

function describeFile(hdf5: Hdf5File, file: SourceFile, context: ImportContext): RobomimicFile {
  const at = { file: file.path };
  if (!hdf5.isGroup('/data', at))
    throw new ImportError('HDF5_DATASET_MISSING', `${file.path}: /data is missing`, { ...at, field: '/data' });
  const demos = hdf5
    .keys('/data', at)
    .filter((name) => demoPattern.test(name))
    .sort((a, b) => naturalOrder.compare(a, b));

  const envArgs = parseJsonAttribute(hdf5.attribute('/data', 'env_args', at), '/data', 'env_args', at, context);
  const problemInfo = parseJsonAttribute(hdf5.attribute('/data', 'problem_info', at), '/data', 'problem_info', at, context);
  // LIBERO says what to do in words; plain robomimic only names the environment (e.g. "Lift").
  const task = stringField(problemInfo, 'language_instruction') ?? stringField(envArgs, 'env_name') ?? null;
  const envKwargs = envArgs?.env_kwargs;
  const frequency = isRecord(envKwargs) ? envKwargs.control_freq : undefined;

  return {
    file,
    demos,
    masks: readMasks(hdf5, at),
    task,
    controlFrequency: typeof frequency === 'number' && frequency > 0 ? frequency : undefined,
  };
}

/** `mask/<name>` lists demo names (byte strings); inverted to demo → mask names. */
function readMasks(hdf5: Hdf5File, at: ErrorLocation): Map<string, string[]> | undefined {
  if (!hdf5.isGroup('/mask', at)) return undefined;
  const masks = new Map<string, string[]>();
  for (const mask of hdf5.keys('/mask', at).sort((a, b) => naturalOrder.compare(a, b))) {
    const path = `/mask/${mask}`;
    if (!hdf5.hasDataset(path, at)) continue;
    for (const demo of hdf5.readStrings(path, at)) {
      const listed = masks.get(demo) ?? [];
      listed.push(mask);
      masks.set(demo, listed);
    }
  }
  return masks;
}

/** Decides the features from the first demo (metadata only). */
function planRobomimic(hdf5: Hdf5File, demo: string, at: ErrorLocation, options: Hdf5ImportOptions): RobomimicPlan {
  const root = `/data/${demo}`;
  const features: FeatureSpec = {};
  const columns: RobomimicColumn[] = [];
  const add = (column: RobomimicColumn): void => {
    addFeature(features, column.feature, columnFeature(column, options.imageEncoding ?? 'png'), joinPath(root, column.relativePath), at);
    columns.push(column);
  };

  add(planTensor(hdf5.inspect(`${root}/actions`, at), 'action', 'actions', at));
  if (hdf5.hasDataset(`${root}/states`, at)) add(planTensor(hdf5.inspect(`${root}/states`, at), 'observation.sim_state', 'states', at));
  for (const key of hdf5.keys(`${root}/obs`, at)) {
    const path = `${root}/obs/${key}`;
    if (!hdf5.hasDataset(path, at)) continue;
    const info = hdf5.inspect(path, at);
    const relativePath = `obs/${key}`;
    if (isRawImage(info) || imageKeyPattern.test(key))
      add(planRawImage(info, `observation.images.${featureSegment(key)}`, relativePath, at));
    else add(planTensor(info, `observation.${featureSegment(key)}`, relativePath, at));
  }
  return { features, columns };
}

async function* readEpisodes(
  files: RobomimicFile[],
  plan: RobomimicPlan,
  options: Hdf5ImportOptions,
  context: ImportContext,
): AsyncGenerator<ImportedEpisode> {
  for (const described of files) {
    for (const demo of described.demos) {
      // Reopened per demo so that no handle is held while the caller works on an episode.
      yield await withHdf5File(described.file, (hdf5) => readDemo(hdf5, described, demo, plan, options, context));
    }
  }
}

async function readDemo(
  hdf5: Hdf5File,
  described: RobomimicFile,
  demo: string,
  plan: RobomimicPlan,
  options: Hdf5ImportOptions,
  context: ImportContext,
): Promise<ImportedEpisode> {
  const at = { file: described.file.path, episode: demo };
  const root = `/data/${demo}`;
  const actions = hdf5.inspect(`${root}/actions`, at);
  const length = actions.shape[0] ?? 0;
  if (actions.shape.length === 0 || length === 0)
    throw new ImportError('EMPTY_EPISODE', `${root}/actions has no steps`, { ...at, field: `${root}/actions` });

  // Only num_samples: robosuite demos also carry model_file, a MuJoCo XML of 100 kB or more.
  const numSamples = hdf5.attribute(root, 'num_samples', at);
  if (typeof numSamples === 'number' && numSamples !== length) {
    context.warn({
      code: 'HDF5_ATTRIBUTE_MISMATCH',
      message: `${root} says num_samples = ${numSamples} but actions has ${length} steps; the data wins`,
      location: { ...at, field: `${root}/actions` },
    });
  }
  warnAboutExtraObservations(hdf5, root, plan, at, context);

  const features: Record<string, FeatureValues> = {};
  for (const column of plan.columns) {
    const info = checkColumn(hdf5, root, column, length, at);
    features[column.feature] = await readColumn(hdf5, info, column, length, options, at);
  }

  let reward: Float32Array | undefined;
  if (hdf5.hasDataset(`${root}/rewards`, at))
    reward = Float32Array.from(toFloat64(readPerStep(hdf5, hdf5.inspect(`${root}/rewards`, at), length, at)));
  let isTerminal: Uint8Array | undefined;
  if (hdf5.hasDataset(`${root}/dones`, at))
    isTerminal = Uint8Array.from(toFloat64(readPerStep(hdf5, hdf5.inspect(`${root}/dones`, at), length, at)), (done) =>
      done !== 0 ? 1 : 0,
    );

  const number = demoPattern.exec(demo)?.[1];
  return {
    sourceId: demo,
    file: described.file.path,
    ...(number !== undefined ? { sourceIndex: Number(number) } : {}),
    length,
    ...(reward ? { reward } : {}),
    ...(isTerminal ? { isTerminal } : {}),
    task: described.task,
    ...(described.masks ? { metadata: { masks: described.masks.get(demo) ?? [] } } : {}),
    features,
  };
}

function warnAboutExtraObservations(hdf5: Hdf5File, root: string, plan: RobomimicPlan, at: ErrorLocation, context: ImportContext): void {
  const planned = new Set(plan.columns.map((column) => column.relativePath));
  for (const key of hdf5.keys(`${root}/obs`, at)) {
    if (planned.has(`obs/${key}`) || !hdf5.hasDataset(`${root}/obs/${key}`, at)) continue;
    context.warn({
      code: 'HDF5_DATASET_IGNORED',
      message: `${root}/obs/${key} is not in the first demo, so it is not imported`,
      location: { ...at, field: `${root}/obs/${key}` },
    });
  }
}

/** A JSON-string attribute as an object; a warning (not an error) when it does not parse, since it is metadata only. */
function parseJsonAttribute(
  value: unknown,
  path: string,
  name: string,
  at: ErrorLocation,
  context: ImportContext,
): Record<string, unknown> | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    context.warn({
      code: 'HDF5_ATTRIBUTE_INVALID',
      message: `${path} attribute ${name} is not JSON`,
      location: { ...at, field: `${path}@${name}` },
    });
    return undefined;
  }
}

function stringField(record: Record<string, unknown> | undefined, name: string): string | undefined {
  const value = record?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
