import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { JailLevelChoice } from '@kura/jail';
import { policyLimits, policyManifestSchema, type Feature, type TrainingProblem } from '@kura/schema';
import tarStream from 'tar-stream';
import { BLOB_STORE, type BlobStore } from '../blobs/blob-store.js';
import { newId } from '../common/ids.js';
import { AppError } from '../errors/app-error.js';
import type { KuraConfig } from '../config/config.js';
import { JAIL_LEVEL, KURA_CONFIG, LOGGER } from '../database/database.tokens.js';
import { DatasetsRepository } from '../datasets/datasets.repository.js';
import { JobsService } from '../jobs/jobs.service.js';
import type { Logger } from '../logging/logger.js';
import { EvaluationsRepository } from '../policies/evaluations.repository.js';
import { evaluatePolicyJobId } from '../policies/evaluations.service.js';
import { PoliciesRepository } from '../policies/policies.repository.js';
import { PolicyValidationService } from '../policies/policy-validation.service.js';
import { resolveSliceColumns } from '../slices/slice-columns.js';
import { SliceReader } from '../slices/slice-reader.js';
import type { SliceRecord } from '../slices/slices.repository.js';
import { gpuDevices, type GpuDevices } from './gpu-devices.js';
import { runTrainerProcess, type TrainerOutcome } from './trainer-process.js';
import { TrainerValidationService } from './trainer-validation.service.js';
import { TrainersRepository } from './trainers.repository.js';
import { guardedMessage } from './run-output.js';
import { materialiseTrainingSet, TrainingSetError, type TrainingSetMeta } from './training-set.js';
import { TrainingsRepository, type TrainingRecord } from './trainings.repository.js';
import { toSourceView } from './trainings.service.js';

/** What ended a run, as the code its record gets. */
const OUTCOME_CODES: Record<Exclude<TrainerOutcome, 'ok' | 'cancelled'>, { code: string; message: string }> = {
  failed: { code: 'TRAINING_FAILED', message: 'the trainer exited with an error' },
  timeout: { code: 'TRAINING_TIMEOUT', message: 'the trainer ran past its wall-clock budget (resources.wallSeconds) and was stopped' },
  memory: { code: 'TRAINING_MEMORY_LIMIT', message: 'the trainer ran out of its memory (resources.memoryMb)' },
  cpu: { code: 'TRAINING_CPU_LIMIT', message: 'the trainer used up its CPU time (resources.cpuSeconds)' },
  'file-size': { code: 'TRAINING_OUTPUT_TOO_LARGE', message: 'the trainer wrote a file larger than a run may leave' },
  'output-too-large': { code: 'TRAINING_OUTPUT_TOO_LARGE', message: 'the trainer left more in /out than a run may (bytes or files)' },
  'message-too-large': { code: 'TRAINING_CRASHED', message: 'the trainer wrote to a channel it does not own' },
  crashed: { code: 'TRAINING_CRASHED', message: 'the trainer was killed by a signal' },
};

/** A run refused for what its trainer did or left: a coded problem, never retried. */
class RunFailure extends Error {
  constructor(readonly problem: TrainingProblem) {
    super(problem.message);
  }
}
const fail = (code: string, message: string, location?: TrainingProblem['location']): never => {
  throw new RunFailure({ code, message, ...(location ? { location } : {}) });
};

/**
 * Runs one training (the `trainings.run` job, on its own queue): hands the data over as NumPy files,
 * runs the trainer in the jail, checks what it left in /out, registers that as a new version of the
 * developer's policy (with its lineage), validates it, and queues its evaluation on the held-out
 * episodes of every source. A run whose worker died is failed WORKER_LOST, never run twice.
 */
@Injectable()
export class TrainingRunner {
  constructor(
    private readonly trainings: TrainingsRepository,
    private readonly trainers: TrainersRepository,
    private readonly validation: TrainerValidationService,
    private readonly datasets: DatasetsRepository,
    private readonly reader: SliceReader,
    private readonly policies: PoliciesRepository,
    private readonly policyValidation: PolicyValidationService,
    private readonly evaluations: EvaluationsRepository,
    // Looked up at use: JobsService is built from the job handlers, this runner among them.
    private readonly modules: ModuleRef,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(KURA_CONFIG) private readonly config: KuraConfig,
    @Inject(JAIL_LEVEL) private readonly jail: JailLevelChoice,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    // Checked at start: a machine without the GPUs it is told to give says so before any run.
    this.gpus = gpuDevices(config.training.gpus);
  }

