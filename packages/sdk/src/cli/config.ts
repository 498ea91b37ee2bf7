import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CliConfig {
  url: string;
  apiKey: string | undefined;
}

export const DEFAULT_URL = 'http://localhost:8080';

/** `$XDG_CONFIG_HOME/kura` or `~/.config/kura`: the login and the state of resumable uploads. */
export function configDirectory(): string {
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'kura');
}

const configPath = () => join(configDirectory(), 'config.json');

/** The stored login, with KURA_URL and KURA_API_KEY taking precedence. */
export async function loadConfig(): Promise<CliConfig> {
  let stored: Partial<CliConfig> = {};
  try {
    stored = JSON.parse(await readFile(configPath(), 'utf8')) as Partial<CliConfig>;
  } catch {
    // not logged in yet
  }
  return {
    url: process.env.KURA_URL || stored.url || DEFAULT_URL,
    apiKey: process.env.KURA_API_KEY || stored.apiKey,
  };
}

/** Keeps the login for later commands; the file holds a key, so only its owner may read it. */
export async function saveConfig(config: CliConfig): Promise<string> {
  await mkdir(configDirectory(), { recursive: true, mode: 0o700 });
  const path = configPath();
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}
