import { spawn } from 'node:child_process';
import { repositoryRoot } from './processes.js';

export const kuraBin = `${repositoryRoot}packages/sdk/bin/kura.js`;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: () => Record<string, unknown>;
}

/**
 * Runs the built `kura` command as a user would, with only PATH and `env` (KURA_URL, KURA_API_KEY,
 * XDG_CONFIG_HOME for its config folder). `tty: true` runs it under script(1), on a pseudo-terminal,
 * where progress bars show (stdout and stderr then arrive together in `stdout`).
 */
export function runKura(
  args: string[],
  env: Record<string, string | undefined>,
  options: { input?: string; tty?: boolean } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, kuraBin, ...args].map((part) => `'${part.replace(/'/g, "'\\''")}'`).join(' ');
    const child = options.tty
      ? spawn('script', ['-qec', command, '/dev/null'], { env: { PATH: process.env.PATH, TERM: 'xterm', ...env } })
      : spawn(process.execPath, [kuraBin, ...args], { env: { PATH: process.env.PATH, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> }));
    child.stdin.end(options.input ?? '');
  });
}
