import type { Command } from 'commander';
import { contextOf } from '../context.js';
import { table } from '../output.js';

/** `kura ledger`: every dataset's earnings from the calls of policies trained on it (admins; docs/ledger.md). */
export function ledgerCommand(program: Command): void {
  program
    .command('ledger')
    .description('what every dataset earned from the calls of policies trained on it (admins)')
    .option('--from <date>', 'ISO date or time (default: the start of this month, UTC)')
    .option('--to <date>', 'ISO date or time, exclusive (default: now)')
    .option('--json', 'print JSON')
    .action(async (options: Record<string, string | boolean | undefined>) => {
      const { client, output } = await contextOf(options);
      const ledger = await client.ledger({
        ...(options.from ? { from: String(options.from) } : {}),
        ...(options.to ? { to: String(options.to) } : {}),
      });
      output.result(ledger, () => [
        `from ${ledger.from} to ${ledger.to}: ${ledger.totals.calls} calls, ${ledger.totals.amount} ${ledger.currency}`,
        ...table(ledger.datasets as unknown as Array<Record<string, unknown>>, [
          'datasetId',
          'datasetName',
          'ownerKeyId',
          'calls',
          'amount',
        ]),
      ]);
    });
}
