import { ConfigError, loadConfig, type KuraConfig } from '@kura/core';

/** Loads the configuration; on a bad variable, prints what is wrong and exits with status 1. */
export function loadConfigOrExit(): KuraConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