  private readonly gpus: GpuDevices | undefined;

  async run(trainingId: string): Promise<void> {
    const claim = await this.trainings.claim(trainingId);
    const folder = join(this.config.training.directory, trainingId);
    if (claim === 'finished') return;
    if (claim === 'lost') {
      await this.lost(trainingId);
      return;
    }
    const training = (await this.trainings.findById(trainingId))!;
    const guarded = training.beyondAccessEpisodes > 0;
    const cancel = new AbortController();
    const poll = setInterval(() => {
      void this.trainings.cancelRequested(trainingId).then(
        (requested) => requested && cancel.abort(new RunCancelled()),
        () => undefined,
      );
    }, 1000);
    let log: string | undefined;
    let metrics: TrainingRecord['metrics'] | undefined;
    try {
      await rm(folder, { recursive: true, force: true });
      await mkdir(this.config.training.directory, { recursive: true, mode: 0o711 });
      await mkdir(folder, { mode: 0o711 });
      const trainer = await this.trainers.findById(training.trainerId);
      if (!trainer?.manifest) return fail('TRAINER_NOT_READY', `trainer ${training.trainerId} is not ready`);
      const { root: code } = await this.validation.unpack(trainer.bundleKey, join(folder, 'code'));
      const data = join(folder, 'data');
      const materialising = performance.now();
      const meta = await this.materialise(training, trainer.manifest.features, data, cancel.signal);
      this.logger.info(
        { trainingId, steps: meta.steps, episodes: meta.episodes, ms: Math.round(performance.now() - materialising) },
        'training set written',
      );
      await writeFile(join(data, 'hyperparameters.json'), JSON.stringify(training.request.hyperparameters), { mode: 0o644 });
      const out = join(folder, 'out');
      await mkdir(out, { mode: 0o777 });
      await chmod(out, 0o777); // the trainer runs as a user of its own

      await this.trainings.markRunning(trainingId);
      const result = await runTrainerProcess({
        level: this.jail.level,
        interpreter: this.config.training.python,
        entry: trainer.manifest.entry,
        codeDir: code,
        dataDir: data,
        outDir: out,
        resources: training.resources,
        processes: this.config.training.processes,
        output: { maxBytes: this.config.training.maxOutputBytes, maxFiles: this.config.training.maxOutputFiles },
        guarded,
        env: { KURA_POLICY_NAME: training.request.policyName ?? trainer.manifest.name, KURA_TRAINING_ID: trainingId },
        signal: cancel.signal,
        gpus: this.gpus,
        onProgress: (series) => void this.trainings.saveMetrics(trainingId, series.toJSON()).catch(() => undefined),
      });
      log = result.log;
      metrics = result.metrics.toJSON();
      if (result.outcome === 'cancelled') throw new RunCancelled();
      if (result.outcome !== 'ok') {
        const known = OUTCOME_CODES[result.outcome];
        const stderr = result.exit.stderr.trim().split('\n').slice(-5).join('\n');
        fail(known.code, guardedMessage(stderr ? `${known.message}: ${stderr}` : known.message, guarded));
      }
      const policyId = await this.register(training, trainer.manifest.name, out);
      const evaluationIds = await this.evaluate(training, policyId);
      await this.finish(training, { status: 'succeeded', metrics, evaluationIds }, log);
    } catch (error) {
      if (error instanceof RunCancelled || cancel.signal.aborted) {
        await this.finish(training, { status: 'cancelled', metrics }, log);
      } else if (error instanceof TrainingSetError) {
        await this.finish(
          training,
          { status: 'failed', error: { code: error.code, message: error.message, location: error.location } },
          log,
        );
      } else if (error instanceof AppError && error.code === 'SHARD_CORRUPT') {
        // The store, not the trainer: said plainly so that the dataset's owner can re-ingest.
        this.logger.error({ trainingId, err: error }, 'training set unreadable');
        const problem = { code: error.code, message: guardedMessage(error.message, guarded) };
        await this.finish(training, { status: 'failed', metrics, error: problem }, log);
      } else if (error instanceof RunFailure) {
        await this.finish(training, { status: 'failed', metrics, error: error.problem }, log);
      } else {
        this.logger.error({ trainingId, err: error }, 'training failed');
        const message = `Kura could not complete the run: ${(error as Error).message}`;
        await this.finish(
          training,
          { status: 'failed', metrics, error: { code: 'TRAINING_FAILED', message: guardedMessage(message, guarded) } },
          log,
        );
      }
    } finally {
      clearInterval(poll);
      await rm(folder, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** A worker died inside this run (`deaths` times, or one found it started): failed, its files removed. */
  async lost(trainingId: string): Promise<void> {
    // Files first: once the record says failed, nothing of the run is left on disk.
    await rm(join(this.config.training.directory, trainingId), { recursive: true, force: true }).catch(() => undefined);
    await this.trainings.finish(trainingId, {
      status: 'failed',
      error: {
        code: 'WORKER_LOST',
        message: 'the worker running this training stopped (killed or crashed) before it ended; runs are not retried: start it again',
      },
    });
  }

  /** Writes the run's training set: its pinned episodes of each source, the trainer's features. */
  private async materialise(
    training: TrainingRecord,
    features: string[],
    directory: string,
    signal: AbortSignal,
  ): Promise<TrainingSetMeta> {
    const specs = [];
    for (const source of training.sources) {
      const dataset = await this.datasets.findById(source.datasetId);
      if (!dataset) return fail('DATASET_NOT_FOUND', `dataset ${source.datasetId} no longer exists`, { field: 'sources' });
      specs.push({ datasetId: source.datasetId, features: dataset.features ?? {}, robotId: dataset.robotId });
    }
    const columns = resolveSliceColumns(specs, [...features, 'language_instruction']);
    const slice: SliceRecord = {
      id: training.id,
      ownerKeyId: training.ownerKeyId,
      columns,
      steps: null,
      request: null,
      episodeCount: training.episodeCount,
      stepCount: training.stepCount,
      withheldHeldOut: 0,
      withheldGrant: 0,
      createdAt: training.createdAt,
      sources: training.sources.map((source, position) => ({
        position,
        datasetId: source.datasetId,
        version: source.version,
        weight: source.weight,
        episodes: source.episodes,
        episodeCount: source.episodeCount,
        stepCount: BigInt(source.stepCount),
        sampleOnly: false,
        includesHeldOut: false,
      })),
    };
    const plan = await this.reader.plan(slice, { forward: false });
    if (plan.kind !== 'decode') throw new Error('a training set needs decoded batches');
    const byName = new Map(columns.map((column) => [column.name, column.feature]));
    return materialiseTrainingSet({
      plan,
      features: features.map((name) => ({ name, feature: byName.get(name) as Feature })),
      sources: training.sources.map(toSourceView),
      robotId: specs.length === 1 ? specs[0]!.robotId : null,
      directory,
      signal,
    });
  }

  /**
   * Checks what the trainer left (policy.json and its entry: regular files, no links, within the
   * policy limits), stores it as a policy bundle and registers it, linked to the run in one
   * transaction, then validates it as any uploaded policy is.
   */
  private async register(training: TrainingRecord, trainerName: string, out: string): Promise<string> {
    const files = await outputFiles(out);
    const manifestPath = join(out, 'policy.json');
    if (!files.includes('policy.json')) fail('TRAINING_OUTPUT_MISSING', 'the trainer left no /out/policy.json', { file: 'policy.json' });
    if ((await lstat(manifestPath)).size > policyLimits.maxManifestBytes)
      fail('TRAINING_OUTPUT_INVALID', `/out/policy.json is larger than ${policyLimits.maxManifestBytes} bytes`, { file: 'policy.json' });
    let manifest: ReturnType<typeof policyManifestSchema.parse>;
    try {
      const parsed = policyManifestSchema.safeParse(JSON.parse(await readFile(manifestPath, 'utf8')));
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        return fail('TRAINING_OUTPUT_INVALID', `/out/policy.json ${issue.path.join('.')}: ${issue.message}`, {
          file: 'policy.json',
          field: issue.path.join('.'),
        });
      }
      manifest = parsed.data;
    } catch (error) {
      return fail('TRAINING_OUTPUT_INVALID', `/out/policy.json is not valid JSON: ${(error as Error).message}`, { file: 'policy.json' });
    }
    const entry = relative(out, resolve(out, manifest.entry));
    if (entry.startsWith('..') || !files.includes(entry.split(sep).join('/')))
      fail('TRAINING_OUTPUT_MISSING', `the trainer left no /out/${manifest.entry} (policy.json's entry)`, { file: manifest.entry });
    // The policy's name is the run's: a new version of the developer's policy of that name.
    manifest.name = training.request.policyName ?? trainerName;
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2));

    const policyId = newId('pol');
    const bundleKey = `policies/${policyId}/bundle`;
    const { bytes, sha256 } = await storeTarGz(this.blobs, bundleKey, out, files);
    await this.trainings.registerPolicy(training.id, {
      id: policyId,
      ownerKeyId: training.ownerKeyId,
      access: 'private',
      runtime: 'unknown',
      bundleKey,
      bytes: BigInt(bytes),
      sha256,
    });
    await this.policyValidation.validate(policyId);
    const policy = await this.policies.findById(policyId);
    if (policy?.status !== 'ready') {
      const problem = policy?.errors[0];
      fail(
        'TRAINING_POLICY_REJECTED',
        `the trained policy ${policyId} was rejected: ${problem ? `${problem.code}: ${problem.message}` : 'unknown reason'}`,
      );
    }
    return policyId;
  }

