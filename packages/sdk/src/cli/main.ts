import { Command, CommanderError } from 'commander';
import { formatLocation, KuraApiError, KuraError, KuraNetworkError } from '../errors.js';
import { datasetsCommand } from './commands/datasets.js';
import { edgeCommands } from './commands/edge.js';
import { ledgerCommand } from './commands/ledger.js';
import { loginCommand } from './commands/login.js';
import { policyCommands } from './commands/policies.js';
import { robotsCommand } from './commands/robots.js';
import { sliceCommand } from './commands/slices.js';
import { trainingCommands } from './commands/training.js';
import { uploadCommands } from './commands/uploads.js';

/**
 * Exit codes: 0 done; 1 the API refused or the work failed (the API's code is printed); 2 wrong
 * usage (arguments, paths); 3 the server could not be reached or the connection broke.
 */
export const exitCodes = { failed: 1, usage: 2, network: 3 } as const;

const USAGE_CODES = new Set(['BAD_ARGUMENT', 'PATH_NOT_FOUND', 'PATH_EMPTY', 'BAD_URL', 'NO_API_KEY']);

export function buildProgram(): Command {
  const program = new Command('kura')
    .description('Kura: upload robot data, cut slices, push and run policies (server and key: `kura login`, or KURA_URL and KURA_API_KEY)')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  loginCommand(program);
  robotsCommand(program);
  datasetsCommand(program);
  ledgerCommand(program);
  uploadCommands(program);
  sliceCommand(program);
  policyCommands(program);
  trainingCommands(program);
  edgeCommands(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** One line naming the cause, on stderr (and the error as JSON on stdout with --json); returns the exit code. */
export function reportError(error: unknown, json: boolean): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : exitCodes.usage;
  let code = 'INTERNAL';
  let message = error instanceof Error ? error.message : String(error);
  let exit: number = exitCodes.failed;
  let details: Record<string, unknown> | undefined;
  if (error instanceof KuraApiError) {
    code = error.code;
    details = error.details;
    const where = formatLocation(error.location);
    if (where) message += ` (at ${where})`;
    if (error.status === 401) message += ' — run `kura login` or set KURA_API_KEY';
  } else if (error instanceof KuraNetworkError) {
    code = error.code;
    exit = exitCodes.network;
  } else if (error instanceof KuraError) {
    code = error.code;
    if (USAGE_CODES.has(code)) exit = exitCodes.usage;
    if (code === 'DOWNLOAD_INTERRUPTED') exit = exitCodes.network;
  }
  process.stderr.write(`kura: ${code}: ${message}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message, ...(details ? { details } : {}) } }, null, 2)}\n`);
  return exit;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    return reportError(error, argv.includes('--json'));
  }
}

process.exitCode = await main(process.argv);
