import { Inject, Injectable } from '@nestjs/common';
import { DataType, type RecordBatch, type Vector } from 'apache-arrow';
import { valuesPerStep, type EvaluationMetrics, type FeatureSpec, type PolicyManifest, type PolicyObservation } from '@kura/schema';
import { LOGGER } from '../database/database.tokens.js';
import type { DatasetRecord } from '../datasets/datasets.repository.js';
import { DatasetReachService } from '../datasets/dataset-reach.service.js';
import { EpisodesRepository } from '../datasets/episodes/episodes.repository.js';
import { AppError } from '../errors/app-error.js';
import type { Logger } from '../logging/logger.js';
import { SliceReader, wholeEpisodesOf } from '../slices/slice-reader.js';
import { EvaluationsRepository } from './evaluations.repository.js';
import { PoliciesRepository } from './policies.repository.js';
import { normalize, unnormalize, type PolicyNormalization } from './normalization.js';
import { NormalizationUnavailable, PolicyLoader } from './policy-loader.service.js';
import { isPolicyError, type PolicyRuntime } from './runtimes/policy-runtime.js';

class EvaluationFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly location: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * Runs an evaluation (the `policies.evaluate` job): the policy, in the sandbox, over every held-out
 * episode of the dataset version, step by step in order, `reset()` between episodes, observations
 * normalized and actions unnormalized as the manifest says. Records MSE / MAE over every step and
 * action dimension (for an action chunk, its first action is compared with the step's action), and
 * the policy's call latency. Deterministic: the same policy and dataset version give the same
 * metrics (the latency, kept apart in `timing`, is measured).
 */
@Injectable()
export class PolicyEvaluationService {
  constructor(
    private readonly evaluations: EvaluationsRepository,
    private readonly policies: PoliciesRepository,
    private readonly datasets: DatasetReachService,
    private readonly episodes: EpisodesRepository,
    private readonly reader: SliceReader,
    private readonly loader: PolicyLoader,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async run(evaluationId: string): Promise<void> {
    const evaluation = await this.evaluations.findById(evaluationId);
    if (!evaluation || evaluation.status === 'completed' || evaluation.status === 'failed') return;
    await this.evaluations.markRunning(evaluationId);
    let runtime: PolicyRuntime | undefined;
    try {
      const policy = await this.policies.findById(evaluation.policyId);
      if (!policy?.manifest || !policy.entryKey)
        throw new EvaluationFailure('POLICY_NOT_READY', `policy ${evaluation.policyId} is not ready`);
      const manifest = policy.manifest;
      const dataset = await this.readableDataset(evaluation);
      const features = dataset.features ?? {};
      checkFeatures(manifest, features);
      const heldOut = await this.heldOutEpisodes(evaluation.datasetId, evaluation.version);
      if (heldOut.length === 0) {
        throw new EvaluationFailure(
          'NO_HELD_OUT_EPISODES',
          `version ${evaluation.version} of dataset ${evaluation.datasetId} has no held-out episode yet`,
        );
      }
      const normalization = await this.loader.normalization({ ownerKeyId: policy.ownerKeyId, manifest });
      runtime = await this.loader.load({ ...policy, manifest, entryKey: policy.entryKey }, features);
      const result = await evaluateEpisodes({
        runtime,
        manifest,
        normalization,
        plan: await this.reader.plan(
          wholeEpisodesOf({
            datasetId: evaluation.datasetId,
            version: evaluation.version,
            features,
            episodes: heldOut,
            columns: [...new Set([...manifest.observation, 'action', 'language_instruction'])],
          }),
          { forward: false },
        ),
      });
      await this.evaluations.complete(evaluationId, result);
      this.logger.info({ evaluationId, metrics: result.metrics }, 'evaluation completed');
    } catch (error) {
      // The policy's own failures (PolicyError, from the sandbox) and the evaluation's end it; anything
      // else is the infrastructure's and the job retries.
      if (!(error instanceof EvaluationFailure) && !(error instanceof NormalizationUnavailable) && !isPolicyError(error)) throw error;
      const { code, message } = error;
      const location =
        error instanceof EvaluationFailure ? error.location : ((error as { location?: Record<string, unknown> }).location ?? {});
      await this.evaluations.fail(evaluationId, { code, message, location });
      this.logger.info({ evaluationId, code }, 'evaluation failed');
    } finally {
      runtime?.dispose();
    }
  }

  /** Fails an evaluation whose process died `deaths` times: it is not tried again. */
  async abandon(evaluationId: string, deaths: number): Promise<void> {
    const evaluation = await this.evaluations.findById(evaluationId);
    if (!evaluation || evaluation.status === 'completed' || evaluation.status === 'failed') return;
    const message = `the process running this evaluation died ${deaths} times (killed or out of memory); it is not tried again`;
    await this.evaluations.fail(evaluationId, { code: 'EVALUATION_CRASHED', message, location: {} });
  }

  /** The evaluation's dataset, when its owner may still read it (checked at creation, and again here: a grant may be gone). */
  private async readableDataset(evaluation: { ownerKeyId: string; datasetId: string }): Promise<DatasetRecord> {
    try {
      return (await this.datasets.reachOnBehalfOf(evaluation.ownerKeyId, evaluation.datasetId)).dataset;
    } catch (error) {
      if (error instanceof AppError && error.code === 'DATASET_NOT_FOUND') {
        throw new EvaluationFailure(
          'DATASET_NOT_FOUND',
          `dataset "${evaluation.datasetId}" is not readable by the evaluation's key any more (its grant was revoked?)`,
          { field: 'datasetId' },
        );
      }
      throw error;
    }
  }

  private async heldOutEpisodes(datasetId: string, version: number): Promise<number[]> {
    const indices: number[] = [];
    let afterIndex: number | undefined;
    for (;;) {
      const page = await this.episodes.list({ datasetId, version, heldOutOnly: true, afterIndex, take: 10_000 });
      indices.push(...page.map((episode) => episode.episodeIndex));
      if (page.length < 10_000) return indices;
      afterIndex = page[page.length - 1]!.episodeIndex;
    }
  }
}

function checkFeatures(manifest: PolicyManifest, features: FeatureSpec): void {
  const missing = manifest.observation.filter((name) => !features[name]);
  if (missing.length > 0) {
    throw new EvaluationFailure(
      'EVALUATION_FEATURES_MISSING',
      `the dataset has no ${missing.map((name) => `"${name}"`).join(', ')}, which the policy observes`,
      {
        field: missing.join(','),
      },
    );
  }
  const action = features.action;
  const dimensions = manifest.action.shape[manifest.action.shape.length - 1]!;
  if (!action || action.dtype === 'image' || action.dtype === 'video' || action.dtype === 'string') {
    throw new EvaluationFailure('EVALUATION_ACTION_MISMATCH', 'the dataset has no numeric "action" feature to compare the policy with', {
      field: 'action',
    });
  }
  if (valuesPerStep(action) !== dimensions) {
    throw new EvaluationFailure(
      'EVALUATION_ACTION_MISMATCH',
      `the policy acts in ${dimensions} dimensions, the dataset's action has ${valuesPerStep(action)}`,
      { field: 'action' },
    );
  }
}

/** Steps sent to a policy in one call (one frame to its host), at most… */
const STEPS_PER_CALL = 64;
/** …and about this many bytes of observations. */
const FRAME_BYTES = 16 * 1024 * 1024;

/** An observation's bytes in a frame: numbers as float64, images as their encoded bytes. */
function observationBytes(observation: PolicyObservation): number {
  let bytes = 0;
  for (const value of Object.values(observation)) bytes += value instanceof Uint8Array ? value.length : value.length * 8;
  return Math.max(1, bytes);
}

async function evaluateEpisodes(params: {
  runtime: PolicyRuntime;
  manifest: PolicyManifest;
  normalization: PolicyNormalization | undefined;
  plan: Awaited<ReturnType<SliceReader['plan']>>;
}): Promise<{ metrics: EvaluationMetrics; timing: { latencyMsP50: number; latencyMsP99: number } }> {
  const { runtime, manifest, normalization, plan } = params;
  if (plan.kind !== 'decode') throw new Error('evaluation needs decoded batches');
  const dimensions = manifest.action.shape[manifest.action.shape.length - 1]!;
  const squared = new Float64Array(dimensions);
  let absolute = 0;
  let steps = 0;
  let episodes = 0;
  const latencies: number[] = [];
  for await (const { item, batches } of plan.episodes()) {
    await runtime.reset();
    episodes++;
    for (const batch of batches) {
      const columns = readColumns(batch, manifest.observation);
      const actions = numericColumn(batch, 'action');
      const tasks = batch.getChild('language_instruction');
      const stepIndex = batch.getChild('step_index')!;
      const callOf = (row: number) => {
        const observation: PolicyObservation = {};
        for (const [name, column] of columns) {
          observation[name] = column.kind === 'image' ? column.row(row) : normalize(column.row(row), normalization, name);
        }
        return observation;
      };
      // The rows' calls go to the policy together when it can take them so (a host: one round trip),
      // as many as fit in about FRAME_BYTES of observations.
      const stepsPerCall =
        batch.numRows === 0 ? 1 : Math.max(1, Math.min(STEPS_PER_CALL, Math.floor(FRAME_BYTES / observationBytes(callOf(0)))));
      for (let first = 0; first < batch.numRows; first += stepsPerCall) {
        const rows = Array.from({ length: Math.min(stepsPerCall, batch.numRows - first) }, (_, index) => first + index);
        const calls = rows.map((row) => {
          const observation = callOf(row);
          const context = {
            step: Number(stepIndex.get(row)),
            episode: item.episode.episodeIndex,
            task: (tasks?.get(row) as string | null) ?? '',
          };
          return { observation, context };
        });
        const started = performance.now();
        let outputs: Float32Array[];
        try {
          if (runtime.actMany) outputs = await runtime.actMany(calls);
          else {
            outputs = [];
            for (const call of calls) outputs.push(await runtime.act(call.observation, call.context));
          }
        } catch (error) {
          // The host stops at the step that failed and names it (callIndex).
          const index = Number((error as { details?: { callIndex?: unknown } }).details?.callIndex ?? 0);
          Object.assign(error as object, {
            location: { episode: item.episode.episodeIndex, step: calls[index]?.context.step ?? calls[0]!.context.step },
          });
          throw error;
        }
        // Per step: a batch's time shared among its steps.
        const perStep = (performance.now() - started) / calls.length;
        for (const [index, output] of outputs.entries()) {
          latencies.push(perStep);
          const predicted = unnormalize(Array.from(output.subarray(0, dimensions)), normalization);
          const truth = actions.row(rows[index]!);
          for (let dimension = 0; dimension < dimensions; dimension++) {
            const difference = predicted[dimension]! - truth[dimension]!;
            squared[dimension]! += difference * difference;
            absolute += Math.abs(difference);
          }
          steps++;
        }
      }
    }
  }
  const perDimension = Array.from(squared, (sum) => sum / steps);
  latencies.sort((first, second) => first - second);
  const percentile = (fraction: number) => latencies[Math.min(latencies.length - 1, Math.floor(fraction * latencies.length))] ?? 0;
  return {
    metrics: {
      actionMse: perDimension.reduce((sum, value) => sum + value, 0) / dimensions,
      actionMae: absolute / (steps * dimensions),
      perDimension,
      stepsEvaluated: steps,
      episodesEvaluated: episodes,
    },
    timing: { latencyMsP50: round(percentile(0.5)), latencyMsP99: round(percentile(0.99)) },
  };
}

const round = (value: number) => Math.round(value * 1000) / 1000;

type ColumnReader = { kind: 'numeric'; row: (row: number) => number[] } | { kind: 'image'; row: (row: number) => Uint8Array };

function readColumns(batch: RecordBatch, names: string[]): Map<string, ColumnReader> {
  const columns = new Map<string, ColumnReader>();
  for (const name of names) {
    const vector = batch.getChild(name)!;
    if (DataType.isBinary(vector.type)) columns.set(name, { kind: 'image', row: (row) => vector.get(row) as Uint8Array });
    else columns.set(name, numericColumn(batch, name));
  }
  return columns;
}

function numericColumn(batch: RecordBatch, name: string): { kind: 'numeric'; row: (row: number) => number[] } {
  const vector: Vector = batch.getChild(name)!;
  return {
    kind: 'numeric',
    row: (row) => Array.from(vector.get(row) as Iterable<number | bigint | boolean>, (value) => Number(value)),
  };
}
