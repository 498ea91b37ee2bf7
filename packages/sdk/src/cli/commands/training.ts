import { readFile } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';
import { createGzip } from 'node:zlib';
import type { Command } from 'commander';
import type { TrainingView } from '@kura/schema';
import { KuraError } from '../../errors.js';
import { sourceOf } from '../../sources.js';
import { contextOf, integerOption } from '../context.js';
import { issueLine } from '../output.js';

/** `kura trainers push`, `kura train`, `kura trainings list|show|logs|cancel`: training on the platform. */
export function trainingCommands(program: Command): void {
  const trainers = program.command('trainers').description('trainer bundles (trainer.json + Python code) that Kura runs on its data');
  trainers
    .command('push <dir>')
    .description('bundle a trainer folder (.tar.gz), upload it and wait for its validation')
    .option('--no-wait', 'return once uploaded, before validation')
    .option('--json', 'print JSON')
    .action(async (dir: string, options: { wait: boolean; json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const source = await sourceOf(dir);
      if (source.path) throw new KuraError('BAD_ARGUMENT', `${dir}: give the trainer's folder (with trainer.json), not a file`);
      let trainer = await client.trainers.upload(await buffer(source.open().pipe(createGzip())));
      if (options.wait) trainer = await client.trainers.waitReady(trainer.id);
      output.result(trainer, () => [
        `trainer ${trainer.id}${trainer.name ? ` "${trainer.name}"` : ''}: ${trainer.status}`,
        ...trainer.errors.map((error) => `  error ${issueLine(error)}`),
      ]);
      if (trainer.status === 'rejected')
        throw new KuraError(
          'TRAINER_REJECTED',
          `trainer ${trainer.id} was rejected${trainer.errors[0] ? `: ${issueLine(trainer.errors[0])}` : ''}`,
        );
    });

  program
    .command('train')
    .description("run a trainer on datasets, on the platform (a sample dataset's non-public part included)")
    .requiredOption('--trainer <id>', 'a ready trainer of yours')
    .requiredOption('--dataset <id...>', 'source datasets (latest versions unless --version)')
    .option('--version <n>', 'version of the (single) dataset')
    .option('--hyperparameters <json>', 'hyperparameters as JSON, or @file.json')
    .option('--wall-seconds <s>', "lower the trainer's wall-clock budget")
    .option('--policy-name <name>', 'name of the policy the run registers')
    .option('--dry-run', 'train only on what you may download (the public sample): full logs, to debug')
    .option('--wait', 'follow the run (step and loss on a terminal) until it ends')
    .option('--json', 'print JSON')
    .action(
      async (options: {
        trainer: string;
        dataset: string[];
        version?: string;
        hyperparameters?: string;
        wallSeconds?: string;
        policyName?: string;
        dryRun?: boolean;
        wait?: boolean;
        json?: boolean;
      }) => {
        const { client, output } = await contextOf(options);
        const version = integerOption(options.version, '--version');
        if (version !== undefined && options.dataset.length > 1) throw new KuraError('BAD_ARGUMENT', '--version needs a single --dataset');
        const wallSeconds = integerOption(options.wallSeconds, '--wall-seconds');
        let training = await client.trainings.create({
          trainerId: options.trainer,
          sources: options.dataset.map((datasetId) => ({ datasetId, ...(version !== undefined ? { version } : {}) })),
          hyperparameters: await hyperparametersOf(options.hyperparameters),
          ...(wallSeconds !== undefined ? { budget: { wallSeconds } } : {}),
          ...(options.policyName ? { policyName: options.policyName } : {}),
          dryRun: options.dryRun ?? false,
        });
        output.note(
          `training ${training.id}: ${training.episodeCount} episodes, ${training.stepCount} steps` +
            (training.beyondAccessEpisodes > 0
              ? ` (${training.beyondAccessEpisodes} beyond what you may download: its log will be guarded)`
              : ''),
        );
        if (options.wait) {
          const live = process.stderr.isTTY && !options.json;
          training = await client.trainings.wait(training.id, {
            intervalMs: 1000,
            onProgress: (now) => {
              if (live) process.stderr.write(`\r${progressLine(now)}\x1b[K`);
            },
          });
          if (live) process.stderr.write('\n');
        }
        output.result(training, () => trainingLines(training));
        failIfFailed(training);
      },
    );

  const trainings = program.command('trainings').description('training runs');
  trainings
    .command('list')
    .description('your training runs')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const page = await client.trainings.list({ limit: 500 });
      output.result(page, () => page.items.map((training) => progressLine(training)));
    });
  trainings
    .command('show <id>')
    .description('a run: status, data, metrics, the policy it made')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const training = await client.trainings.get(id);
      output.result(training, () => trainingLines(training));
    });
  trainings
    .command('logs <id>')
    .description("a run's log, once it has ended")
    .action(async (id: string) => {
      const { client, output } = await contextOf({});
      const { text, guarded } = await client.trainings.logs(id);
      if (guarded) output.note('(guarded: the run used data beyond your access, so only metric lines and the last 4 KiB are kept)');
      process.stdout.write(text);
    });
  trainings
    .command('cancel <id>')
    .description('stop a run (a running one within about a second)')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const training = await client.trainings.cancel(id);
      output.result(training, () => `training ${training.id}: cancelling (${training.status})`);
    });
}

async function hyperparametersOf(text: string | undefined): Promise<Record<string, unknown>> {
  if (text === undefined) return {};
  const json = text.startsWith('@')
    ? await readFile(text.slice(1), 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new KuraError('PATH_NOT_FOUND', `${text.slice(1)}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
      })
    : text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new KuraError('BAD_ARGUMENT', `--hyperparameters is not JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new KuraError('BAD_ARGUMENT', '--hyperparameters must be a JSON object');
  return parsed as Record<string, unknown>;
}

function progressLine(training: TrainingView): string {
  const metrics = training.latestMetrics;
  const step = training.latestStep ?? undefined;
  const loss = metrics.loss !== undefined ? ` loss ${metrics.loss.toPrecision(4)}` : '';
  return `training ${training.id}: ${training.status}${step !== undefined ? ` step ${step}` : ''}${loss}`;
}

function trainingLines(training: TrainingView): string[] {
  return [
    progressLine(training),
    ...training.sources.map(
      (source) =>
        `  ${source.datasetId} v${source.version}: ${source.episodes} episodes, ${source.steps} steps${source.beyondAccess ? ` (${source.beyondAccess} beyond your access)` : ''}`,
    ),
    ...(training.policyId ? [`  policy ${training.policyId}; evaluations ${training.evaluationIds.join(', ')}`] : []),
    ...(training.error ? [`  error ${training.error.code}: ${training.error.message}`] : []),
  ];
}

function failIfFailed(training: TrainingView): void {
  if (training.status === 'failed')
    throw new KuraError(
      'TRAINING_FAILED',
      `training ${training.id} failed${training.error ? `: ${training.error.code}: ${training.error.message}` : ''}`,
    );
  if (training.status === 'cancelled') throw new KuraError('TRAINING_CANCELLED', `training ${training.id} was cancelled`);
}
