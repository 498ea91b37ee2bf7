import { writeFile } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';
import { createGzip } from 'node:zlib';
import type { Command } from 'commander';
import { KuraError } from '../../errors.js';
import { sourceOf } from '../../sources.js';
import { contextOf, integerOption, observationOption } from '../context.js';
import { issueLine } from '../output.js';

export function policyCommands(program: Command): void {
  const policies = program.command('policies').description('policy bundles (policy.json + code or an ONNX model)');
  policies
    .command('push <dir>')
    .description('bundle a policy folder (.tar.gz), upload it and wait for its validation')
    .option('--access <access>', 'public or private', 'private')
    .option('--no-wait', 'return once uploaded, before validation')
    .option('--json', 'print JSON')
    .action(async (dir: string, options: { access: string; wait: boolean; json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const source = await sourceOf(dir);
      if (source.path) throw new KuraError('BAD_ARGUMENT', `${dir}: give the policy's folder (with policy.json), not a file`);
      const bundle = await buffer(source.open().pipe(createGzip()));
      let policy = await client.policies.upload(bundle, options.access === 'public' ? 'public' : 'private');
      if (options.wait) policy = await client.policies.waitReady(policy.id);
      output.result(policy, () => [
        `policy ${policy.id}${policy.name ? ` "${policy.name}" v${policy.version}` : ''}: ${policy.status}`,
        ...policy.errors.map((error) => `  error ${issueLine(error)}`),
      ]);
      if (policy.status === 'rejected')
        throw new KuraError(
          'POLICY_REJECTED',
          `policy ${policy.id} was rejected${policy.errors[0] ? `: ${issueLine(policy.errors[0])}` : ''}`,
        );
    });

  program
    .command('eval <policy>')
    .description("evaluate a policy on a dataset's held-out episodes")
    .requiredOption('--dataset <id>', 'the dataset')
    .option('--version <n>', 'dataset version (default: latest)')
    .option('--wait', 'follow the evaluation until it completes or fails')
    .option('--json', 'print JSON')
    .action(async (policyId: string, options: { dataset: string; version?: string; wait?: boolean; json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const version = integerOption(options.version, '--version');
      let evaluation = await client.policies.evaluate(policyId, {
        datasetId: options.dataset,
        ...(version !== undefined ? { version } : {}),
      });
      if (options.wait) evaluation = await client.evaluations.wait(evaluation.id);
      output.result(evaluation, () => {
        const lines = [`evaluation ${evaluation.id}: ${evaluation.status}`];
        if (evaluation.metrics) {
          const metrics = evaluation.metrics as { actionMse: number; actionMae: number; stepsEvaluated: number; episodesEvaluated: number };
          lines.push(
            `  actionMse ${metrics.actionMse}, actionMae ${metrics.actionMae} over ${metrics.episodesEvaluated} episodes / ${metrics.stepsEvaluated} steps`,
          );
        }
        return lines;
      });
      if (evaluation.status === 'failed') {
        const error = evaluation.error;
        throw new KuraError('EVALUATION_FAILED', `evaluation ${evaluation.id} failed${error ? `: ${error.code}: ${error.message}` : ''}`);
      }
    });

  program
    .command('act <policy>')
    .description('run a deployed policy once on an observation')
    .requiredOption('--obs <json>', 'the observation as JSON, or @file.json')
    .option('--task <text>', 'the task, for language-conditioned policies')
    .option('--json', 'print JSON')
    .action(async (policyId: string, options: { obs: string; task?: string; json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const observation = await observationOption(options.obs);
      const result = await client.policies.act(policyId, { observation, ...(options.task ? { task: options.task } : {}) });
      output.result(result, () => `action ${JSON.stringify(result.action)} (${result.latencyMs} ms)`);
    });

  policies
    .command('export <policy>')
    .description("export a policy to run on a robot's own computer, under a signed license (docs/edge.md)")
    .requiredOption('--device <id>', 'the robot computer the package is for')
    .requiredOption('--expires <date>', 'when the package stops running (ISO date; at most 366 days away)')
    .option('--quota <calls>', 'calls the package may make')
    .requiredOption('--out <file.tar>', 'where to write the package')
    .option('--json', 'print JSON')
    .action(async (policyId: string, options: { device: string; expires: string; quota?: string; out: string; json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const quota = integerOption(options.quota, '--quota');
      const made = await client.edge.export(policyId, {
        deviceId: options.device,
        expiresAt: options.expires,
        ...(quota !== undefined ? { callQuota: quota } : {}),
      });
      await writeFile(options.out, made.bytes);
      output.result(
        { exportId: made.exportId, file: options.out, bytes: made.bytes.byteLength },
        () => `export ${made.exportId} of ${policyId} for device ${options.device}: ${options.out} (${made.bytes.byteLength} bytes)`,
      );
    });
}
