import type { Command } from 'commander';
import { contextOf } from '../context.js';
import { table } from '../output.js';

export function datasetsCommand(program: Command): void {
  const datasets = program.command('datasets').description('datasets (episodes of one robot, with a feature spec)');
  datasets
    .command('create')
    .description('create a dataset')
    .requiredOption('--name <name>')
    .requiredOption('--robot <robotId>')
    .option('--access <access>', 'public, sample or private', 'private')
    .option('--license <spdx>', 'SPDX license id, e.g. CC-BY-4.0')
    .option('--description <text>')
    .option('--json', 'print JSON')
    .action(async (options: Record<string, string | boolean | undefined>) => {
      const { client, output } = await contextOf(options);
      const dataset = await client.datasets.create({
        name: String(options.name),
        robotId: String(options.robot),
        access: String(options.access) as never,
        ...(options.license ? { license: String(options.license) } : {}),
        ...(options.description ? { description: String(options.description) } : {}),
      });
      output.result(dataset, () => `dataset ${dataset.id} "${dataset.name}" created (${dataset.access})`);
    });
  datasets
    .command('list')
    .description('list the datasets this key may see')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const page = await client.datasets.list({ limit: 200 });
      output.result(page, () =>
        table(page.items as unknown as Array<Record<string, unknown>>, [
          'id',
          'name',
          'access',
          'episodeCount',
          'stepCount',
          'latestVersion',
        ]),
      );
    });
  datasets
    .command('show <id>')
    .description('a dataset: features, versions and its latest uploads')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const dataset = await client.datasets.get(id);
      const versions = await client.datasets.versions(id, { limit: 20 });
      output.result({ ...dataset, versions: versions.items }, () => [
        `${dataset.name} (${dataset.id}), ${dataset.access}, license ${dataset.license ?? 'none'}`,
        `robot ${dataset.robotId}; ${dataset.episodeCount} episodes, ${dataset.stepCount} steps, version ${dataset.latestVersion}`,
        'features:',
        ...Object.entries(dataset.features ?? {}).map(
          ([name, feature]) =>
            `  ${name}: ${feature.dtype} [${feature.shape.join(', ')}]${feature.names ? ` ${JSON.stringify(feature.names)}` : ''}`,
        ),
        'versions:',
        ...versions.items.map(
          (version) => `  v${version.version}: ${version.episodeCount} episodes, ${version.stepCount} steps (${version.createdAt})`,
        ),
      ]);
    });
  datasets
    .command('terms <id>')
    .description("show a dataset's terms, or set them (owner or admin) with --fee and --edge-export")
    .option('--fee <amount>', 'fee per 1,000 calls of a policy trained on it, in the deployment currency ("2.50")')
    .option('--edge-export <allow|deny>', 'whether policies trained on it may be exported to a robot')
    .option('--text <text>', 'the terms in words')
    .option('--json', 'print JSON')
    .action(async (id: string, options: Record<string, string | boolean | undefined>) => {
      const { client, output } = await contextOf(options);
      if (options.fee !== undefined || options.edgeExport !== undefined) {
        const set = await client.datasets.setTerms(id, {
          edgeExport: String(options.edgeExport ?? 'deny') as 'allow' | 'deny',
          feePer1000Calls: String(options.fee ?? '0'),
          ...(options.text ? { text: String(options.text) } : {}),
        });
        output.result(set, () => `terms of ${id} set: ${termsLine(set)}`);
        return;
      }
      const terms = await client.datasets.terms(id);
      output.result(terms, () => [
        terms.current ? `current: ${termsLine(terms.current)}` : 'no terms: no fee, no edge export',
        ...terms.history.slice(terms.current ? 1 : 0).map((earlier) => `  before: ${termsLine(earlier)}`),
      ]);
    });
  datasets
    .command('earnings <id>')
    .description('what calls of policies trained on the dataset earned it (owner or admin)')
    .option('--from <date>', 'ISO date or time (default: the start of this month, UTC)')
    .option('--to <date>', 'ISO date or time, exclusive (default: now)')
    .option('--json', 'print JSON')
    .action(async (id: string, options: Record<string, string | boolean | undefined>) => {
      const { client, output } = await contextOf(options);
      const earned = await client.datasets.earnings(id, {
        ...(options.from ? { from: String(options.from) } : {}),
        ...(options.to ? { to: String(options.to) } : {}),
      });
      output.result(earned, () => [
        `${earned.datasetId} from ${earned.from} to ${earned.to}: ${earned.totals.calls} calls, ${earned.totals.amount} ${earned.currency}`,
        ...table(
          earned.lines.map((line) => ({
            policy: `${line.policyName ?? line.policyId} v${line.policyVersion ?? '?'}`,
            share: line.share,
            fee: line.feeMinorPer1000,
            calls: line.calls.total,
            amountMinor: line.amountMinor,
          })),
          ['policy', 'share', 'fee', 'calls', 'amountMinor'],
        ),
      ]);
    });
}

function termsLine(terms: {
  feePer1000Calls: string;
  currency: string;
  edgeExport: string;
  effectiveFrom: string;
  text: string | null;
}): string {
  return `${terms.feePer1000Calls} ${terms.currency} per 1,000 calls, edge export ${terms.edgeExport}, from ${terms.effectiveFrom}${terms.text ? ` — ${terms.text}` : ''}`;
}