  /** Queues the policy's evaluation on the held-out episodes of each source's pinned version. */
  private async evaluate(training: TrainingRecord, policyId: string): Promise<string[]> {
    const ids: string[] = [];
    for (const source of training.sources) {
      const evaluation = await this.evaluations.create({
        id: newId('evl'),
        policyId,
        datasetId: source.datasetId,
        version: source.version,
        ownerKeyId: training.ownerKeyId,
      });
      await this.modules
        .get(JobsService, { strict: false })
        .enqueue('policies.evaluate', { evaluationId: evaluation.id }, { id: evaluatePolicyJobId(evaluation.id) });
      ids.push(evaluation.id);
    }
    return ids;
  }

  private async finish(
    training: TrainingRecord,
    result: Parameters<TrainingsRepository['finish']>[1],
    log: string | undefined,
  ): Promise<void> {
    let logKey: string | undefined;
    if (log !== undefined) {
      logKey = `trainings/${training.id}/log.txt`;
      await this.blobs.put({ key: logKey, body: Buffer.from(log), contentType: 'text/plain; charset=utf-8' });
    }
    await this.trainings.finish(training.id, { ...result, logKey });
    this.logger.info({ trainingId: training.id, status: result.status, code: result.error?.code }, `training ${result.status}`);
  }
}

