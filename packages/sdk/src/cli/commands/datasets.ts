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
}
