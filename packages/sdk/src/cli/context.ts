import { readFile } from 'node:fs/promises';
import { KuraClient } from '../client.js';
import { KuraError } from '../errors.js';
import { loadConfig, type CliConfig } from './config.js';
import { Output } from './output.js';

/** What every command gets: the output mode and a client for the configured server and key. */
export interface CommandContext {
  output: Output;
  config: CliConfig;
  client: KuraClient;
}

export async function contextOf(options: { json?: boolean }): Promise<CommandContext> {
  const config = await loadConfig();
  if (!/^https?:\/\//.test(config.url))
    throw new KuraError('BAD_URL', `the server URL "${config.url}" must start with http:// or https://`);
  return { output: new Output(Boolean(options.json)), config, client: new KuraClient({ url: config.url, apiKey: config.apiKey }) };
}

/** A numeric option, or a usage error naming it. */
export function integerOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new KuraError('BAD_ARGUMENT', `${name} must be a whole number, got "${value}"`);
  return number;
}

/** Sizes like `5MiB`, `64MB`, `1048576`. */
export function bytesOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/i.exec(value.trim());
  if (!match) throw new KuraError('BAD_ARGUMENT', `${name} must be a size like 5MiB or 67108864, got "${value}"`);
  const factors: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };
  return Math.round(Number(match[1]) * factors[(match[2] ?? 'b').toLowerCase()]!);
}

/** `--obs`: an observation as JSON, or `@file.json`. */
export async function observationOption(value: string): Promise<Record<string, unknown>> {
  const text = value.startsWith('@')
    ? await readFile(value.slice(1), 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new KuraError('PATH_NOT_FOUND', `${value.slice(1)}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
      })
    : value;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new KuraError('BAD_ARGUMENT', `--obs is not JSON: ${(error as Error).message}`);
  }
}