class RunCancelled extends Error {
  constructor() {
    super('the run was cancelled');
  }
}

/** The regular files under /out, as `/`-separated paths; a link or anything else there fails the run. */
async function outputFiles(out: string): Promise<string[]> {
  const files: string[] = [];
  const pending = [out];
  while (pending.length > 0) {
    const folder = pending.pop()!;
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      const name = relative(out, path).split(sep).join('/');
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile()) files.push(name);
      else
        fail('TRAINING_OUTPUT_INVALID', `/out/${name} is not a regular file (links and devices are not taken out of a run)`, {
          file: name,
        });
    }
  }
  return files.sort();
}

/** Stores `files` of `folder` as a .tar.gz blob; files are opened without following links. */
async function storeTarGz(blobs: BlobStore, key: string, folder: string, files: string[]): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const archive = tarStream.pack();
  const gzip = createGzip();
  const body = new PassThrough();
  gzip.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  const stored = blobs.put({ key, body, contentType: 'application/gzip' });
  const piping = pipeline(archive, gzip, body);
  for (const name of files) {
    const path = join(folder, name);
    const { size, isFile } = await lstat(path).then((stats) => ({ size: stats.size, isFile: stats.isFile() }));
    if (!isFile) fail('TRAINING_OUTPUT_INVALID', `/out/${name} changed while it was read`, { file: name });
    const entry = archive.entry({ name, size, mode: 0o644 });
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    await pipeline(handle.createReadStream(), entry);
  }
  archive.finalize();
  await piping;
  await stored;
  return { bytes, sha256: hash.digest('hex') };
}
