import type { Command } from 'commander';
import { actionSpaces } from '@kura/schema';
import { contextOf } from '../context.js';
import { table } from '../output.js';

export function robotsCommand(program: Command): void {
  const robots = program.command('robots').description('robots (their control rate, action space, cameras)');
  robots
    .command('create')
    .description('register a robot')
    .requiredOption('--name <name>')
    .requiredOption('--type <robotType>', 'e.g. so101, aloha, franka')
    .requiredOption('--hz <controlFrequencyHz>', 'control frequency in Hz')
    .requiredOption('--action-space <space>', actionSpaces.join(', '))
    .option('--state-space <space>', actionSpaces.join(', '))
    .option('--joints <names>', 'joint names, comma-separated')
    .option('--json', 'print JSON')
    .action(async (options: Record<string, string | boolean | undefined>) => {
      const { client, output } = await contextOf(options);
      const robot = await client.robots.create({
        name: String(options.name),
        robotType: String(options.type),
        controlFrequencyHz: Number(options.hz),
        actionSpace: String(options.actionSpace) as never,
        ...(options.stateSpace ? { stateSpace: String(options.stateSpace) as never } : {}),
        ...(options.joints ? { jointNames: String(options.joints).split(',') } : {}),
      });
      output.result(robot, () => `robot ${robot.id} "${robot.name}" created`);
    });
  robots
    .command('list')
    .description('list robots')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const { client, output } = await contextOf(options);
      const page = await client.robots.list({ limit: 200 });
      output.result(page, () =>
        table(page.items as unknown as Array<Record<string, unknown>>, ['id', 'name', 'robotType', 'controlFrequencyHz', 'actionSpace']),
      );
    });
}
