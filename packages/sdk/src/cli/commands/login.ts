import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { KuraClient } from '../../client.js';
import { KuraError } from '../../errors.js';
import { loadConfig, saveConfig } from '../config.js';
import { Output } from '../output.js';

export function loginCommand(program: Command): void {
  program
    .command('login')
    .description('check a server URL and API key, and keep them for later commands (~/.config/kura/config.json)')
    .option('--url <url>', 'the Kura server (default: KURA_URL, the stored one, or http://localhost:8080)')
    .option('--key <key>', 'the API key (default: KURA_API_KEY, or read from stdin)')
    .option('--json', 'print JSON')
    .action(async (options: { url?: string; key?: string; json?: boolean }) => {
      const output = new Output(Boolean(options.json));
      const current = await loadConfig();
      const url = (options.url ?? current.url).replace(/\/+$/, '');
      const apiKey = options.key ?? process.env.KURA_API_KEY ?? (await readKey());
      if (!apiKey) throw new KuraError('NO_API_KEY', 'no API key given: pass --key, set KURA_API_KEY, or type it on stdin');
      const me = await new KuraClient({ url, apiKey }).keys.me();
      const path = await saveConfig({ url, apiKey });
      output.result({ url, key: me, configFile: path }, () => `logged in to ${url} as "${me.name}" (${me.role}); saved to ${path}`);
    });
}

async function readKey(): Promise<string | undefined> {
  const lines = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY });
  try {
    const answer = process.stdin.isTTY ? await lines.question('API key: ') : await firstLine(lines);
    return answer?.trim() || undefined;
  } finally {
    lines.close();
  }
}

async function firstLine(lines: AsyncIterable<string>): Promise<string | undefined> {
  for await (const line of lines) return line;
  return undefined;
}
