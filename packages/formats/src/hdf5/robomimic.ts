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
import { IngestBudget } from '../budget.js';
import { settleDroppedFeatures } from '../drop-features.js';
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
import { UnmappedDatasets } from './unmapped.js';

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
  /** Paths below a demo (`obs/agentview_image`) of features dropFeatures leaves out: not read, not warned about. */
  droppedPaths: ReadonlySet<string>;
}

const demoPattern = /^demo_(\d+)$/;
/** obs keys that name camera frames; a dataset so named must be uint8 [steps, H, W, 3]. */
const imageKeyPattern = /_(image|rgb)$/;

/** Creates the `hdf5-robomimic` importer with the given image options (see {@link Hdf5ImportOptions}). */
export function createHdf5RobomimicImporter(options: Hdf5ImportOptions = {}): Importer {
  return {
    format: 'hdf5-robomimic',
    looksFor: 'an HDF5 file with a /data group holding demo_<n> groups (robomimic, robosuite, LIBERO, MimicGen)',

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
      const budget = IngestBudget.of(context, source);
      const files: RobomimicFile[] = [];
      for (const file of candidates) files.push(await withHdf5File(file, (hdf5) => describeFile(hdf5, file, context), budget));
      const first = files.find((described) => described.demos.length > 0);
      if (!first) {
        const file = candidates[0]!.path;
        throw new ImportError('HDF5_DATASET_MISSING', `${file}: /data holds no demo_<n> group`, { file, field: '/data' });
      }
      const firstDemo = first.demos[0]!;
      const plan = await withHdf5File(
        first.file,
        (hdf5) => planRobomimic(hdf5, firstDemo, { file: first.file.path, episode: firstDemo }, options, context),
        budget,
      );
      return {
        features: plan.features,
        featuresFile: first.file.path,
        ...(first.controlFrequency !== undefined ? { fps: first.controlFrequency } : {}),
        expectedEpisodes: files.reduce((total, described) => total + described.demos.length, 0),
        episodes: readEpisodes(files, plan, options, context, budget),
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
  // robosuite's own demo files (collect_human_demonstrations.py) carry env_info (JSON) and env (the name) instead of env_args.
  const envInfo = parseJsonAttribute(hdf5.attribute('/data', 'env_info', at), '/data', 'env_info', at, context);
  const env = hdf5.attribute('/data', 'env', at);
  // An instruction in words when the file has one (LIBERO); else the environment's name (e.g. "Lift").
  const task =
    stringField(problemInfo, 'language_instruction') ??
    instruction(envArgs) ??
    instruction(envInfo) ??
    stringField(envArgs, 'env_name') ??
    stringField(envInfo, 'env_name') ??
    (typeof env === 'string' && env.length > 0 ? env : undefined) ??
    null;
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

/**
 * Decides the features from the first demo (metadata only). Features dropFeatures names are settled
 * here, before a column is planned, so a dataset Kura could not read is no obstacle to leaving it out.
 */
function planRobomimic(hdf5: Hdf5File, demo: string, at: ErrorLocation, options: Hdf5ImportOptions, context: ImportContext): RobomimicPlan {
  const root = `/data/${demo}`;
  const candidates: Array<{ feature: string; relativePath: string; plan: () => RobomimicColumn }> = [];
  const actions = hdf5.inspect(`${root}/actions`, at);
  candidates.push({ feature: 'action', relativePath: 'actions', plan: () => planTensor(actions, 'action', 'actions', at) });
  if (hdf5.hasDataset(`${root}/states`, at)) {
    const states = hdf5.inspect(`${root}/states`, at);
    candidates.push({
      feature: 'observation.sim_state',
      relativePath: 'states',
      plan: () => planTensor(states, 'observation.sim_state', 'states', at),
    });
  }
  for (const key of hdf5.keys(`${root}/obs`, at)) {
    const path = `${root}/obs/${key}`;
    if (!hdf5.hasDataset(path, at)) continue;
    const info = hdf5.inspect(path, at);
    const relativePath = `obs/${key}`;
    if (isRawImage(info) || imageKeyPattern.test(key)) {
      const feature = `observation.images.${featureSegment(key)}`;
      candidates.push({ feature, relativePath, plan: () => planRawImage(info, feature, relativePath, at) });
    } else {
      const feature = `observation.${featureSegment(key)}`;
      candidates.push({ feature, relativePath, plan: () => planTensor(info, feature, relativePath, at) });
    }
  }

  const dropped = settleDroppedFeatures(
    candidates.map((candidate) => candidate.feature),
    context,
    at.file,
  );
  const features: FeatureSpec = {};
  const columns: RobomimicColumn[] = [];
  const droppedPaths = new Set<string>();
  for (const candidate of candidates) {
    if (dropped.has(candidate.feature)) {
      droppedPaths.add(candidate.relativePath);
      continue;
    }
    const column = candidate.plan();
    addFeature(features, column.feature, columnFeature(column, options.imageEncoding ?? 'png'), joinPath(root, column.relativePath), at);
    columns.push(column);
  }
  return { features, columns, droppedPaths };
}

async function* readEpisodes(
  files: RobomimicFile[],
  plan: RobomimicPlan,
  options: Hdf5ImportOptions,
  context: ImportContext,
  budget: IngestBudget,
): AsyncGenerator<ImportedEpisode> {
  const unmapped = new UnmappedDatasets();
  let demos = 0;
  for (const described of files) {
    for (const demo of described.demos) {
      // Reopened per demo so that no handle is held while the caller works on an episode.
      yield await withHdf5File(described.file, (hdf5) => readDemo(hdf5, described, demo, plan, options, context, unmapped, budget), budget);
      demos++;
    }
  }
  unmapped.flush(context, demos, 'demos');
}

async function readDemo(
  hdf5: Hdf5File,
  described: RobomimicFile,
  demo: string,
  plan: RobomimicPlan,
  options: Hdf5ImportOptions,
  context: ImportContext,
  unmapped: UnmappedDatasets,
  budget: IngestBudget,
): Promise<ImportedEpisode> {
  const at = { file: described.file.path, episode: demo };
  const root = `/data/${demo}`;
  const actions = hdf5.inspect(`${root}/actions`, at);
  const length = actions.shape[0] ?? 0;
  if (actions.shape.length === 0 || length === 0)
    throw new ImportError('EMPTY_EPISODE', `${root}/actions has no steps`, { ...at, field: `${root}/actions` });
  // A chunked dataset may declare millions of steps it never stores: the length counts before any read.
  budget.reserveSteps(length, { ...at, field: `${root}/actions` });

  // Only num_samples: robosuite demos also carry model_file, a MuJoCo XML of 100 kB or more.
  const numSamples = hdf5.attribute(root, 'num_samples', at);
  if (typeof numSamples === 'number' && numSamples !== length) {
    context.warn({
      code: 'HDF5_ATTRIBUTE_MISMATCH',
      message: `${root} says num_samples = ${numSamples} but actions has ${length} steps; the data wins`,
      location: { ...at, field: `${root}/actions` },
    });
  }
  noteUnmappedDatasets(hdf5, root, plan, at, unmapped);

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

  // RoboCasa gives each demo its own instruction in ep_meta (JSON); it outranks the file's task.
  const episodeMeta = parseJsonAttribute(hdf5.attribute(root, 'ep_meta', at), root, 'ep_meta', at, context);
  const number = demoPattern.exec(demo)?.[1];
  return {
    sourceId: demo,
    sourceEpisode: demo,
    file: described.file.path,
    ...(number !== undefined ? { sourceIndex: Number(number) } : {}),
    length,
    ...(reward ? { reward } : {}),
    ...(isTerminal ? { isTerminal } : {}),
    task: instruction(episodeMeta) ?? described.task,
    ...(described.masks ? { metadata: { masks: described.masks.get(demo) ?? [] } } : {}),
    features,
  };
}

/** Fixed datasets of a demo that Kura maps (besides the planned columns). */
const demoDatasets = new Set(['actions', 'states', 'rewards', 'dones']);

/**
 * Datasets of the demo that are not imported: obs keys the first demo lacks, and anything outside
 * what the README maps (robosuite's joint_torques, say). next_obs/<key> repeats obs/<key> one step
 * later, so it is silent when obs/<key> is imported.
 */
function noteUnmappedDatasets(hdf5: Hdf5File, root: string, plan: RobomimicPlan, at: ErrorLocation, unmapped: UnmappedDatasets): void {
  const planned = new Set(plan.columns.map((column) => column.relativePath));
  const isImported = (path: string): boolean => {
    if (planned.has(path) || plan.droppedPaths.has(path) || demoDatasets.has(path)) return true;
    const shifted = /^next_obs\/(.+)$/.exec(path)?.[1];
    return shifted !== undefined && (planned.has(`obs/${shifted}`) || plan.droppedPaths.has(`obs/${shifted}`));
  };
  unmapped.note({
    hdf5,
    root,
    at,
    isImported,
    why: (path) =>
      /^obs\/[^/]+$/.test(path)
        ? 'the first demo has no such observation, and features are decided from the first demo'
        : 'Kura maps actions, states, rewards, dones and obs/<key> of a demo (hdf5/README.md)',
  });
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

/** A language instruction in an env description: `language_instruction`, or `lang` as RoboCasa writes it. */
function instruction(record: Record<string, unknown> | undefined): string | undefined {
  return stringField(record, 'language_instruction') ?? stringField(record, 'lang');
}

function stringField(record: Record<string, unknown> | undefined, name: string): string | undefined {
  const value = record?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
